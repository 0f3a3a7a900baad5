// Package parallel runs independent pieces of work on a bounded number of goroutines: the one
// loop upds uses wherever work fans out (hashing, publishing, hosts), built on errgroup.
package parallel

import (
	"context"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// Cores is the default limit: the number of CPUs Go may use.
func Cores() int { return runtime.GOMAXPROCS(0) }

// ForEach calls fn(ctx, i) for every i in [0, n) with at most limit calls running at once
// (limit <= 0 means Cores()). The first error cancels the ctx the others see, no new calls
// start after it, and it is what ForEach returns once every running call has returned. A
// cancelled parent ctx stops new calls and is returned as ctx.Err().
func ForEach(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	if limit <= 0 {
		limit = Cores()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i := 0; i < n; i++ {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
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
