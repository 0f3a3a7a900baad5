package repo

// The repository on S3-compatible storage, against a real SeaweedFS on 127.0.0.1
// (interp/storage/s3test): the published tree in a bucket, apt reading it over HTTP.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upds/upds/interp/storage"
	"github.com/upds/upds/interp/storage/s3test"
	"github.com/upds/upds/stdlib/send"
	"github.com/upds/upds/stdlib/sshconn"
	"github.com/upds/upds/stdlib/sshconn/sshtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.StopShared()
	os.Exit(code)
}

// bucketRepo is a repository whose published tree is under a prefix of the shared S3
// server's bucket, named after the test.
type bucketRepo struct {
	dir    string        // repo.conf, the keys, incoming/
	loc    string        // s3://upds/PREFIX
	url    string        // where apt reads it
	pub    storage.Store // the published tree
	srv    *s3test.Server
	prefix string
}

func newBucketRepo(t *testing.T, opt InitOptions) *bucketRepo {
	t.Helper()
	srv := s3test.Shared(t)
	srv.Setenv(t)
	prefix := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	r := &bucketRepo{dir: filepath.Join(t.TempDir(), "repo"), loc: "s3://" + s3test.Bucket + "/" + prefix, url: srv.URL(prefix), srv: srv, prefix: prefix}
	pub, err := storage.NewS3(t.Context(), r.loc)
	if err != nil {
		t.Fatal(err)
	}
	r.pub = pub
	opt.Storage = r.loc
	if err := Init(r.dir, opt); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *bucketRepo) read(t *testing.T, name string) []byte {
	t.Helper()
	b, _, err := storage.ReadFile(t.Context(), r.pub, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r *bucketRepo) list(t *testing.T, prefix string) []string {
	t.Helper()
	var names []string
	if err := r.pub.List(t.Context(), prefix, func(i storage.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestS3PublishApt: repo init --storage s3://..., publish, and apt-get (Valid-Until and
// date checks on) reads the bucket over HTTP: update, policy, download. DIR keeps only
// repo.conf, the keys and incoming/; old versions and old by-hash generations are deleted
// from the bucket; ReadIndex reads the bucket from the directory and over HTTP.
func TestS3PublishApt(t *testing.T) {
	r := newBucketRepo(t, InitOptions{Config: Config{ValidFor: 7 * 24 * time.Hour}})
	cfg, err := ReadConfig(r.dir)
	if err != nil || cfg.Storage != r.loc || cfg.URL != r.url {
		t.Fatalf("repo.conf: %+v %v (want Storage %s, URL %s)", cfg, err, r.loc, r.url)
	}
	if _, err := os.Stat(filepath.Join(r.dir, PublicDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("public/ made for a repository in a bucket: %v", err)
	}
	if string(mustRead(t, filepath.Join(r.dir, BucketKeyFile))) != string(r.read(t, "key.asc")) {
		t.Error("the key beside repo.conf is not the bucket's key.asc")
	}
	upload(t, r.dir, "hello", "1.9.0", "amd64", "Depends: libc6")
	upload(t, r.dir, "hello", "1.10.0", "amd64", "Depends: libc6", "X-Upds-Source: git abc123")
	upload(t, r.dir, "hello", "1.10.0", "arm64")
	upload(t, r.dir, "libfoo", "2.0", "all", "Source: foo-src (2.0-1)")
	p := upload(t, r.dir, "epochy", "1:2.0", "all")
	os.Rename(p, filepath.Join(r.dir, IncomingDir, "epochy_1%3a2.0_all.deb"))
	upload(t, r.dir, "epochless", "3:1.0", "amd64")
	rep, err := Publish(t.Context(), r.dir, PublishOptions{})
	if err != nil || len(rep.Added) != 6 || rep.Packages != 6 {
		t.Fatalf("publish: %+v %v", rep, err)
	}
	if got := incomingFiles(t, r.dir); len(got) != 0 {
		t.Errorf("incoming/ after publish: %v", got)
	}
	if pool := r.list(t, "pool/"); len(pool) != 6 || !slices.Contains(pool, "pool/main/f/foo-src/libfoo_2.0_all.deb") {
		t.Errorf("pool in the bucket: %v", pool)
	}
	for _, f := range []string{"dists/stable/InRelease", "dists/stable/Release", "dists/stable/Release.gpg", "setup.sh"} {
		r.read(t, f)
	}
	if s := string(r.read(t, "setup.sh")); !strings.Contains(s, "UPDS_URL='"+r.url+"'") {
		t.Errorf("setup.sh does not carry the bucket's URL %s", r.url)
	}
	a := newApt(t, r.url, filepath.Join(r.dir, BucketKeyFile), "stable")
	checkApt(t, a)
	a.must("apt-get", "install", "-y", "--download-only", "libfoo", "epochy")
	for _, src := range []string{r.dir, r.url} {
		ix, err := ReadIndex(t.Context(), src, IndexOptions{Key: mustRead(t, filepath.Join(r.dir, BucketKeyFile))})
		if err != nil || len(ix.Packages) != 6 || ix.Newest("amd64")["hello"].Version != "1.10.0" {
			t.Fatalf("ReadIndex %s: %v", src, err)
		}
	}
	if _, err := ReadIndex(t.Context(), r.dir, IndexOptions{Now: time.Now().Add(8 * 24 * time.Hour)}); !errors.Is(err, ErrExpired) {
		t.Errorf("ReadIndex of the bucket after Valid-Until: %v", err)
	}
	if _, err := Handler(r.dir); err == nil || !strings.Contains(err.Error(), r.loc) {
		t.Errorf("Handler of a repository in a bucket: %v", err)
	}
	r.keepOne(t, a)
}

// keepOne publishes hello 1.11.0 with KeepVersions 1 a few times: the old versions leave the
// bucket's pool, by-hash keeps only the kept generations, and apt still updates.
func (r *bucketRepo) keepOne(t *testing.T, a *apt) {
	// Last-Modified has whole seconds: an InRelease written in the second apt last fetched
	// one would look unchanged to its If-Modified-Since.
	time.Sleep(1100 * time.Millisecond)
	upload(t, r.dir, "hello", "1.11.0", "amd64")
	rep, err := Publish(t.Context(), r.dir, PublishOptions{KeepVersions: 1, KeepGenerations: 2, ByHashGrace: time.Nanosecond})
	if err != nil || len(rep.Removed) != 2 {
		t.Fatalf("publish --keep 1: %+v %v", rep, err)
	}
	for _, p := range rep.Removed {
		if _, err := r.pub.Stat(t.Context(), p); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("%s still in the bucket: %v", p, err)
		}
	}
	for i := range 3 {
		upload(t, r.dir, "churn", fmt.Sprintf("1.%d", i), "amd64")
		if _, err := Publish(t.Context(), r.dir, PublishOptions{KeepGenerations: 2, ByHashGrace: time.Nanosecond}); err != nil {
			t.Fatal(err)
		}
	}
	// Two generations of Packages and Packages.gz.
	if bh := r.list(t, "dists/stable/main/binary-amd64/by-hash/"); len(bh) != 4 {
		t.Errorf("by-hash of amd64 after 4 publishes keeping 2 generations: %v", bh)
	}
	a.must("apt-get", "update")
	if pol := a.must("apt-cache", "policy", "hello"); !strings.Contains(pol, "Candidate: 1.11.0") {
		t.Errorf("policy: %s", pol)
	}
}

// TestS3UpdateDuringPublish: apt-get update in a loop from the bucket while publishes
// happen: no hash sum mismatch, no warning.
func TestS3UpdateDuringPublish(t *testing.T) {
	r := newBucketRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}, ValidFor: 24 * time.Hour}})
	testUpdateDuringPublish(t, r.dir, r.url, filepath.Join(r.dir, BucketKeyFile))
}

// TestS3TwoPublishers: two directories with the same key (repo init --import-key) publish to
// one bucket at the same time, each its own packages one at a time: the lease lock takes
// them in turn, and no package is lost.
func TestS3TwoPublishers(t *testing.T) {
	a := newBucketRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}}})
	b := filepath.Join(t.TempDir(), "repo-b")
	// Another key: refused, nothing written.
	if err := Init(b, InitOptions{Config: Config{Storage: a.loc}}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--import-key") {
		t.Fatalf("init of a second directory with another key: %v", err)
	}
	if _, err := os.Stat(b); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused init left %s: %v", b, err)
	}
	key := mustRead(t, filepath.Join(a.dir, KeyFile))
	if err := Init(b, InitOptions{Config: Config{Architectures: []string{"amd64"}, Storage: a.loc}, ImportKey: key}); err != nil {
		t.Fatal(err)
	}
	// While another holds the lease, a publish waits.
	_, unlock, err := storage.Sub(a.pub, metaDir).Lock(t.Context(), "publish.lock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	if _, err := Publish(ctx, b, PublishOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish while the lock is held: %v", err)
	}
	unlock()

	const n = 6
	staged := t.TempDir()
	var debs [2][]string
	for i := range n {
		debs[0] = append(debs[0], buildDeb(t, staged, fmt.Sprintf("from-a%d", i), "1.0", "amd64"))
		debs[1] = append(debs[1], buildDeb(t, staged, fmt.Sprintf("from-b%d", i), "1.0", "amd64"))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var calls [2][][2]time.Time // each publisher's publishes: start, end
	errs := make(chan error, 2*n)
	for k, dir := range []string{a.dir, b} {
		wg.Go(func() {
			for _, d := range debs[k] {
				cp(t, d, filepath.Join(dir, IncomingDir, filepath.Base(d)))
				start := time.Now()
				if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
					errs <- err
				}
				mu.Lock()
				calls[k] = append(calls[k], [2]time.Time{start, time.Now()})
				mu.Unlock()
				time.Sleep(100 * time.Millisecond) // let the other, polling the lock, in at times
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ix, err := ReadIndex(t.Context(), a.url, IndexOptions{Key: mustRead(t, filepath.Join(a.dir, BucketKeyFile))})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ix.Packages {
		names = append(names, p.Name)
	}
	if len(names) != 2*n {
		t.Errorf("the index lists %d packages, want %d: %v", len(names), 2*n, names)
	}
	overlaps := 0
	for _, x := range calls[0] {
		for _, y := range calls[1] {
			if x[0].Before(y[1]) && y[0].Before(x[1]) {
				overlaps++
			}
		}
	}
	t.Logf("%d pairs of publishes overlapped", overlaps)
	if overlaps == 0 {
		t.Error("no publishes overlapped: the test did not race them")
	}
	if _, err := a.pub.Stat(t.Context(), metaDir+"/publish.lock"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("lock object left behind: %v", err)
	}
}

// TestS3StateFence: a publisher that finds the state changed since it read it (another one
// took its lock over and published) writes no Release: the other's packages stay listed.
func TestS3StateFence(t *testing.T) {
	r := newBucketRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}}})
	upload(t, r.dir, "first", "1.0", "amd64")
	p, err := newPublisher(t.Context(), r.dir, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.prepare(t.Context()); err != nil { // as if under a lock it then lost
		t.Fatal(err)
	}
	b := filepath.Join(t.TempDir(), "repo-b")
	if err := Init(b, InitOptions{Config: Config{Architectures: []string{"amd64"}, Storage: r.loc}, ImportKey: mustRead(t, filepath.Join(r.dir, KeyFile))}); err != nil {
		t.Fatal(err)
	}
	upload(t, b, "second", "1.0", "amd64")
	if _, err := Publish(t.Context(), b, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	before := r.read(t, "dists/stable/InRelease")
	live, _ := p.retain()
	if err := p.commit(t.Context(), live); err == nil || !strings.Contains(err.Error(), "another publisher") {
		t.Fatalf("commit after another publish: %v", err)
	}
	if string(r.read(t, "dists/stable/InRelease")) != string(before) {
		t.Error("InRelease replaced by a publisher whose state was stale")
	}
	// The next publish lists both: "first" is in the pool (the dirty marker says so).
	rep, err := Publish(t.Context(), r.dir, PublishOptions{})
	if err != nil || rep.Packages != 2 {
		t.Fatalf("publish after the fenced one: %+v %v", rep, err)
	}
}

// TestS3IncomingWatch: repo.conf's Incoming is an S3 prefix; Watch publishes what arrives
// there, moves a bad upload to DIR/rejected, deletes what it consumed from the prefix and
// leaves partial uploads alone.
func TestS3IncomingWatch(t *testing.T) {
	r := newBucketRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}, Incoming: "s3://" + s3test.Bucket + "/" + strings.ToLower(t.Name()) + "-uploads"}})
	cfg, _ := ReadConfig(r.dir)
	inc, err := storage.NewS3(t.Context(), cfg.Incoming)
	if err != nil {
		t.Fatal(err)
	}
	good := buildDeb(t, t.TempDir(), "arrived", "1.0", "amd64")
	err = inc.Put(t.Context(), storage.Object{Name: filepath.Base(good), File: good},
		storage.Object{Name: "bad_1.0_amd64.deb", Data: []byte("not a package")},
		storage.Object{Name: "later_1.0_amd64.deb.part", Data: []byte("half")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	reports := make(chan *PublishReport, 8)
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, r.dir, WatchOptions{Interval: 100 * time.Millisecond}, func(rep *PublishReport, err error) {
			if err != nil {
				t.Errorf("watch: publish: %v", err)
				return
			}
			reports <- rep
		})
	}()
	select {
	case rep := <-reports:
		if len(rep.Added) != 1 || len(rep.Rejected) != 1 || rep.Rejected[0].File != "bad_1.0_amd64.deb" {
			t.Errorf("watch report: %+v", rep)
		}
	case <-time.After(time.Minute):
		t.Fatal("no publish within a minute of the uploads")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var left []string
	inc.List(t.Context(), "", func(i storage.Info) error { left = append(left, i.Name); return nil })
	if strings.Join(left, " ") != "later_1.0_amd64.deb.part" {
		t.Errorf("left in the incoming prefix: %v", left)
	}
	if _, err := os.Stat(filepath.Join(r.dir, RejectedDir, "bad_1.0_amd64.deb.reason")); err != nil {
		t.Error(err)
	}
	if _, err := r.pub.Stat(t.Context(), "pool/main/a/arrived/arrived_1.0_amd64.deb"); err != nil {
		t.Error(err)
	}
}

// TestS3CheckUploads: send() to the incoming/ of a repository whose published tree is in a
// bucket checks the bucket's index (over HTTP, from repo.conf's URL, with the key beside
// repo.conf), locally and over SFTP.
func TestS3CheckUploads(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		r := newBucketRepo(t, InitOptions{})
		testCheckUploads(t, r.dir, filepath.Join(r.dir, IncomingDir), send.Options{})
	})
	t.Run("sftp", func(t *testing.T) {
		srv := sshtest.Start(t)
		r := newBucketRepo(t, InitOptions{})
		opt := send.Options{SSH: sshconn.Options{Identity: []string{srv.Identity}, KnownHosts: []string{srv.KnownHosts}, NoAgent: true}}
		testCheckUploads(t, r.dir, "sftp://"+srv.User+"@"+srv.Addr()+filepath.Join(r.dir, IncomingDir), opt)
	})
}
