package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSharedPathRefused: two packages of a project that ship one path fail the build at the
// deb() line with exit 2, and nothing is written; contents that replace a generated doc file
// get a warning.
func TestSharedPathRefused(t *testing.T) {
	dir := project(t, map[string]string{
		"BUILD.star": `project(name = "shared", maintainer = "A <a@example.com>")
a = deb("shared-a", contents = [file("a.txt", "/usr/share/doc/shared-a/copyright"), file("a.txt", "/usr/share/shared/x")])
b = deb("shared-b", contents = [file("a.txt", "/usr/share/shared/x")])
task("build", deps = [a, b])
`,
		"VERSION": "1.0\n",
		"a.txt":   "x\n",
	})
	// Whichever of the two is built first reports the other.
	r := upds(t, dir, "run", "build")
	re := regexp.MustCompile(`upds: BUILD.star:[23]:8: deb shared-[ab]: /usr/share/shared/x is also in package shared-[ab] \(BUILD.star:[23]:8\): dpkg would refuse to install both`)
	if r.code != 2 || !re.MatchString(r.stderr) {
		t.Errorf("exit %d:\n%s", r.code, r.stderr)
	}
	if debs, _ := filepath.Glob(filepath.Join(dir, "dist", "*.deb")); len(debs) > 0 {
		t.Errorf("written: %v", debs)
	}
	// Declaring that b replaces a makes both fine.
	build, _ := os.ReadFile(filepath.Join(dir, "BUILD.star"))
	fixed := strings.Replace(string(build), `file("a.txt", "/usr/share/shared/x")])`+"\ntask", `file("a.txt", "/usr/share/shared/x")], breaks = [a], replaces = [a])`+"\ntask", 1)
	if err := os.WriteFile(filepath.Join(dir, "BUILD.star"), []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	r = upds(t, dir, "run", "build")
	if r.code != 0 {
		t.Errorf("with replaces: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "warning: the contents' /usr/share/doc/shared-a/copyright replaces the one upds writes") {
		t.Errorf("no warning:\n%s", r.stderr)
	}
}
