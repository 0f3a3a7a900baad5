// Package parallel runs independent pieces of work on a bounded number of goroutines: the one
// loop upds uses wherever work fans out (hashing, publishing, hosts), built on errgroup.
package parallel

import (
	"context"
	"runtime"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Cores is the default limit: the number of CPUs Go may use.
func Cores() int { return runtime.GOMAXPROCS(0) }

// ForEach calls fn(ctx, i) for every i in [0, n) with at most limit calls running at once
// (limit <= 0 means Cores()), taking i in increasing order. The first error cancels the ctx
// the others see, no new calls start after it, and it is what ForEach returns once every
// running call has returned. A cancelled parent ctx stops new calls and is returned as
// ctx.Err().
func ForEach(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	if limit <= 0 {
		limit = Cores()
	}
	g, gctx := errgroup.WithContext(ctx)
	// limit goroutines each take the next i until none is left: a goroutine per call would
	// grow a fresh stack for every call, which shows when calls are many and short.
	var next atomic.Int64
	for range min(limit, n) {
		g.Go(func() error {
			for gctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := fn(gctx, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// Map is ForEach that keeps each call's result at its index.
func Map[T any](ctx context.Context, n, limit int, fn func(ctx context.Context, i int) (T, error)) ([]T, error) {
	out := make([]T, n)
	err := ForEach(ctx, n, limit, func(ctx context.Context, i int) error {
		v, err := fn(ctx, i)
		out[i] = v
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
