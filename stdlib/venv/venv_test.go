package venv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/venv/wheeltest"
)

const systemPython = "/usr/bin/python3"

func needPython(t testing.TB) {
	t.Helper()
	for _, p := range []string{systemPython, "/usr/bin/dpkg"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is not installed: run .ci/install-deps (python3-venv, python3-pip)", p)
		}
	}
}

// testWheels are a library, an application that depends on it and has a console script,
// and an unrelated extra.
var testWheels = []wheeltest.Wheel{
	{Name: "hello-lib", Version: "1.0", Files: map[string]string{
		"hello_lib/__init__.py": "def greeting():\n    return 'hello from hello_lib'\n",
	}},
	{Name: "hello-app", Version: "2.1", Requires: []string{"hello-lib>=1.0"},
		Files: map[string]string{
			"hello_app/__init__.py": "import sys, hello_lib\n\ndef main():\n    print(hello_lib.greeting(), sys.prefix)\n    return 0\n",
		},
		EntryPoints: map[string]string{"hello": "hello_app:main"}},
	{Name: "extra-thing", Version: "0.3", Files: map[string]string{"extra_thing.py": "VALUE = 3\n"}},
}

// newProject writes the test wheels into PROJECT/wheels and a requirements.txt.
func newProject(t testing.TB, requirements string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "wheels"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, w := range testWheels {
		if _, err := wheeltest.Write(filepath.Join(dir, "wheels"), w); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "requirements.txt"), requirements)
	return dir
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// uniqueInto is a fresh /var/virtualenvs/upds-test-XXXX, removed at the end of the test.
func uniqueInto(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	into := "/var/virtualenvs/upds-test-" + hex.EncodeToString(b)
	t.Cleanup(func() { os.RemoveAll(into) })
	return into
}

// install copies the built tree to its real place, as dpkg would.
func install(t testing.TB, res *Result) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(res.Into), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", res.Dir, res.Into).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
}

func mustBuild(t testing.TB, s Spec, staging string, opts ...buildOptions) (*Result, string) {
	t.Helper()
	var log bytes.Buffer
	var o buildOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	res, err := build(context.Background(), s, staging, &log, o)
	if err != nil {
		t.Fatalf("Build: %v\n--- log:\n%s", err, log.String())
	}
	t.Cleanup(func() { os.RemoveAll(res.Dir) })
	return res, log.String()
}

// checkNoLeak walks the tree and fails on any file, symlink or name holding path.
func checkNoLeak(t testing.TB, root, path string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "__pycache__" || strings.HasSuffix(p, ".pyc") {
			t.Errorf("bytecode shipped: %s", p)
		}
		var data []byte
		if d.Type()&fs.ModeSymlink != 0 {
			s, _ := os.Readlink(p)
			data = []byte(s)
		} else if d.Type().IsRegular() {
			data, _ = os.ReadFile(p)
		}
		if bytes.Contains(data, []byte(path)) {
			t.Errorf("%s still contains the build path %s", p, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The same with grep, as a user would check.
	if out, err := exec.Command("grep", "-r", "-l", path, root).CombinedOutput(); err == nil {
		t.Errorf("grep -r finds the build path in:\n%s", out)
	}
}

func TestBuildRelocatesAndRuns(t *testing.T) {
	needPython(t)
	proj := newProject(t, "hello-app==2.1\nextra-thing\n")
	into := uniqueInto(t)
	staging := t.TempDir()
	res, log := mustBuild(t, Spec{
		Name: "hello", Requirements: []string{"requirements.txt"}, ProjectDir: proj, Into: into,
		PipArgs: []string{"--no-index", "--find-links", "wheels"},
	}, staging)
	if !strings.Contains(log, "Successfully installed") {
		t.Errorf("pip log lacks the install summary:\n%s", log)
	}
	if res.PythonPackage != "python3.11" && !strings.HasPrefix(res.PythonPackage, "python3.") {
		t.Errorf("PythonPackage = %q", res.PythonPackage)
	}
	if res.ArchSpecific {
		t.Errorf("pure-Python venv reported arch-specific")
	}
	if len(res.SharedLibDepends) != 0 {
		t.Errorf("SharedLibDepends = %v", res.SharedLibDepends)
	}
	// Only the result is left in staging.
	ents, _ := os.ReadDir(staging)
	if len(ents) != 1 || filepath.Join(staging, ents[0].Name()) != res.Dir {
		t.Errorf("staging holds %v, want only %s", ents, res.Dir)
	}
	checkNoLeak(t, res.Dir, res.Dir)
	checkNoLeak(t, res.Dir, staging)

	script, err := os.ReadFile(filepath.Join(res.Dir, "bin", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "#!" + into + "/bin/python\n"; !strings.HasPrefix(string(script), want) {
		t.Errorf("bin/hello starts %q, want %q", firstLine(script), want)
	}
	for _, l := range []string{"python", "python3", "python" + strings.TrimPrefix(res.PythonPackage, "python")} {
		target, err := os.Readlink(filepath.Join(res.Dir, "bin", l))
		if err != nil {
			t.Errorf("bin/%s: %v", l, err)
		} else if target != res.Python || target != "/usr/bin/"+res.PythonPackage {
			t.Errorf("bin/%s -> %s, want %s", l, target, res.Python)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(res.Dir, "pyvenv.cfg"))
	for _, want := range []string{"home = /usr/bin\n", "include-system-site-packages = false\n", "executable = " + res.Python + "\n"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("pyvenv.cfg lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(string(cfg), "command") {
		t.Errorf("pyvenv.cfg keeps the build command:\n%s", cfg)
	}
	activate, _ := os.ReadFile(filepath.Join(res.Dir, "bin", "activate"))
	if !strings.Contains(string(activate), "VIRTUAL_ENV="+into+"\n") && !strings.Contains(string(activate), `VIRTUAL_ENV="`+into+`"`) {
		t.Errorf("bin/activate does not set VIRTUAL_ENV to %s", into)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, "bin", "pip")); err == nil {
		t.Errorf("pip shipped without WithPip")
	}
	// RECORD hashes stay true after the shebang rewrite.
	rec, _ := filepath.Glob(filepath.Join(res.Dir, "lib", "python*", "site-packages", "hello_app-2.1.dist-info", "RECORD"))
	if len(rec) != 1 {
		t.Fatalf("RECORD of hello-app: %v", rec)
	}
	recData, _ := os.ReadFile(rec[0])
	if want := wheeltest.RecordHash(script); !strings.Contains(string(recData), "bin/hello,"+want) {
		t.Errorf("RECORD has no %s for bin/hello:\n%s", want, recData)
	}

	install(t, res)
	out, err := exec.Command(into + "/bin/hello").CombinedOutput()
	if err != nil {
		t.Fatalf("%s/bin/hello: %v\n%s", into, err, out)
	}
	if want := "hello from hello_lib " + into + "\n"; string(out) != want {
		t.Errorf("hello printed %q, want %q", out, want)
	}
	out, err = exec.Command(into+"/bin/python", "-c", "import extra_thing, sys; print(extra_thing.VALUE, sys.prefix, sys.base_prefix)").CombinedOutput()
	if err != nil || string(out) != "3 "+into+" /usr\n" {
		t.Errorf("python -c: %v %q", err, out)
	}
	// The activate script works at the new place.
	out, err = exec.Command("bash", "-c", ". "+into+"/bin/activate && command -v python && echo $VIRTUAL_ENV").CombinedOutput()
	if err != nil || string(out) != into+"/bin/python\n"+into+"\n" {
		t.Errorf("activate: %v %q", err, out)
	}
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	return string(l)
}
