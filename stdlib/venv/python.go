package venv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// DefaultPython is the interpreter used when Spec.Python is empty.
const DefaultPython = "/usr/bin/python3"

// interpreter is a resolved system Python.
type interpreter struct {
	Given     string   // as the spec names it, e.g. /usr/bin/python3
	Real      string   // the versioned binary, e.g. /usr/bin/python3.11
	Version   string   // sys.version, e.g. "3.11.2 (main, Apr 28 2025, 14:11:48) [GCC 12.2.0]"
	XY        string   // "3.11"
	SysPath   []string // sys.path of the interpreter (to find pip)
	Pip       string   // the pip dist-info directory name, e.g. pip-23.0.1.dist-info ("" if none)
	Ensurepip []string // the pip and setuptools wheels ensurepip would install
}

var versionedRE = regexp.MustCompile(`^python(\d+\.\d+)$`)

// resolveInterpreter resolves path to the versioned interpreter and asks it for its version.
// It does not check dpkg ownership (see checkSystem): Key must stay fast.
func resolveInterpreter(ctx context.Context, path string) (*interpreter, error) {
	if path == "" {
		path = DefaultPython
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("python %q: must be an absolute path to a system interpreter such as %s", path, DefaultPython)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("python %s: %w", path, err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, fmt.Errorf("python %s: %w", path, err)
	}
	in := &interpreter{Given: path, Real: real}
	cmd := exec.CommandContext(ctx, real, "-I", "-S", "-c",
		`import sys, json, site; print(json.dumps({"version": sys.version, "xy": "%d.%d" % sys.version_info[:2], "path": sys.path + site.getsitepackages()}))`)
	cmd.Env = scrubbedEnv("", "")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("python %s: cannot run it: %v: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	var info struct {
		Version string
		XY      string
		Path    []string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return nil, fmt.Errorf("python %s: unexpected output %q", path, out)
	}
	in.Version, in.XY, in.SysPath = info.Version, info.XY, info.Path
	if !strings.HasPrefix(in.XY, "3.") {
		return nil, fmt.Errorf("python %s is Python %s: only Python 3 is supported", path, in.XY)
	}
	for _, dir := range in.SysPath {
		if m, _ := filepath.Glob(filepath.Join(dir, "pip-*.dist-info")); len(m) > 0 {
			in.Pip = filepath.Base(m[0])
			break
		}
	}
	// The wheels ensurepip installs: Debian's python3-pip-whl and python3-setuptools-whl, or
	// the interpreter's own bundled ones. The newest pip and setuptools of the first dir that has them.
	for _, dir := range []string{"/usr/share/python-wheels", filepath.Join(filepath.Dir(real), "..", "lib", "python"+in.XY, "ensurepip", "_bundled")} {
		for _, name := range []string{"pip", "setuptools"} {
			if m, _ := filepath.Glob(filepath.Join(dir, name+"-*-py3-none-any.whl")); len(m) > 0 {
				sort.Strings(m)
				in.Ensurepip = append(in.Ensurepip, filepath.Clean(m[len(m)-1]))
			}
		}
		if len(in.Ensurepip) > 0 {
			break
		}
	}
	return in, nil
}

// Package is the Debian package a venv built with this interpreter depends on: "python3.11".
func (in *interpreter) Package() string { return "python" + in.XY }

// checkSystem refuses interpreters the server will not have: anything outside /usr/bin and
// /bin, and anything there that no Debian package owns (a hand-copied or pyenv binary).
func (in *interpreter) checkSystem(ctx context.Context) error {
	why := func(format string, args ...any) error {
		return fmt.Errorf("python %s is not a system interpreter: %s; the server will not have it (use /usr/bin/python3 or /usr/bin/python3.X from Debian)",
			in.Given, fmt.Sprintf(format, args...))
	}
	dir := filepath.Dir(in.Real)
	if dir != "/usr/bin" && dir != "/bin" {
		if in.Real != in.Given {
			return why("it resolves to %s, outside /usr/bin", in.Real)
		}
		return why("it is outside /usr/bin")
	}
	gdir := filepath.Dir(in.Given)
	if gdir != "/usr/bin" && gdir != "/bin" {
		return why("it is outside /usr/bin")
	}
	m := versionedRE.FindStringSubmatch(filepath.Base(in.Real))
	if m == nil {
		return why("it resolves to %s, not a versioned pythonX.Y binary", in.Real)
	}
	if m[1] != in.XY {
		return why("%s reports version %s", in.Real, in.XY)
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		return why("dpkg is not available to check which package owns %s", in.Real)
	}
	// On merged-/usr systems dpkg may know the file as /bin/... or /usr/bin/....
	candidates := []string{in.Real}
	if strings.HasPrefix(in.Real, "/usr/bin/") {
		candidates = append(candidates, strings.TrimPrefix(in.Real, "/usr"))
	} else {
		candidates = append(candidates, "/usr"+in.Real)
	}
	for _, c := range candidates {
		cmd := exec.CommandContext(ctx, "dpkg", "-S", c)
		cmd.Env = scrubbedEnv("", "")
		if out, err := cmd.Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
			return nil
		}
	}
	return why("no Debian package owns %s (dpkg -S)", in.Real)
}

// pipCommand returns the command (binary and leading arguments) that runs
// "pip ARGS" for the venv whose interpreter is venvPython. The system pip does it with
// --python when it is 22.3 or newer; an older one (Ubuntu 22.04 has 22.0) cannot, and then the
// venv's interpreter runs pip straight from ensurepip's pip wheel.
func (in *interpreter) pipCommand(venvPython string, forceWheel bool) (string, []string, error) {
	if !forceWheel && pipVersionAtLeast(in.Pip, 22, 3) {
		return in.Real, []string{"-I", "-m", "pip", "--python", venvPython}, nil
	}
	for _, w := range in.Ensurepip {
		if strings.HasPrefix(filepath.Base(w), "pip-") {
			return venvPython, []string{"-I", filepath.Join(w, "pip")}, nil
		}
	}
	if in.Pip == "" {
		return "", nil, fmt.Errorf("python %s has no pip: install python3-pip on the build machine", in.Given)
	}
	return "", nil, fmt.Errorf("python %s: pip %s is older than 22.3 and there is no pip wheel for ensurepip: install python3-pip-whl", in.Given, in.Pip)
}

// pipVersionAtLeast reads the version of a "pip-X.Y.Z.dist-info" name.
func pipVersionAtLeast(distInfo string, major, minor int) bool {
	v := strings.TrimSuffix(strings.TrimPrefix(distInfo, "pip-"), ".dist-info")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// scrubbedEnv is the environment for every command Build runs: nothing from the caller but a
// few proxy and certificate settings, a private HOME and TMPDIR, pip configuration disabled.
func scrubbedEnv(home, tmp string) []string {
	env := []string{
		"PATH=/usr/bin:/bin",
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"PIP_CONFIG_FILE=" + os.DevNull,
		"PIP_DISABLE_PIP_VERSION_CHECK=1",
		"PIP_NO_INPUT=1",
		"PYTHONNOUSERSITE=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONHASHSEED=0",
	}
	if home != "" {
		env = append(env, "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	}
	if tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	for _, k := range []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
		"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "SOURCE_DATE_EPOCH"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
