package interp

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"go.starlark.net/starlark"
)

// TestCancelledTargetIsCancelled: a target stopped by Ctrl-C is reported cancelled, not
// failed, even when its error no longer wraps context.Canceled (a venv's error with its log
// file, flattened into a message).
func TestCancelledTargetIsCancelled(t *testing.T) {
	started := make(chan struct{})
	build := func(a *Action) error {
		close(started)
		<-a.Ctx.Done()
		return &Error{Msg: fmt.Sprintf("venv x: %v (log: .upds/tmp/venv-x.log)", a.Ctx.Err())}
	}
	b, _, err := load(t, map[string]string{"BUILD.star": "task('build', deps = [target('slow')])\n"},
		func(o *Options) { o.Builtins = starlark.StringDict{"target": targetBuiltin(&builds{}, build)} })
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	err = b.NewRunner(RunOptions{Reporter: rec}).Run(ctx, []string{"build"})
	if !errors.Is(err, ErrInterrupted) {
		t.Errorf("run: %v, want ErrInterrupted", err)
	}
	if got := rec.names(Cancelled); !reflect.DeepEqual(got, []string{"fake slow"}) {
		t.Errorf("cancelled: %v, failed: %v", got, rec.names(Failed))
	}
}
