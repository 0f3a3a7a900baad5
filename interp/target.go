package interp

import (
	"context"
	"io"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Target is something the host builds when a task needs it: a package, a virtualenv.
// Stdlib modules implement it; the executor builds each target at most once per run, after its
// dependencies, and in parallel with independent work.
type Target interface {
	starlark.Value
	// ID names the target uniquely and readably, e.g. "deb hello" or "venv hello".
	ID() string
	// Pos is where BUILD.star declared it; build errors are reported there.
	Pos() syntax.Position
	// Deps are the targets that must be built first.
	Deps() []Target
	// Build produces the target's outputs.
	Build(a *Action) error
	// Outputs are the files the last Build produced (absolute paths).
	Outputs() []string
}

// Action is what a target's Build gets: the cancellation context, the host, and a log.
type Action struct {
	Ctx  context.Context
	Host *Host
	// Log receives progress lines for the user, prefixed by the executor.
	Log io.Writer
	// Cached is set by Build when its result came from the cache.
	Cached bool
	// Jobs is the parallelism the build may use inside one action (e.g. compression threads).
	Jobs int
}
