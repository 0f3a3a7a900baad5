package interp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"
)

// hostKeyError is a builtin failing with a message of several lines, like send()'s host-key
// errors.
var hostKeyError = starlark.NewBuiltin("hostkey", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return nil, errors.New("hostkey: web1: the host key has changed\n  known_hosts line 3 has ssh-ed25519 SHA256:old\n  the server offers ssh-ed25519 SHA256:new")
})

// TestBuiltinMultiLineErrorPrintedOnce: a builtin's error of several lines is printed once,
// with the BUILD.star position, and the traceback (only when there is more than one frame)
// does not repeat it.
func TestBuiltinMultiLineErrorPrintedOnce(t *testing.T) {
	b, _, err := load(t, map[string]string{"BUILD.star": `
def deploy(ctx):
    hostkey()

def helper():
    hostkey()

def nested(ctx):
    helper()

task("deploy", run = deploy)
task("nested", run = nested)
`}, func(o *Options) { o.Builtins = starlark.StringDict{"hostkey": hostKeyError} })
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		task, pos string
		frames    []string // the traceback's frames; none: no traceback
	}{
		{"deploy", "BUILD.star:3:12", nil},
		{"nested", "BUILD.star:6:12", []string{"BUILD.star:9:11: in nested", "BUILD.star:6:12: in helper"}},
	} {
		err := b.NewRunner(RunOptions{}).Run(context.Background(), []string{tc.task})
		got := FormatError(err)
		want := tc.pos + ": task " + tc.task + ": hostkey: web1: the host key has changed\n" +
			"  known_hosts line 3 has ssh-ed25519 SHA256:old\n  the server offers ssh-ed25519 SHA256:new"
		if len(tc.frames) > 0 {
			want += "\nTraceback (most recent call last):\n  " + strings.Join(tc.frames, "\n  ")
		}
		if got != want {
			t.Errorf("task %s: FormatError =\n%s\nwant\n%s", tc.task, got, want)
		}
	}
	// While BUILD.star is evaluated too.
	_, _, err = load(t, map[string]string{"BUILD.star": "x = 1\nhostkey()\n"},
		func(o *Options) { o.Builtins = starlark.StringDict{"hostkey": hostKeyError} })
	if got := FormatError(err); strings.Count(got, "has changed") != 1 || strings.Contains(got, "Traceback") ||
		!strings.HasPrefix(got, "BUILD.star:2:8: hostkey: web1") {
		t.Errorf("evaluation: FormatError =\n%s", got)
	}
}

// TestNonUTF8ByteShownAsByte: a byte that is not UTF-8 is named as the byte, at its position,
// not as the replacement character the scanner decodes it to.
func TestNonUTF8ByteShownAsByte(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"ascii line", "project(name = \"x\")\nx = 1 \xff 2\n", `BUILD.star:2:7: unexpected byte \xff: not UTF-8`},
		{"after multibyte", "s = \"é\" \xfe\n", `BUILD.star:1:9: unexpected byte \xfe: not UTF-8`},
		{"in a loaded file", "load(\"//lib.star\", \"v\")\n", `lib.star:2:1: unexpected byte \xc3: not UTF-8`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := load(t, map[string]string{"BUILD.star": tc.src, "lib.star": "v = 1\n\xc3(\n"})
			if err == nil {
				t.Fatal("no error")
			}
			got := FormatError(err)
			if !strings.Contains(got, tc.want) || strings.ContainsRune(got, '\uFFFD') || !IsUsage(err) {
				t.Errorf("error %q, want %q", got, tc.want)
			}
		})
	}
}

// TestEvaluationStopsWhenCancelled: a long top-level loop stops soon after the context is
// done (Ctrl-C), with ErrInterrupted.
func TestEvaluationStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() {
		_, _, err := load(t, map[string]string{
			"BUILD.star": "load(\"//loop.star\", \"n\")\n",
			"loop.star":  "n = 0\nfor i in range(1000000000):\n    n += 1\n",
		}, func(o *Options) { o.Ctx = ctx })
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInterrupted) || err.Error() != "interrupted" {
			t.Fatalf("cancelled evaluation: %v, want ErrInterrupted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("evaluation went on 5 s after its context was cancelled")
	}
}
