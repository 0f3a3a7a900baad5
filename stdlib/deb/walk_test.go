package deb

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTree: Tree packages a tree on disk as tree() does, whatever the number of goroutines
// reading it; a FIFO in it is an error.
func TestTree(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for d := range 30 {
		for f := range 5 {
			p := fmt.Sprintf("d%02d/sub/f%d.py", d, f)
			os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o750)
			os.WriteFile(filepath.Join(dir, p), []byte(p), 0o600|fs.FileMode(f%2)*0o100)
			want = append(want, fmt.Sprintf("/opt/t/%s file %o %d", p, 0o644|(f%2)*0o111, len(p)))
		}
		want = append(want, fmt.Sprintf("/opt/t/d%02d dir 755 0", d), fmt.Sprintf("/opt/t/d%02d/sub dir 755 0", d))
	}
	os.Symlink("d00/sub", filepath.Join(dir, "link"))
	want = append(want, "/opt/t dir 755 0", "/opt/t/link symlink 0 0 -> d00/sub")
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "d00/sub/f0.py"), old, old)
	var got []string
	err := Tree(dir, "/opt/t")(func(e Entry) error {
		s := fmt.Sprintf("%s %s %o %d", e.Path, e.Type, e.Mode, e.Size)
		if e.Target != "" {
			s += " -> " + e.Target
		}
		if e.Type == TypeFile && (e.Src != filepath.Join(dir, strings.TrimPrefix(e.Path, "/opt/t/")) || e.Open != nil) {
			t.Errorf("%s: Src %q", e.Path, e.Src)
		}
		if e.Path == "/opt/t/d00/sub/f0.py" && !e.MTime.Equal(old) {
			t.Errorf("%s: mtime %s", e.Path, e.MTime)
		}
		got = append(got, s)
		return nil
	})
	slices.Sort(got)
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Tree: %v\n%s\nwant\n%s", err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "d03/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Tree(dir, "/")(func(Entry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "d03/fifo: not a file, directory or symlink") {
		t.Errorf("FIFO: %v", err)
	}
}

// TestWalkTreeSkipDir: fs.SkipDir for a directory leaves out what it holds; another error
// stops the walk.
func TestWalkTreeSkipDir(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a/x", "a/b/y", "c/z"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), nil, 0o644)
	}
	var got []string
	err := walkTree(dir, func(d *dirent) error {
		got = append(got, d.rel)
		if d.rel == "a" {
			return fs.SkipDir
		}
		return nil
	})
	slices.Sort(got)
	if err != nil || strings.Join(got, " ") != "a c c/z" {
		t.Errorf("walk: %v %v", got, err)
	}
	err = walkTree(dir, func(d *dirent) error { return fs.ErrPermission })
	if err != fs.ErrPermission {
		t.Errorf("stop: %v", err)
	}
	if err := walkTree(filepath.Join(dir, "nope"), func(*dirent) error { return nil }); !os.IsNotExist(err) {
		t.Errorf("missing root: %v", err)
	}
}
