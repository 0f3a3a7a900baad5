package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/afero"
)

func TestWriteFileReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "f")
	if err := WriteFile(nil, p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(nil, p, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Fatalf("content %q, %v", b, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	assertOnly(t, filepath.Dir(p), "f")
}

func TestAbortLeavesTargetAndNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("old"), 0o644)
	f, err := Create(nil, p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half"))
	f.Abort()
	f.Abort() // twice is fine
	if err := f.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	b, _ := os.ReadFile(p)
	if string(b) != "old" {
		t.Errorf("target %q, want old", b)
	}
	assertOnly(t, dir, "f")
}

func TestFailedCommitRemovesTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d")
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o755); err != nil { // a non-empty directory cannot be replaced by a file
		t.Fatal(err)
	}
	f, err := Create(nil, p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	if err := f.Commit(); err == nil {
		t.Fatal("rename over a non-empty directory succeeded")
	}
	assertOnly(t, dir, "d")
}

func TestRemoveStale(t *testing.T) {
	fsys := afero.NewMemMapFs()
	p := "/v/VERSION"
	f, err := Create(fsys, p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.File.Close() // a writer that died: its temporary file stays
	afero.WriteFile(fsys, "/v/other", nil, 0o644)
	if err := RemoveStale(fsys, p); err != nil {
		t.Fatal(err)
	}
	ents, _ := afero.ReadDir(fsys, "/v")
	if len(ents) != 1 || ents[0].Name() != "other" {
		t.Errorf("left %v, want only other", ents)
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(names) {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
	for i := range got {
		if got[i] != names[i] {
			t.Fatalf("%s holds %v, want %v", dir, got, names)
		}
	}
}
