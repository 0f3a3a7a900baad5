package deb

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
)

// These tests build packages from a Spec in plain Go: no Starlark, an in-memory project.

func specProject(t *testing.T) afero.Fs {
	t.Helper()
	fsys := afero.NewMemMapFs()
	for name, body := range map[string]string{
		"src/app.py":         "print('hi')\n",
		"src/lib/util.py":    "x = 1\n",
		"src/__pycache__/x":  "bytecode",
		"src/old.pyc":        "bytecode",
		"src/notes.orig":     "left over",
		"conf/app.ini":       "[app]\n",
		"scripts/postinst":   "#!/bin/sh\nset -e\n#UPDS#\necho done\n",
		"scripts/triggers":   "interest-noawait /usr/share/app\n",
		"bin/tool":           "#!/bin/sh\n",
		"VERSION":            "1.0\n",
		"empty-dir/.keep":    "",
		"not-a-dir":          "x",
		"scripts/no-shebang": "echo\n",
	} {
		mode := fs.FileMode(0o644)
		if name == "bin/tool" {
			mode = 0o755
		}
		if err := afero.WriteFile(fsys, name, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return fsys
}

func specInputs(fsys afero.Fs) Inputs {
	return Inputs{Project: interp.Project{Name: "app", Arch: "amd64", Maintainer: "Ops <ops@example.com>",
		Homepage: "https://example.com"}, FS: fsys, MTime: time.Unix(1700000000, 0)}
}

// fixedVersion is another package of the project.
type fixedVersion struct{ name, version string }

func (f fixedVersion) Name() string             { return f.name }
func (f fixedVersion) Version() (string, error) { return f.version, nil }

func TestSpecPlan(t *testing.T) {
	fsys := specProject(t)
	www, _ := ParseOwner("www-data", false)
	mode := fs.FileMode(0o640)
	s := Spec{
		Name: "app", Version: "1.0-1", Compression: "xz", Priority: "optional", Docs: true,
		Contents: []Content{
			{Kind: ContentTree, Src: "src", Dest: "/srv/app", Owner: www, Exclude: []string{"*.orig"}},
			{Kind: ContentFile, Src: "conf/app.ini", Dest: "/etc/app/app.ini", Mode: &mode},
			{Kind: ContentFile, Src: "bin/tool", Dest: "/usr/bin/app-tool"},
			{Kind: ContentDirectory, Dest: "/var/lib/app", Owner: www},
			{Kind: ContentLink, Dest: "/usr/bin/app", Target: "app-tool"},
		},
		Depends:      []Relation{{Text: "python3"}, {Package: fixedVersion{"app-venv", "1.0-1"}}, {Text: "python3"}},
		Conflicts:    []Relation{{Text: "app-old"}},
		Fields:       map[string]string{"X-Team": "web", "X-A": "a"},
		Postinst:     Script{Path: "scripts/postinst"},
		Triggers:     Script{Path: "scripts/triggers"},
		Prerm:        Script{Text: "#!/bin/sh\necho bye\n"},
		NotConffiles: []string{"/etc/app/other"},
	}
	pl, err := s.Plan(specInputs(fsys))
	if err != nil {
		t.Fatal(err)
	}
	ctl, _ := pl.Control().Bytes()
	want := `Package: app
Version: 1.0-1
Architecture: amd64
Maintainer: Ops <ops@example.com>
Installed-Size: 29
Depends: python3, app-venv (= 1.0-1)
Conflicts: app-old
Section: misc
Priority: optional
Homepage: https://example.com
Description: package of the app deployment
 This package is part of the app project and was built with upds.
X-A: a
X-Team: web
`
	if string(ctl) != want {
		t.Errorf("control:\n%s\nwant:\n%s", ctl, want)
	}
	var paths []string
	for _, it := range pl.testItems() {
		paths = append(paths, it.Path+" "+ModeString(it.Type, fileMode(it.mode))+" "+it.uname)
	}
	got := strings.Join(paths, "\n") + "\n"
	for _, w := range []string{
		"/srv/app/app.py -rw-r--r-- www-data", "/srv/app/lib/util.py -rw-r--r-- www-data",
		"/etc/app/app.ini -rw-r----- root", "/usr/bin/app-tool -rwxr-xr-x root",
		"/var/lib/app drwxr-xr-x www-data", "/usr/bin/app lrwxrwxrwx root",
		"/usr/share/doc/app/copyright -rw-r--r-- root", "/usr/share/doc/app/changelog.Debian.gz -rw-r--r-- root",
		"/usr/share/lintian/overrides/app -rw-r--r-- root",
	} {
		if !strings.Contains(got, w+"\n") {
			t.Errorf("no entry %q in\n%s", w, got)
		}
	}
	for _, no := range []string{"__pycache__", ".pyc", ".orig"} {
		if strings.Contains(got, no) {
			t.Errorf("%s is packaged:\n%s", no, got)
		}
	}
	if strings.Join(pl.conffiles, " ") != "/etc/app/app.ini" {
		t.Errorf("conffiles %q", pl.conffiles)
	}
	if got := string(pl.pkg.Scripts["postinst"]); got != "#!/bin/sh\nset -e\necho done\n" {
		t.Errorf("postinst %q", got)
	}
	if got := string(pl.pkg.Triggers); got != "interest-noawait /usr/share/app\n" {
		t.Errorf("triggers %q", got)
	}
	var b bytes.Buffer
	pl.pkg.TempDir = t.TempDir()
	if _, err := pl.Write(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	info, err := Read(&b, ReadOptions{Verify: true})
	if err != nil || info.DataCompression != "xz" {
		t.Fatalf("read back: %v %+v", err, info)
	}
}

func TestSpecCheck(t *testing.T) {
	fsys := specProject(t)
	ok := func() Spec {
		return Spec{Name: "app", Version: "1.0", Compression: "gzip"}
	}
	self := &Target{spec: Spec{Name: "app"}}
	for _, tc := range []struct {
		name   string
		change func(*Spec)
		want   string
	}{
		{"valid", func(*Spec) {}, ""},
		{"name", func(s *Spec) { s.Name = "Bad_Name" }, `deb: name: package name "Bad_Name": must start with a lower case letter or digit`},
		{"version", func(s *Spec) { s.Version = "1.0-" }, "deb app: version: "},
		{"empty version", func(s *Spec) { s.Version = "" }, "deb app: version: "},
		{"lazy version is not checked", func(s *Spec) { s.Version, s.VersionOf = "", func() (string, error) { return "", errors.New("x") } }, ""},
		{"arch", func(s *Spec) { s.Arch = "AMD64" }, `deb app: arch: architecture "AMD64": invalid character 'A'`},
		{"compression", func(s *Spec) { s.Compression = "bz2" }, `deb app: compression: "bz2" is not one of gzip, xz, zstd, none`},
		{"empty compression", func(s *Spec) { s.Compression = "" }, `deb app: compression: "" is not one of`},
		{"relation", func(s *Spec) { s.Depends = []Relation{{Text: "aa"}, {Text: "nginx (>> )"}} }, "deb app: depends[1]: "},
		{"source-only relation", func(s *Spec) { s.PreDepends = []Relation{{Text: "aa [amd64]"}} }, "deb app: pre_depends[0]: "},
		{"relations in field order", func(s *Spec) {
			s.Provides, s.Recommends = []Relation{{Text: "(("}}, []Relation{{Text: "))"}}
		}, "deb app: recommends[0]: "},
		{"self", func(s *Spec) { s.PreDepends = []Relation{{Package: self}} }, "deb app: pre-depends: a package cannot refer to itself"},
		{"conffile", func(s *Spec) { s.Conffiles = []string{"etc/x"} }, `deb app: conffiles: "etc/x" is not absolute`},
		{"missing script", func(s *Spec) { s.Preinst = Script{Path: "nope"} }, `deb app: preinst: "nope": no such file or directory in the project`},
		{"escaping script", func(s *Spec) { s.Postrm = Script{Path: "../x"} }, `deb app: postrm: "../x" escapes the project root`},
		{"no shebang", func(s *Spec) { s.Postinst = Script{Text: "echo\nexit 0\n"} }, "deb app: postinst: the script must start with #!"},
		{"two entries", func(s *Spec) {
			s.Contents = []Content{{Kind: ContentFile, Src: "VERSION", Dest: "/a"}, {Kind: ContentDirectory, Dest: "/a"}}
		}, `deb app: contents: two entries at /a: file("VERSION", "/a") and directory("/a")`},
		{"missing source", func(s *Spec) { s.Contents = []Content{{Kind: ContentFile, Src: "nope", Dest: "/a"}} }, `file: src "nope": no such file or directory in the project`},
		{"tree of a file", func(s *Spec) { s.Contents = []Content{{Kind: ContentTree, Src: "not-a-dir", Dest: "/a"}} }, `tree: src "not-a-dir" is not a directory (use file())`},
		{"file of a dir", func(s *Spec) { s.Contents = []Content{{Kind: ContentFile, Src: "src", Dest: "/a"}} }, `file: src "src" is not a regular file`},
		{"unclean dest", func(s *Spec) { s.Contents = []Content{{Kind: ContentDirectory, Dest: "/a//b"}} }, `directory: path: "/a//b" is not clean (write "/a/b")`},
		{"empty link", func(s *Spec) { s.Contents = []Content{{Kind: ContentLink, Dest: "/a"}} }, "link: target is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok()
			tc.change(&s)
			err := s.Check(interp.Project{Arch: "amd64", Maintainer: "a <b@c>"}, fsys)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q...", err, tc.want)
			}
		})
	}
}

func TestSpecCheckCleans(t *testing.T) {
	s := Spec{Name: "app", Version: "1.0", Compression: "none", Conffiles: []string{"/etc/app/"},
		NotConffiles: []string{"/etc//x"}, Triggers: Script{Path: "./scripts/triggers"},
		Contents: []Content{{Kind: ContentTree, Src: "./src/", Dest: "/srv/app/"}}}
	if err := s.Check(interp.Project{Arch: "amd64", Maintainer: "a <b@c>"}, specProject(t)); err != nil {
		t.Fatal(err)
	}
	got := []string{s.Conffiles[0], s.NotConffiles[0], s.Triggers.Path, s.Contents[0].Src, s.Contents[0].Dest}
	if strings.Join(got, " ") != "/etc/app /etc/x scripts/triggers src /srv/app" {
		t.Fatalf("cleaned: %q", got)
	}
}

func TestSpecBuildErrors(t *testing.T) {
	fsys := specProject(t)
	built := &fakeBuilt{&Contents{Dir: t.TempDir(), Into: "/var/virtualenvs/app", ArchSpecific: true}}
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"project version", Spec{VersionOf: func() (string, error) { return "", errors.New("no VERSION file") }}, "deb app: version: no VERSION file"},
		{"bad project version", Spec{VersionOf: func() (string, error) { return "1.0-", nil }}, "deb app: version: "},
		{"compiled code in all", Spec{Arch: "all", Contents: []Content{{Kind: ContentBuilt, Built: built}}}, `deb app: arch "all", but its contents hold compiled code`},
		{"not a shell script", Spec{Postinst: Script{Text: "#!/usr/bin/python3\nprint()\n"}, Contents: []Content{{Kind: ContentBuilt, Built: built}}}, "deb app: postinst: not a shell script"},
		{"bad triggers", Spec{Triggers: Script{Text: "wake up\n"}}, `deb app: triggers line 1: "wake up": want "DIRECTIVE TRIGGER-NAME"`},
		{"unknown owner id", Spec{Owner: &Owner{Name: "hello", ID: -1}, Contents: []Content{{Kind: ContentDirectory, Dest: "/x"}}}, `deb app: owner: "hello" has no static Debian id: write "hello:ID"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			s.Name, s.Compression = "app", "gzip"
			if s.Version == "" && s.VersionOf == nil {
				s.Version = "1.0"
			}
			built.c.Scripts = map[string][]byte{"postinst": []byte("python3 -m compileall\n")}
			_, err := s.Plan(specInputs(fsys))
			var se *specError
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.As(err, &se) {
				t.Fatalf("error %v, want a specError %q...", err, tc.want)
			}
		})
	}
}

func TestSpecBuiltContents(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(dir+"/bin", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(afero.NewOsFs(), dir+"/bin/python", []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	built := &fakeBuilt{&Contents{Dir: dir, Into: "/var/virtualenvs/app", Depends: []string{"python3.11"},
		Scripts: map[string][]byte{"postinst": []byte("echo compile\n")}}}
	s := Spec{Name: "app-venv", Version: "1.0", Compression: "gzip", Owner: &Owner{Name: "app", ID: 990},
		Depends: []Relation{{Text: "python3.11"}, {Text: "libc6"}}, Contents: []Content{{Kind: ContentBuilt, Built: built}}}
	pl, err := s.Plan(specInputs(specProject(t)))
	if err != nil {
		t.Fatal(err)
	}
	if got := pl.control.Get("Depends"); got != "python3.11, libc6" {
		t.Errorf("Depends %q", got)
	}
	want := "#!/bin/sh\nset -e\nsh -s -- \"$@\" <<'UPDS_POSTINST_0_END'\necho compile\nUPDS_POSTINST_0_END\n"
	if got := string(pl.pkg.Scripts["postinst"]); got != want {
		t.Errorf("postinst %q", got)
	}
	for _, it := range pl.testItems() {
		if it.Path == "/var/virtualenvs/app/bin/python" && (it.uname != "app" || it.uid != 990 || it.mode != 0o755) {
			t.Errorf("python: %s:%d %o", it.uname, it.uid, it.mode)
		}
	}
	// A built tree that cannot be read is not a mistake in the spec.
	built.c.Dir = dir + "/gone"
	if _, err := s.Plan(specInputs(specProject(t))); err == nil || errors.As(err, new(*specError)) {
		t.Fatalf("unreadable tree: %v", err)
	}
}

type fakeBuilt struct{ c *Contents }

func (f *fakeBuilt) Contents() (*Contents, error) { return f.c, nil }

func TestParseOwnerAndMode(t *testing.T) {
	for _, tc := range []struct {
		in    string
		group bool
		want  Owner
		err   string
	}{
		{"www-data", false, Owner{"www-data", -1}, ""},
		{"app:990", false, Owner{"app", 990}, ""},
		{"nogroup", true, Owner{"nogroup", -1}, ""},
		{"nogroup", false, Owner{}, `"nogroup" has no static Debian id: write "nogroup:ID"`},
		{"app", false, Owner{}, `"app" has no static Debian id`},
		{"app:x", false, Owner{}, `"app:x": want NAME or NAME:ID`},
		{":5", false, Owner{}, `":5": want NAME or NAME:ID`},
		{"", false, Owner{}, "empty name"},
	} {
		o, err := ParseOwner(tc.in, tc.group)
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("ParseOwner(%q): %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || *o != tc.want {
			t.Errorf("ParseOwner(%q) = %v, %v", tc.in, o, err)
		}
	}
	for n, want := range map[int64]fs.FileMode{0o644: 0o644, 0o2775: 0o775 | fs.ModeSetgid, 0o4755: 0o755 | fs.ModeSetuid, 0o1777: 0o777 | fs.ModeSticky} {
		if m, err := ParseMode(n); err != nil || m != want || unixMode(m) != n {
			t.Errorf("ParseMode(%o) = %v, %v; back %o", n, m, err, unixMode(m))
		}
	}
	for _, n := range []int64{-1, 0o10000} {
		if _, err := ParseMode(n); err == nil {
			t.Errorf("ParseMode(%d) accepted", n)
		}
	}
}
