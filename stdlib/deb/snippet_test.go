package deb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
)

// targets evaluates build and returns its deb targets by name.
func targets(t *testing.T, build string) map[string]*Target {
	t.Helper()
	b, err := evalBuild(t, build)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Target{}
	for _, v := range b.Globals {
		if tg, ok := v.(*Target); ok {
			out[tg.Name()] = tg
		}
	}
	return out
}

// TestSnippets: snippet() parts run in the order of the contents in preinst and postinst, in
// reverse in prerm and postrm; their relations are added; the users they create may own files
// (the placeholder id in the archive, the name resolved by dpkg).
func TestSnippets(t *testing.T) {
	tgs := targets(t, `project(name = "xx", maintainer = "a <b@c>")
app = deb("app", version = "1.0", arch = "all", owner = "hello", docs = False, contents = [
    file("a.txt", "/srv/a.txt"),
    file("a.txt", "/srv/b.txt", owner = "root", group = "hello"),
    [snippet(preinst = "echo user\n", postinst = "echo A\n", prerm = "echo A\n", pre_depends = ["adduser"], users = ["hello"], groups = ["hello"])],
    snippet(postinst = "echo B\n", prerm = "echo B\n", postrm = "echo B\n", depends = ["init-system-helpers (>= 1.54~)", "adduser"]),
], depends = ["adduser"], prerm = "#!/bin/sh\nset -e\n#UPDS#\necho mine\n")
`)
	s := tgs["app"].spec
	pl, err := s.Plan(Inputs{Project: interp.Project{Arch: "amd64", Maintainer: "a <b@c>"}, FS: afero.NewMemMapFs()})
	if err == nil {
		t.Fatal("the files are not in this project: want an error")
	}
	fsys := afero.NewMemMapFs()
	must(t, afero.WriteFile(fsys, "a.txt", []byte("a\n"), 0o644))
	pl, err = s.Plan(Inputs{Project: interp.Project{Arch: "amd64", Maintainer: "a <b@c>"}, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	scripts := pl.pkg.Scripts
	postinst, prerm := string(scripts["postinst"]), string(scripts["prerm"])
	if strings.Index(postinst, "echo A") > strings.Index(postinst, "echo B") || !strings.HasPrefix(postinst, "#!/bin/sh\nset -e\nsh -s -- \"$@\" <<'UPDS_POSTINST_0_END'\necho A\n") {
		t.Errorf("postinst:\n%s", postinst)
	}
	if strings.Index(prerm, "echo B") > strings.Index(prerm, "echo A") || !strings.HasSuffix(prerm, "UPDS_PRERM_1_END\necho mine\n") {
		t.Errorf("prerm:\n%s", prerm)
	}
	if !strings.Contains(string(scripts["preinst"]), "echo user") || !strings.Contains(string(scripts["postrm"]), "echo B") {
		t.Errorf("preinst %q postrm %q", scripts["preinst"], scripts["postrm"])
	}
	if got := pl.control.Get("Depends"); got != "adduser, init-system-helpers (>= 1.54~)" {
		t.Errorf("Depends %q", got)
	}
	if got := pl.control.Get("Pre-Depends"); got != "adduser" {
		t.Errorf("Pre-Depends %q", got)
	}
	for _, it := range pl.testItems() {
		switch it.Path {
		case "/srv/a.txt":
			if it.uname != "hello" || it.uid != placeholderID || it.gname != "hello" || it.gid != placeholderID {
				t.Errorf("a.txt: %s:%d %s:%d", it.uname, it.uid, it.gname, it.gid)
			}
		case "/srv/b.txt":
			if it.uname != "root" || it.uid != 0 || it.gname != "hello" || it.gid != placeholderID {
				t.Errorf("b.txt: %s:%d %s:%d", it.uname, it.uid, it.gname, it.gid)
			}
		}
	}
}

// TestDebconfDepends: a package with templates or a config script depends on debconf, as
// dh_installdebconf makes it, unless it already does.
func TestDebconfDepends(t *testing.T) {
	fsys := specProject(t)
	for _, tc := range []struct {
		depends []Relation
		want    string
	}{
		{nil, "debconf (>= 0.5) | debconf-2.0"},
		{[]Relation{{Text: "nginx, debconf"}}, "nginx, debconf"},
		{[]Relation{{Text: "cdebconf | debconf-2.0"}}, "cdebconf | debconf-2.0"},
	} {
		s := Spec{Name: "app", Version: "1.0", Compression: "gzip", Depends: tc.depends,
			Templates: Script{Text: testTemplates}, Config: Script{Text: testConfig}}
		pl, err := s.Plan(specInputs(fsys))
		if err != nil {
			t.Fatal(err)
		}
		if got := pl.control.Get("Depends"); got != tc.want {
			t.Errorf("Depends %q, want %q", got, tc.want)
		}
		if string(pl.pkg.Templates) != testTemplates || string(pl.pkg.Scripts["config"]) != testConfig {
			t.Errorf("templates %q config %q", pl.pkg.Templates, pl.pkg.Scripts["config"])
		}
	}
}

// TestTreeHardlinks: files of a tree with one inode become hard links (as do a file() of the
// same inode with the same mode), unless their modes differ in the package.
func TestTreeHardlinks(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "src/sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "src/tool"), []byte("#!/bin/sh\necho tool\n"), 0o755))
	must(t, os.Link(filepath.Join(dir, "src/tool"), filepath.Join(dir, "src/sub/tool2")))
	must(t, os.Link(filepath.Join(dir, "src/tool"), filepath.Join(dir, "src/a-tool")))
	fsys := afero.NewBasePathFs(afero.NewOsFs(), dir)
	mode := os.FileMode(0o700)
	s := Spec{Name: "app", Version: "1.0", Compression: "gzip", Contents: []Content{
		{Kind: ContentTree, Src: "src", Dest: "/usr/lib/app"},
		{Kind: ContentFile, Src: "src/tool", Dest: "/usr/bin/tool"},
		{Kind: ContentFile, Src: "src/tool", Dest: "/usr/sbin/tool", Mode: &mode},
		{Kind: ContentHardlink, Dest: "/usr/bin/tool-again", Target: "/usr/bin/tool"},
	}}
	pl, err := s.Plan(specInputs(fsys))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, it := range pl.testItems() {
		if it.Type == TypeFile || it.Type == TypeHardlink {
			got[it.Path] = it.Type.String() + " " + it.Target
		}
	}
	// The first name in the archive's order carries the content.
	want := map[string]string{
		"/usr/bin/tool":          "file ",
		"/usr/bin/tool-again":    "hardlink /usr/bin/tool",
		"/usr/lib/app/a-tool":    "hardlink /usr/bin/tool",
		"/usr/lib/app/sub/tool2": "hardlink /usr/bin/tool",
		"/usr/lib/app/tool":      "hardlink /usr/bin/tool",
		"/usr/sbin/tool":         "file ", // mode 0700: a copy of its own
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q, want %q", p, got[p], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("entries %v", got)
	}
}

// TestSharedPaths: two packages of a project may not ship one path, unless it is a directory
// in both or one conflicts with or replaces the other.
func TestSharedPaths(t *testing.T) {
	head := `project(name = "xx", maintainer = "a <b@c>")
`
	for _, tc := range []struct{ build, want string }{
		{`a = deb("aa", contents = [file("a.txt", "/srv/a"), directory("/srv/d")])
b = deb("bb", contents = [file("a.txt", "/srv/a"), file("a.txt", "/srv/b"), directory("/srv/d")])`, "deb aa: /srv/a is also in package bb (BUILD.star:3:8): dpkg would refuse to install both"},
		{`a = deb("aa", contents = [file("a.txt", "/srv/a"), file("a.txt", "/srv/b")])
b = deb("bb", contents = [tree("src", "/srv/a"), link("/srv/b", "a")])`, "deb aa: /srv/a (and 1 more) is also in package bb"},
		{`a = deb("aa", contents = [directory("/srv/d")])
b = deb("bb", contents = [directory("/srv/d")])`, ""},
		{`a = deb("aa", contents = [file("a.txt", "/srv/a")], conflicts = ["bb"])
b = deb("bb", contents = [file("a.txt", "/srv/a")])`, ""},
		{`a = deb("aa", contents = [file("a.txt", "/srv/a")])
b = deb("bb", contents = [file("a.txt", "/srv/a")], replaces = ["aa (<< 2)"])`, ""},
		{`a = deb("aa", contents = [file("a.txt", "/srv/a")], provides = ["x-config"], conflicts = ["x-config"])
b = deb("bb", contents = [file("a.txt", "/srv/a")], provides = ["x-config"], conflicts = ["x-config"])`, ""},
	} {
		tgs := targets(t, head+tc.build+"\n")
		fsys := afero.NewMemMapFs()
		must(t, afero.WriteFile(fsys, "a.txt", []byte("a\n"), 0o644))
		must(t, afero.WriteFile(fsys, "src/x.py", []byte("x\n"), 0o644))
		in := Inputs{Project: interp.Project{Arch: "amd64", Maintainer: "a <b@c>"}, FS: fsys}
		asm, err := tgs["aa"].spec.assemble(in)
		if err != nil {
			t.Fatal(err)
		}
		err = tgs["aa"].checkShared(in, asm.plan)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("%s:\n got %v\nwant %q", tc.build, err, tc.want)
		}
	}
}

// TestGeneratedDocsWarning: contents that bring their own copyright replace upds's, with a
// warning.
func TestGeneratedDocsWarning(t *testing.T) {
	fsys := specProject(t)
	s := Spec{Name: "app", Version: "1.0", Compression: "gzip", Docs: true,
		Contents: []Content{{Kind: ContentFile, Src: "VERSION", Dest: "/usr/share/doc/app/copyright"}}}
	asm, err := s.assemble(specInputs(fsys))
	if err != nil {
		t.Fatal(err)
	}
	if len(asm.warnings) != 1 || asm.warnings[0] != "the contents' /usr/share/doc/app/copyright replaces the one upds writes (docs = False leaves out all of them)" {
		t.Errorf("warnings %q", asm.warnings)
	}
}
