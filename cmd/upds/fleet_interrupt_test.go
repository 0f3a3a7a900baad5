package main

import (
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upds/upds/stdlib/setup"
	"github.com/upds/upds/stdlib/sshconn/servertest"
)

// slowApt makes apt on a server take a while: every dpkg run waits 4 s first, as a
// big upgrade would, so that a test can press Ctrl-C while apt runs.
func slowApt(t *testing.T, s *servertest.Server) {
	t.Helper()
	s.WriteFile(t, "/etc/apt/apt.conf.d/99upds-test-slow", []byte(`DPkg::Pre-Invoke { "sleep 4"; };`+"\n"), 0o644)
}

// running is a upds process started in the background.
type running struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
}

func startUpds(t *testing.T, dir string, args ...string) *running {
	t.Helper()
	r := &running{done: make(chan struct{})}
	r.cmd = exec.Command(updsBin, append([]string{"-C", dir}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := r.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		close(r.done)
	}()
	t.Cleanup(func() { r.cmd.Process.Kill(); <-r.done })
	return r
}

// wait waits for the process to exit, at most d.
func (r *running) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		t.Fatalf("upds did not exit within %s\n%s\n%s", d, r.stdout.String(), r.stderr.String())
	}
}

// waitFor polls a server until cmd succeeds there.
func waitFor(t *testing.T, s *servertest.Server, cmd string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if _, _, err := s.Output(cmd); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q did not succeed within %s", s.Name, cmd, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFleetInterrupt presses Ctrl-C (SIGINT to a real upds process) while apt runs on a
// server: once, upds starts no more servers, waits for apt and exits 130; twice, it
// stops waiting, says that apt still runs there, and the setup goes on to its end; a
// rerun waits for it and finishes the rollout. upds setup exits 130 too.
func TestFleetInterrupt(t *testing.T) {
	s := newFleetRun(t)
	slowApt(t, s.web1)
	slowApt(t, s.web2)
	s.step("Ctrl-C once", s.interruptOnce)
	s.step("Ctrl-C twice", s.interruptTwice)
	s.step("rerun", s.rerunAfterDetach)
	s.step("setup Ctrl-C", s.interruptSetup)
}

// interruptOnce: Ctrl-C while apt runs on web1: upds waits for it, web2 is not started.
func (s *fleetRun) interruptOnce() {
	t := s.t
	r := startUpds(t, s.proj, s.fleetArgs("deploy")...)
	waitFor(t, s.web1, "pgrep -x sleep", 60*time.Second)
	r.cmd.Process.Signal(syscall.SIGINT)
	r.wait(t, 60*time.Second)
	out := r.stdout.String()
	if r.code != 130 || !strings.Contains(out, "web1: current: 4 package change(s)") || !strings.Contains(out, "web2: interrupted: not started") ||
		!strings.Contains(r.stderr.String(), "waiting for web1 to finish") || !strings.Contains(r.stderr.String(), "deploy interrupted: 1 current, 1 interrupted") {
		t.Errorf("deploy with one Ctrl-C: exit %d\n%s\n%s", r.code, out, r.stderr.String())
	}
	if got := versions(t, s.web1); !strings.Contains(got, "hello-server 0.1.0") {
		t.Errorf("web1 after the wait: %s", got)
	}
	if got := versions(t, s.web2); got != "" {
		t.Errorf("web2 was set up: %s", got)
	}
}

// interruptTwice: Ctrl-C twice while apt runs on web2: upds exits at once and says apt
// still runs there; it does, to the end of the setup.
func (s *fleetRun) interruptTwice() {
	t := s.t
	r := startUpds(t, s.proj, s.fleetArgs("deploy")...)
	waitFor(t, s.web2, "pgrep -x sleep", 60*time.Second)
	r.cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(200 * time.Millisecond)
	r.cmd.Process.Signal(syscall.SIGINT)
	start := time.Now()
	r.wait(t, 30*time.Second)
	out := r.stdout.String()
	if r.code != 130 || !strings.Contains(out, "web2: interrupted: upds stopped waiting; the setup is still running there") {
		t.Errorf("deploy with two Ctrl-C: exit %d after %s\n%s\n%s", r.code, time.Since(start), out, r.stderr.String())
	}
	if _, _, err := s.web2.Output(setup.RunningCommand); err != nil {
		t.Errorf("web2: the setup is not running after upds left")
	}
}

// rerunAfterDetach: a deploy right away waits for the setup still running on web2, then
// ends with every server current; the detached setup had finished its work.
func (s *fleetRun) rerunAfterDetach() {
	t := s.t
	reps, out := s.deploy(0)
	if rep := reps["web2"]; !rep.Waited || rep.Status != "current" {
		t.Errorf("web2: %+v\n%s", rep, out.stderr)
	}
	if got := versions(t, s.web2); !strings.Contains(got, "hello-config-beta 0.1.0") {
		t.Errorf("web2: %s", got)
	}
	log := string(s.web2.ReadFile(t, setup.LogFile))
	if !strings.HasSuffix(log, "nothing to do\n") {
		t.Errorf("web2's log of the rerun:\n%s", log)
	}
}

// interruptSetup: upds setup exits 130 on Ctrl-C, after waiting for apt.
func (s *fleetRun) interruptSetup() {
	t := s.t
	s.web1.Run(t, "dpkg -P hello-server >/dev/null")
	r := startUpds(t, s.proj, "setup", "--repo", s.url, "--key", s.key, "--ssh-config", s.f.SSHConfig, "--host", "web1", "hello-server")
	waitFor(t, s.web1, "pgrep -x sleep", 60*time.Second)
	r.cmd.Process.Signal(syscall.SIGINT)
	r.wait(t, 60*time.Second)
	if r.code != 130 || !strings.Contains(r.stdout.String(), "web1: installed  hello-server 0.1.0") {
		t.Errorf("setup with Ctrl-C: exit %d\n%s\n%s", r.code, r.stdout.String(), r.stderr.String())
	}
}
