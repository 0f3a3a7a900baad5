package examples_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/repo"
)

// poolFiles are the .deb files of package name in the repository's pool.
func poolFiles(t *testing.T, repoDir, name string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoDir, "public", "pool", "main", name[:1], name, "*.deb"))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	sort.Strings(files)
	return files
}

// helloDepends maps each version of hello in the repository's signed index to the version
// of hello-virtualenv it depends on.
func helloDepends(t *testing.T, repoDir string) map[string]string {
	t.Helper()
	ix, err := repo.ReadIndex(context.Background(), repoDir, repo.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range ix.Packages {
		if p.Name != "hello" {
			continue
		}
		dep := p.Fields.Get("Depends")
		_, v, ok := strings.Cut(dep, "hello-virtualenv (= ")
		v, _, ok2 := strings.Cut(v, ")")
		if !ok || !ok2 {
			t.Fatalf("hello %s: Depends %q names no hello-virtualenv version", p.Version, dep)
		}
		out[p.Version] = v
	}
	return out
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHelloReleases is issue 13's "done when": five code-only releases of examples/hello leave
// one hello-virtualenv in the pool, every hello depends on it and upds.lock does not change;
// a changed wheel (upds run wheels) makes the next release ship a second one.
func TestHelloReleases(t *testing.T) {
	need(t, "dpkg-deb", "/usr/bin/python3")
	dir := copyProject(t, "hello")
	repoDir := filepath.Join(dir, "repo")
	committed, err := os.ReadFile(filepath.Join(dir, "upds.lock"))
	if err != nil {
		t.Fatal("examples/hello has no upds.lock: ", err)
	}
	mustUpds(t, dir, "repo", "init", repoDir)
	mustUpds(t, dir, "run", "publish")
	app := filepath.Join(dir, "src", "hello", "app.py")
	for i := 1; i <= 5; i++ {
		editFile(t, app, "<h1>{greeting}", fmt.Sprintf("<h1>{greeting} (%d)", i))
		r := mustUpds(t, dir, "run", "release")
		if want := "published 4 new, 1 unchanged"; !strings.Contains(r.stdout, want) {
			t.Errorf("release %d: %q not in\n%s", i, want, r.stdout)
		}
	}
	if got := poolFiles(t, repoDir, "hello-virtualenv"); strings.Join(got, " ") != "hello-virtualenv_0.1.0_amd64.deb" {
		t.Fatalf("after five code-only releases the pool holds %v", got)
	}
	deps := helloDepends(t, repoDir)
	if len(deps) < 2 {
		t.Fatalf("the index lists hello %v", deps)
	}
	for v, venv := range deps {
		if venv != "0.1.0" {
			t.Errorf("hello %s depends on hello-virtualenv %s, want 0.1.0", v, venv)
		}
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "upds.lock")); string(now) != string(committed) {
		t.Errorf("code-only releases changed upds.lock:\n%s", now)
	}

	// A new wheel: the virtualenv's content changes, the next release ships it at the new version.
	editFile(t, filepath.Join(dir, "lib", "greeting", "greeting", "__init__.py"), `f"Hello, {name}!"`, `f"Hello there, {name}!"`)
	mustUpds(t, dir, "run", "wheels")
	r := mustUpds(t, dir, "run", "release")
	if !strings.Contains(r.stdout, "published 5 new") {
		t.Errorf("the release after upds run wheels:\n%s", r.stdout)
	}
	want := "hello-virtualenv_0.1.0_amd64.deb hello-virtualenv_0.1.6_amd64.deb"
	if got := poolFiles(t, repoDir, "hello-virtualenv"); strings.Join(got, " ") != want {
		t.Fatalf("after the new wheel the pool holds %v, want %s", got, want)
	}
	if venv := helloDepends(t, repoDir)["0.1.6"]; venv != "0.1.6" {
		t.Errorf("hello 0.1.6 depends on hello-virtualenv %q, want 0.1.6", venv)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "upds.lock")); !strings.Contains(string(now), "\nhello-virtualenv 0.1.6 ") {
		t.Errorf("upds.lock after the new wheel:\n%s", now)
	}
}

// TestHelloConflict: a code change without a bump gives hello 0.1.0 other bytes; send and
// publish refuse it with one line naming the package, exit 1, and leave incoming/ empty and the
// repository as it was. After a bump, send uploads only the four small packages.
func TestHelloConflict(t *testing.T) {
	need(t, "dpkg-deb")
	dir := copyProject(t, "hello")
	repoDir := filepath.Join(dir, "repo")
	mustUpds(t, dir, "repo", "init", repoDir)
	mustUpds(t, dir, "run", "publish")
	inRelease := filepath.Join(repoDir, "public", "dists", "stable", "InRelease")
	before, _ := os.ReadFile(inRelease)
	editFile(t, filepath.Join(dir, "src", "hello", "app.py"), "<h1>{greeting}", "<h1>{greeting}!")
	for _, task := range []string{"send", "publish"} {
		r := upds(t, dir, "run", task)
		want := "hello 0.1.0 (all) is already in the repository " + repoDir + " with other content (SHA256 "
		if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "bump VERSION and build again") {
			t.Errorf("%s of a changed hello 0.1.0: exit %d\n%s", task, r.code, r.stderr)
		}
		if got, _ := os.ReadDir(filepath.Join(repoDir, "incoming")); len(got) != 0 {
			t.Errorf("%s left %d files in incoming/", task, len(got))
		}
		if after, _ := os.ReadFile(inRelease); string(after) != string(before) {
			t.Errorf("%s changed the repository's index", task)
		}
	}
	r := mustUpds(t, dir, "run", "bump-patch", "send")
	if !strings.Contains(r.stdout, "hello-virtualenv 0.1.0 (amd64): the repository has it already, the same bytes: not sent") ||
		!strings.Contains(r.stdout, "sent hello_0.1.1_all.deb, hello-config-beta_0.1.1_all.deb, hello-config-production_0.1.1_all.deb, hello-server_0.1.1_all.deb to") {
		t.Errorf("send after the bump:\n%s", r.stdout)
	}
	if got, _ := filepath.Glob(filepath.Join(repoDir, "incoming", "*.deb")); len(got) != 4 {
		t.Errorf("incoming/ after the bump: %v", got)
	}
}

// TestHelloReleasePublishFails: a release whose publish fails (the repository is not there)
// leaves VERSION and upds.lock as they were; the retry makes the version the failed one would
// have made.
func TestHelloReleasePublishFails(t *testing.T) {
	dir := copyProject(t, "hello")
	lock, _ := os.ReadFile(filepath.Join(dir, "upds.lock"))
	r := upds(t, dir, "run", "release")
	if r.code != 1 || !strings.Contains(r.stdout, "hello is now version 0.1.1") ||
		!strings.Contains(r.stderr, "put back as before (the run did not complete): VERSION 0.1.0 (not 0.1.1)") {
		t.Fatalf("release without a repository: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if v, _ := os.ReadFile(filepath.Join(dir, "VERSION")); string(v) != "0.1.0\n" {
		t.Fatalf("VERSION after the failed release: %q", v)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "upds.lock")); string(now) != string(lock) {
		t.Fatalf("upds.lock after the failed release:\n%s", now)
	}
	mustUpds(t, dir, "repo", "init", filepath.Join(dir, "repo"))
	if r := mustUpds(t, dir, "run", "release"); !strings.Contains(r.stdout, "hello is now version 0.1.1") {
		t.Fatalf("the retry:\n%s", r.stdout)
	}
}
