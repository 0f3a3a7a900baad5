package venv

// The Starlark binding of the venv package: venv().

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/afero"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/deb"
)

// Builtins are the names this module gives BUILD.star.
func Builtins() starlark.StringDict {
	return starlark.StringDict{"venv": starlark.NewBuiltin("venv", builtinVenv)}
}

// Target is a virtualenv declared with venv(); deb(contents = [it]) packages it.
type Target struct {
	spec Spec
	pos  syntax.Position
	res  *Result // after Build
}

var (
	_ interp.Target       = (*Target)(nil)
	_ interp.CacheChecker = (*Target)(nil)
	_ deb.ContentsTarget  = (*Target)(nil)
)

func (t *Target) String() string        { return fmt.Sprintf("<venv %s>", t.spec.Name) }
func (t *Target) Type() string          { return "venv" }
func (t *Target) Freeze()               {}
func (t *Target) Truth() starlark.Bool  { return true }
func (t *Target) Hash() (uint32, error) { return starlark.String(t.ID()).Hash() }
func (t *Target) ID() string            { return "venv " + t.spec.Name }
func (t *Target) Pos() syntax.Position  { return t.pos }
func (t *Target) Deps() []interp.Target { return nil }
func (t *Target) Outputs() []string     { return nil }

func (t *Target) AttrNames() []string { return []string{"into", "name"} }
func (t *Target) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(t.spec.Name), nil
	case "into":
		return starlark.String(t.spec.into()), nil
	}
	return nil, nil
}

// Contents is what a package holding this venv gets: the relocated tree at Into, Depends on
// the interpreter and the shared libraries compiled code needs, and the maintainer script
// snippets that byte-compile on install and clean up on removal.
func (t *Target) Contents() (*deb.Contents, error) {
	if t.res == nil {
		return nil, fmt.Errorf("venv %s: not built", t.spec.Name)
	}
	deps := append([]string{t.res.PythonPackage}, t.res.SharedLibDepends...)
	return &deb.Contents{
		Dir:          t.res.Dir,
		Into:         t.res.Into,
		Depends:      deps,
		Scripts:      map[string][]byte{"postinst": t.res.Postinst, "prerm": t.res.Prerm},
		ArchSpecific: t.res.ArchSpecific,
	}, nil
}

func builtinVenv(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name                    string
		requirements, pyproject starlark.Value = starlark.None, starlark.None
		constraints, pipArgs    *starlark.List
		python                                 = DefaultPython
		into                    starlark.Value = starlark.None
		withPip, keepSymbols    bool
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "requirements?", &requirements,
		"pyproject?", &pyproject, "constraints?", &constraints, "python?", &python, "into?", &into,
		"pip_args?", &pipArgs, "with_pip?", &withPip, "keep_symbols?", &keepSymbols); err != nil {
		return nil, err
	}
	if interp.PhaseOf(thread) != interp.PhaseEval {
		return nil, fmt.Errorf("venv: declare it while BUILD.star is evaluated, not inside a run function")
	}
	h := interp.HostOf(thread)
	s := Spec{Name: name, Python: python, ProjectDir: h.Root, WithPip: withPip, KeepSymbols: keepSymbols}
	fail := func(format string, a ...any) (starlark.Value, error) {
		return nil, fmt.Errorf("venv %s: "+format, append([]any{name}, a...)...)
	}
	if h.Root == "" {
		return fail("needs a project on disk")
	}
	files := func(v starlark.Value, what string) ([]string, error) {
		out, err := interp.Strings(v, what)
		if err != nil {
			return nil, err
		}
		for i, f := range out {
			c, err := interp.ProjectPath(f)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", what, err)
			}
			if _, err := h.FS.Stat(c); err != nil {
				return nil, fmt.Errorf("%s: %q: no such file in the project", what, f)
			}
			out[i] = c
		}
		return out, nil
	}
	var err error
	if requirements == starlark.None && pyproject == starlark.None {
		requirements = starlark.String("requirements.txt")
	}
	if s.Requirements, err = files(requirements, "requirements"); err != nil {
		return fail("%v", err)
	}
	pp, err := files(pyproject, "pyproject")
	if err != nil {
		return fail("%v", err)
	}
	if len(pp) > 1 {
		return fail("pyproject: one file")
	}
	if len(pp) == 1 {
		s.Pyproject = pp[0]
	}
	if s.Constraints, err = files(constraints, "constraints"); err != nil {
		return fail("%v", err)
	}
	if s.PipArgs, err = interp.Strings(pipArgs, "pip_args"); err != nil {
		return fail("%v", err)
	}
	if into != starlark.None {
		str, ok := starlark.AsString(into)
		if !ok {
			return fail("into: want a string")
		}
		s.Into = str
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	t := &Target{spec: s, pos: interp.CallerPos(thread)}
	if err := h.AddTarget(t); err != nil {
		return nil, err
	}
	return t, nil
}

// stored is what the cache keeps beside the venv tree.
type stored struct {
	Result
	Key string
}

// Build builds the venv, or takes it from the cache when its inputs are unchanged (no pip run).
func (t *Target) Build(a *interp.Action) error {
	h := a.Host
	key, err := t.key(a)
	if err != nil {
		return err
	}
	// The venv is used where the cache keeps it; with --no-cache, one uncached venv per name,
	// replaced by the next such build.
	obj := ""
	if h.Cache.Disabled() {
		obj = filepath.Join(h.Cache.Dir(), "tmp", "nocache-venv-"+t.spec.Name)
	}
	a.Cached, err = h.Cache.Build("venv", key, obj, func(tmp string) error { return t.build(a, key, tmp) })
	if err != nil {
		return err
	}
	if obj == "" {
		obj = h.Cache.Path("venv", key)
	}
	t.res, err = loadStored(obj)
	return err
}

// Cached reports whether Build would take the venv from the cache; it hashes the inputs (the
// stat cache answers for unchanged ones) and writes nothing. A cached venv is ready for the
// packages that contain it to be checked in turn. Only this machine's cache counts: a venv
// held only by the shared cache is reported as built, since its result is inside the blob
// that a dry run does not download (the run itself fetches it).
func (t *Target) Cached(a *interp.Action) (bool, error) {
	key, err := t.key(a)
	if err != nil {
		return false, err
	}
	obj, ok := a.Host.Cache.Lookup("venv", key)
	if !ok {
		return false, nil
	}
	res, err := loadStored(obj)
	if err != nil {
		return false, nil // a broken entry: Build makes it again
	}
	t.res = res
	return true, nil
}

// key is the venv's action key. Input files are hashed through the stat cache: unchanged
// wheels are not read again.
func (t *Target) key(a *interp.Action) (string, error) {
	osfs := afero.NewOsFs()
	key, err := t.spec.KeyWith(a.Ctx, a.Host.ToolVersion, func(p string, fi fs.FileInfo) ([32]byte, error) {
		return a.Host.Cache.FileSumInfo(osfs, p, p, fi)
	})
	if err != nil {
		return "", &interp.Error{Pos: t.pos, Msg: err.Error(), Usage: true, Cause: err}
	}
	return key, nil
}

// build runs pip and keeps the venv at obj: obj/tree is the venv, obj/result.json what it needs.
func (t *Target) build(a *interp.Action, key, obj string) error {
	h := a.Host
	if err := CheckPython(a.Ctx, t.spec.Python); err != nil {
		return &interp.Error{Pos: t.pos, Msg: fmt.Sprintf("venv %s: %v", t.spec.Name, err), Usage: true, Cause: err}
	}
	logDir := filepath.Join(h.Cache.Dir(), "logs")
	os.MkdirAll(logDir, 0o755)
	logPath := filepath.Join(logDir, "venv-"+t.spec.Name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	res, err := Build(a.Ctx, t.spec, filepath.Join(h.Cache.Dir(), "tmp"), logf)
	if err != nil {
		return &interp.Error{Pos: t.pos, Msg: fmt.Sprintf("%v (log: %s)", err, logPath), Cause: err}
	}
	defer os.RemoveAll(res.Dir) // moved into obj unless something failed
	if err := os.Mkdir(obj, 0o755); err != nil {
		return err
	}
	if err := os.Rename(res.Dir, filepath.Join(obj, "tree")); err != nil {
		return err
	}
	res.Dir = ""
	meta, _ := json.Marshal(stored{Result: *res, Key: key})
	return os.WriteFile(filepath.Join(obj, "result.json"), meta, 0o644)
}

func loadStored(obj string) (*Result, error) {
	b, err := os.ReadFile(filepath.Join(obj, "result.json"))
	if err != nil {
		return nil, err
	}
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	s.Result.Dir = filepath.Join(obj, "tree")
	if _, err := os.Stat(s.Result.Dir); err != nil {
		return nil, errors.New("cached venv without its tree")
	}
	return &s.Result, nil
}
