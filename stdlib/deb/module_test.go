package deb

import (
	"strings"
	"testing"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
)

// evalBuild evaluates BUILD.star in an in-memory project with the deb builtins.
func evalBuild(t *testing.T, build string) (*interp.Build, error) {
	t.Helper()
	fsys := afero.NewMemMapFs()
	for name, body := range map[string]string{"BUILD.star": build, "a.txt": "a\n", "src/x.py": "x\n",
		"postinst": "#!/bin/sh\n"} {
		if err := afero.WriteFile(fsys, name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return interp.Load(interp.Options{FS: fsys, Builtins: Builtins(),
		VersionFunc: func(*interp.Host) (string, error) { return "1.0", nil }})
}

// TestBindingErrors: every bad argument is reported at its line as "FN: PARAM: why" (an
// element of a list as PARAM[I]), and of two bad relations the first field in Debian's order.
func TestBindingErrors(t *testing.T) {
	const head = `project(name = "xx", maintainer = "a <b@c>")` + "\n"
	for _, tc := range []struct{ build, want string }{
		{`deb("xx", section = 1)`, "BUILD.star:2:4: deb xx: section: got int, want string"},
		{`deb(section = 1, name = "xx")`, "BUILD.star:2:4: deb: section: got int, want string"},
		{`deb("xx", owner = "hello")`, `BUILD.star:2:4: deb xx: owner: "hello" has no static Debian id: write "hello:ID"`},
		{`deb("xx", group = 7)`, "BUILD.star:2:4: deb xx: group: want a string, got int"},
		{`deb("xx", arch = "")`, "BUILD.star:2:4: deb xx: arch: empty architecture"},
		{`deb("xx", version = 1)`, "BUILD.star:2:4: deb xx: version: want a string or version(), got int"},
		{`deb("xx", depends = ["aa", 3])`, "BUILD.star:2:4: deb xx: depends[1]: want a string or a deb target, got int"},
		{`deb("xx", provides = ["(("], depends = ["))"])`, "BUILD.star:2:4: deb xx: depends[0]: "},
		{`deb("xx", conffiles = "/etc/x")`, "BUILD.star:2:4: deb xx: conffiles: got string, want list"},
		{`deb("xx", lintian_overrides = [1])`, "BUILD.star:2:4: deb xx: lintian_overrides[0]: want a string, got int"},
		{`deb("xx", fields = {"X-A": 1})`, "BUILD.star:2:4: deb xx: fields: want string keys and values"},
		{`deb("xx", preinst = 1)`, "BUILD.star:2:4: deb xx: preinst: want a file path or the script text, got int"},
		{`deb("xx", preinst = "")`, "BUILD.star:2:4: deb xx: preinst: empty path"},
		{`deb("xx", postrm = "nope")`, `BUILD.star:2:4: deb xx: postrm: "nope": no such file or directory in the project`},
		{`deb("xx", contents = [1])`, "BUILD.star:2:4: deb xx: contents[0]: want tree(), file(), directory(), link(), snippet(), venv() or a list of them, got int"},
		{`a = deb("aa")` + "\n" + `deb("xx", contents = [a])`, "BUILD.star:3:4: deb xx: contents[0]: a package cannot contain a package (list it in depends)"},
		{`deb("xx", compression = "lzma")`, `BUILD.star:2:4: deb xx: compression: "lzma" is not one of gzip, xz, zstd, none`},
		{`deb("xx", contents = [file("a.txt", "/etc/x", owner = "hello")])`, `BUILD.star:2:4: deb xx: contents[0]: file: owner: "hello" has no static Debian id: write "hello:ID"`},
		{`deb("xx", contents = [file("a.txt", "/x", group = "hello"), snippet(users = ["hello"])])`, `BUILD.star:2:4: deb xx: contents[0]: file: group: "hello" has no static Debian id`},
		{`deb("xx", contents = [[file("a.txt", "/x"), 1]])`, "BUILD.star:2:4: deb xx: contents[0][1]: want tree(), file()"},
		{`snippet(postinst = 1)`, "BUILD.star:2:8: snippet: postinst: got int, want string"},
		{`deb("xx", contents = [snippet(users = ["Bad"])])`, `BUILD.star:2:30: snippet: users[0]: "Bad" is not a system account name`},
		{`deb("xx", contents = [snippet(depends = ["(("])])`, "BUILD.star:2:30: snippet: depends[0]: relation \"((\": missing package name"},
		{`link("/x", "y", hard = True)`, `BUILD.star:2:5: link: target of a hard link: "y" is not absolute`},
		{`deb("xx", templates = "Template: a\nType: x\n")`, `BUILD.star:2:4: deb xx: templates: template "a": want OWNER/NAME`},
		{`deb("xx", config = "db_input\n")`, "BUILD.star:2:4: deb xx: config: the script must start with #!"},
		{`deb("xx", fields = {"Installed-Size": "1 MiB"})`, `BUILD.star:2:4: deb xx: fields: Installed-Size "1 MiB": want a whole number of KiB`},
		{`deb("xx", changelog = "nope")`, `BUILD.star:2:4: deb xx: changelog: "nope": no such file or directory in the project`},
		{`directory("/x", mode = 0o70000)`, "BUILD.star:2:10: directory: mode: 28672 is not a file mode (0 to 0o7777)"},
		{`directory("/x", mode = "0644")`, "BUILD.star:2:10: directory: mode: want an int such as 0o644, got string"},
		{`tree("src", "/x", exclude = [1])`, "BUILD.star:2:5: tree: exclude[0]: want a string, got int"},
		{`tree("a.txt", "/x")`, `BUILD.star:2:5: tree: src "a.txt" is not a directory (use file())`},
		{`link("/x", "")`, "BUILD.star:2:5: link: target is empty"},
	} {
		_, err := evalBuild(t, head+tc.build+"\n")
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s:\n got %v\nwant %s...", tc.build, err, tc.want)
		}
	}
}

func TestBindingSpec(t *testing.T) {
	tgs := targets(t, `project(name = "xx", maintainer = "a <b@c>")
app = deb("app", version = "2.0", arch = "all", owner = "www-data", group = "app:990",
    contents = [tree("src", "/srv/x", mode = 0o640, exclude = ["*.orig"]), file("a.txt", "/etc/x/a.txt"), link("/x", "a")],
    depends = ["nginx"], postinst = "postinst", triggers = "activate x", fields = {"X-A": "a"}, docs = False)
role = deb("role", depends = [app], conflicts = [app])
`)
	s := tgs["app"].spec
	if s.Version != "2.0" || s.VersionOf != nil || s.Arch != "all" || *s.Owner != (Owner{"www-data", -1}) ||
		*s.Group != (Owner{"app", 990}) || s.Docs || s.Priority != "optional" || s.Compression != "gzip" {
		t.Errorf("spec %+v", s)
	}
	if len(s.Contents) != 3 || *s.Contents[0].Mode != 0o640 || s.Contents[0].Exclude[0] != "*.orig" || s.Contents[2].Target != "a" {
		t.Errorf("contents %+v", s.Contents)
	}
	if s.Postinst != (Script{Path: "postinst"}) || s.Triggers != (Script{Text: "activate x"}) || s.Fields["X-A"] != "a" {
		t.Errorf("scripts %+v %+v, fields %v", s.Postinst, s.Triggers, s.Fields)
	}
	role := tgs["role"]
	if v, _ := role.Version(); v != "1.0" || role.spec.Depends[0].Package != tgs["app"] {
		t.Errorf("role: version %q, depends %+v", v, role.spec.Depends)
	}
	if deps := role.Deps(); len(deps) != 1 || deps[0] != tgs["app"] {
		t.Errorf("role deps %v", deps)
	}
}
