package venv

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/deb"
)

// loadProject evaluates a BUILD.star with a venv() and a deb() that contains it.
func loadProject(t *testing.T, dir string) *interp.Build {
	t.Helper()
	writeFile(t, filepath.Join(dir, "BUILD.star"), `project(name = "app", maintainer = "A <a@example.com>", arch = "amd64", out = "dist")
env = venv("hello", pip_args = ["--no-index", "--find-links", "wheels"], into = "/var/virtualenvs/upds-test-module")
pkg = deb("app-env", version = "1.0", contents = [env], docs = False)
task("build", deps = [pkg])
`)
	builtins := starlark.StringDict{}
	for _, m := range []starlark.StringDict{Builtins(), deb.Builtins()} {
		for k, v := range m {
			builtins[k] = v
		}
	}
	b, err := interp.Load(interp.Options{Dir: dir, Builtins: builtins, ToolVersion: "test",
		Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func statuses(t *testing.T, b *interp.Build) string {
	t.Helper()
	steps, err := b.NewRunner(interp.RunOptions{}).Plan(context.Background(), []string{"build"})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, st := range steps {
		s = append(s, st.ID+" "+string(st.Status))
	}
	return strings.Join(s, ", ")
}

// TestVenvCached: a venv says whether Build would come from the cache (upds run --dry-run),
// and once it does, the package that contains it can tell too.
func TestVenvCached(t *testing.T) {
	needPython(t)
	dir := newProject(t, "hello-app\n")
	if got, want := statuses(t, loadProject(t, dir)), "venv hello build, deb app-env build, task build none"; got != want {
		t.Errorf("before a build: %s, want %s", got, want)
	}
	if err := loadProject(t, dir).NewRunner(interp.RunOptions{}).Run(context.Background(), []string{"build"}); err != nil {
		t.Fatal(err)
	}
	if got, want := statuses(t, loadProject(t, dir)), "venv hello cached, deb app-env cached, task build none"; got != want {
		t.Errorf("after the build: %s, want %s", got, want)
	}
	writeFile(t, filepath.Join(dir, "requirements.txt"), "hello-app\nextra-thing\n")
	if got, want := statuses(t, loadProject(t, dir)), "venv hello build, deb app-env build, task build none"; got != want {
		t.Errorf("after a change: %s, want %s", got, want)
	}
}

// TestVenvErrorCause: the interp.Error of a failed venv keeps its cause for errors.Is.
func TestVenvErrorCause(t *testing.T) {
	needPython(t)
	b := loadProject(t, newProject(t, "hello-app\n"))
	var tg *Target
	for _, v := range b.Globals {
		if v, ok := v.(*Target); ok {
			tg = v
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := tg.Build(&interp.Action{Ctx: ctx, Host: b.Host, Log: io.Discard})
	var ie *interp.Error
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
		t.Errorf("Build with a cancelled context: %v", err)
	}
	if _, err := tg.Cached(&interp.Action{Ctx: ctx, Host: b.Host, Log: io.Discard}); !errors.Is(err, context.Canceled) {
		t.Errorf("Cached with a cancelled context: %v", err)
	}
}
