package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upds/upds/interp/storage/s3test"
)

// updsBin is the upds binary built once for the CLI tests.
var updsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "upds-cli-")
	if err != nil {
		panic(err)
	}
	updsBin = filepath.Join(dir, "upds")
	if out, err := exec.Command("go", "build", "-o", updsBin, ".").CombinedOutput(); err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	s3test.StopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// project writes files into a new project directory.
func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

func upds(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(updsBin, append([]string{"-C", dir, "--progress=plain"}, args...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String(), elapsed: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTasksListsDocs(t *testing.T) {
	dir := project(t, map[string]string{"BUILD.star": `
project(name = "demo")
task("build", doc = "build the packages\nmore text")
task("release", deps = ["build"], doc = "bump, build and send")
task("zzz")
`})
	r := upds(t, dir, "tasks")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := "build    build the packages\nrelease  bump, build and send\nzzz      \n"
	if r.stdout != want {
		t.Fatalf("upds tasks printed\n%q\nwant\n%q", r.stdout, want)
	}
	r = upds(t, dir, "tasks", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "release",
    "doc": "bump, build and send",
    "position": "BUILD.star:4:5"`) {
		t.Fatalf("upds tasks --json: exit %d\n%s", r.code, r.stdout)
	}
}

func TestIndependentTasksRunTogether(t *testing.T) {
	dir := project(t, map[string]string{"BUILD.star": `
task("a", run = lambda ctx: sh("sleep 1"))
task("b", run = lambda ctx: sh("sleep 1"))
task("both", deps = ["a", "b"])
`})
	r := upds(t, dir, "run", "-j", "2", "both")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// Two one-second sleeps, in parallel: well under the two seconds they take in a row.
	if r.elapsed >= 1900*time.Millisecond {
		t.Fatalf("two independent 1 s tasks took %s: not parallel", r.elapsed)
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		args  []string
		code  int
		want  string
	}{
		{"cycle", map[string]string{"BUILD.star": "task('x', deps=['y'])\ntask('y', deps=['z'])\ntask('z', deps=['x'])\n"},
			[]string{"run", "x"}, 2, "upds: BUILD.star:1:5: dependency cycle: task x -> task y -> task z -> task x\n"},
		{"syntax error on line 2", map[string]string{"BUILD.star": "project(name = 'x')\ntask('a' 'b')\n"},
			[]string{"tasks"}, 2, "upds: BUILD.star:2:13: got string literal, want ','\n"},
		{"unknown task", map[string]string{"BUILD.star": "task('build')\n"},
			[]string{"run", "biuld"}, 2, "upds: unknown task \"biuld\" (did you mean \"build\"?)\n"},
		{"failing task", map[string]string{"BUILD.star": "def f(ctx):\n    sh('exit 3')\ntask('f', run = f)\n"},
			[]string{"run", "f"}, 1, "upds: BUILD.star:2:7: task f: sh: \"exit 3\" exited with status 3\n"},
		{"no args", map[string]string{"BUILD.star": ""}, []string{"run"}, 2, "requires at least 1 arg"},
		{"bad flag", map[string]string{"BUILD.star": ""}, []string{"run", "--nope", "x"}, 2, "unknown flag: --nope"},
		{"no BUILD.star", map[string]string{"x": ""}, []string{"tasks"}, 2, "no BUILD.star in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := upds(t, project(t, tc.files), tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("stderr\n%q\ndoes not contain\n%q", r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Fatalf("stack dump for a user mistake:\n%s", r.stderr)
			}
		})
	}
}

func TestInterruptStopsTasks(t *testing.T) {
	dir := project(t, map[string]string{"BUILD.star": `
task("long", run = lambda ctx: sh("sleep 30; echo not-interrupted > marker"))
task("other", run = lambda ctx: sh("sleep 30"))
task("all", deps = ["long", "other"])
`})
	cmd := exec.Command(updsBin, "-C", dir, "--progress=plain", "run", "all")
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if time.Since(start) > 10*time.Second {
		t.Fatal("Ctrl-C took more than 10 s to stop the run")
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want 130\n%s", err, se.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "marker")); err == nil {
		t.Fatal("the interrupted command went on")
	}
	if out, _ := exec.Command("pgrep", "-f", "sleep 30; echo not-interrupted").Output(); len(out) > 0 {
		t.Fatalf("a child is left running: %s", out)
	}
}

func TestParseProgress(t *testing.T) {
	// The tests' stderr is not a terminal: auto is plain. Unknown values are plain too.
	for flag, want := range map[string]progressMode{"auto": progressPlain, "plain": progressPlain, "none": progressNone,
		"live": progressPlain, "bogus": progressPlain} {
		if got := parseProgress(flag); got != want {
			t.Errorf("parseProgress(%q) = %d, want %d", flag, got, want)
		}
	}
}
