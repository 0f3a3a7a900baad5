package venv

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/venv/wheeltest"
)

func TestKey(t *testing.T) {
	needPython(t)
	proj := newProject(t, "-r base.txt\nhello-app\n")
	writeFile(t, filepath.Join(proj, "base.txt"), "extra-thing\n./local/extra_thing-0.3-py3-none-any.whl\n")
	if _, err := wheeltest.Write(mkdir(t, filepath.Join(proj, "local")), testWheels[2]); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(proj, "constraints.txt"), "hello-lib<2\n")
	base := Spec{Name: "hello", Requirements: []string{"requirements.txt"}, Constraints: []string{"constraints.txt"},
		ProjectDir: proj, PipArgs: []string{"--no-index", "--find-links", "wheels"}}
	key := func(s Spec, tool string) string {
		t.Helper()
		k, err := s.Key(context.Background(), tool)
		if err != nil {
			t.Fatalf("Key: %v", err)
		}
		return k
	}
	k0 := key(base, "upds 1")
	if k := key(base, "upds 1"); k != k0 {
		t.Fatalf("Key not stable: %s != %s", k, k0)
	}
	seen := map[string]string{k0: "base"}
	differs := func(what, k string) {
		t.Helper()
		if prev, ok := seen[k]; ok {
			t.Errorf("%s: key equals the key of %s", what, prev)
		}
		seen[k] = what
	}
	differs("tool version", key(base, "upds 2"))
	s := base
	s.Into = "/opt/hello"
	differs("into", key(s, "upds 1"))
	s = base
	s.PipArgs = []string{"--no-index", "--find-links", "wheels", "--pre"}
	differs("pip_args", key(s, "upds 1"))
	s = base
	s.Python = "/usr/bin/python3.11"
	if real, _ := filepath.EvalSymlinks(DefaultPython); real == s.Python {
		if k := key(s, "upds 1"); k != k0 {
			t.Errorf("the same interpreter by another name changes the key")
		}
	}
	// Another interpreter (here a copy of the same one elsewhere) changes the key.
	copied := filepath.Join(t.TempDir(), "python3.11")
	data, err := os.ReadFile(DefaultPython)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, copied, string(data))
	os.Chmod(copied, 0o755)
	s = base
	s.Python = copied
	differs("interpreter", key(s, "upds 1"))
	s = base
	s.WithPip = true
	differs("with pip", key(s, "upds 1"))

	// Content changes: each edit, then undo it and the key is back.
	edits := []struct {
		what, path string
		content    []byte
	}{
		{"requirements file", "requirements.txt", []byte("-r base.txt\nhello-app==2.1\n")},
		{"included file", "base.txt", []byte("extra-thing>=0.1\n./local/extra_thing-0.3-py3-none-any.whl\n")},
		{"constraints file", "constraints.txt", []byte("hello-lib<3\n")},
		{"wheel in find-links", "wheels/hello_lib-1.0-py3-none-any.whl", []byte("not a wheel")},
		{"referenced wheel", "local/extra_thing-0.3-py3-none-any.whl", []byte("not a wheel")},
		{"new file in find-links", "wheels/new-1.0-py3-none-any.whl", []byte("x")},
	}
	for _, e := range edits {
		p := filepath.Join(proj, e.path)
		old, oldErr := os.ReadFile(p)
		writeFile(t, p, string(e.content))
		differs(e.what, key(base, "upds 1"))
		if oldErr == nil {
			writeFile(t, p, string(old))
		} else {
			os.Remove(p)
		}
		if k := key(base, "upds 1"); k != k0 {
			t.Errorf("%s: key not restored after undoing the edit", e.what)
		}
	}
	// KeyWith with a memoizing hasher gives the same key and sees every input file.
	var hashed []string
	kw, err := base.KeyWith(context.Background(), "upds 1", func(p string, info fs.FileInfo) ([32]byte, error) {
		hashed = append(hashed, filepath.Base(p))
		return HashFile(p, info)
	})
	if err != nil || kw != k0 {
		t.Errorf("KeyWith = %s, %v; want %s", kw, err, k0)
	}
	if got := strings.Join(hashed, " "); got != "requirements.txt base.txt constraints.txt extra_thing-0.3-py3-none-any.whl extra_thing-0.3-py3-none-any.whl hello_app-2.1-py3-none-any.whl hello_lib-1.0-py3-none-any.whl" {
		t.Errorf("hashed %s", got)
	}
	// An unrelated file in the project does not matter.
	writeFile(t, filepath.Join(proj, "app.py"), "print(1)\n")
	if k := key(base, "upds 1"); k != k0 {
		t.Errorf("an unrelated file changed the key")
	}

	// Pyproject: only the dependencies count, not the project's version.
	writeFile(t, filepath.Join(proj, "pyproject.toml"), "[project]\nname = \"x\"\nversion = \"1\"\ndependencies = [\"hello-app\"]\n")
	py := Spec{Name: "hello", Pyproject: "pyproject.toml", ProjectDir: proj}
	kp := key(py, "upds 1")
	writeFile(t, filepath.Join(proj, "pyproject.toml"), "[project]\nname = \"x\"\nversion = \"2\"\ndependencies = [\"hello-app\"]\n")
	if k := key(py, "upds 1"); k != kp {
		t.Errorf("a version bump in pyproject.toml changed the key")
	}
	writeFile(t, filepath.Join(proj, "pyproject.toml"), "[project]\nname = \"x\"\nversion = \"2\"\ndependencies = [\"hello-app>=2\"]\n")
	if k := key(py, "upds 1"); k == kp {
		t.Errorf("a dependency change in pyproject.toml did not change the key")
	}
}

// BenchmarkKey measures the cache key of a project with a find-links directory of a few wheels:
// the cost of an unchanged rebuild before the cache answers.
func BenchmarkKey(b *testing.B) {
	needPython(b)
	proj := newProject(b, "hello-app\nextra-thing\n")
	s := Spec{Name: "hello", Requirements: []string{"requirements.txt"}, ProjectDir: proj,
		PipArgs: []string{"--no-index", "--find-links", "wheels"}}
	for b.Loop() {
		if _, err := s.Key(context.Background(), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuild measures a first build of the test wheels (three wheels, one console script),
// with the venv holding only the requirements and with pip and setuptools shipped too.
func BenchmarkBuild(b *testing.B) {
	needPython(b)
	proj := newProject(b, "hello-app\nextra-thing\n")
	for _, withPip := range []bool{false, true} {
		name := "requirements-only"
		if withPip {
			name = "with-pip"
		}
		b.Run(name, func(b *testing.B) {
			s := Spec{Name: "hello", Requirements: []string{"requirements.txt"}, ProjectDir: proj, WithPip: withPip,
				PipArgs: []string{"--no-index", "--find-links", "wheels"}}
			staging := b.TempDir()
			for b.Loop() {
				res, err := Build(context.Background(), s, staging, nil)
				if err != nil {
					b.Fatal(err)
				}
				os.RemoveAll(res.Dir)
			}
		})
	}
}
