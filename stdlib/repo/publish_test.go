package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upds/upds/interp/storage"
)

// TestUpdateDuringPublish runs apt-get update in a loop while publishes happen: no
// update may ever see a hash sum mismatch or any other warning.
func TestUpdateDuringPublish(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}}})
	testUpdateDuringPublish(t, dir, serve(t, dir).URL, filepath.Join(dir, PublicKeyFile))
}

// testUpdateDuringPublish races publishes of the repository dir with apt-get updates from
// url, which apt trusts with keyFile.
func testUpdateDuringPublish(t *testing.T, dir, url, keyFile string) {
	upload(t, dir, "base", "1.0", "amd64")
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	// Pre-build the packages so that the publish loop is fast.
	staged := t.TempDir()
	var debs []string
	for i := range 25 {
		debs = append(debs, buildDeb(t, staged, "churn", "1."+strconv.Itoa(i), "amd64"))
	}
	a := newApt(t, url, keyFile, "stable")
	a.must("apt-get", "update")

	stop := make(chan struct{})
	var publishes atomic.Int64
	pubErr := make(chan error, 1)
	go func() {
		defer close(pubErr)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i < len(debs) {
				cp(t, debs[i], filepath.Join(dir, IncomingDir, filepath.Base(debs[i])))
			}
			time.Sleep(100 * time.Millisecond) // spread the index changes over the updates
			if _, err := Publish(t.Context(), dir, PublishOptions{KeepVersions: 3}); err != nil {
				pubErr <- err
				return
			}
			publishes.Add(1)
		}
	}()
	var failures []error
	for range 30 {
		if _, err := a.run("apt-get", "update"); err != nil {
			failures = append(failures, err)
		}
	}
	close(stop)
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	for _, f := range failures {
		t.Error(f)
	}
	if publishes.Load() < 5 {
		t.Errorf("only %d publishes ran during the updates", publishes.Load())
	}
	t.Logf("%d publishes during 30 apt-get updates", publishes.Load())
	a.must("apt-get", "update")
	if pol := a.must("apt-cache", "policy", "churn"); !strings.Contains(pol, "Candidate: 1.") {
		t.Errorf("policy: %s", pol)
	}
}

// TestIndexCache checks that the cache (an append-only log) survives many publishes,
// that an interrupted publish (the dirty marker left behind) makes the next one walk
// the pool, and that Rescan picks up files put into the pool by hand.
func TestIndexCache(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}}})
	for i, v := range []string{"1.0", "1.1", "1.2", "1.3"} {
		upload(t, dir, "cached", v, "amd64")
		rep, err := Publish(t.Context(), dir, PublishOptions{KeepVersions: 2})
		if err != nil {
			t.Fatal(err)
		}
		if want := min(i+1, 2); rep.Packages != want {
			t.Fatalf("publish %d: %d packages, want %d", i, rep.Packages, want)
		}
	}
	c := loadCache(dir)
	if !c.ok || len(c.entries) != 2 || c.records != 11 { // 4 adds, 2 deletes, 5 publishes (Init's too)
		t.Errorf("cache: ok %v, %d entries, %d records", c.ok, len(c.entries), c.records)
	}
	if _, err := os.Stat(filepath.Join(dir, dirtyFile)); !os.IsNotExist(err) {
		t.Errorf("dirty marker left after a publish: %v", err)
	}
	pk := filepath.Join(dir, "public/dists/stable/main/binary-amd64/Packages")
	want := string(mustRead(t, pk))

	// A file put into the pool by hand is not seen without Rescan...
	os.MkdirAll(filepath.Join(dir, "public/pool/main/m"), 0o755)
	manual := buildDeb(t, filepath.Join(dir, "public/pool/main/m"), "manual", "1.0", "amd64")
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := string(mustRead(t, pk)); got != want {
		t.Error("a file put into the pool by hand was indexed without Rescan")
	}
	// ...and is with it.
	if rep, err := Publish(t.Context(), dir, PublishOptions{Rescan: true}); err != nil || rep.Packages != 3 {
		t.Fatalf("rescan: %+v %v", rep, err)
	}
	if !strings.Contains(string(mustRead(t, pk)), "Filename: pool/main/m/"+filepath.Base(manual)) {
		t.Error("Rescan did not index the manual pool file")
	}

	// An interrupted publish: pool changed, cache not saved, marker present.
	os.Remove(manual)
	os.WriteFile(filepath.Join(dir, dirtyFile), nil, 0o600)
	if rep, err := Publish(t.Context(), dir, PublishOptions{}); err != nil || rep.Packages != 2 {
		t.Fatalf("publish after an interrupted one: %+v %v", rep, err)
	}
	if got := string(mustRead(t, pk)); got != want {
		t.Errorf("index after recovery:\n%s\nwant:\n%s", got, want)
	}
	// A torn cache (a publish died while appending) is not trusted either.
	f, _ := os.OpenFile(filepath.Join(dir, cacheFile), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{byte(opAdd), 200})
	f.Close()
	if c := loadCache(dir); c.ok {
		t.Error("torn cache loaded as ok")
	}
	if rep, err := Publish(t.Context(), dir, PublishOptions{}); err != nil || rep.Packages != 2 || string(mustRead(t, pk)) != want {
		t.Fatalf("publish with a torn cache: %+v %v", rep, err)
	}
	gpgv(t, dir, "stable")
}

func TestExtraFiles(t *testing.T) {
	dir := newRepo(t, InitOptions{})
	script := []byte("#!/bin/sh\necho setup\n")
	if _, err := Publish(t.Context(), dir, PublishOptions{ExtraFiles: map[string][]byte{"setup.sh": script, "docs/README.txt": []byte("hi\n")}}); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(dir, PublicDir, "setup.sh")); !bytes.Equal(got, script) {
		t.Errorf("setup.sh = %q", got)
	}
	if got := mustRead(t, filepath.Join(dir, PublicDir, "docs/README.txt")); string(got) != "hi\n" {
		t.Errorf("docs/README.txt = %q", got)
	}
	for _, bad := range []string{"../private/x", "/etc/x", "dists/stable/InRelease", "pool/x.deb", "."} {
		if _, err := Publish(t.Context(), dir, PublishOptions{ExtraFiles: map[string][]byte{bad: nil}}); err == nil {
			t.Errorf("extra file %q accepted", bad)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, PrivateDir, "x")); err == nil {
		t.Error("an extra file escaped public/")
	}
	gpgv(t, dir, "stable")
}

// TestPublishCancelled: a publish stopped by its context leaves the published indexes as
// they were, keeps every upload (in incoming/ or in the pool), and the next publish indexes
// them all. A publish waiting for the lock stops waiting.
func TestPublishCancelled(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}}})
	inc := filepath.Join(dir, IncomingDir)
	inRelease := filepath.Join(dir, "public/dists/stable/InRelease")
	before := mustRead(t, inRelease)
	const n = 60
	for i := range n {
		name := fmt.Sprintf("c%03d", i)
		craftDeb(t, filepath.Join(inc, name+"_1.0_amd64.deb"), "Package: "+name+"\nVersion: 1.0\nArchitecture: amd64\nMaintainer: x <x@x>\nDescription: x\n", []string{"./usr/x"})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Publish(ctx, dir, PublishOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context: %v", err)
	}
	if ents, _ := os.ReadDir(inc); len(ents) != n || !bytes.Equal(mustRead(t, inRelease), before) {
		t.Fatalf("a cancelled publish changed the repository: %d uploads left", len(ents))
	}

	// Cancelled while it moves uploads (or before, or after: the outcome must be whole).
	ctx, cancel = context.WithCancel(t.Context())
	go func() {
		for ctx.Err() == nil {
			if ents, _ := os.ReadDir(inc); len(ents) < n {
				break
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := Publish(ctx, dir, PublishOptions{})
	cancel()
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	gpgv(t, dir, "stable")
	left, _ := os.ReadDir(inc)
	pooled, _ := filepath.Glob(filepath.Join(dir, "public/pool/main/c/*/*.deb"))
	t.Logf("cancelled publish (%v): %d uploads left, %d in the pool", err, len(left), len(pooled))
	if len(left)+len(pooled) != n {
		t.Fatalf("%d uploads left and %d in the pool, want %d in all", len(left), len(pooled), n)
	}
	if rep, err := Publish(t.Context(), dir, PublishOptions{}); err != nil || rep.Packages != n {
		t.Fatalf("publish after a cancelled one: %+v %v", rep, err)
	}

	// Waiting for the lock.
	_, unlock, err := storage.NewDir(filepath.Join(dir, PrivateDir)).Lock(t.Context(), "publish.lock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := Publish(ctx, dir, PublishOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish while the lock is held: %v", err)
	}
	unlock()
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestBrokenPoolFile: an unreadable pool file is reported, left out of the index, and
// an upload of the same pool path is rejected; Publish prints nothing about it.
func TestBrokenPoolFile(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}}})
	rel := "pool/main/j/junk/junk_1.0_amd64.deb"
	os.MkdirAll(filepath.Join(dir, PublicDir, path.Dir(rel)), 0o755)
	os.WriteFile(filepath.Join(dir, PublicDir, rel), []byte("!<arch>\njunk"), 0o644)
	upload(t, dir, "junk", "1.0", "amd64")
	rep, err := Publish(t.Context(), dir, PublishOptions{Rescan: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Broken) != 1 || rep.Broken[0].Path != rel || rep.Broken[0].Reason == "" || rep.Packages != 0 {
		t.Errorf("report: %+v", rep)
	}
	if len(rep.Rejected) != 1 || !strings.Contains(rep.Rejected[0].Reason, "unreadable") {
		t.Errorf("upload over a broken pool file: %+v", rep.Rejected)
	}
	js, _ := json.Marshal(rep)
	if !strings.Contains(string(js), `"broken":[{"path":"`+rel+`","reason":`) {
		t.Errorf("JSON report: %s", js)
	}
	if rep, err := Publish(t.Context(), dir, PublishOptions{}); err != nil || rep.Broken != nil {
		t.Errorf("publish from the cache: %+v %v", rep, err)
	} else if js, _ := json.Marshal(rep); strings.Contains(string(js), "broken") {
		t.Errorf("JSON report without broken files: %s", js)
	}
}

// TestPublishRemovesStaleTemps: the temporary files of a publish killed before it committed
// them (kill -9 while Packages is written) are deleted by the next publish, which holds the
// lock; the other files stay.
func TestPublishRemovesStaleTemps(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}}})
	upload(t, dir, "base", "1.0", "amd64")
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	stale := []string{
		"public/dists/stable/main/binary-amd64/.Packages.tmp-1234",
		"public/dists/stable/main/binary-amd64/.Packages.gz.tmp-99",
		"public/dists/stable/.InRelease.tmp-7",
		"public/.setup.sh.tmp-5",
		"private/.state.json.tmp-3",
		"rejected/.x.deb.reason.tmp-8",
	}
	for _, p := range stale {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	for _, p := range []string{"public/dists/stable/InRelease", "public/dists/stable/main/binary-amd64/Packages", "public/setup.sh"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}
}
