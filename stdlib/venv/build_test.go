package venv

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/upds/upds/stdlib/venv/wheeltest"
)

// A staging path longer than a shebang may be makes pip write its /bin/sh trampoline; with a
// short Into, relocation turns it back into a plain "#!INTO/bin/python".
func TestBuildLongStagingPath(t *testing.T) {
	needPython(t)
	proj := newProject(t, "hello-app\n")
	into := uniqueInto(t)
	staging := filepath.Join(t.TempDir(), strings.Repeat("a-rather-long-directory-name/", 5))
	if len(staging) < 140 {
		t.Fatalf("staging path %d bytes, too short for the test", len(staging))
	}
	res, _ := mustBuild(t, Spec{
		Name: "hello", Requirements: []string{"requirements.txt"}, ProjectDir: proj, Into: into,
		PipArgs: []string{"--no-index", "--find-links", "wheels"},
	}, staging)
	checkNoLeak(t, res.Dir, res.Dir)
	script, _ := os.ReadFile(filepath.Join(res.Dir, "bin", "hello"))
	if want := "#!" + into + "/bin/python\n"; !strings.HasPrefix(string(script), want) || bytes.Contains(script, []byte("'''exec'")) {
		t.Errorf("bin/hello:\n%s\nwant it to start with %q and no trampoline", script, want)
	}
	install(t, res)
	if out, err := exec.Command(into + "/bin/hello").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "hello from hello_lib") {
		t.Errorf("hello: %v %q", err, out)
	}
}

func TestShebang(t *testing.T) {
	root := "/build/x/hello-venv-1"
	long := "/var/virtualenvs/" + strings.Repeat("d", 120)
	body := "\n# -*- coding: utf-8 -*-\nimport sys\n"
	for _, tc := range []struct {
		name, into, in, want string
	}{
		{"short", "/var/virtualenvs/hello", "#!" + root + "/bin/python" + body, "#!/var/virtualenvs/hello/bin/python" + body},
		{"trampoline", "/var/virtualenvs/hello",
			"#!/bin/sh\n'''exec' " + root + "/bin/python \"$0\" \"$@\"\n' '''" + body,
			"#!/var/virtualenvs/hello/bin/python" + body},
		{"quoted trampoline", "/var/virtualenvs/hello",
			"#!/bin/sh\n'''exec' \"" + root + "/bin/python\" \"$0\" \"$@\"\n' '''" + body,
			"#!/var/virtualenvs/hello/bin/python" + body},
		{"long into keeps the trampoline", long, "#!" + root + "/bin/python" + body,
			"#!/bin/sh\n'''exec' " + long + "/bin/python \"$0\" \"$@\"\n' '''\n" + body[1:]},
		{"other interpreter untouched", "/v/h", "#!/usr/bin/python3" + body, "#!/usr/bin/python3" + body},
		{"other sh script untouched", "/v/h", "#!/bin/sh\necho " + root + "\n", "#!/bin/sh\necho " + root + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &relocator{root: root, into: tc.into}
			if got := string(r.shebang([]byte(tc.in))); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// buildExtWheel compiles testdata/ext into a wheel with Debian's setuptools, offline.
func buildExtWheel(t testing.TB, dir string) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/gcc", "/usr/include/python3.11/Python.h"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run .ci/install-deps (gcc, python3-dev)", p)
		}
	}
	src := filepath.Join(t.TempDir(), "ext")
	if out, err := exec.Command("cp", "-r", "testdata/ext", src).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	cmd := exec.Command(systemPython, "-m", "pip", "wheel", "--no-build-isolation", "--no-index", "--no-deps", "-w", dir, src)
	cmd.Env = scrubbedEnv(t.TempDir(), "")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip wheel: %v\n%s", err, out)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "upds_ext-1.0-*.whl"))
	if len(m) != 1 {
		t.Fatalf("no ext wheel in %s", dir)
	}
	return m[0]
}

func TestBuildCExtension(t *testing.T) {
	needPython(t)
	proj := newProject(t, "upds-ext==1.0\nhello-lib\n")
	buildExtWheel(t, filepath.Join(proj, "wheels"))
	into := uniqueInto(t)
	res, _ := mustBuild(t, Spec{
		Name: "ext", Requirements: []string{"requirements.txt"}, ProjectDir: proj, Into: into,
		PipArgs: []string{"--no-index", "--find-links", "wheels"},
	}, t.TempDir())
	if !res.ArchSpecific {
		t.Errorf("ArchSpecific = false with a compiled module")
	}
	if len(res.SharedLibDepends) != 2 || !strings.HasPrefix(res.SharedLibDepends[0], "libc6 (>= 2.") ||
		!strings.HasPrefix(res.SharedLibDepends[1], "zlib1g (>= 1:") {
		t.Errorf("SharedLibDepends = %q, want [libc6 (>= 2.X) zlib1g (>= 1:X)]", res.SharedLibDepends)
	}
	so, _ := filepath.Glob(filepath.Join(res.Dir, "lib", "python*", "site-packages", "ext.cpython-*.so"))
	if len(so) != 1 {
		t.Fatalf("extension module not installed: %v", so)
	}
	// Stripped as dh_strip would, and RECORD knows the new hash.
	if f, err := elf.Open(so[0]); err != nil {
		t.Errorf("%s: %v", so[0], err)
	} else {
		for _, sec := range f.Sections {
			if sec.Name == ".symtab" || strings.HasPrefix(sec.Name, ".debug_") {
				t.Errorf("%s keeps section %s", filepath.Base(so[0]), sec.Name)
			}
		}
		f.Close()
	}
	soData, _ := os.ReadFile(so[0])
	rec, _ := os.ReadFile(filepath.Join(filepath.Dir(so[0]), "upds_ext-1.0.dist-info", "RECORD"))
	if !strings.Contains(string(rec), filepath.Base(so[0])+","+wheeltest.RecordHash(soData)+",") {
		t.Errorf("RECORD does not have the stripped module's hash:\n%s", rec)
	}
	checkNoLeak(t, res.Dir, res.Dir)
	install(t, res)
	out, err := exec.Command(into+"/bin/python", "-c", "import ext, hello_lib; print(ext.add(2, 40), ext.zlib_version() != '')").CombinedOutput()
	if err != nil || string(out) != "42 True\n" {
		t.Errorf("import ext: %v %q", err, out)
	}
}

func TestBuildRequireHashesAndFindLinksInRequirements(t *testing.T) {
	needPython(t)
	proj := t.TempDir()
	var req strings.Builder
	// find-links in the requirements file resolves relative to the file, as pip does.
	req.WriteString("--find-links ../vendor/wheels\n--no-index\n")
	for _, w := range testWheels[:2] {
		p, err := wheeltest.Write(mkdir(t, filepath.Join(proj, "vendor", "wheels")), w)
		if err != nil {
			t.Fatal(err)
		}
		h, err := wheeltest.PipHash(p)
		if err != nil {
			t.Fatal(err)
		}
		req.WriteString(w.Name + "==" + w.Version + " \\\n    --hash=" + h + "\n")
	}
	writeFile(t, filepath.Join(proj, "reqs", "requirements.txt"), req.String())
	into := uniqueInto(t)
	spec := Spec{Name: "hashed", Requirements: []string{"reqs/requirements.txt"}, ProjectDir: proj, Into: into,
		PipArgs: []string{"--require-hashes"}}
	res, _ := mustBuild(t, spec, t.TempDir())
	install(t, res)
	if out, err := exec.Command(into + "/bin/hello").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "hello from hello_lib") {
		t.Errorf("hello: %v %q", err, out)
	}

	// A wrong hash is refused, with pip's reason.
	writeFile(t, filepath.Join(proj, "reqs", "requirements.txt"), strings.Replace(req.String(), "--hash=sha256:", "--hash=sha256:0", 1))
	staging := t.TempDir()
	_, err := Build(context.Background(), spec, staging, nil)
	if err == nil || !strings.Contains(err.Error(), "DO NOT MATCH THE HASHES") || !strings.Contains(err.Error(), "Expected sha256 0") {
		t.Errorf("wrong hash: err = %v", err)
	}
	assertEmpty(t, staging)
}

func TestBuildPyproject(t *testing.T) {
	needPython(t)
	proj := newProject(t, "")
	writeFile(t, filepath.Join(proj, "pyproject.toml"), `[build-system]
requires = ["setuptools>=61"]

[project]
name = "myapp"   # the project itself is not installed
version = "1.0"
description = """A [project] with
dependencies = ["nothing"] in its text"""
dependencies = [
    "hello-app>=2",   # the app
    'extra-thing',
]
`)
	into := uniqueInto(t)
	res, _ := mustBuild(t, Spec{Name: "py", Pyproject: "pyproject.toml", ProjectDir: proj, Into: into,
		PipArgs: []string{"--no-index", "-f", "wheels"}}, t.TempDir())
	install(t, res)
	out, err := exec.Command(into+"/bin/python", "-c", "import hello_app, extra_thing, importlib.util as u; print(u.find_spec('myapp'))").CombinedOutput()
	if err != nil || string(out) != "None\n" {
		t.Errorf("python: %v %q", err, out)
	}
}

func TestBuildWithPip(t *testing.T) {
	needPython(t)
	proj := newProject(t, "extra-thing\n")
	into := uniqueInto(t)
	res, _ := mustBuild(t, Spec{Name: "withpip", Requirements: []string{"requirements.txt"}, ProjectDir: proj, Into: into,
		WithPip: true, PipArgs: []string{"--no-index", "--find-links", "wheels"}}, t.TempDir())
	checkNoLeak(t, res.Dir, res.Dir)
	install(t, res)
	out, err := exec.Command(into+"/bin/pip", "list", "--disable-pip-version-check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "extra-thing") || !strings.Contains(string(out), "pip ") {
		t.Errorf("pip list: %v\n%s", err, out)
	}
}

func mkdir(t testing.TB, p string) string {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func assertEmpty(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("staging %s not empty: %v", dir, names)
	}
}

// Two builds of the same spec under different staging dirs and umasks give the same tree, and
// a wheel named by path does not leave the project's path behind (direct_url.json).
func TestBuildReproducible(t *testing.T) {
	needPython(t)
	proj := newProject(t, "./wheels/hello_app-2.1-py3-none-any.whl\nhello-lib\n")
	spec := Spec{Name: "repro", Requirements: []string{"requirements.txt"}, ProjectDir: proj,
		PipArgs: []string{"--no-index", "--find-links", "wheels"}}
	old := syscall.Umask(0o077)
	a, _ := mustBuild(t, spec, t.TempDir())
	syscall.Umask(0o022)
	b, _ := mustBuild(t, spec, t.TempDir())
	syscall.Umask(old)
	if out, err := exec.Command("diff", "-r", "--no-dereference", a.Dir, b.Dir).CombinedOutput(); err != nil {
		t.Errorf("two builds differ:\n%s", out)
	}
	checkNoLeak(t, a.Dir, proj)
	if m, _ := filepath.Glob(filepath.Join(a.Dir, "lib", "*", "site-packages", "hello_app-2.1.dist-info", "direct_url.json")); len(m) != 0 {
		t.Errorf("direct_url.json kept: %v", m)
	}
	if rec, _ := filepath.Glob(filepath.Join(a.Dir, "lib", "*", "site-packages", "hello_app-2.1.dist-info", "RECORD")); len(rec) != 1 {
		t.Errorf("RECORD: %v", rec)
	} else if data, _ := os.ReadFile(rec[0]); !strings.Contains(string(data), "INSTALLER") || strings.Contains(string(data), "direct_url.json") {
		t.Errorf("RECORD still lists direct_url.json or lost entries:\n%s", data)
	}
	for p, want := range map[string]os.FileMode{"": 0o755, "bin/hello": 0o755, "pyvenv.cfg": 0o644, "lib": 0o755} {
		info, err := os.Lstat(filepath.Join(a.Dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != want {
			t.Errorf("%q mode %o, want %o", p, info.Mode().Perm(), want)
		}
	}
}

// With a system pip older than 22.3 (no --python), the venv's interpreter runs pip from
// ensurepip's wheel; the result is the same.
func TestBuildPipFromWheel(t *testing.T) {
	needPython(t)
	proj := newProject(t, "hello-app\n")
	into := uniqueInto(t)
	res, log := mustBuild(t, Spec{Name: "oldpip", Requirements: []string{"requirements.txt"}, ProjectDir: proj, Into: into,
		PipArgs: []string{"--no-index", "--find-links", "wheels"}}, t.TempDir(), buildOptions{pipFromWheel: true})
	if !strings.Contains(log, ".whl/pip install") {
		t.Errorf("pip did not run from the wheel:\n%s", log)
	}
	checkNoLeak(t, res.Dir, res.Dir)
	install(t, res)
	if out, err := exec.Command(into + "/bin/hello").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "hello from hello_lib") {
		t.Errorf("hello: %v %q", err, out)
	}
}

func TestPipVersionAtLeast(t *testing.T) {
	for in, want := range map[string]bool{"pip-23.0.1.dist-info": true, "pip-22.3.dist-info": true, "pip-22.0.2.dist-info": false,
		"pip-20.3.4.dist-info": false, "pip-100.0.dist-info": true, "": false, "pip-x.dist-info": false} {
		if got := pipVersionAtLeast(in, 22, 3); got != want {
			t.Errorf("pipVersionAtLeast(%q) = %v", in, got)
		}
	}
}
