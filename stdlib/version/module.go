package version

// The Starlark binding of the version package: version() and bump().

import (
	"fmt"

	"go.starlark.net/starlark"

	"github.com/upds/upds/interp"
)

// Builtins are the names this module gives BUILD.star.
func Builtins() starlark.StringDict {
	return starlark.StringDict{
		"version": starlark.NewBuiltin("version", builtinVersion),
		"bump":    starlark.NewBuiltin("bump", builtinBump),
	}
}

// Lazy is what version() returns while BUILD.star is evaluated: the project version, read only
// when a build action needs it, so that `upds run bump-minor build` builds the bumped version.
type Lazy struct{ host *interp.Host }

var _ starlark.Value = Lazy{}

// Resolve reads the project version now.
func (l Lazy) Resolve() (string, error) { return l.host.Version() }

// String reads the version now (str(version()) at evaluation gives the version on disk).
func (l Lazy) String() string {
	v, err := l.Resolve()
	if err != nil {
		return "<version: " + err.Error() + ">"
	}
	return v
}
func (l Lazy) Type() string          { return "version" }
func (l Lazy) Freeze()               {}
func (l Lazy) Truth() starlark.Bool  { return true }
func (l Lazy) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: version") }

// ReadProject reads the project version of a host: its VERSION file.
func ReadProject(h *interp.Host) (string, error) {
	v, err := ReadFile(h.FS, h.Project.VersionFile)
	if err != nil {
		return "", err
	}
	return v.String(), nil
}

// version(): the project version. Inside a run function, the string read now; while
// BUILD.star is evaluated, a lazy value that deb(version = ...) reads when the package is built.
func builtinVersion(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	h := interp.HostOf(thread)
	if interp.PhaseOf(thread) == interp.PhaseEval {
		return Lazy{host: h}, nil
	}
	v, err := h.Version()
	if err != nil {
		return nil, fmt.Errorf("version: %v", err)
	}
	return starlark.String(v), nil
}

// bump(part): rewrite VERSION with the given part incremented; returns the new version.
func builtinBump(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var part string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "part", &part); err != nil {
		return nil, err
	}
	if err := interp.RequireRun(thread, "bump"); err != nil {
		return nil, err
	}
	h := interp.HostOf(thread)
	_, nv, err := BumpFile(h.FS, h.Project.VersionFile, Part(part))
	if err != nil {
		return nil, fmt.Errorf("bump: %v", err)
	}
	return starlark.String(nv.String()), nil
}
