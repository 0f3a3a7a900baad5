# A tiny C extension for the venv tests: built into a wheel offline with
#   /usr/bin/python3 -m pip wheel --no-build-isolation --no-index --no-deps -w DIR .
# It links zlib so that the tests see a shared library dependency (zlib1g).
from setuptools import Extension, setup

setup(
    name="upds-ext",
    version="1.0",
    ext_modules=[Extension("ext", ["ext.c"], libraries=["z"])],
)
