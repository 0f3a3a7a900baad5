package venv

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/venv/wheeltest"
)

func TestMaintainerScripts(t *testing.T) {
	needPython(t)
	proj := newProject(t, "extra-thing\nwith-template\n")
	// A package shipping a .py file that is not Python (a template): compiling it fails.
	if _, err := wheeltest.Write(filepath.Join(proj, "wheels"), wheeltest.Wheel{Name: "with-template", Version: "1",
		Files: map[string]string{"with_template/__init__.py": "", "with_template/tmpl.py": "{% if user %}hello{% endif %}\n"}}); err != nil {
		t.Fatal(err)
	}
	into := uniqueInto(t)
	res, _ := mustBuild(t, Spec{Name: "scripts", Requirements: []string{"requirements.txt"}, ProjectDir: proj, Into: into,
		PipArgs: []string{"--no-index", "--find-links", "wheels"}}, t.TempDir())
	dir := t.TempDir()
	postinst, prerm := filepath.Join(dir, "postinst"), filepath.Join(dir, "prerm")
	for p, data := range map[string][]byte{postinst: res.Postinst, prerm: res.Prerm} {
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "#!/bin/sh\n") || !strings.Contains(string(data), "\nset -e\n") {
			t.Errorf("%s is not a set -e sh script:\n%s", p, data)
		}
		if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v %s", p, err, out)
		}
		if _, err := exec.LookPath("shellcheck"); err == nil {
			if out, err := exec.Command("shellcheck", "-s", "sh", p).CombinedOutput(); err != nil {
				t.Errorf("shellcheck %s: %v\n%s", p, err, out)
			}
		}
	}
	install(t, res)
	pycache := func() []string {
		var found []string
		filepath.WalkDir(into, func(p string, d fs.DirEntry, err error) error {
			if err == nil && (d.Name() == "__pycache__" || strings.HasSuffix(p, ".pyc")) {
				found = append(found, p)
			}
			return nil
		})
		return found
	}
	out, err := exec.Command(postinst, "configure", "").CombinedOutput()
	if err != nil {
		t.Fatalf("postinst configure: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "could not be byte-compiled") {
		t.Errorf("postinst did not warn about the template: %q", out)
	}
	site, _ := filepath.Glob(filepath.Join(into, "lib", "python3.*", "site-packages"))
	if len(site) != 1 {
		t.Fatalf("site-packages: %v", site)
	}
	if m, _ := filepath.Glob(filepath.Join(site[0], "__pycache__", "extra_thing.cpython-*.pyc")); len(m) != 1 {
		t.Errorf("postinst did not compile extra_thing.py: %v", pycache())
	}
	// Running code creates more bytecode; prerm removes all of it.
	exec.Command(into+"/bin/python", "-c", "import with_template").Run()
	for _, arg := range []string{"upgrade", "remove"} {
		if out, err := exec.Command(prerm, arg, "2.0").CombinedOutput(); err != nil {
			t.Fatalf("prerm %s: %v\n%s", arg, err, out)
		}
		if left := pycache(); len(left) > 0 {
			t.Errorf("prerm %s left %v", arg, left)
		}
	}
	for _, s := range []string{postinst, prerm} {
		if err := exec.Command(s, "bogus").Run(); err == nil {
			t.Errorf("%s bogus: exit 0, want an error", filepath.Base(s))
		}
	}
	// The install tree matches the built tree again.
	if out, err := exec.Command("diff", "-r", "--no-dereference", res.Dir, into).CombinedOutput(); err != nil {
		t.Errorf("after prerm the tree differs from the package:\n%s", out)
	}
}
