package deb

import (
	"bytes"
	"io"
	"io/fs"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/upds/upds/stdlib/deb/control"
)

// content returns an Open function for in-memory content.
func memOpen(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

func fileEntry(p, body string, mode fs.FileMode) Entry {
	return Entry{Path: p, Type: TypeFile, Mode: mode, Size: int64(len(body)), Open: memOpen(body)}
}

// longPath is a venv-like path of more than 300 characters.
var longPath = "/var/virtualenvs/hello/lib/python3.11/site-packages/" +
	strings.Repeat("very_long_package_directory_name/", 7) + "subpackage_with_a_long_name/" +
	"module_with_an_exceedingly_long_file_name_that_goes_past_the_ustar_limit_of_one_hundred.cpython-311.pyc"

func testControl(name string) control.Paragraph {
	return control.Paragraph{Fields: []control.Field{
		{Name: "Package", Value: name},
		{Name: "Version", Value: "1:1.2.3-1"},
		{Name: "Architecture", Value: "all"},
		{Name: "Maintainer", Value: "Upds Test <test@example.com>"},
		{Name: "Depends", Value: "dpkg (>= 1.19),  base-files|base-passwd"},
		{Name: "Section", Value: "misc"},
		{Name: "Priority", Value: "optional"},
		{Name: "Description", Value: "test package for upds\nA package written by the stdlib/deb tests.\n\nIt has a second paragraph."},
		{Name: "X-Upds-Source", Value: "testing"},
	}}
}

// samplePackage has every kind of entry the writer supports.
func samplePackage(name, compression string) *Package {
	return &Package{
		Control: testControl(name),
		Entries: []Entry{
			fileEntry("/srv/"+name+"/app.py", "print('hello')\n", 0o644),
			{Path: "/srv/" + name + "/app.py.owned", Type: TypeFile, Mode: 0o640, Owner: "www-data", Group: "www-data",
				UID: -1, GID: -1, Size: 3, Open: memOpen("abc")},
			fileEntry("/srv/"+name+"/run.sh", "#!/bin/sh\necho hi\n", 0o755),
			fileEntry("/etc/"+name+"/app.conf", "key = value\n", 0o644),
			fileEntry("/srv/"+name+"/empty", "", 0),
			{Path: "/srv/" + name + "/current", Type: TypeSymlink, Target: "app.py"},
			{Path: "/var/lib/" + name, Type: TypeDir, Mode: 0o750, Owner: "www-data", Group: "www-data"},
			{Path: "/var/lib/" + name + "/shared", Type: TypeDir, Mode: 0o775 | fs.ModeSetgid, Owner: "nobody", Group: "nogroup"},
			fileEntry(longPath, strings.Repeat("x", 5000), 0o644),
		},
		Conffiles:   []string{"/etc/" + name + "/app.conf"},
		Compression: compression,
		MTime:       time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
	}
}

func writeBytes(t *testing.T, p *Package) []byte {
	t.Helper()
	var b bytes.Buffer
	p.TempDir = t.TempDir()
	if _, err := Write(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func need(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s is not installed: run .ci/install-deps (it installs .ci/packages)", tool)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// writtenCompressions are the compressions upds writes.
var writtenCompressions = []string{"gzip", "xz", "zstd", "none"}
