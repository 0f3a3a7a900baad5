package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testStore checks the behaviour every Store shares; the Dir and the S3 tests run it.
func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	t.Run("PutOpenStat", func(t *testing.T) {
		if err := s.Put(ctx, Object{Name: "a/b/one", Data: []byte("one")}, Object{Name: "two", Data: nil}); err != nil {
			t.Fatal(err)
		}
		data, info, err := ReadFile(ctx, s, "a/b/one")
		if err != nil || string(data) != "one" || info.Size != 3 || info.Stamp == "" || info.Name != "a/b/one" {
			t.Fatalf("ReadFile = %q %+v %v", data, info, err)
		}
		st, err := s.Stat(ctx, "two")
		if err != nil || st.Size != 0 {
			t.Fatalf("Stat two = %+v %v", st, err)
		}
		if err := s.Put(ctx, Object{Name: "a/b/one", Data: []byte("uno!")}); err != nil {
			t.Fatal(err)
		}
		st2, err := s.Stat(ctx, "a/b/one")
		if err != nil || st2.Size != 4 || st2.Stamp == info.Stamp {
			t.Fatalf("Stat after replace = %+v %v (before %+v)", st2, err, info)
		}
	})
	t.Run("NotExist", func(t *testing.T) {
		if _, _, err := s.Open(ctx, "missing/x"); !errors.Is(err, ErrNotExist) {
			t.Errorf("Open missing: %v", err)
		}
		if _, err := s.Stat(ctx, "missing"); !errors.Is(err, ErrNotExist) {
			t.Errorf("Stat missing: %v", err)
		}
		if err := s.Delete(ctx, "missing", "missing/y"); err != nil {
			t.Errorf("Delete missing: %v", err)
		}
	})
	t.Run("BadNames", func(t *testing.T) {
		for _, n := range []string{"", "/abs", "a/../b", "./a", "a/.hidden", "a//b"} {
			if err := s.Put(ctx, Object{Name: n, Data: []byte("x")}); err == nil {
				t.Errorf("Put %q: no error", n)
			}
			if _, _, err := s.Open(ctx, n); err == nil {
				t.Errorf("Open %q: no error", n)
			}
		}
		if err := s.List(ctx, "../", func(Info) error { return nil }); err == nil {
			t.Error("List ../: no error")
		}
	})
	t.Run("FilesAndList", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "moved")
		os.WriteFile(src, []byte("moved content"), 0o600)
		keep := filepath.Join(dir, "kept")
		os.WriteFile(keep, []byte("kept content"), 0o600)
		if err := s.Put(ctx, Object{Name: "l/p/moved", File: src, Move: true}, Object{Name: "l/q/kept", File: keep},
			Object{Name: "l/r", Data: []byte("r")}, Object{Name: "lx", Data: []byte("not under l/")}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("moved file still there: %v", err)
		}
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("kept file gone: %v", err)
		}
		if got := list(t, s, "l/"); !slices.Equal(got, []string{"l/p/moved", "l/q/kept", "l/r"}) {
			t.Errorf("List l/ = %v", got)
		}
		if got := list(t, s, "l/p"); !slices.Equal(got, []string{"l/p/moved"}) {
			t.Errorf("List l/p = %v", got)
		}
		if err := s.Delete(ctx, "l/p/moved", "l/r"); err != nil {
			t.Fatal(err)
		}
		if got := list(t, s, "l/"); !slices.Equal(got, []string{"l/q/kept"}) {
			t.Errorf("List l/ after Delete = %v", got)
		}
	})
	t.Run("Conditional", func(t *testing.T) {
		if err := s.Put(ctx, Object{Name: "c/x", Data: []byte("1"), IfAbsent: true}); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, Object{Name: "c/x", Data: []byte("2"), IfAbsent: true}); !errors.Is(err, ErrPrecondition) {
			t.Fatalf("second IfAbsent: %v", err)
		}
		info, _ := s.Stat(ctx, "c/x")
		if err := s.Put(ctx, Object{Name: "c/x", Data: []byte("3"), IfMatch: "\"nope\""}); !errors.Is(err, ErrPrecondition) {
			t.Fatalf("IfMatch on another stamp: %v", err)
		}
		if err := s.Put(ctx, Object{Name: "c/x", Data: []byte("4"), IfMatch: info.Stamp}); err != nil {
			t.Fatalf("IfMatch on the stamp: %v", err)
		}
		if data, _, _ := ReadFile(ctx, s, "c/x"); string(data) != "4" {
			t.Errorf("content %q", data)
		}
	})
	t.Run("Sub", func(t *testing.T) {
		sub := Sub(s, "sub/dir")
		if err := sub.Put(ctx, Object{Name: "f", Data: []byte("in sub")}); err != nil {
			t.Fatal(err)
		}
		if data, _, err := ReadFile(ctx, s, "sub/dir/f"); err != nil || string(data) != "in sub" {
			t.Errorf("through the parent: %q %v", data, err)
		}
		if got := list(t, sub, ""); !slices.Equal(got, []string{"f"}) {
			t.Errorf("List in sub = %v", got)
		}
	})
	t.Run("Lock", func(t *testing.T) { testLock(t, s) })
}

// testLock checks that Lock excludes: two goroutines never hold it at once, and a waiter
// gives up when its context ends.
func testLock(t *testing.T, s Store) {
	ctx := context.Background()
	var mu sync.Mutex
	holders, maxHolders := 0, 0
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for range 2 {
				held, unlock, err := s.Lock(ctx, "locks/publish.lock")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				holders++
				maxHolders = max(maxHolders, holders)
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
				if held.Err() != nil {
					t.Errorf("held context ended: %v", context.Cause(held))
				}
				mu.Lock()
				holders--
				mu.Unlock()
				unlock()
			}
		})
	}
	wg.Wait()
	if maxHolders != 1 {
		t.Errorf("%d holders at once", maxHolders)
	}
	_, unlock, err := s.Lock(ctx, "locks/publish.lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, _, err := s.Lock(short, "locks/publish.lock"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock while held: %v", err)
	}
}

func list(t *testing.T, s Store, prefix string) []string {
	t.Helper()
	var names []string
	if err := s.List(context.Background(), prefix, func(i Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestDir(t *testing.T) {
	testStore(t, NewDir(t.TempDir()))
}

func TestDirDeleteRemovesEmptyDirs(t *testing.T) {
	root := t.TempDir()
	d := NewDir(root)
	ctx := context.Background()
	d.Put(ctx, Object{Name: "pool/main/h/hello/hello.deb", Data: []byte("x")}, Object{Name: "pool/main/k", Data: []byte("k")})
	if err := d.Delete(ctx, "pool/main/h/hello/hello.deb"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "pool/main/h")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty directories left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "pool/main/k")); err != nil {
		t.Error(err)
	}
}

func TestParseS3(t *testing.T) {
	for _, c := range []struct{ in, bucket, prefix, err string }{
		{"s3://b/p/q", "b", "p/q", ""},
		{"s3://b", "b", "", ""},
		{"s3://b/", "b", "", ""},
		{"s3://b/p/", "b", "p", ""},
		{"s3:///p", "", "", "not an S3 location"},
		{"http://b/p", "", "", "not an S3 location"},
		{"s3://b/p/../q", "", "", "bad prefix"},
		{"s3://b/p//q", "", "", "bad prefix"},
		{"s3://b/./q", "", "", "bad prefix"},
		{"s3://b/.", "", "", "bad prefix"},
		{"s3://b/p?x=1", "", "", "not an S3 location"},
	} {
		b, p, err := ParseS3(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseS3(%q) = %q %q %v, want error %q", c.in, b, p, err, c.err)
			}
			continue
		}
		if err != nil || b != c.bucket || p != c.prefix {
			t.Errorf("ParseS3(%q) = %q %q %v", c.in, b, p, err)
		}
	}
}

// TestDirLinkFrom: an object with LinkFrom is a hard link of the object named (the same file,
// not a second copy), and replaces what was at its name; with the same name linked twice
// nothing is left behind.
func TestDirLinkFrom(t *testing.T) {
	root := t.TempDir()
	d := NewDir(root)
	ctx := t.Context()
	if err := d.Put(ctx, Object{Name: "a/by-hash/x", Data: []byte("index")}, Object{Name: "a/Packages", Data: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.Put(ctx, Object{Name: "a/Packages", Data: []byte("index"), LinkFrom: "a/by-hash/x"}); err != nil {
			t.Fatal(err)
		}
	}
	src, err1 := os.Stat(filepath.Join(root, "a/by-hash/x"))
	dst, err2 := os.Stat(filepath.Join(root, "a/Packages"))
	if err1 != nil || err2 != nil || !os.SameFile(src, dst) {
		t.Fatalf("a/Packages is not a link of a/by-hash/x: %v %v", err1, err2)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "a/Packages")); string(b) != "index" {
		t.Errorf("a/Packages: %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "a")); len(ents) != 2 {
		t.Errorf("a/ holds %d names, want Packages and by-hash", len(ents))
	}
}
