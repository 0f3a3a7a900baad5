package wheeltest

import (
	"archive/zip"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteIsValidWheel(t *testing.T) {
	dir := t.TempDir()
	w := Wheel{
		Name:        "hello-lib",
		Version:     "1.2",
		Files:       map[string]string{"hello_lib/__init__.py": "X = 1\n"},
		EntryPoints: map[string]string{"hello": "hello_lib:main"},
		Requires:    []string{"other>=1"},
	}
	path, err := Write(dir, w)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := filepath.Base(path), "hello_lib-1.2-py3-none-any.whl"; got != want {
		t.Fatalf("file name %q, want %q", got, want)
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = string(b)
	}
	for name, want := range map[string]string{
		"hello_lib-1.2.dist-info/METADATA":         "Requires-Dist: other>=1\n",
		"hello_lib-1.2.dist-info/WHEEL":            "Tag: py3-none-any\n",
		"hello_lib-1.2.dist-info/entry_points.txt": "hello = hello_lib:main\n",
		"hello_lib-1.2.dist-info/RECORD":           "hello_lib/__init__.py," + RecordHash([]byte("X = 1\n")) + ",6\n",
	} {
		if !strings.Contains(files[name], want) {
			t.Errorf("%s = %q, want it to contain %q", name, files[name], want)
		}
	}
	// Same input, same bytes.
	path2, err := Write(t.TempDir(), w)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := PipHash(path)
	h2, _ := PipHash(path2)
	if h1 != h2 || !strings.HasPrefix(h1, "sha256:") {
		t.Errorf("hashes differ or malformed: %s %s", h1, h2)
	}
	// The wheel module of Debian's python3-wheel checks RECORD hashes on unpack.
	if _, err := exec.LookPath("/usr/bin/python3"); err == nil {
		out, err := exec.Command("/usr/bin/python3", "-m", "wheel", "unpack", "-d", t.TempDir(), path).CombinedOutput()
		if err != nil {
			t.Errorf("wheel unpack: %v\n%s", err, out)
		}
	}
}

func TestWriteRejectsBadInput(t *testing.T) {
	for _, w := range []Wheel{
		{Name: "", Version: "1"},
		{Name: "a b", Version: "1"},
		{Name: "a", Version: "x"},
		{Name: "a", Version: "1", Files: map[string]string{"../x.py": ""}},
		{Name: "a", Version: "1", Files: map[string]string{"/x.py": ""}},
	} {
		if _, err := Write(t.TempDir(), w); err == nil {
			t.Errorf("Write(%+v) succeeded", w)
		}
	}
}
