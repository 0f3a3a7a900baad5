package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/venv/wheeltest"
)

// TestInitThenBuild: upds init on a scaffold (requirements.txt, src/PKG, local wheels) writes a
// BUILD.star and VERSION whose `upds run build` succeeds, and refuses to run twice.
func TestInitThenBuild(t *testing.T) {
	dir := project(t, map[string]string{
		"requirements.txt":         "tiny-lib==1.0\n",
		"src/shop_api/__init__.py": "from tiny_lib import x\n",
		"src/shop_api/views.py":    "def index():\n    return 'ok'\n",
		"tests/__init__.py":        "",
	})
	os.MkdirAll(filepath.Join(dir, "wheels"), 0o755)
	if _, err := wheeltest.Write(filepath.Join(dir, "wheels"), wheeltest.Wheel{Name: "tiny-lib", Version: "1.0",
		Files: map[string]string{"tiny_lib/__init__.py": "x = 1\n"}}); err != nil {
		t.Fatal(err)
	}
	r := upds(t, dir, "init")
	if r.code != 0 {
		t.Fatalf("init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, w := range []string{"wrote BUILD.star and VERSION (0.1.0)", "upds run build", "shop-api-virtualenv"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("init printed no %q:\n%s", w, r.stdout)
		}
	}
	if v, _ := os.ReadFile(filepath.Join(dir, "VERSION")); string(v) != "0.1.0\n" {
		t.Errorf("VERSION: %q", v)
	}
	build, _ := os.ReadFile(filepath.Join(dir, "BUILD.star"))
	for _, w := range []string{`load("@upds//python.star"`, `src = "src/shop_api"`, `"--find-links", "wheels/"`} {
		if !strings.Contains(string(build), w) {
			t.Errorf("BUILD.star has no %q:\n%s", w, build)
		}
	}
	r = upds(t, dir, "run", "build")
	if r.code != 0 {
		t.Fatalf("build: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{"shop-api_0.1.0_all.deb", "shop-api-virtualenv_0.1.0_amd64.deb", "shop-api-server_0.1.0_all.deb"} {
		if _, err := os.Stat(filepath.Join(dir, "dist", f)); err != nil {
			t.Errorf("dist/%s: %v", f, err)
		}
	}
	// The code keeps its Python package name on the server.
	info := upds(t, dir, "inspect", filepath.Join(dir, "dist", "shop-api_0.1.0_all.deb"))
	if !strings.Contains(info.stdout, "/srv/python/shop_api/views.py") {
		t.Errorf("shop-api has no /srv/python/shop_api/views.py:\n%s", info.stdout)
	}

	// Never overwrite.
	os.WriteFile(filepath.Join(dir, "BUILD.star"), []byte("# mine\n"), 0o644)
	r = upds(t, dir, "init")
	if r.code != 2 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second init: exit %d, %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "BUILD.star")); string(b) != "# mine\n" {
		t.Fatalf("init overwrote BUILD.star: %q", b)
	}
}

func TestInitRefusesNonPythonDirs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no requirements", map[string]string{"app/__init__.py": ""}, "no requirements.txt or pyproject.toml"},
		{"no package", map[string]string{"requirements.txt": ""}, "no package directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := project(t, tc.files)
			r := upds(t, dir, "init")
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "BUILD.star")); err == nil {
				t.Fatal("BUILD.star written")
			}
		})
	}
}

func TestInitPyproject(t *testing.T) {
	dir := project(t, map[string]string{
		"pyproject.toml":        "[project]\nname = \"Web_Thing\"\nversion = \"0.3\"\ndependencies = []\n\n[tool.x]\nname = \"other\"\n",
		"web_thing/__init__.py": "",
		"other/__init__.py":     "",
	})
	r := upds(t, dir, "init")
	if r.code != 0 {
		t.Fatalf("init: exit %d %s", r.code, r.stderr)
	}
	build, _ := os.ReadFile(filepath.Join(dir, "BUILD.star"))
	for _, w := range []string{`name = "web-thing"`, `src = "web_thing"`, `pyproject = "pyproject.toml"`} {
		if !strings.Contains(string(build), w) {
			t.Errorf("BUILD.star has no %q:\n%s", w, build)
		}
	}
	if r := upds(t, dir, "tasks"); r.code != 0 {
		t.Fatalf("tasks: exit %d %s", r.code, r.stderr)
	}
}

// buildifier is Bazel's formatter for Starlark, pinned; `go run` fetches it from the Go module
// proxy the first time.
const buildifier = "github.com/bazelbuild/buildtools/buildifier@v0.0.0-20260904073137-eaa4d125b423"

// TestInitBuildStarPassesBuildifier: every BUILD.star upds init writes is formatted as
// `buildifier --type=default` formats it.
func TestInitBuildStarPassesBuildifier(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		env   []string
	}{
		{"requirements", map[string]string{"requirements.txt": "", "blog/__init__.py": ""}, nil},
		{"wheels", map[string]string{"requirements.txt": "", "src/blog/__init__.py": "", "wheels/x.txt": ""}, nil},
		{"pyproject", map[string]string{"pyproject.toml": "[project]\nname = \"blog\"\n", "blog/__init__.py": ""}, nil},
		{"maintainer", map[string]string{"requirements.txt": "", "blog/__init__.py": ""}, []string{"DEBFULLNAME=Ann Example", "DEBEMAIL=ann@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := project(t, tc.files)
			cmd := exec.Command(updsBin, "-C", dir, "init")
			cmd.Env = append(os.Environ(), tc.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("init: %v\n%s", err, out)
			}
			check := exec.Command("go", "run", buildifier, "--type=default", "--mode=check", "BUILD.star")
			check.Dir = dir
			if out, err := check.CombinedOutput(); err != nil {
				fixed := exec.Command("go", "run", buildifier, "--type=default", "--mode=diff", "BUILD.star")
				fixed.Dir = dir
				diff, _ := fixed.CombinedOutput()
				t.Fatalf("buildifier --mode=check: %v\n%s\n%s", err, out, diff)
			}
		})
	}
}

// TestInitWritesGitignore: upds init keeps what upds writes out of git: a new .gitignore, or
// the lines an existing one lacks.
func TestInitWritesGitignore(t *testing.T) {
	const want = "/dist/\n/.upds/\n/repo/\n/.VERSION.lock\n"
	dir := project(t, map[string]string{"requirements.txt": "", "blog/__init__.py": ""})
	r := upds(t, dir, "init")
	if b, _ := os.ReadFile(filepath.Join(dir, ".gitignore")); r.code != 0 || !strings.HasSuffix(string(b), want) {
		t.Errorf("init: exit %d, .gitignore %q", r.code, b)
	}
	if !strings.Contains(r.stdout, "ignored   /dist/ /.upds/ /repo/ /.VERSION.lock in .gitignore") {
		t.Errorf("init does not say what it ignored:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "commit    upds.lock") {
		t.Errorf("init does not say to commit upds.lock:\n%s", r.stdout)
	}
	dir = project(t, map[string]string{"requirements.txt": "", "blog/__init__.py": "", ".gitignore": "*.pyc\ndist\n.upds/"})
	upds(t, dir, "init")
	if b, _ := os.ReadFile(filepath.Join(dir, ".gitignore")); !strings.HasPrefix(string(b), "*.pyc\ndist\n.upds/\n#") ||
		!strings.HasSuffix(string(b), "\n/repo/\n/.VERSION.lock\n") || strings.Count(string(b), "dist") != 1 {
		t.Errorf(".gitignore after init: %q", b)
	}
}
