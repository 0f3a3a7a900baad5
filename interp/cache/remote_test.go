package cache

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/upds/upds/interp/storage"
	"github.com/upds/upds/interp/storage/s3test"
)

// machine is one build machine's project cache, sharing remote.
func machine(t *testing.T, remote storage.Store) (*Cache, *Remote) {
	t.Helper()
	c := Open(filepath.Join(t.TempDir(), ".upds"), false)
	r := NewRemote(remote)
	r.Logf = t.Logf
	c.SetRemote(r)
	return c, r
}

// buildFile and buildDir are actions whose output is a file or a directory; built
// counts the runs.
func buildFile(t *testing.T, c *Cache, key, dst string, built *int) bool {
	t.Helper()
	hit, err := c.Build("deb", key, dst, func(tmp string) error {
		*built++
		return os.WriteFile(tmp, []byte("a package "+key), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return hit
}

func buildDir(t *testing.T, c *Cache, key string, built *int) (string, bool) {
	t.Helper()
	hit, err := c.Build("venv", key, "", func(tmp string) error {
		*built++
		os.MkdirAll(filepath.Join(tmp, "tree/bin"), 0o755)
		os.WriteFile(filepath.Join(tmp, "tree/bin/app"), []byte("#!/bin/sh\n"), 0o755)
		os.WriteFile(filepath.Join(tmp, "result.json"), []byte("{}"), 0o644)
		os.Symlink("/usr/bin/python3", filepath.Join(tmp, "tree/bin/python3"))
		old := time.Unix(1600000000, 0)
		os.Chtimes(filepath.Join(tmp, "result.json"), old, old)
		return os.Chmod(filepath.Join(tmp, "tree/bin"), 0o555)
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.Path("venv", key), hit
}

// testRemote: what one machine builds is a verified hit on another; a corrupted blob or
// record is a miss, and the rebuilt output repairs the shared cache.
func testRemote(t *testing.T, shared storage.Store) {
	ctx := context.Background()
	a, ra := machine(t, shared)
	b, rb := machine(t, shared)
	built := 0
	key := strings.Repeat("ab", 32)
	dstA := filepath.Join(t.TempDir(), "out.deb")
	if buildFile(t, a, key, dstA, &built) || built != 1 {
		t.Fatalf("first build: built %d", built)
	}
	// What a dry run asks: the other machine sees the record, downloads and writes nothing.
	if !b.Has("deb", key) || b.Has("deb", strings.Repeat("99", 32)) {
		t.Errorf("Has: %v for the built key, %v for another", b.Has("deb", key), b.Has("deb", strings.Repeat("99", 32)))
	}
	if _, ok := b.Lookup("deb", key); ok {
		t.Error("Lookup fetched from the shared cache")
	}
	if _, err := os.Stat(filepath.Join(b.dir, "objects")); !os.IsNotExist(err) {
		t.Errorf("Has or Lookup wrote into the local cache: %v", err)
	}
	dstB := filepath.Join(t.TempDir(), "out.deb")
	if !buildFile(t, b, key, dstB, &built) || built != 1 {
		t.Fatalf("other machine: not a hit (built %d)", built)
	}
	if data, _ := os.ReadFile(dstB); string(data) != "a package "+key {
		t.Errorf("fetched %q", data)
	}
	if s := ra.Stats(); s.Uploads != 1 {
		t.Errorf("machine a: %+v", s)
	}

	vkey := strings.Repeat("cd", 32)
	objA, _ := buildDir(t, a, vkey, &built)
	objB, hit := buildDir(t, b, vkey, &built)
	if !hit || built != 2 {
		t.Fatalf("directory: not a hit on the other machine (built %d)", built)
	}
	for _, n := range []string{"tree/bin/app", "result.json", "tree/bin"} {
		fa, _ := os.Stat(filepath.Join(objA, n))
		fb, err := os.Stat(filepath.Join(objB, n))
		if err != nil || fa.Mode() != fb.Mode() || !fa.ModTime().Equal(fb.ModTime()) {
			t.Errorf("%s: %v %v / %v %v (%v)", n, fa.Mode(), fa.ModTime(), fb.Mode(), fb.ModTime(), err)
		}
	}
	if l, err := os.Readlink(filepath.Join(objB, "tree/bin/python3")); err != nil || l != "/usr/bin/python3" {
		t.Errorf("symlink %q %v", l, err)
	}

	// Corrupt the file's blob: a third machine misses, rebuilds and re-uploads.
	rec, _, err := storage.ReadFile(ctx, shared, acName("deb", key))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := parseRecord(rec, "deb", key)
	shared.Put(ctx, storage.Object{Name: casName(r.sum), Data: []byte("a package XX" + key[2:])})
	c, rc := machine(t, shared)
	if buildFile(t, c, key, filepath.Join(t.TempDir(), "x.deb"), &built) || built != 3 {
		t.Fatalf("corrupt blob was a hit (built %d)", built)
	}
	if s := rc.Stats(); s.Corrupt != 1 || s.Uploads != 1 {
		t.Errorf("after a corrupt blob: %+v", s)
	}
	d, _ := machine(t, shared)
	if !buildFile(t, d, key, filepath.Join(t.TempDir(), "y.deb"), &built) || built != 3 {
		t.Errorf("the shared cache was not repaired (built %d)", built)
	}

	// A record that names another action, and garbage: misses.
	shared.Put(ctx, storage.Object{Name: acName("deb", strings.Repeat("ef", 32)), Data: rec})
	shared.Put(ctx, storage.Object{Name: acName("deb", strings.Repeat("01", 32)), Data: []byte("junk")})
	e, re := machine(t, shared)
	buildFile(t, e, strings.Repeat("ef", 32), filepath.Join(t.TempDir(), "z.deb"), &built)
	buildFile(t, e, strings.Repeat("01", 32), filepath.Join(t.TempDir(), "z.deb"), &built)
	if s := re.Stats(); s.Hits != 0 || s.Corrupt != 2 || built != 5 {
		t.Errorf("bad records: %+v, built %d", s, built)
	}
	if s := rb.Stats(); s.Hits != 2 {
		t.Errorf("machine b: %+v", s)
	}
	// The record naming another action was deleted, not the blob it named.
	f, _ := machine(t, shared)
	if !buildFile(t, f, key, filepath.Join(t.TempDir(), "w.deb"), &built) {
		t.Error("a bad record of another action deleted a good blob")
	}
}

func TestRemoteDir(t *testing.T) {
	testRemote(t, storage.NewDir(t.TempDir()))
}

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.StopShared()
	os.Exit(code)
}

// TestRemoteS3: the same against a real S3 server (SeaweedFS).
func TestRemoteS3(t *testing.T) {
	srv := s3test.Shared(t)
	srv.Setenv(t)
	r, err := OpenRemote(context.Background(), "s3://"+s3test.Bucket+"/cache")
	if err != nil {
		t.Fatal(err)
	}
	testRemote(t, r.store)
}

// TestUntarStaysInside: a blob whose tar leaves its directory, directly or through a
// symbolic link, is refused.
func TestUntarStaysInside(t *testing.T) {
	for name, entries := range map[string][]tar.Header{
		"dotdot":   {{Name: "../evil", Typeflag: tar.TypeReg}},
		"absolute": {{Name: "/tmp/evil", Typeflag: tar.TypeReg}},
		"symlink":  {{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/tmp"}, {Name: "link/evil", Typeflag: tar.TypeReg}},
		"device":   {{Name: "dev", Typeflag: tar.TypeChar}},
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			zw, _ := zstd.NewWriter(&b)
			tw := tar.NewWriter(zw)
			for _, h := range entries {
				tw.WriteHeader(&h)
			}
			tw.Close()
			zw.Close()
			dir := t.TempDir()
			blob := filepath.Join(dir, "blob")
			os.WriteFile(blob, b.Bytes(), 0o644)
			if err := untar(blob, filepath.Join(dir, "out")); err == nil {
				t.Error("no error")
			}
			if _, err := os.Lstat("/tmp/evil"); err == nil {
				t.Error("/tmp/evil written")
			}
		})
	}
}
