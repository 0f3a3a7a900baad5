package interp

import (
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/afero"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/upds/upds/interp/cache"
)

// Project holds what project() declared. Empty fields mean "not set"; after evaluation
// they hold DefaultProject's values.
type Project struct {
	Name        string
	VersionFile string
	Arch        string
	Maintainer  string
	Homepage    string
	Out         string
	License     string
	Copyright   string
	Pos         syntax.Position // where project() was called
}

// DefaultProject is the project before project() is called, and what its optional arguments
// default to: the one home of these defaults.
func DefaultProject() Project {
	return Project{VersionFile: "VERSION", Arch: "amd64", Out: "dist"}
}

// withDefaults is p with its empty fields set from DefaultProject, and an empty name set to
// the base name of the project directory root (when there is one).
func (p Project) withDefaults(root string) Project {
	if p.Name == "" && root != "" {
		p.Name = filepath.Base(root)
	}
	d := DefaultProject()
	if p.VersionFile == "" {
		p.VersionFile = d.VersionFile
	}
	if p.Arch == "" {
		p.Arch = d.Arch
	}
	if p.Out == "" {
		p.Out = d.Out
	}
	return p
}

// Host is the state of one build that builtins reach through their thread (HostOf).
// Everything in it is safe for concurrent use by run functions executing in parallel.
type Host struct {
	// Root is the absolute project directory on the real filesystem ("" for in-memory builds).
	Root string
	// FS is the project seen by builtins; every project path is relative to its root.
	FS afero.Fs
	// Project is what project() declared (with defaults applied after evaluation).
	Project Project
	// Cache is the action cache (never nil; it may be disabled).
	Cache *cache.Cache
	// ToolVersion is part of every cache key, so that a new upds rebuilds everything.
	ToolVersion string
	// Stdout and Stderr receive task output (already serialised by the caller if needed).
	Stdout, Stderr io.Writer
	// Env is the environment that sh() and tools start from.
	Env []string
	// VersionFunc reads the project version at the moment it is called.
	VersionFunc func(h *Host) (string, error)

	mu    sync.Mutex
	outMu sync.Mutex // serialises lines of task output
	byID  map[string]Target
	tasks map[string]*Task
	order []*Task
	decls map[string][]Declaration
}

func newHost() *Host {
	return &Host{byID: map[string]Target{}, tasks: map[string]*Task{}, Project: DefaultProject()}
}

// Getenv returns the value of the environment variable name in Env. When Env assigns name
// more than once, the last assignment wins, as it does for the commands sh() starts.
func (h *Host) Getenv(name string) (string, bool) {
	for i := len(h.Env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(h.Env[i], name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// Version returns the project version read now.
func (h *Host) Version() (string, error) {
	if h.VersionFunc == nil {
		return "", fmt.Errorf("no version reader configured")
	}
	return h.VersionFunc(h)
}

// AddTarget registers a target declared during evaluation. Two targets with one ID are an error.
func (h *Host) AddTarget(t Target) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := t.ID()
	if prev, ok := h.byID[id]; ok {
		return fmt.Errorf("%s is already declared at %s", id, prev.Pos())
	}
	h.byID[id] = t
	return nil
}

// Declaration is something BUILD.star declares that is not built: a server of the
// inventory, say. Stdlib modules keep their own kinds of declarations on the host.
type Declaration struct {
	Kind  string // e.g. "server"
	Name  string // unique within its kind
	Pos   syntax.Position
	Value any
}

// Declare records a declaration made during evaluation. Two of one kind with one name are
// an error.
func (h *Host) Declare(d Declaration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, prev := range h.decls[d.Kind] {
		if prev.Name == d.Name {
			return &DeclaredError{Prev: prev}
		}
	}
	if h.decls == nil {
		h.decls = map[string][]Declaration{}
	}
	h.decls[d.Kind] = append(h.decls[d.Kind], d)
	return nil
}

// DeclaredError is what Declare returns for a name its kind already has.
type DeclaredError struct{ Prev Declaration }

func (e *DeclaredError) Error() string {
	return fmt.Sprintf("%s %s is already declared at %s", e.Prev.Kind, e.Prev.Name, e.Prev.Pos)
}

// Declarations returns the declarations of a kind in the order they were made.
func (h *Host) Declarations(kind string) []Declaration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Declaration(nil), h.decls[kind]...)
}

// ProjectPath cleans a project-relative path and refuses one that is absolute or escapes the
// project root. The result uses forward slashes and has no leading "./" ("." for the root).
func ProjectPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q is absolute: paths are relative to the project root", p)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q escapes the project root", p)
	}
	return c, nil
}

// Phase tells builtins whether BUILD.star is being evaluated or a run function is executing.
type Phase int

const (
	// PhaseEval is the evaluation of BUILD.star and its loads: declare only.
	PhaseEval Phase = iota
	// PhaseRun is the execution of a task's run function: may act.
	PhaseRun
)

const (
	localHost  = "upds.host"
	localPhase = "upds.phase"
	localRun   = "upds.run"
)

// HostOf returns the host of the build a thread belongs to.
func HostOf(thread *starlark.Thread) *Host {
	h, _ := thread.Local(localHost).(*Host)
	return h
}

// PhaseOf returns the phase a thread is in.
func PhaseOf(thread *starlark.Thread) Phase {
	p, _ := thread.Local(localPhase).(Phase)
	return p
}

// RunOf returns the run (task execution) state of a run-phase thread, or nil.
func RunOf(thread *starlark.Thread) *RunState {
	r, _ := thread.Local(localRun).(*RunState)
	return r
}

// RequireRun returns an error unless the thread executes a run function; builtins with effects
// (sh, bump, send) call it first.
func RequireRun(thread *starlark.Thread, fn string) error {
	if PhaseOf(thread) != PhaseRun {
		return fmt.Errorf("%s() may only be called inside a task's run function, not while BUILD.star is evaluated", fn)
	}
	return nil
}

// CallerPos returns the position in Starlark source of the call to the builtin being executed.
func CallerPos(thread *starlark.Thread) syntax.Position {
	if thread.CallStackDepth() > 1 {
		return thread.CallFrame(1).Pos
	}
	return syntax.Position{}
}
