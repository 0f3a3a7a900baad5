package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upds/upds/interp/storage"
	"github.com/upds/upds/interp/storage/s3test"
)

// TestSharedCache: two machines' build directories of examples/hello share one action
// cache on S3 (SeaweedFS). The second machine's build is all cache hits and gives the same
// packages; a package built on a third machine from the venv the first one uploaded is
// the same too; a corrupted object is a miss that is rebuilt, not a broken package.
func TestSharedCache(t *testing.T) {
	need(t, "/usr/bin/python3")
	srv := s3test.Shared(t)
	srv.Setenv(t)
	ctx := context.Background()
	loc := "s3://" + s3test.Bucket + "/" + strings.ToLower(t.Name())
	machine := func() string {
		dir := t.TempDir()
		if out, err := exec.Command("cp", "-a", "../../examples/hello/.", dir).CombinedOutput(); err != nil {
			t.Fatalf("copy examples/hello: %v\n%s", err, out)
		}
		return dir
	}
	build := func(dir string, wantCached string) string {
		t.Helper()
		r := upds(t, dir, "run", "--cache", loc, "build")
		if r.code != 0 || !strings.Contains(r.stderr, wantCached) {
			t.Fatalf("upds run build: exit %d, want %q in\n%s", r.code, wantCached, r.stderr)
		}
		return r.stderr
	}
	a := machine()
	build(a, "7 actions (0 cached, 0 failed)")
	b := machine()
	build(b, "7 actions (6 cached, 0 failed)")
	sameDebs(t, a, b)

	// The packages' records deleted: a third machine builds them from the shared venv.
	store, err := storage.NewS3(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	var debRecords []string
	store.List(ctx, "ac/deb/", func(i storage.Info) error {
		debRecords = append(debRecords, i.Name)
		return nil
	})
	if len(debRecords) != 5 {
		t.Fatalf("%d deb records in the shared cache: %v", len(debRecords), debRecords)
	}
	if err := store.Delete(ctx, debRecords...); err != nil {
		t.Fatal(err)
	}
	c := machine()
	if out := build(c, "7 actions (1 cached, 0 failed)"); !strings.Contains(out, "venv hello: cached") {
		t.Errorf("the venv was not a hit:\n%s", out)
	}
	sameDebs(t, a, c)

	// Every blob corrupted (same size, other bytes): a fourth machine misses, says why,
	// rebuilds everything, and its packages are right.
	store.List(ctx, "cas/", func(i storage.Info) error {
		data, _, err := storage.ReadFile(ctx, store, i.Name)
		if err != nil {
			return err
		}
		data[len(data)/2] ^= 0xff
		return store.Put(ctx, storage.Object{Name: i.Name, Data: data})
	})
	d := machine()
	if out := build(d, "7 actions (0 cached, 0 failed)"); !strings.Contains(out, "is not used") {
		t.Errorf("no word of the corrupt objects:\n%s", out)
	}
	sameDebs(t, a, d)
	e := machine()
	build(e, "7 actions (6 cached, 0 failed)") // repaired by d's uploads
}

// sameDebs checks that two build directories hold the same packages, byte for byte.
func sameDebs(t *testing.T, a, b string) {
	t.Helper()
	debs, _ := filepath.Glob(filepath.Join(a, "dist", "*.deb"))
	if len(debs) != 5 {
		t.Fatalf("%d packages in %s/dist", len(debs), a)
	}
	for _, p := range debs {
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, "dist", filepath.Base(p)))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between the machines (%v)", filepath.Base(p), err)
		}
	}
}
