package interp

import (
	"context"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

func TestGlob(t *testing.T) {
	_, out, err := load(t, map[string]string{
		"BUILD.star":          `print(glob(["src/**/*.py"], exclude = ["**/test_*.py"]))` + "\n" + `print(glob("*.star"))`,
		"src/app/__init__.py": "",
		"src/app/views.py":    "",
		"src/app/test_x.py":   "",
		"src/top.py":          "",
		"dist/x.py":           "",
		".upds/y.py":          "",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `["src/app/__init__.py", "src/app/views.py", "src/top.py"]` + "\n" + `["BUILD.star"]` + "\n"
	if out.String() != want {
		t.Fatalf("glob printed %q, want %q", out.String(), want)
	}
}

func TestMatchPath(t *testing.T) {
	for _, tc := range []struct {
		pat, name string
		want      bool
	}{
		{"**", "a/b/c", true},
		{"a/**", "a", true},
		{"a/**/c", "a/c", true},
		{"a/**/c", "a/b/x/c", true},
		{"*.py", "a/b.py", false},
		{"**/*.py", "b.py", true},
		{"a/*", "a/b/c", false},
	} {
		if got := MatchPath(tc.pat, tc.name); got != tc.want {
			t.Errorf("MatchPath(%q, %q) = %v", tc.pat, tc.name, got)
		}
	}
}

func TestGetenvOnlyInRunFunctions(t *testing.T) {
	_, _, err := load(t, map[string]string{"BUILD.star": `X = getenv("HOME")`})
	if err == nil || !strings.Contains(err.Error(), "getenv() may only be called inside a task's run function") {
		t.Fatalf("getenv at evaluation: %v", err)
	}
	b, out, err := load(t, map[string]string{"BUILD.star": `task("t", run = lambda ctx: print(getenv("UPDS_T"), getenv("UPDS_NONE", "dflt")))`},
		func(o *Options) { o.Env = []string{"UPDS_T=one", "UPDS_T=two"} })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.NewRunner(RunOptions{}).Run(context.Background(), []string{"t"}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "[t] two dflt\n" {
		t.Fatalf("printed %q", out.String())
	}
}

func TestStrings(t *testing.T) {
	var unset *starlark.List
	for _, tc := range []struct {
		v    starlark.Value
		want string
		err  string
	}{
		{nil, "", ""},
		{starlark.None, "", ""},
		{unset, "", ""},
		{starlark.String("a"), "a", ""},
		{starlark.NewList([]starlark.Value{starlark.String("a"), starlark.String("b")}), "a b", ""},
		{starlark.Tuple{starlark.String("c")}, "c", ""},
		{starlark.NewList([]starlark.Value{starlark.MakeInt(1)}), "", "exclude: want strings, got int"},
		{starlark.MakeInt(3), "", "exclude: want a string or a list of strings, got int"},
	} {
		got, err := Strings(tc.v, "exclude")
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Strings(%v): err %v, want %q", tc.v, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("Strings(%v) = %q, %v; want %q", tc.v, got, err, tc.want)
		}
	}
}

func TestHostGetenv(t *testing.T) {
	h := &Host{Env: []string{"HOME=/first", "A=", "HOME=/last", "HOMEDIR=/x"}}
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"HOME", "/last", true}, // the last assignment wins, as for exec.Cmd.Env
		{"A", "", true},
		{"HOMED", "", false},
		{"NONE", "", false},
	} {
		if v, ok := h.Getenv(tc.name); v != tc.want || ok != tc.ok {
			t.Errorf("Getenv(%q) = %q, %v; want %q, %v", tc.name, v, ok, tc.want, tc.ok)
		}
	}
}

// TestProjectDefaults: the defaults apply without project(), with project() leaving arguments
// out or giving None, and to an empty arch.
func TestProjectDefaults(t *testing.T) {
	want := DefaultProject()
	want.Name = "x"
	for _, src := range []string{
		`project(name = "x")`,
		`project(name = "x", maintainer = None, homepage = None, license = None, copyright = None, arch = "")`,
	} {
		b, _, err := load(t, map[string]string{"BUILD.star": src})
		if err != nil {
			t.Fatal(err)
		}
		got := b.Host.Project
		got.Pos = syntax.Position{}
		if got != want {
			t.Errorf("%s: project %+v, want %+v", src, got, want)
		}
	}
	b, _, err := load(t, map[string]string{"BUILD.star": `print("no project")`}, func(o *Options) { o.Dir = "/srv/app" })
	if err != nil {
		t.Fatal(err)
	}
	if p := b.Host.Project; p.Name != "app" || p.VersionFile != "VERSION" || p.Arch != "amd64" || p.Out != "dist" {
		t.Errorf("project without project() = %+v", p)
	}
	b, _, err = load(t, map[string]string{"BUILD.star": `project(name = "y", maintainer = "M <m@example.com>", version_file = "./v/VERSION", out = "out/")`})
	if err != nil {
		t.Fatal(err)
	}
	if p := b.Host.Project; p.Maintainer != "M <m@example.com>" || p.VersionFile != "v/VERSION" || p.Out != "out" {
		t.Errorf("project = %+v", p)
	}
	for src, msg := range map[string]string{
		`project(name = "x", maintainer = 3)`: `project: for parameter "maintainer": got int, want string`,
		`project(name = "x", out = "../x")`:   `project: out: "../x" escapes the project root`,
		`project(name = "")`:                  "project: name is empty",
	} {
		if _, _, err := load(t, map[string]string{"BUILD.star": src}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want %q", src, err, msg)
		}
	}
}

// TestNoneArguments: None is "not given" for glob's exclude, task's run and sh's cwd.
func TestNoneArguments(t *testing.T) {
	files := map[string]string{"BUILD.star": `
print(glob(["*.txt"], exclude = None), glob("*.txt", exclude = "b.txt"))
task("t", run = None)
task("s", run = lambda ctx: print(sh("pwd", cwd = None, capture = True).strip() != ""))
task("e", run = lambda ctx: sh("true", cwd = ""))
`, "a.txt": "", "b.txt": ""}
	b, out, err := load(t, files)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != `["a.txt", "b.txt"] ["a.txt"]`+"\n" {
		t.Errorf("glob printed %q", got)
	}
	if tk, _ := b.Host.Task("t"); tk.Run != nil {
		t.Errorf("task(run = None) has a run function")
	}
	if err := b.NewRunner(RunOptions{}).Run(context.Background(), []string{"s"}); err != nil || !strings.HasSuffix(out.String(), "[s] True\n") {
		t.Errorf("sh(cwd = None): %v\n%s", err, out.String())
	}
	if err := b.NewRunner(RunOptions{}).Run(context.Background(), []string{"e"}); err == nil || !strings.Contains(err.Error(), "sh: cwd: empty path") {
		t.Errorf("sh(cwd = \"\"): %v", err)
	}
	for src, msg := range map[string]string{
		`glob(["*"], exclude = [1])`: `glob: for parameter "exclude": want strings, got int`,
		`task("t", run = 3)`:         `task: for parameter "run": got int, want callable`,
	} {
		if _, _, err := load(t, map[string]string{"BUILD.star": src}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want %q", src, err, msg)
		}
	}
}
