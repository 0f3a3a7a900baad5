package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrLockLost is the cause of a held context's cancellation when the lease of an S3 lock
// could not be renewed (another process took it over, or the store was unreachable for
// too long).
var ErrLockLost = errors.New("lock lost: its lease could not be renewed")

// lease is an S3 lock held: an object written with If-None-Match: * (so only one process
// creates it), rewritten with If-Match every third of the lease (so its ETag changes while
// it is held), deleted on unlock.
//
// A waiter that finds the object judges it by its own clock, not by a time written in it
// (clocks of machines differ): once the object's ETag has stayed the same for a whole
// lease, its holder is gone, and the waiter replaces it with If-Match on that ETag, which
// only one waiter can do. A holder that could not renew for two thirds of the lease
// cancels its held context before any waiter can take over.
type lease struct {
	s    *S3
	name string
	ttl  time.Duration
	body leaseBody
	etag string // the object as last written by us
}

// leaseBody is the lock object's content: who holds it (for people), and a sequence number
// that makes every renewal a new ETag.
type leaseBody struct {
	Owner string    `json:"owner"`
	ID    string    `json:"id"`
	Seq   int       `json:"seq"`
	Since time.Time `json:"since"`
	Lease string    `json:"lease"`
}

func (l *lease) object(cond Object) Object {
	l.body.Seq++
	data, _ := json.Marshal(l.body)
	cond.Name, cond.Data, cond.CacheControl = l.name, data, "no-cache"
	return cond
}

// Lock takes the lock object name (see lease).
func (s *S3) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	ttl := s.Lease
	if ttl <= 0 {
		ttl = DefaultLease
	}
	host, _ := os.Hostname()
	id := make([]byte, 8)
	rand.Read(id)
	l := &lease{s: s, name: name, ttl: ttl, body: leaseBody{
		Owner: fmt.Sprintf("%s pid %d", host, os.Getpid()), ID: hex.EncodeToString(id),
		Since: time.Now().UTC().Truncate(time.Second), Lease: ttl.String(),
	}}
	if err := l.acquire(ctx); err != nil {
		return nil, nil, fmt.Errorf("lock %s: %w", s.where(name), err)
	}
	held, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { l.renew(held, cancel, stop) })
	var once sync.Once
	unlock := func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			cancel(nil)
			l.release()
		})
	}
	return held, unlock, nil
}

// acquire creates the lock object, or takes it over once its ETag stayed the same for a
// whole lease.
func (l *lease) acquire(ctx context.Context) error {
	poll := min(l.ttl/10, 250*time.Millisecond)
	var seen string
	var seenAt time.Time
	for {
		etag, err := l.s.put(ctx, l.object(Object{IfAbsent: true}))
		if err == nil {
			l.etag = etag
			return nil
		}
		if !errors.Is(err, ErrPrecondition) {
			return err
		}
		info, err := l.s.Stat(ctx, l.name)
		switch {
		case errors.Is(err, ErrNotExist):
			continue // released meanwhile
		case err != nil:
			return err
		case info.Stamp != seen:
			seen, seenAt = info.Stamp, time.Now()
		case time.Since(seenAt) > l.ttl:
			// Not renewed for a whole lease: its holder is gone.
			etag, err := l.s.put(ctx, l.object(Object{IfMatch: seen}))
			if err == nil {
				l.etag = etag
				return nil
			}
			if !errors.Is(err, ErrPrecondition) && !errors.Is(err, ErrNotExist) {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// renew rewrites the lock object every third of the lease until stop is closed. It
// cancels held when another process replaced the object, or when renewing failed for two
// thirds of the lease.
func (l *lease) renew(held context.Context, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-held.Done():
			return
		case <-t.C:
		}
		ctx, c := context.WithTimeout(context.Background(), l.ttl/3)
		etag, err := l.s.put(ctx, l.object(Object{IfMatch: l.etag}))
		c()
		switch {
		case err == nil:
			l.etag, last = etag, time.Now()
		case errors.Is(err, ErrPrecondition), errors.Is(err, ErrNotExist):
			cancel(fmt.Errorf("%w: another process holds %s", ErrLockLost, l.s.where(l.name)))
			return
		case time.Since(last) > 2*l.ttl/3:
			cancel(fmt.Errorf("%w: %v", ErrLockLost, err))
			return
		}
	}
}

// release deletes the lock object if it is still ours.
func (l *lease) release() {
	ctx, c := context.WithTimeout(context.Background(), 10*time.Second)
	defer c()
	if info, err := l.s.Stat(ctx, l.name); err == nil && info.Stamp == l.etag {
		l.s.Delete(ctx, l.name)
	}
}
