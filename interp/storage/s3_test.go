package storage

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upds/upds/interp/storage/s3test"
)

// newS3 starts a SeaweedFS server, points the AWS environment at it and returns the store
// at s3://upds/PREFIX.
func newS3(t *testing.T, srv *s3test.Server, prefix string) *S3 {
	t.Helper()
	srv.Setenv(t)
	s, err := NewS3(context.Background(), "s3://"+s3test.Bucket+"/"+prefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.StopShared()
	os.Exit(code)
}

func TestS3(t *testing.T) {
	srv := s3test.Shared(t)
	s := newS3(t, srv, "conformance")
	testStore(t, s)
	t.Run("HTTP", func(t *testing.T) {
		// What apt does: an anonymous GET at ENDPOINT/BUCKET/PREFIX/NAME.
		ctx := context.Background()
		if err := s.Put(ctx, Object{Name: "dists/stable/InRelease", Data: []byte("signed"), CacheControl: "no-cache"}); err != nil {
			t.Fatal(err)
		}
		if got, want := s.HTTPURL(), srv.URL("conformance"); got != want {
			t.Errorf("HTTPURL = %s, want %s", got, want)
		}
		resp, err := http.Get(s.HTTPURL() + "/dists/stable/InRelease")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "signed" {
			t.Errorf("GET: %s %q", resp.Status, body)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("Cache-Control %q", cc)
		}
	})
	t.Run("ManyObjects", func(t *testing.T) {
		// More than one page of List and one DeleteObjects request.
		ctx := context.Background()
		var objs []Object
		for i := range 1234 {
			objs = append(objs, Object{Name: "many/" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "/" + strconv.Itoa(i), Data: []byte(strconv.Itoa(i))})
		}
		if err := s.Put(ctx, objs...); err != nil {
			t.Fatal(err)
		}
		names := list(t, s, "many/")
		if len(names) != len(objs) {
			t.Fatalf("listed %d of %d", len(names), len(objs))
		}
		if err := s.Delete(ctx, names...); err != nil {
			t.Fatal(err)
		}
		if n := len(list(t, s, "many/")); n != 0 {
			t.Errorf("%d left after Delete", n)
		}
	})
}

// TestS3ConditionalCreate: of many processes creating one name with If-None-Match, one wins.
func TestS3ConditionalCreate(t *testing.T) {
	srv := s3test.Shared(t)
	s := newS3(t, srv, "cond")
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			err := s.Put(context.Background(), Object{Name: "only-one", Data: []byte(strconv.Itoa(i)), IfAbsent: true})
			if err == nil {
				won.Add(1)
			} else if !errors.Is(err, ErrPrecondition) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d conditional creates succeeded", won.Load())
	}
}

// TestS3Lease: a lock left by a process that died is taken over after a lease; a live
// holder keeps its lock however long it works; a holder whose lock was taken learns it.
func TestS3Lease(t *testing.T) {
	srv := s3test.Shared(t)
	s := newS3(t, srv, "lease")
	s.Lease = 1500 * time.Millisecond
	ctx := context.Background()

	// A dead holder's lock object: taken over after about one lease.
	if err := s.Put(ctx, Object{Name: "dead.lock", Data: []byte(`{"owner":"gone"}`)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, unlock, err := s.Lock(ctx, "dead.lock")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < s.Lease || d > 4*s.Lease {
		t.Errorf("took over a dead lock after %s (lease %s)", d, s.Lease)
	}
	unlock()
	if _, err := s.Stat(ctx, "dead.lock"); !errors.Is(err, ErrNotExist) {
		t.Errorf("lock object left after unlock: %v", err)
	}

	// A live holder renews: a waiter does not get the lock for three leases.
	held, unlock, err := s.Lock(ctx, "live.lock")
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 3*s.Lease)
	if _, _, err := s.Lock(wait, "live.lock"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter got a lock that is held: %v", err)
	}
	cancel()
	if held.Err() != nil {
		t.Errorf("holder lost its lock: %v", context.Cause(held))
	}
	unlock()

	// Another process replaces the lock object: the holder's context ends with ErrLockLost.
	held, unlock, err = s.Lock(ctx, "stolen.lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := s.Put(ctx, Object{Name: "stolen.lock", Data: []byte(`{"owner":"thief"}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Done():
		if !errors.Is(context.Cause(held), ErrLockLost) {
			t.Errorf("cause %v", context.Cause(held))
		}
	case <-time.After(2 * s.Lease):
		t.Error("holder did not notice that its lock was taken")
	}
}

// TestS3Config: the location and the AWS environment are checked before any request.
func TestS3Config(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_PROFILE", "")
	ctx := context.Background()
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	if _, err := NewS3(ctx, "s3://b/p"); err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("no region: %v", err)
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "ftp://x")
	if _, err := NewS3(ctx, "s3://b/p"); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Errorf("bad endpoint: %v", err)
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1/")
	s, err := NewS3(ctx, "s3://b/p/q")
	if err != nil {
		t.Fatal(err)
	}
	if s.HTTPURL() != "http://127.0.0.1:1/b/p/q" || s.String() != "s3://b/p/q" {
		t.Errorf("HTTPURL %s, String %s", s.HTTPURL(), s)
	}
	if _, err := Open(ctx, "gs://b/p"); err == nil {
		t.Error("Open gs://: no error")
	}
}
