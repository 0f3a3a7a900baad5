package venv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestScanFileAcrossChunks(t *testing.T) {
	dir := t.TempDir()
	pat := []byte("/staging/abc-venv-123")
	for _, tc := range []struct {
		name    string
		content []byte
		elf     bool
		found   bool
	}{
		{"straddles the first chunk", append(bytes.Repeat([]byte{'x'}, 1<<20-5), pat...), false, true},
		{"at the end of a big file", append(append([]byte("\x7fELF"), bytes.Repeat([]byte{0}, 3<<20)...), pat...), true, true},
		{"absent", bytes.Repeat([]byte("/staging/abc-venv-12"), 100000), false, false},
		{"empty", nil, false, false},
	} {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, tc.content, 0o644); err != nil {
			t.Fatal(err)
		}
		elf, found, err := scanFile(p, [][]byte{[]byte("other"), pat})
		if err != nil || elf != tc.elf || found != tc.found {
			t.Errorf("%s: elf=%v found=%v err=%v, want %v %v", tc.name, elf, found, err, tc.elf, tc.found)
		}
	}
}

// A build path left in a binary file cannot be rewritten: the relocation fails and names it.
func TestRelocateRefusesBinaryLeak(t *testing.T) {
	root := filepath.Join(t.TempDir(), "hello-venv-1")
	writeFile(t, filepath.Join(root, "pyvenv.cfg"), "home = /usr/bin\ncommand = /usr/bin/python3 -m venv "+root+"\n")
	writeFile(t, filepath.Join(root, "bin", "activate"), "VIRTUAL_ENV="+root+"\n")
	writeFile(t, filepath.Join(root, "lib", "python3.11", "site-packages", "x", "data.bin"), "\x00\x01"+root+"/lib\x00")
	r := &relocator{root: root, into: "/var/virtualenvs/hello", python: "/usr/bin/python3.11", forbidden: []string{root}}
	err := r.run()
	if err == nil || !strings.Contains(err.Error(), "lib/python3.11/site-packages/x/data.bin") || strings.Contains(err.Error(), "activate") {
		t.Fatalf("err = %v, want the binary file named (and only it)", err)
	}
	cfg, _ := os.ReadFile(filepath.Join(root, "pyvenv.cfg"))
	if string(cfg) != "home = /usr/bin\n" {
		t.Errorf("pyvenv.cfg = %q", cfg)
	}
}

// TestStripFile: a stripped file replaces the original with its mode; a file strip rejects
// is left as it was; no temporary file remains either way.
func TestStripFile(t *testing.T) {
	stripBin, err := exec.LookPath("strip")
	if err != nil {
		t.Fatal("strip is not installed: run .ci/install-deps (binutils)")
	}
	dir := t.TempDir()
	exe, err := os.ReadFile("/usr/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	bin, text := filepath.Join(dir, "tool"), filepath.Join(dir, "notes.txt")
	os.WriteFile(bin, exe, 0o751)
	os.WriteFile(text, []byte("not an object\n"), 0o640)
	if err := stripFile(context.Background(), stripBin, []string{"--remove-section=.comment"}, bin); err != nil {
		t.Fatalf("strip %s: %v", bin, err)
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode().Perm() != 0o751 {
		t.Errorf("stripped file: %v, %v; want mode 0751", fi.Mode(), err)
	}
	if err := stripFile(context.Background(), stripBin, nil, text); err == nil {
		t.Errorf("strip of a text file succeeded")
	}
	if b, _ := os.ReadFile(text); string(b) != "not an object\n" {
		t.Errorf("failed strip changed the file: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("files left: %v", ents)
	}
}
