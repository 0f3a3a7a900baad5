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
)

// txBuild is a project whose release bumps VERSION, then fails or hangs.
const txBuild = `
project(name = "tx", maintainer = "a <b@c>")
pkg = deb("tx-data", version = "content", contents = [file("data.txt", "/opt/tx/data.txt")])
task("bump-patch", run = lambda ctx: print(bump("patch")))
task("fail", deps = [pkg], run = lambda ctx: fail("the upload failed"))
task("hang", deps = [pkg], run = lambda ctx: sh("sleep 60"))
task("nested", run = lambda ctx: sh("\"$UPDS_TEST_BIN\" run bump-patch"))
task("release", steps = ["bump-patch", "fail"])
task("slow-release", steps = ["bump-patch", "hang"])
task("nested-release", steps = ["nested", "fail"])
task("noop", run = lambda ctx: None)
`

func txProject(t *testing.T) string {
	return project(t, map[string]string{"BUILD.star": txBuild, "VERSION": "1.0.0\n", "data.txt": "v1\n"})
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if os.IsNotExist(err) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRunFailedReleaseKeepsVersion: a release whose last step fails leaves VERSION and
// upds.lock as they were (upds.lock: absent before, absent after), says so, exits 1; the
// same with a step that bumps through a nested upds process.
func TestRunFailedReleaseKeepsVersion(t *testing.T) {
	dir := txProject(t)
	t.Setenv("UPDS_TEST_BIN", updsBin)
	for _, task := range []string{"release", "nested-release"} {
		r := upds(t, dir, "run", task)
		if r.code != 1 || !strings.Contains(r.stdout, "1.0.1") {
			t.Fatalf("%s: exit %d\n%s\n%s", task, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "upds: put back as before (the run did not complete): VERSION 1.0.0 (not 1.0.1), upds.lock removed") {
			t.Errorf("%s: stderr:\n%s", task, r.stderr)
		}
		if v := readFile(t, dir, "VERSION"); v != "1.0.0\n" {
			t.Errorf("%s: VERSION after the failed release: %q", task, v)
		}
		if l := readFile(t, dir, "upds.lock"); l != "<absent>" {
			t.Errorf("%s: upds.lock after the failed release: %q", task, l)
		}
	}
	// A dry run writes nothing; a run that completes keeps what it changed.
	if r := upds(t, dir, "run", "bump-patch", "hang", "--dry-run"); r.code != 0 || readFile(t, dir, "upds.lock") != "<absent>" {
		t.Fatalf("dry run: exit %d, upds.lock %q\n%s", r.code, readFile(t, dir, "upds.lock"), r.stderr)
	}
	if r := upds(t, dir, "run", "bump-patch", "noop"); r.code != 0 || readFile(t, dir, "VERSION") != "1.0.1\n" {
		t.Fatalf("bump-patch noop: exit %d, VERSION %q\n%s", r.code, readFile(t, dir, "VERSION"), r.stderr)
	}
}

// startSlowRelease starts upds run slow-release in its own process group and waits until
// it has bumped VERSION.
func startSlowRelease(t *testing.T, dir string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(updsBin, "-C", dir, "--progress=plain", "run", "slow-release")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	deadline := time.Now().Add(30 * time.Second)
	for readFile(t, dir, "VERSION") != "1.0.1\n" || !strings.Contains(readFile(t, dir, "upds.lock"), "tx-data 1.0.1 ") {
		if time.Now().After(deadline) {
			t.Fatalf("the release did not get to its last step:\n%s", se.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the package is built: hang starts its sleep
	return cmd, &se
}

// TestRunInterruptedReleaseKeepsVersion: Ctrl-C during a release exits 130 and puts VERSION
// and upds.lock back.
func TestRunInterruptedReleaseKeepsVersion(t *testing.T) {
	dir := txProject(t)
	cmd, se := startSlowRelease(t, dir)
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want 130\n%s", err, se)
	}
	if v, l := readFile(t, dir, "VERSION"), readFile(t, dir, "upds.lock"); v != "1.0.0\n" || l != "<absent>" {
		t.Fatalf("after Ctrl-C: VERSION %q, upds.lock %q\n%s", v, l, se)
	}
}

// TestRunKilledReleaseIsUndone: after kill -9 of a release, VERSION stays bumped until the
// next command that needs it (upds run, upds bump) puts it back and says so; the next
// release then makes the same version again.
func TestRunKilledReleaseIsUndone(t *testing.T) {
	dir := txProject(t)
	cmd, se := startSlowRelease(t, dir)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	if v := readFile(t, dir, "VERSION"); v != "1.0.1\n" {
		t.Fatalf("VERSION right after kill -9: %q\n%s", v, se)
	}
	r := upds(t, dir, "bump", "patch")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "1.0.1" {
		t.Fatalf("upds bump after the kill: exit %d %q\n%s", r.code, r.stdout, r.stderr)
	}
	want := "upds: put back as before (an earlier run stopped before it completed): VERSION 1.0.0 (not 1.0.1), upds.lock removed"
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr of the next command:\n%s\nwant %s", r.stderr, want)
	}
}

// TestRunWaitsForRunInProgress: a second run in the same project waits for the first and
// says so.
func TestRunWaitsForRunInProgress(t *testing.T) {
	dir := txProject(t)
	cmd, _ := startSlowRelease(t, dir)
	second := exec.Command(updsBin, "-C", dir, "--progress=plain", "run", "noop")
	var se bytes.Buffer
	second.Stderr = &se
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if !strings.Contains(se.String(), "upds: waiting for the upds run in progress in this project (pid ") ||
		!strings.Contains(se.String(), "upds run slow-release") {
		t.Errorf("the second run says:\n%s", se.String())
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	if err := second.Wait(); err != nil {
		t.Fatalf("the second run: %v\n%s", err, se.String())
	}
}

// TestCleanKeepsLock: upds clean removes dist/ and .upds/, never upds.lock.
func TestCleanKeepsLock(t *testing.T) {
	dir := txProject(t)
	if r := upds(t, dir, "run", "noop"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	os.WriteFile(filepath.Join(dir, "upds.lock"), []byte("# kept\n"), 0o644)
	if r := upds(t, dir, "clean"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if l := readFile(t, dir, "upds.lock"); l != "# kept\n" {
		t.Errorf("upds.lock after upds clean: %q", l)
	}
}
