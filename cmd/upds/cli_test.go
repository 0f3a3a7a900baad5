package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// interrupt starts upds with args, sends sig after delay and returns the exit code, stderr
// and how long upds took to exit after the signal. A upds still running 5 s after the signal
// is killed and fails the test.
func interrupt(t *testing.T, sig os.Signal, delay time.Duration, args ...string) (int, string, time.Duration) {
	t.Helper()
	cmd := exec.Command(updsBin, args...)
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	start := time.Now()
	cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, se.String(), time.Since(start)
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("upds %s: still running 5 s after %v", strings.Join(args, " "), sig)
	}
	return 0, "", 0
}

// TestInterruptStopsEvaluation: Ctrl-C and SIGTERM stop a BUILD.star that loops at the top
// level, for every command that evaluates it: exit 130 and one line.
func TestInterruptStopsEvaluation(t *testing.T) {
	dir := project(t, map[string]string{"BUILD.star": `
project(name = "slow")
n = 0
for i in range(1000000000):
    n += 1
task("build")
`, "VERSION": "1.0\n"})
	for _, tc := range []struct {
		sig  os.Signal
		args []string
	}{
		{os.Interrupt, []string{"run", "build"}},
		{syscall.SIGTERM, []string{"run", "build"}},
		{os.Interrupt, []string{"tasks"}},
		{os.Interrupt, []string{"version"}},
		{os.Interrupt, []string{"graph"}},
	} {
		code, stderr, took := interrupt(t, tc.sig, 300*time.Millisecond, append([]string{"-C", dir}, tc.args...)...)
		if code != 130 || stderr != "upds: interrupted\n" || took > 2*time.Second {
			t.Errorf("upds %s, %v: exit %d after %s, stderr %q; want 130 within 2 s and one line",
				strings.Join(tc.args, " "), tc.sig, code, took, stderr)
		}
	}
}

// TestUsageErrorsExitTwo: unknown subcommands and bad flag values are usage errors: exit 2
// and a one-line message.
func TestUsageErrorsExitTwo(t *testing.T) {
	dir := project(t, map[string]string{"BUILD.star": "task('x')\n"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frob"}, `unknown command "frob" for "upds"`},
		{[]string{"tsaks"}, `unknown command "tsaks" for "upds" (did you mean "tasks"?)`},
		{[]string{"repo", "frob"}, `unknown command "frob" for "upds repo"`},
		{[]string{"repo", "frob", "x"}, `unknown command "frob" for "upds repo"`},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "upds completion"`},
		{[]string{"--progress=fancy", "tasks"}, `invalid argument "fancy" for "--progress" flag: want auto, plain or none`},
		{[]string{"run", "-j", "-3", "x"}, `invalid argument "-3" for "-j, --jobs" flag`},
		{[]string{"run", "-j", "0", "x"}, `invalid argument "0" for "-j, --jobs" flag`},
		{[]string{"graph", "--format", "png"}, `invalid argument "png" for "--format" flag: want dot or mermaid`},
		{[]string{"tasks", "-j", "2"}, `unknown shorthand flag: 'j' in -j`},
		{[]string{"version", "--keep-going"}, `unknown flag: --keep-going`},
		{[]string{"deploy", "--parallel", "0"}, `deploy: --parallel must be at least 1, not 0`},
		{[]string{"audit", "web1", "--dpkg-status", "status"}, `audit: servers of the inventory (web1) or --dpkg-status (this machine), not both`},
		{[]string{"repo", "serve", "x", "--idle-timeout", "0s"}, `--idle-timeout must be positive, not 0s`},
		{[]string{"repo", "publish", "x", "--verify", "most"}, `--verify "most": want basic or full`},
		{[]string{"repo", "init", "--storage", "ftp://x", filepath.Join(dir, "r")}, `--storage: "ftp://x" is not an S3 location`},
		{[]string{"repo", "init", "--incoming", "s3://", filepath.Join(dir, "r")}, `--incoming: `},
	} {
		r := upds(t, dir, tc.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "upds: ") || !strings.Contains(r.stderr, tc.want) ||
			strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
			t.Errorf("upds %s: exit %d, stdout %q, stderr %q; want 2 and one line with %q",
				strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.want)
		}
	}
	// A command that only groups others still prints its help.
	if r := upds(t, dir, "repo"); r.code != 0 || !strings.Contains(r.stdout, "Available Commands:") {
		t.Errorf("upds repo: exit %d\n%s", r.code, r.stdout)
	}
}

// TestFlagsWhereTheyApply: the build flags show on the commands that use them only, and
// still work before the command name (upds -j 2 run build).
func TestFlagsWhereTheyApply(t *testing.T) {
	dir := project(t, map[string]string{"BUILD.star": "task('x', run = lambda ctx: print('ran'))\n"})
	for _, tc := range []struct {
		cmd        string
		has, hasnt []string
	}{
		{"", []string{"--directory", "--progress"}, []string{"--jobs", "--keep-going", "--no-cache", "--lib"}},
		{"run", []string{"--jobs", "--keep-going", "--no-cache", "--lib", "--dry-run", "--json", "--progress"}, nil},
		{"tasks", []string{"--lib"}, []string{"--jobs", "--keep-going", "--no-cache"}},
		{"inspect", nil, []string{"--jobs", "--keep-going", "--no-cache", "--lib"}},
		{"audit", []string{"--jobs"}, []string{"--keep-going", "--no-cache", "--lib"}},
	} {
		help := upds(t, dir, strings.Fields(tc.cmd+" --help")...).stdout
		for _, f := range tc.has {
			if !strings.Contains(help, f) {
				t.Errorf("upds %s --help does not show %s", tc.cmd, f)
			}
		}
		for _, f := range tc.hasnt {
			if strings.Contains(help, f) {
				t.Errorf("upds %s --help shows %s", tc.cmd, f)
			}
		}
	}
	// A flag with its value may come before the command, as before (docs/rules.md does).
	for _, args := range [][]string{{"-j", "2", "run", "x"}, {"--lib=lib=/nonexistent", "run", "x"}, {"run", "x", "--keep-going", "--no-cache"}} {
		if r := upds(t, dir, args...); r.code != 0 || r.stdout != "[x] ran\n" {
			t.Errorf("upds %s: exit %d %q\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
}

// complete runs cobra's hidden __complete command and returns the candidates and the
// directive line.
func complete(t *testing.T, dir string, args ...string) ([]string, string) {
	t.Helper()
	cmd := exec.Command(updsBin, append([]string{"__complete"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("__complete %v: %v", args, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

func TestCompletion(t *testing.T) {
	dir := project(t, map[string]string{"BUILD.star": `
print("evaluated")
task("build", doc = "build the packages\nand more")
task("bump-minor")
task("publish")
`, "dist/a_1.0_all.deb": "", "notes.txt": ""})
	for _, tc := range []struct {
		args      []string
		want      string // candidates joined by |
		directive string
	}{
		{[]string{"run", ""}, "build\tbuild the packages|bump-minor|publish", ":4"},
		{[]string{"run", "b"}, "build\tbuild the packages|bump-minor", ":4"},
		{[]string{"run", "build", "b"}, "bump-minor", ":4"},
		{[]string{"-C", dir, "run", "p"}, "publish", ":4"},
		{[]string{"graph", "bu"}, "build\tbuild the packages|bump-minor", ":4"},
		{[]string{"inspect", ""}, "deb", ":8"}, // the shell lists *.deb files
		{[]string{"--progress", ""}, "auto|plain|none", ":4"},
		{[]string{"graph", "--format", ""}, "dot|mermaid", ":4"},
		{[]string{"bump", ""}, "major|minor|patch|revision", ":4"},
	} {
		wd := dir
		if tc.args[0] == "-C" {
			wd = t.TempDir()
		}
		got, directive := complete(t, wd, tc.args...)
		if strings.Join(got, "|") != tc.want || directive != tc.directive {
			t.Errorf("upds %s<TAB>: %q %s, want %q %s", strings.Join(tc.args, " "), got, directive, tc.want, tc.directive)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		if r := upds(t, dir, "completion", shell); r.code != 0 || !strings.Contains(r.stdout, "__complete") {
			t.Errorf("upds completion %s: exit %d, %d bytes", shell, r.code, len(r.stdout))
		}
	}
}

// TestHelpOnEveryCommand: every command, subcommands included, has help with examples.
func TestHelpOnEveryCommand(t *testing.T) {
	root := newRootCmd()
	paths := map[string]bool{}
	forEachCommand(root, func(c *cobra.Command) {
		paths[c.CommandPath()] = true
		args := append(strings.Fields(c.CommandPath())[1:], "--help")
		r := upds(t, t.TempDir(), args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "Examples:\n  ") {
			t.Errorf("upds %s: exit %d, no usage or examples:\n%s", strings.Join(args, " "), r.code, r.stdout)
		}
	})
	for p := range examples {
		if !paths[p] {
			t.Errorf("examples has %q, which is no command", p)
		}
	}
}

// TestSharedCacheOnlyForRun: UPDS_CACHE is the shared cache of upds run; the commands that do
// not build neither open nor check it.
func TestSharedCacheOnlyForRun(t *testing.T) {
	dir := project(t, map[string]string{"BUILD.star": "task('x')\n", "VERSION": "1.0.0\n"})
	t.Setenv("UPDS_CACHE", "ftp://x")
	for _, args := range [][]string{{"tasks"}, {"version"}, {"graph"}} {
		if r := upds(t, dir, args...); r.code != 0 {
			t.Errorf("upds %s with a bad UPDS_CACHE: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if r := upds(t, dir, "run", "x"); r.code != 2 || !strings.Contains(r.stderr, "UPDS_CACHE") {
		t.Errorf("upds run with a bad UPDS_CACHE: exit %d\n%s", r.code, r.stderr)
	}
}
