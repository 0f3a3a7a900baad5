package venv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuildBadInput(t *testing.T) {
	needPython(t)
	proj := newProject(t, "hello-app\n")
	writeFile(t, filepath.Join(proj, "impossible.txt"), "hello-app==9.9\n")
	writeFile(t, filepath.Join(proj, "escape.txt"), "-r ../../etc/requirements.txt\n")
	writeFile(t, filepath.Join(proj, "escape-abs.txt"), "hello-app\n-c /etc/hostname\n")
	if err := os.Symlink("/etc", filepath.Join(proj, "etc-link")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(proj, "editable.txt"), "-e ./src\n")
	writeFile(t, filepath.Join(proj, "missing-wheel.txt"), "./wheels/nope-1.0-py3-none-any.whl\n")

	// A copy of the system interpreter in a temp dir: same binary, but no package owns it there.
	copied := filepath.Join(t.TempDir(), "python3.11")
	if out, err := exec.Command("cp", "-L", systemPython, copied).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	offline := []string{"--no-index", "--find-links", "wheels"}
	cases := []struct {
		name string
		spec Spec
		want string
	}{
		{"missing requirements", Spec{Requirements: []string{"nope.txt"}}, "nope.txt: no such file or directory"},
		{"unsatisfiable offline", Spec{Requirements: []string{"impossible.txt"}, PipArgs: offline}, "pip install: No matching distribution found for hello-app==9.9"},
		{"copied interpreter", Spec{Python: copied, Requirements: []string{"requirements.txt"}}, "is not a system interpreter: it is outside /usr/bin"},
		{"relative interpreter", Spec{Python: "python3", Requirements: []string{"requirements.txt"}}, "must be an absolute path"},
		{"escaping include", Spec{Requirements: []string{"escape.txt"}}, "escape.txt:1: " + filepath.Dir(filepath.Dir(proj)) + "/etc/requirements.txt is outside the project"},
		{"absolute include", Spec{Requirements: []string{"escape-abs.txt"}}, "escape-abs.txt:2: /etc/hostname is outside the project"},
		{"symlink out", Spec{Requirements: []string{"etc-link/hostname"}}, "etc-link/hostname is a symlink to /etc/hostname, outside the project"},
		{"absolute outside", Spec{Requirements: []string{"/etc/hostname"}}, "outside the project"},
		{"editable", Spec{Requirements: []string{"editable.txt"}}, "editable.txt:1: -e is not allowed"},
		{"missing wheel", Spec{Requirements: []string{"missing-wheel.txt"}}, "missing-wheel.txt:1: wheels/nope-1.0-py3-none-any.whl: no such file or directory"},
		{"target option", Spec{Requirements: []string{"requirements.txt"}, PipArgs: []string{"--target", "/tmp/x"}}, "pip_args[0]: --target is not allowed"},
		{"nothing to install", Spec{}, "nothing to install"},
		{"bad into", Spec{Into: "/var/../etc", Requirements: []string{"requirements.txt"}}, "must be a clean absolute path"},
		{"system into", Spec{Into: "/usr", Requirements: []string{"requirements.txt"}}, "is a system directory"},
	}
	pyenv, _ := filepath.Glob("/root/.pyenv/versions/*/bin/python3")
	if len(pyenv) > 1 {
		pyenv = pyenv[:1]
	}
	if p, err := exec.LookPath("python3"); err == nil && !strings.HasPrefix(p, "/usr/bin/") && !strings.HasPrefix(p, "/bin/") {
		pyenv = append(pyenv, p) // e.g. the pyenv shim first on PATH
	}
	for _, p := range pyenv {
		cases = append(cases, struct {
			name string
			spec Spec
			want string
		}{"non-system " + p, Spec{Python: p, Requirements: []string{"requirements.txt"}}, "the server will not have it"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			s.Name, s.ProjectDir = "bad", proj
			staging := t.TempDir()
			res, err := Build(context.Background(), s, staging, nil)
			if err == nil {
				os.RemoveAll(res.Dir)
				t.Fatalf("Build succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tc.want)
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "venv bad") {
				t.Errorf("error %q does not name the venv", err)
			}
			assertEmpty(t, staging)
		})
	}
}

// A build cancelled midway (here by a deadline shorter than any build) fails and leaves
// nothing in staging; pip and its children are killed with their process group.
func TestBuildCancelled(t *testing.T) {
	needPython(t)
	proj := newProject(t, "hello-app\n")
	staging := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	res, err := Build(ctx, Spec{Name: "cancel", Requirements: []string{"requirements.txt"}, ProjectDir: proj,
		PipArgs: []string{"--no-index", "--find-links", "wheels"}}, staging, nil)
	if err == nil {
		os.RemoveAll(res.Dir)
		t.Fatal("Build succeeded despite the deadline")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the deadline", err)
	}
	assertEmpty(t, staging)
}
