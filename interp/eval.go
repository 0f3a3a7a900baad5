package interp

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/afero"
	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/upds/upds/interp/cache"
)

// Options configure one evaluation of a project.
type Options struct {
	// Dir is the project directory. It may be empty when FS is given (in-memory tests).
	Dir string
	// FS overrides the project filesystem (default: Dir on the real filesystem).
	FS afero.Fs
	// File is the build file name in the project root (default BUILD.star).
	File string
	// Builtins are the predeclared names that stdlib modules provide (deb, venv, version, ...).
	Builtins starlark.StringDict
	// Rules is the rule library loaded as @upds//.
	Rules fs.FS
	// Libs maps NAME to a directory for @NAME// labels.
	Libs map[string]string
	// LibFS maps NAME to a filesystem for @NAME// labels (tests); it wins over Libs.
	LibFS map[string]afero.Fs
	// NoCache bypasses the action cache.
	NoCache bool
	// SharedCache, when set, backs the action cache with a shared one (an S3 prefix
	// that other machines use too): a local miss is looked up there, a new output is
	// uploaded. Ignored with NoCache.
	SharedCache *cache.Remote
	// ToolVersion is mixed into every cache key.
	ToolVersion string
	// Stdout and Stderr receive print() and task output (default os.Stdout, os.Stderr).
	Stdout, Stderr io.Writer
	// Env is the environment for sh() and tools (default os.Environ()).
	Env []string
	// VersionFunc reads the project version when called.
	VersionFunc func(h *Host) (string, error)
	// Ctx stops the evaluation when it is done (Ctrl-C): Load then returns an error wrapping
	// ErrInterrupted. Nil means never.
	Ctx context.Context
}

// FileOptions are the Starlark dialect of BUILD.star: sets, while loops, top-level if/for and
// reassignment are allowed (a build file is a script); recursion is not.
var fileOptions = syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}

// Build is an evaluated project: its host (targets, tasks) and the frozen globals of BUILD.star.
type Build struct {
	Host    *Host
	Globals starlark.StringDict
}

// Load evaluates the project's BUILD.star once, on one thread, and freezes the result.
// Evaluation is hermetic: builtins see only the project filesystem and cannot run commands or
// write files. Errors are *Error values that name the source position.
func Load(opt Options) (*Build, error) {
	h := newHost()
	if opt.FS != nil {
		h.FS = opt.FS
	} else {
		abs, err := filepath.Abs(opt.Dir)
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, &Error{Msg: err.Error(), Usage: true}
		}
		if !st.IsDir() {
			return nil, &Error{Msg: fmt.Sprintf("%s is not a directory", abs), Usage: true}
		}
		h.Root = abs
		h.FS = afero.NewBasePathFs(afero.NewOsFs(), abs)
	}
	if opt.Dir != "" && h.Root == "" {
		if abs, err := filepath.Abs(opt.Dir); err == nil {
			h.Root = abs
		}
	}
	h.ToolVersion = opt.ToolVersion
	h.Stdout, h.Stderr = opt.Stdout, opt.Stderr
	if h.Stdout == nil {
		h.Stdout = os.Stdout
	}
	if h.Stderr == nil {
		h.Stderr = os.Stderr
	}
	h.Env = opt.Env
	if h.Env == nil {
		h.Env = os.Environ()
	}
	h.VersionFunc = opt.VersionFunc
	cacheDir := ".upds"
	if h.Root != "" {
		cacheDir = filepath.Join(h.Root, ".upds")
	}
	h.Cache = cache.Open(cacheDir, opt.NoCache || h.Root == "")
	if opt.SharedCache != nil && !h.Cache.Disabled() {
		h.Cache.SetRemote(opt.SharedCache)
	}

	file := opt.File
	if file == "" {
		file = "BUILD.star"
	}
	l := &loader{host: h, opt: opt, modules: map[string]*module{}}
	l.predeclared = starlark.StringDict{
		"project": starlark.NewBuiltin("project", builtinProject),
		"task":    starlark.NewBuiltin("task", builtinTask),
		"sh":      starlark.NewBuiltin("sh", builtinSh),
		"glob":    starlark.NewBuiltin("glob", builtinGlob),
		"getenv":  starlark.NewBuiltin("getenv", builtinGetenv),
		"struct":  starlark.NewBuiltin("struct", starlarkstruct.Make),
		"json":    json.Module,
	}
	for k, v := range opt.Builtins {
		l.predeclared[k] = v
	}
	src, err := afero.ReadFile(h.FS, file)
	if err != nil {
		if os.IsNotExist(err) {
			where := opt.Dir
			if where == "" {
				where = "the project directory"
			}
			return nil, &Error{Msg: fmt.Sprintf("no %s in %s (use -C DIR, or `upds init` to start one)", file, where), Usage: true}
		}
		return nil, &Error{Msg: fmt.Sprintf("read %s: %v", file, err), Usage: true}
	}
	globals, err := l.exec(file, label{repo: "", path: file}, src)
	if err != nil {
		return nil, err
	}
	h.Project = h.Project.withDefaults(h.Root)
	return &Build{Host: h, Globals: globals}, nil
}

// label is a parsed load() label: repo "" is the project, "upds" the embedded rule library,
// anything else a library mapped with --lib.
type label struct{ repo, path string }

func (l label) String() string {
	if l.repo == "" {
		return "//" + l.path
	}
	return "@" + l.repo + "//" + l.path
}

// filename is what error positions show: project files as plain relative paths.
func (l label) filename() string {
	if l.repo == "" {
		return l.path
	}
	return l.String()
}

type module struct {
	globals starlark.StringDict
	err     error
	loading bool
}

type loader struct {
	host        *Host
	opt         Options
	predeclared starlark.StringDict
	modules     map[string]*module
	stack       []string
	byFile      map[string]label
}

func (l *loader) exec(filename string, lab label, src []byte) (starlark.StringDict, error) {
	if l.byFile == nil {
		l.byFile = map[string]label{}
	}
	l.byFile[lab.filename()] = lab
	thread := &starlark.Thread{
		Name: "eval " + lab.String(),
		Print: func(_ *starlark.Thread, msg string) {
			fmt.Fprintln(l.host.Stderr, msg)
		},
		Load: l.load,
	}
	thread.SetLocal(localHost, l.host)
	thread.SetLocal(localPhase, PhaseEval)
	if ctx := l.opt.Ctx; ctx != nil {
		// A long top-level loop stops at its next step when the user interrupts.
		stop := context.AfterFunc(ctx, func() { thread.Cancel("interrupted") })
		defer stop()
	}
	globals, err := starlark.ExecFileOptions(&fileOptions, thread, lab.filename(), src, l.predeclared)
	if err != nil {
		if l.opt.Ctx != nil && l.opt.Ctx.Err() != nil {
			return nil, &Error{Msg: ErrInterrupted.Error(), Cause: ErrInterrupted}
		}
		return nil, withBadByte(convertError(err, true), src)
	}
	globals.Freeze()
	return globals, nil
}

func (l *loader) load(thread *starlark.Thread, name string) (starlark.StringDict, error) {
	from := l.byFile[thread.CallFrame(0).Pos.Filename()]
	lab, err := parseLabel(name, from)
	if err != nil {
		return nil, err
	}
	key := lab.String()
	if m, ok := l.modules[key]; ok {
		if m.loading {
			chain := append(append([]string(nil), l.stack...), key)
			return nil, fmt.Errorf("load cycle: %s", strings.Join(chain, " -> "))
		}
		return m.globals, m.err
	}
	m := &module{loading: true}
	l.modules[key] = m
	l.stack = append(l.stack, key)
	defer func() { l.stack = l.stack[:len(l.stack)-1]; m.loading = false }()
	src, err := l.read(lab)
	if err != nil {
		m.err = err
		return nil, err
	}
	m.globals, m.err = l.exec(lab.filename(), lab, src)
	return m.globals, m.err
}

// parseLabel resolves a load() argument relative to the module doing the load.
//
//	//dir/file.star       the project root
//	@upds//file.star      the rule library built into upds
//	@NAME//file.star      a library mapped with --lib NAME=DIR or UPDS_LIB_NAME=DIR
//	file.star, ../x.star  relative to the loading module, inside the same root
func parseLabel(s string, from label) (label, error) {
	var repo, p string
	switch {
	case strings.HasPrefix(s, "//"):
		repo, p = "", s[2:]
	case strings.HasPrefix(s, "@"):
		i := strings.Index(s, "//")
		if i < 0 {
			return label{}, fmt.Errorf("load(%q): a library label is @NAME//path/file.star", s)
		}
		repo, p = s[1:i], s[i+2:]
		if repo == "" {
			return label{}, fmt.Errorf("load(%q): empty library name", s)
		}
	default:
		repo = from.repo
		p = path.Join(path.Dir(from.path), s)
	}
	if !strings.HasSuffix(p, ".star") {
		return label{}, fmt.Errorf("load(%q): only .star files can be loaded", s)
	}
	c, err := ProjectPath(p)
	if err != nil {
		return label{}, fmt.Errorf("load(%q): %v", s, err)
	}
	return label{repo: repo, path: c}, nil
}

func (l *loader) read(lab label) ([]byte, error) {
	switch {
	case lab.repo == "":
		b, err := afero.ReadFile(l.host.FS, lab.path)
		if err != nil {
			return nil, fmt.Errorf("load(%q): %v", lab.String(), notExist(err))
		}
		return b, nil
	case lab.repo == "upds":
		if l.opt.Rules == nil {
			return nil, fmt.Errorf("load(%q): no rule library in this build", lab.String())
		}
		b, err := fs.ReadFile(l.opt.Rules, lab.path)
		if err != nil {
			return nil, fmt.Errorf("load(%q): %v", lab.String(), notExist(err))
		}
		return b, nil
	default:
		if fsys, ok := l.opt.LibFS[lab.repo]; ok {
			b, err := afero.ReadFile(fsys, lab.path)
			if err != nil {
				return nil, fmt.Errorf("load(%q): %v", lab.String(), notExist(err))
			}
			return b, nil
		}
		dir, ok := l.opt.Libs[lab.repo]
		if !ok {
			return nil, fmt.Errorf("load(%q): unknown library %q: map it with --lib %s=DIR or UPDS_LIB_%s=DIR",
				lab.String(), lab.repo, lab.repo, strings.ToUpper(lab.repo))
		}
		b, err := afero.ReadFile(afero.NewBasePathFs(afero.NewOsFs(), dir), lab.path)
		if err != nil {
			return nil, fmt.Errorf("load(%q): %v", lab.String(), notExist(err))
		}
		return b, nil
	}
}

func notExist(err error) error {
	if os.IsNotExist(err) {
		return fmt.Errorf("no such file")
	}
	return err
}
