package interp

import (
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Error is a user mistake in BUILD.star or a failure of a run function, with its position.
// Its Error() is the one line a user sees first; Backtrace, when set, follows it.
type Error struct {
	Pos       syntax.Position
	Msg       string
	Backtrace string
	// Usage marks errors in the build description itself (exit code 2) as opposed to a task
	// or action that failed while running (exit code 1).
	Usage bool
	cause error
}

func (e *Error) Error() string {
	if e.Pos.IsValid() {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.cause }

// IsUsage reports whether err is a mistake in the build description (exit code 2).
func IsUsage(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Usage
}

// convertError turns an error from Starlark into an *Error naming the innermost source position.
func convertError(err error, usage bool) error {
	if err == nil {
		return nil
	}
	var ue *Error
	if errors.As(err, &ue) {
		return err
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return &Error{Pos: se.Pos, Msg: se.Msg, Usage: true, cause: err}
	}
	var rl resolve.ErrorList
	if errors.As(err, &rl) && len(rl) > 0 {
		return &Error{Pos: rl[0].Pos, Msg: rl[0].Msg, Usage: true, cause: err}
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		var inner *Error
		if errors.As(ee.Unwrap(), &inner) {
			// An error already positioned by a nested load: keep it, add the chain.
			return inner
		}
		pos := innermostPos(ee.CallStack)
		msg := ee.Msg
		return &Error{Pos: pos, Msg: msg, Backtrace: ee.Backtrace(), Usage: usage, cause: err}
	}
	return &Error{Msg: err.Error(), Usage: usage, cause: err}
}

func innermostPos(stack starlark.CallStack) syntax.Position {
	for i := len(stack) - 1; i >= 0; i-- {
		p := stack[i].Pos
		if p.IsValid() && p.Filename() != "<builtin>" {
			return p
		}
	}
	return syntax.Position{}
}

// FormatError renders an error for the terminal: the one-line message, then the Starlark
// backtrace when there is one and it adds something.
func FormatError(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Backtrace != "" && strings.Count(e.Backtrace, "\n") > 2 {
		return e.Error() + "\n" + strings.TrimRight(e.Backtrace, "\n")
	}
	return err.Error()
}
