package deb

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/version"
)

// contentProject is a project on disk with a content-versioned package "big" (a tree) and a
// package "app" that depends on it.
const contentBuild = `project(name = "p", maintainer = "a <b@c>")
big = deb("big", version = "content", contents = [tree("data", "/opt/big")])
app = deb("app", arch = "all", depends = [big], contents = [file("app.txt", "/opt/app.txt")])
print("big.version at evaluation: " + big.version)
task("build", deps = [app])
task("show", deps = [app], run = lambda ctx: print("big.version after the build: " + big.version))
`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runTasks evaluates the project in dir and runs tasks; it returns what print() said.
func runTasks(t *testing.T, dir string, env []string, tasks ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	all := Builtins()
	for k, v := range version.Builtins() {
		all[k] = v
	}
	b, err := interp.Load(interp.Options{Dir: dir, Builtins: all, VersionFunc: version.ReadProject,
		ToolVersion: "test", Stdout: &out, Stderr: &out, Env: env})
	if err != nil {
		return out.String(), err
	}
	err = b.NewRunner(interp.RunOptions{Jobs: 2}).Run(context.Background(), tasks)
	return out.String(), err
}

func lockEntry(t *testing.T, dir, name string) version.LockEntry {
	t.Helper()
	l, err := version.ReadLock(interpFS(dir), version.LockFile)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := l.Get(name)
	return e
}

func lockVersion(t *testing.T, dir, name string) string { return lockEntry(t, dir, name).Version }

func distNames(t *testing.T, dir string) string {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(dir, "dist"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

// TestContentVersion: the package keeps its version while its content stays the same, takes
// the project version when it changes, and 1.1+c1 when it changes without a bump; the package
// that depends on it gets the resolved version, and so does .version after the build.
func TestContentVersion(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"BUILD.star": contentBuild, "VERSION": "1.0\n",
		"data/a.txt": "a\n", "app.txt": "app\n"})
	steps := []struct {
		files     map[string]string
		env       []string
		big, deps string
	}{
		{nil, nil, "1.0", "big (= 1.0)"},
		{map[string]string{"VERSION": "1.1\n"}, nil, "1.0", "big (= 1.0)"},
		{map[string]string{"VERSION": "1.2\n"}, []string{"SOURCE_DATE_EPOCH=1700000000"}, "1.0", "big (= 1.0)"},
		{map[string]string{"data/a.txt": "changed\n"}, nil, "1.2", "big (= 1.2)"},
		{map[string]string{"data/b.txt": "new\n"}, nil, "1.2+c1", "big (= 1.2+c1)"},
		{map[string]string{"data/b.txt": "newer\n"}, nil, "1.2+c2", "big (= 1.2+c2)"},
		{map[string]string{"VERSION": "1.3\n"}, nil, "1.2+c2", "big (= 1.2+c2)"},
	}
	for i, st := range steps {
		writeFiles(t, dir, st.files)
		before := lockVersion(t, dir, "big")
		out, err := runTasks(t, dir, st.env, "show")
		if err != nil {
			t.Fatalf("step %d: %v\n%s", i, err, out)
		}
		if want := "big.version at evaluation: " + orDefault(before, "1.0"); i > 0 && !strings.Contains(out, want) {
			t.Errorf("step %d: %q not in\n%s", i, want, out)
		}
		if want := "big.version after the build: " + st.big; !strings.Contains(out, want) {
			t.Errorf("step %d: %q not in\n%s", i, want, out)
		}
		if got := lockVersion(t, dir, "big"); got != st.big {
			t.Errorf("step %d: upds.lock says big %s, want %s", i, got, st.big)
		}
		v, _ := os.ReadFile(filepath.Join(dir, "VERSION"))
		app := filepath.Join(dir, "dist", "app_"+strings.TrimSpace(string(v))+"_all.deb")
		if got := debField(t, app, "Depends"); got != st.deps {
			t.Errorf("step %d: app Depends %q, want %q", i, got, st.deps)
		}
		big := filepath.Join(dir, "dist", "big_"+st.big+"_amd64.deb")
		if _, err := os.Stat(big); err != nil {
			t.Fatalf("step %d: %v (dist: %s)", i, err, distNames(t, dir))
		}
		if src, key := debField(t, big, "X-Upds-Source"), lockEntry(t, dir, "big").Key; src != key {
			t.Errorf("step %d: upds.lock's key %s is not the package's X-Upds-Source %s", i, key, src)
		}
	}
}

func debField(t *testing.T, deb, field string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "-f", deb, field).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s: %v\n%s", deb, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestContentVersionClone: a fresh clone (another directory, no cache, the committed
// upds.lock) builds the content-versioned package at the recorded version, byte for byte.
func TestContentVersionClone(t *testing.T) {
	need(t, "dpkg-deb")
	files := map[string]string{"BUILD.star": contentBuild, "VERSION": "1.0\n", "data/a.txt": "a\n", "app.txt": "app\n"}
	a := t.TempDir()
	writeFiles(t, a, files)
	if out, err := runTasks(t, a, nil, "build"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	writeFiles(t, a, map[string]string{"VERSION": "1.5\n"})
	lock, _ := os.ReadFile(filepath.Join(a, version.LockFile))
	b := filepath.Join(t.TempDir(), "elsewhere", "clone")
	files["VERSION"], files[version.LockFile] = "1.5\n", string(lock)
	writeFiles(t, b, files)
	if out, err := runTasks(t, b, []string{"SOURCE_DATE_EPOCH=1800000000"}, "build"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	first, err1 := os.ReadFile(filepath.Join(a, "dist", "big_1.0_amd64.deb"))
	clone, err2 := os.ReadFile(filepath.Join(b, "dist", "big_1.0_amd64.deb"))
	if err1 != nil || err2 != nil || !bytes.Equal(first, clone) {
		t.Fatalf("the clone's big_1.0 differs (%v, %v); dist: %s", err1, err2, distNames(t, b))
	}
	if after, _ := os.ReadFile(filepath.Join(b, version.LockFile)); !bytes.Equal(after, lock) {
		t.Errorf("the clone's build changed upds.lock:\n%s", after)
	}
}

// TestContentVersionBadLock: a broken upds.lock is an error at the deb() line, exit 2, and
// nothing is built.
func TestContentVersionBadLock(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"BUILD.star": strings.Replace(contentBuild, "print(", "# print(", 1),
		"VERSION": "1.0\n", "data/a.txt": "a\n", "app.txt": "app\n",
		version.LockFile: "<<<<<<< HEAD\nbig 1.0 " + strings.Repeat("a", 64) + "\n"})
	_, err := runTasks(t, dir, nil, "build")
	want := "BUILD.star:2:10: deb big: upds.lock:1: a merge conflict"
	if err == nil || !strings.HasPrefix(interp.FormatError(err), want) || !interp.IsUsage(err) {
		t.Fatalf("got %v, want %s... (usage)", err, want)
	}
	if names := distNames(t, dir); names != "" {
		t.Errorf("dist/ holds %s", names)
	}
}

// interpFS is the project directory as builtins see it.
func interpFS(dir string) afero.Fs { return afero.NewBasePathFs(afero.NewOsFs(), dir) }

// TestContentVersionParallel: content-versioned packages built in parallel all get their line
// in upds.lock.
func TestContentVersionParallel(t *testing.T) {
	dir := t.TempDir()
	build := `project(name = "p", maintainer = "a <b@c>")
pkgs = [deb("p%d" % i, version = "content", contents = [file("a.txt", "/opt/p%d" % i)]) for i in range(12)]
task("build", deps = pkgs)
`
	writeFiles(t, dir, map[string]string{"BUILD.star": build, "VERSION": "3.0\n", "a.txt": "a\n"})
	if out, err := runTasks(t, dir, nil, "build"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	l, err := version.ReadLock(interpFS(dir), version.LockFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.Entries()); n != 12 {
		t.Fatalf("upds.lock has %d entries, want 12", n)
	}
}
