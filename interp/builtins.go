package interp

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/afero"
	"go.starlark.net/starlark"
)

// project(name, version_file = "VERSION", arch = "amd64", maintainer = None, homepage = None,
// out = "dist", license = None, copyright = None): declare the project, once, at the top.
func builtinProject(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	p := DefaultProject()
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"name", &p.Name, "version_file?", &p.VersionFile, "arch?", &p.Arch, "maintainer??", &p.Maintainer,
		"homepage??", &p.Homepage, "out?", &p.Out, "license??", &p.License, "copyright??", &p.Copyright); err != nil {
		return nil, err
	}
	if PhaseOf(thread) != PhaseEval {
		return nil, fmt.Errorf("project: call it at the top of BUILD.star")
	}
	if p.Name == "" {
		return nil, fmt.Errorf("project: name is empty")
	}
	for _, f := range []struct {
		name string
		path *string
	}{{"version_file", &p.VersionFile}, {"out", &p.Out}} {
		c, err := ProjectPath(*f.path)
		if err != nil {
			return nil, fmt.Errorf("project: %s: %v", f.name, err)
		}
		*f.path = c
	}
	p.Pos = CallerPos(thread)
	h := HostOf(thread)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Project.Pos.IsValid() {
		return nil, fmt.Errorf("project: already called at %s", h.Project.Pos)
	}
	h.Project = p
	return starlark.None, nil
}

// OutDir is the absolute output directory (project(out = ...), default dist/).
func (h *Host) OutDir() string {
	return filepath.Join(h.Root, filepath.FromSlash(h.Project.Out))
}

// sh(cmd, cwd = None, env = {}, capture = False): run a command while a task runs. A string is
// run by /bin/sh -c, a list is executed directly. Output streams to the task's log, prefixed
// with its name; capture = True returns stdout instead. A non-zero exit fails the task.
func builtinSh(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		cmd     starlark.Value
		cwd     = "." // the project directory
		env     *starlark.Dict
		capture bool
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "cmd", &cmd, "cwd??", &cwd, "env?", &env, "capture?", &capture); err != nil {
		return nil, err
	}
	if err := RequireRun(thread, "sh"); err != nil {
		return nil, err
	}
	h, run := HostOf(thread), RunOf(thread)
	var argv []string
	display := ""
	switch c := cmd.(type) {
	case starlark.String:
		argv = []string{"/bin/sh", "-c", string(c)}
		display = string(c)
	case *starlark.List, starlark.Tuple:
		it := starlark.Iterate(c)
		defer it.Done()
		var v starlark.Value
		for it.Next(&v) {
			s, ok := starlark.AsString(v)
			if !ok {
				return nil, fmt.Errorf("sh: cmd: want strings, got %s", v.Type())
			}
			argv = append(argv, s)
		}
		if len(argv) == 0 {
			return nil, fmt.Errorf("sh: cmd is empty")
		}
		display = strings.Join(argv, " ")
	default:
		return nil, fmt.Errorf("sh: cmd: want a string or a list, got %s", cmd.Type())
	}
	rel, err := ProjectPath(cwd)
	if err != nil {
		return nil, fmt.Errorf("sh: cwd: %v", err)
	}
	dir := filepath.Join(h.Root, rel)
	environ := append([]string(nil), h.Env...)
	if env != nil {
		for _, it := range env.Items() {
			k, ok1 := starlark.AsString(it[0])
			v, ok2 := starlark.AsString(it[1])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("sh: env: want string keys and values")
			}
			environ = append(environ, k+"="+v)
		}
	}
	ctx := run.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Dir = dir
	c.Env = environ
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGTERM) }
	c.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	if capture {
		c.Stdout = &out
	} else {
		c.Stdout = run.Stdout
	}
	c.Stderr = run.Stderr
	if err := c.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sh: %s: cancelled", display)
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("sh: %q exited with status %d", display, ee.ExitCode())
		}
		return nil, fmt.Errorf("sh: %q: %v", display, err)
	}
	if capture {
		return starlark.String(out.String()), nil
	}
	return starlark.None, nil
}

// glob(include, exclude = []): project-relative paths of regular files and symlinks matching
// the patterns, sorted. "*" matches within one path segment, "**" any number of segments.
// .upds/, .git/ and the output directory are never matched.
func builtinGlob(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var include, exclude StringList
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "include", &include, "exclude??", &exclude); err != nil {
		return nil, err
	}
	h := HostOf(thread)
	files, err := Glob(h.FS, include, exclude, []string{".upds", ".git", h.Project.Out})
	if err != nil {
		return nil, fmt.Errorf("glob: %v", err)
	}
	vals := make([]starlark.Value, len(files))
	for i, f := range files {
		vals[i] = starlark.String(f)
	}
	return starlark.NewList(vals), nil
}

// StringList is a builtin argument that is one string or an iterable of strings (None, or a
// "name??" parameter given None, is no strings): the starlark.Unpacker of list-of-strings
// parameters.
type StringList []string

// Unpack implements starlark.Unpacker.
func (l *StringList) Unpack(v starlark.Value) error {
	s, err := stringsOf(v)
	*l = s
	return err
}

// Strings reads a builtin argument as StringList does; what names the argument in errors.
func Strings(v starlark.Value, what string) ([]string, error) {
	s, err := stringsOf(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return s, nil
}

func stringsOf(v starlark.Value) ([]string, error) {
	if l, ok := v.(*starlark.List); ok && l == nil {
		return nil, nil // an optional list parameter that was not given
	}
	switch x := v.(type) {
	case nil, starlark.NoneType:
		return nil, nil
	case starlark.String:
		return []string{string(x)}, nil
	case starlark.Iterable:
		var out []string
		it := x.Iterate()
		defer it.Done()
		var e starlark.Value
		for it.Next(&e) {
			s, ok := starlark.AsString(e)
			if !ok {
				return nil, fmt.Errorf("want strings, got %s", e.Type())
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or a list of strings, got %s", v.Type())
}

// Glob matches project-relative patterns against fsys. Directories named in skip (relative to
// the root) are not entered.
func Glob(fsys afero.Fs, include, exclude, skip []string) ([]string, error) {
	for _, p := range append(append([]string(nil), include...), exclude...) {
		if _, err := ProjectPath(p); err != nil {
			return nil, err
		}
		if _, err := path.Match(strings.ReplaceAll(p, "**", "*"), ""); err != nil {
			return nil, fmt.Errorf("bad pattern %q", p)
		}
	}
	skipSet := map[string]bool{}
	for _, s := range skip {
		if s != "" {
			skipSet[path.Clean(s)] = true
		}
	}
	var out []string
	err := afero.Walk(fsys, ".", func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		p = filepath.ToSlash(p)
		if fi.IsDir() {
			if p != "." && skipSet[p] {
				return filepath.SkipDir
			}
			return nil
		}
		if matchAny(include, p) && !matchAny(exclude, p) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(out)
	return out, nil
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if MatchPath(path.Clean(p), name) {
			return true
		}
	}
	return false
}

// MatchPath matches a slash-separated path against a pattern where "**" stands for any number
// of whole segments and other segments use path.Match syntax.
func MatchPath(pattern, name string) bool {
	return matchSegs(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(segs); i++ {
				if matchSegs(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// getenv(name, default = None): an environment variable, inside a run function only.
// Evaluation stays hermetic: the same BUILD.star declares the same packages on every machine;
// what a task does with them (where it sends them) may depend on the environment.
func builtinGetenv(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var def starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "default?", &def); err != nil {
		return nil, err
	}
	if err := RequireRun(thread, "getenv"); err != nil {
		return nil, err
	}
	if v, ok := HostOf(thread).Getenv(name); ok {
		return starlark.String(v), nil
	}
	return def, nil
}
