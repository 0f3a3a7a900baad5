// Package venv builds a Python virtualenv for a Debian package: it installs requirements with
// the system interpreter's pip into a private staging directory, then relocates the tree to the
// path it will have on the server, so that it can be packaged as it is.
package venv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec describes a virtualenv to build.
type Spec struct {
	// Name names the venv (and its package, NAME-virtualenv); it is the default last element of Into.
	Name string
	// Python is a system interpreter on the build machine, default /usr/bin/python3. It must be
	// owned by a Debian package under /usr/bin: the server gets it through Depends.
	Python string
	// Requirements are requirements files, relative to ProjectDir (or absolute inside it).
	Requirements []string
	// Pyproject is a pyproject.toml whose [project] dependencies are installed (not the project).
	Pyproject string
	// Constraints are constraints files (pip -c), relative to ProjectDir.
	Constraints []string
	// PipArgs are extra pip install arguments, e.g. --no-index --find-links wheels/ --require-hashes.
	// Relative paths resolve against ProjectDir.
	PipArgs []string
	// Into is where the venv lives on the server, default /var/virtualenvs/NAME.
	Into string
	// ProjectDir is the absolute project root; nothing outside it is read.
	ProjectDir string
	// WithPip also ships pip and setuptools in the venv (from the interpreter's ensurepip).
	// Without it the venv holds only the requirements; the build uses the system pip.
	WithPip bool
	// KeepSymbols keeps the symbol tables and debugging information of compiled files.
	// By default they are stripped, as dh_strip does for Debian packages.
	KeepSymbols bool
}

// Result is a built, relocated venv. It marshals to JSON, so that a cache can keep it next to Dir.
type Result struct {
	// Dir is the venv tree on disk, ready to be packaged as it is at Into. It belongs to the
	// caller, who removes it (os.RemoveAll) when done.
	Dir string `json:"dir"`
	// Into is the path the tree was relocated to.
	Into string `json:"into"`
	// Python is the versioned system interpreter the venv uses, e.g. /usr/bin/python3.11.
	Python string `json:"python"`
	// PythonPackage is the Debian package to depend on, e.g. python3.11.
	PythonPackage string `json:"python_package"`
	// ArchSpecific is true when the tree holds compiled code (ELF files: extension modules, libraries).
	ArchSpecific bool `json:"arch_specific"`
	// SharedLibDepends are the Debian packages that provide the shared libraries the compiled
	// files need (outside the venv and the interpreter), sorted.
	SharedLibDepends []string `json:"shared_lib_depends,omitempty"`
	// Postinst byte-compiles the venv; Prerm removes what byte-compiling created.
	Postinst []byte `json:"postinst"`
	Prerm    []byte `json:"prerm"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]*$`)
var intoRE = regexp.MustCompile(`^(/[A-Za-z0-9._+@-]+)+$`)

// validate checks the fields that need no file system or interpreter.
func (s *Spec) validate() error {
	if !nameRE.MatchString(s.Name) {
		return fmt.Errorf("venv %q: name must be lowercase letters, digits, '+', '-', '.' (a Debian package name)", s.Name)
	}
	if s.ProjectDir == "" || !filepath.IsAbs(s.ProjectDir) {
		return fmt.Errorf("venv %s: project dir %q must be an absolute path", s.Name, s.ProjectDir)
	}
	into := s.into()
	if !intoRE.MatchString(into) || filepath.Clean(into) != into || strings.Contains(into, "/./") || strings.Contains(into, "/../") || strings.HasSuffix(into, "/..") {
		return fmt.Errorf("venv %s: into %q must be a clean absolute path of letters, digits and ._+@-", s.Name, into)
	}
	for _, sys := range []string{"/", "/usr", "/usr/bin", "/bin", "/etc", "/var", "/opt", "/srv", "/tmp", "/lib", "/usr/lib", "/usr/local"} {
		if into == sys {
			return fmt.Errorf("venv %s: into %s is a system directory", s.Name, into)
		}
	}
	if len(s.Requirements) == 0 && s.Pyproject == "" && !hasPositional(s.PipArgs) {
		return fmt.Errorf("venv %s: nothing to install: give requirements or pyproject", s.Name)
	}
	return nil
}

// hasPositional reports whether args name something to install: a requirement or -r FILE.
func hasPositional(args []string) bool {
	for i := 0; i < len(args); i++ {
		opt, _, hasValue, inline := splitOption(args[i])
		switch {
		case !strings.HasPrefix(args[i], "-"):
			return true
		case opt == "-r" || opt == "--requirement":
			return true
		case hasValue && !inline:
			i++
		}
	}
	return false
}

func (s *Spec) into() string {
	if s.Into != "" {
		return s.Into
	}
	return "/var/virtualenvs/" + s.Name
}

// Key is the cache key of the venv: a sha256 over the content of the requirements, constraints
// and pyproject dependencies, every local file they or PipArgs reference (-r/-c includes, wheel
// and sdist paths, every file of local --find-links directories), the interpreter's real path
// and exact version, pip's version, PipArgs, Into, WithPip and toolVersion (the caller's
// version). Remote indexes are not part of it: pin with --require-hashes, or build offline.
// It costs one interpreter start (about 15 ms) plus hashing the local inputs.
func (s Spec) Key(ctx context.Context, toolVersion string) (string, error) {
	return s.KeyWith(ctx, toolVersion, HashFile)
}

// KeyWith is Key with the caller's way of hashing input files (nil means HashFile), so that a
// cache that remembers file hashes by size and mtime need not read big wheel directories again.
func (s Spec) KeyWith(ctx context.Context, toolVersion string, hashFile HashFunc) (string, error) {
	if hashFile == nil {
		hashFile = HashFile
	}
	if err := s.validate(); err != nil {
		return "", err
	}
	py, err := resolveInterpreter(ctx, s.Python)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", fmt.Errorf("venv %s: %w", s.Name, err)
	}
	in, err := s.collectInputs()
	if err != nil {
		return "", fmt.Errorf("venv %s: %w", s.Name, err)
	}
	k, err := s.key(in, py, toolVersion, hashFile)
	if err != nil {
		return "", fmt.Errorf("venv %s: %w", s.Name, err)
	}
	return k, nil
}

// Build creates the venv in a new private directory under stagingDir, installs the
// requirements offline-capable and hermetically (no pip configuration, no user site, a private
// HOME and cache), relocates it to Into and checks that no staging path is left in any file.
// pip's output goes to log. On failure nothing is left under stagingDir.
func Build(ctx context.Context, s Spec, stagingDir string, log io.Writer) (*Result, error) {
	return build(ctx, s, stagingDir, log, buildOptions{})
}

// buildOptions select code paths the tests exercise on a machine that would not take them.
type buildOptions struct {
	pipFromWheel bool // run pip from ensurepip's wheel, as with a system pip older than 22.3
}

func build(ctx context.Context, s Spec, stagingDir string, log io.Writer, opts buildOptions) (res *Result, err error) {
	if log == nil {
		log = io.Discard
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	fail := func(err error) (*Result, error) {
		if ctx.Err() != nil { // a killed pip or dpkg says nothing about the inputs
			err = ctx.Err()
		}
		return nil, fmt.Errorf("venv %s: %w", s.Name, err)
	}
	py, err := resolveInterpreter(ctx, s.Python)
	if err != nil {
		return fail(err)
	}
	in, err := s.collectInputs()
	if err != nil {
		return fail(err)
	}
	if err := py.checkSystem(ctx); err != nil {
		return fail(err)
	}
	if _, _, err := py.pipCommand("", opts.pipFromWheel); err != nil {
		return fail(err)
	}
	st, err := newStaging(stagingDir, s.Name)
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(st.work)
	defer func() {
		if err != nil {
			os.RemoveAll(st.venv)
		}
	}()

	// 1. The venv itself. MkdirTemp created the directory; venv fills it.
	// Always --without-pip: ensurepip would install and byte-compile pip and setuptools (3 s);
	// installing the same wheels with --no-compile below takes a fraction of that.
	args := []string{"-I", "-m", "venv", "--prompt", s.Name, "--without-pip", st.venv}
	fmt.Fprintf(log, "+ %s %s\n", py.Real, strings.Join(args, " "))
	if err := run(ctx, py.Real, args, st.env, st.work, log); err != nil {
		return fail(fmt.Errorf("create venv: %w", err))
	}
	// 2. pip install.
	if err := s.pipInstall(ctx, py, in, st, log, opts); err != nil {
		return fail(err)
	}
	// 3. Relocate and check.
	res = &Result{Dir: st.venv, Into: s.into(), Python: py.Real, PythonPackage: py.Package()}
	r := &relocator{root: st.venv, into: res.Into, python: py.Real, forbidden: []string{st.venv, st.work},
		strip: !s.KeepSymbols, ctx: ctx, log: log}
	if err := r.run(); err != nil {
		return fail(err)
	}
	res.ArchSpecific = len(r.elfFiles) > 0
	if res.SharedLibDepends, err = sharedLibDepends(ctx, st.venv, r.elfFiles, py); err != nil {
		return fail(err)
	}
	res.Postinst, res.Prerm = maintainerScripts(s.Name, res.Into, py)
	return res, nil
}

// staging is where one build works: the venv being built and a work directory (pip's HOME and
// TMPDIR), both new private directories under the staging directory.
type staging struct {
	work, venv string
	env        []string // the scrubbed environment of every command, with the work dir's HOME and TMPDIR
}

// newStaging creates the directories of a build of the venv name under stagingDir. On failure
// nothing it created is left.
func newStaging(stagingDir, name string) (st *staging, err error) {
	if err := os.MkdirAll(stagingDir, 0o755); err != nil {
		return nil, err
	}
	dir, err := filepath.EvalSymlinks(stagingDir)
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	st = &staging{}
	if st.work, err = os.MkdirTemp(dir, name+"-work-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(st.work)
			if st.venv != "" {
				os.RemoveAll(st.venv)
			}
		}
	}()
	if st.venv, err = os.MkdirTemp(dir, name+"-venv-"); err != nil {
		return nil, err
	}
	home, tmp := filepath.Join(st.work, "home"), filepath.Join(st.work, "tmp")
	for _, d := range []string{home, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	st.env = scrubbedEnv(home, tmp)
	return st, nil
}

// pipInstall installs into the staging venv, with the system pip run for the venv's
// interpreter: pip and setuptools from ensurepip's wheels (WithPip), then the requirements,
// the pyproject dependencies and what PipArgs name.
func (s *Spec) pipInstall(ctx context.Context, py *interpreter, in *inputs, st *staging, log io.Writer, opts buildOptions) error {
	pipBin, pipInstall, err := py.pipCommand(filepath.Join(st.venv, "bin", "python"), opts.pipFromWheel)
	if err != nil {
		return err
	}
	pipInstall = append(pipInstall, "install", "--no-input", "--disable-pip-version-check", "--no-cache-dir",
		"--no-compile", "--no-warn-script-location")
	if s.WithPip {
		if len(py.Ensurepip) == 0 {
			return fmt.Errorf("with pip: no pip wheel for ensurepip (install python3-pip-whl)")
		}
		args := append(append(append([]string(nil), pipInstall...), "--no-index", "--no-deps"), py.Ensurepip...)
		fmt.Fprintf(log, "+ %s %s\n", pipBin, strings.Join(args, " "))
		tail := &tailWriter{}
		if err := run(ctx, pipBin, args, st.env, st.work, io.MultiWriter(log, tail)); err != nil {
			return fmt.Errorf("install pip: %s", tail.reason(err))
		}
	}
	pip := append([]string(nil), pipInstall...)
	for _, r := range s.Requirements {
		pip = append(pip, "-r", r)
	}
	for _, c := range s.Constraints {
		pip = append(pip, "-c", c)
	}
	if s.Pyproject != "" && len(in.deps) > 0 {
		reqFile := filepath.Join(st.work, "pyproject-dependencies.txt")
		if err := os.WriteFile(reqFile, []byte(strings.Join(in.deps, "\n")+"\n"), 0o644); err != nil {
			return err
		}
		pip = append(pip, "-r", reqFile)
	}
	pip = append(pip, s.PipArgs...)
	if len(in.deps) > 0 || len(s.Requirements) > 0 || hasPositional(s.PipArgs) {
		fmt.Fprintf(log, "+ %s %s\n", pipBin, strings.Join(pip, " "))
		tail := &tailWriter{}
		if err := run(ctx, pipBin, pip, st.env, s.ProjectDir, io.MultiWriter(log, tail)); err != nil {
			return fmt.Errorf("pip install: %s", tail.reason(err))
		}
	}
	return nil
}

func run(ctx context.Context, bin string, args, env []string, dir string, out io.Writer) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Stdin = nil
	// pip starts build backends and compilers: cancel them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd.Run()
}

// tailWriter keeps the last lines of pip's output for the error message.
type tailWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []string
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	for {
		i := bytes.IndexByte(t.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(t.buf.Next(i+1)), "\r\n")
		t.lines = append(t.lines, line)
		if len(t.lines) > 200 {
			t.lines = t.lines[len(t.lines)-200:]
		}
	}
	return len(p), nil
}

// reason picks pip's meaningful error lines ("ERROR: ..."), joined on one line.
func (t *tailWriter) reason(err error) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([]string(nil), t.lines...)
	if rest := strings.TrimSpace(t.buf.String()); rest != "" {
		lines = append(lines, rest)
	}
	var errs []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, "ERROR: ") {
			continue
		}
		msg := strings.TrimSpace(strings.TrimPrefix(l, "ERROR: "))
		if strings.HasPrefix(msg, "Could not find a version that satisfies") && i+1 < len(lines) {
			// pip follows it with "No matching distribution found for X", which says it shorter.
			continue
		}
		// Indented lines after an ERROR line belong to it (hash mismatches list the packages).
		for n := 0; i+1 < len(lines) && strings.HasPrefix(lines[i+1], " ") && n < 6; n++ {
			i++
			if c := strings.TrimSpace(lines[i]); c != "" {
				msg += " " + c
			}
		}
		errs = append(errs, strings.Join(strings.Fields(msg), " "))
	}
	if len(errs) == 0 {
		// No ERROR line: the last non-empty lines say most.
		for i := len(lines) - 1; i >= 0 && len(errs) < 3; i-- {
			if l := strings.TrimSpace(lines[i]); l != "" {
				errs = append([]string{l}, errs...)
			}
		}
	}
	if len(errs) > 3 {
		errs = errs[len(errs)-3:]
	}
	msg := strings.Join(errs, "; ")
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if msg == "" {
			return fmt.Sprintf("exit status %d", ee.ExitCode())
		}
		return msg
	}
	if msg == "" {
		return err.Error()
	}
	return msg + ": " + err.Error()
}
