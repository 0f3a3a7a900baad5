/* A tiny extension module: ext.add(a, b) and ext.zlib_version(). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <zlib.h>

static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b))
        return NULL;
    return PyLong_FromLong(a + b);
}

static PyObject *zversion(PyObject *self, PyObject *unused) {
    return PyUnicode_FromString(zlibVersion());
}

static PyMethodDef methods[] = {
    {"add", add, METH_VARARGS, "Add two integers."},
    {"zlib_version", zversion, METH_NOARGS, "The zlib version the module runs with."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "ext", "A test extension.", -1, methods};

PyMODINIT_FUNC PyInit_ext(void) { return PyModule_Create(&module); }
