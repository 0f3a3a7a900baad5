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

func TestCommitAll(t *testing.T) {
	dir := t.TempDir()
	var files []*File
	for _, p := range []string{"a", "sub/b", "c"} {
		f, err := Create(nil, filepath.Join(dir, p), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(p))
		files = append(files, f)
	}
	if err := CommitAll(files...); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "sub/b", "c"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != p {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	assertOnly(t, dir, "a", "c", "sub")
	assertOnly(t, filepath.Join(dir, "sub"), "b")

	// A failed commit aborts the files after it; those before it stay committed.
	os.MkdirAll(filepath.Join(dir, "d", "x"), 0o755) // a non-empty directory cannot be replaced by a file
	files = nil
	for _, p := range []string{"a", "d", "c"} {
		f, err := Create(nil, filepath.Join(dir, p), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("new " + p))
		files = append(files, f)
	}
	if err := CommitAll(files...); err == nil {
		t.Fatal("CommitAll over a non-empty directory succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "new a" {
		t.Errorf("a = %q, want the committed content", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "c")); string(b) != "c" {
		t.Errorf("c = %q, want the old content", b)
	}
	assertOnly(t, dir, "a", "c", "d", "sub")
}
