package interp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Error is a user mistake in BUILD.star or a failure of a run function, with its position.
// Its Error() is the one line a user sees first; Backtrace, when set, follows it.
type Error struct {
	Pos syntax.Position
	Msg string
	// Backtrace is the Starlark call stack when it has more than the frame Pos names
	// ("Traceback (most recent call last):" and one line per frame), without the message.
	Backtrace string
	// Usage marks errors in the build description itself (exit code 2) as opposed to a task
	// or action that failed while running (exit code 1).
	Usage bool
	// Cause is the error Msg describes, if any: errors.Is and errors.As look into it (a
	// target's Build that sets it keeps, say, context.Canceled visible to the caller).
	Cause error
}

func (e *Error) Error() string {
	if e.Pos.IsValid() {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Cause }

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
		return &Error{Pos: se.Pos, Msg: se.Msg, Usage: true, Cause: err}
	}
	var rl resolve.ErrorList
	if errors.As(err, &rl) && len(rl) > 0 {
		return &Error{Pos: rl[0].Pos, Msg: rl[0].Msg, Usage: true, Cause: err}
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		var inner *Error
		if errors.As(ee.Unwrap(), &inner) {
			// An error already positioned by a nested load: keep it, add the chain.
			return inner
		}
		return &Error{Pos: innermostPos(ee.CallStack), Msg: ee.Msg, Backtrace: backtrace(ee.CallStack), Usage: usage, Cause: err}
	}
	return &Error{Msg: err.Error(), Usage: usage, Cause: err}
}

// withBadByte rewrites the scanner's "unexpected input character" error about a byte that is
// not UTF-8, which the scanner shows as U+FFFD, into one that names the byte as it is in src.
func withBadByte(err error, src []byte) error {
	var e *Error
	if !errors.As(err, &e) || !strings.HasPrefix(e.Msg, "unexpected input character") || !e.Pos.IsValid() {
		return err
	}
	if b, ok := byteAt(src, int(e.Pos.Line), int(e.Pos.Col)); ok {
		e.Msg = fmt.Sprintf(`unexpected byte \x%02x: not UTF-8 (a .star file is UTF-8 text)`, b)
	}
	return err
}

// byteAt returns the byte at a 1-based line and column (counted in runes, an invalid byte
// being one, as the Starlark scanner counts them) when it starts no valid UTF-8 sequence.
func byteAt(src []byte, line, col int) (byte, bool) {
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			return 0, false
		}
		src = src[i+1:]
	}
	for c := 1; len(src) > 0; c++ {
		r, size := utf8.DecodeRune(src)
		if c == col {
			return src[0], r == utf8.RuneError && size == 1
		}
		if r == '\n' {
			break
		}
		src = src[size:]
	}
	return 0, false
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

// backtrace is the Starlark part of a call stack, outermost first, as Starlark prints it but
// without the message (Error() has it, once): "" when it has only the frame Error() names.
// Frames of builtins are left out: the message of a builtin's error names the builtin.
func backtrace(stack starlark.CallStack) string {
	var frames starlark.CallStack
	for _, f := range stack {
		if f.Pos.Filename() != "<builtin>" {
			frames = append(frames, f)
		}
	}
	if len(frames) < 2 {
		return ""
	}
	return strings.TrimRight(frames.String(), "\n")
}

// FormatError renders an error for the terminal: the message with its position, then the
// Starlark backtrace when it has more than one frame.
func FormatError(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Backtrace != "" && err.Error() == e.Error() {
		return e.Error() + "\n" + e.Backtrace
	}
	return err.Error()
}
