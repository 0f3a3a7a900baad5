package servertest

// Looking inside a server: commands as root in its namespaces (Command, Run, ReadFile,
// WriteFile) and over SSH as its login user (Dial, SSH).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// rootEnv is the environment of commands run with Command: a root login's.
var rootEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash", "LANG=C.UTF-8"}

// Command returns a command that runs name with args as root inside the server, not
// over SSH: in its namespaces and chroot (nsenter), with the environment of a root
// login (append to Env for more, e.g. DEBIAN_FRONTEND=noninteractive). The process is
// in the server's PID namespace and dies when the server stops.
func (s *Server) Command(name string, args ...string) *exec.Cmd {
	return s.CommandContext(context.Background(), name, args...)
}

// CommandContext is Command with a context.
func (s *Server) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	if !s.Running() {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `echo "servertest: server $1 is not running" >&2; exit 125`, "sh", s.Name)
		return cmd
	}
	// nsenter enters the namespaces and the root this process holds open (never a
	// PID, which may be reused); the command closes them before it starts.
	a := append([]string{"--mount=/proc/self/fd/3", "--uts=/proc/self/fd/4", "--ipc=/proc/self/fd/5", "--pid=/proc/self/fd/6",
		"--root=/proc/self/fd/7", "--wd=/proc/self/fd/7", "--", "/bin/sh", "-c", `exec 3<&- 4<&- 5<&- 6<&- 7<&-; exec "$@"`, "sh", name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", a...)
	cmd.ExtraFiles = append(append([]*os.File(nil), s.ns...), s.root)
	cmd.Env = append([]string(nil), rootEnv...)
	return cmd
}

// Output runs the shell command script (sh -c) as root inside the server and returns
// its standard output and error.
func (s *Server) Output(script string) (stdout, stderr string, err error) {
	cmd := s.Command("/bin/sh", "-c", script)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Run runs the shell command script as root inside the server and returns its
// standard output; it fails the test when the command fails.
func (s *Server) Run(t testing.TB, script string) string {
	t.Helper()
	out, errOut, err := s.Output(script)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s%s", s.Name, script, err, out, errOut)
	}
	return out
}

// ReadFile returns the content of the file at path on the server (following its
// symbolic links as the server does); it fails the test when there is none.
func (s *Server) ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	cmd := s.Command("cat", "--", path)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: read %s: %v\n%s", s.Name, path, err, e.String())
	}
	return o.Bytes()
}

// WriteFile writes data to path on the server (owner root, mode perm), creating its
// parent directories; it fails the test on error.
func (s *Server) WriteFile(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	cmd := s.Command("/bin/sh", "-c", `mkdir -p -- "$(dirname -- "$1")" && cat >"$1" && chmod "$2" -- "$1"`, "sh", path, fmt.Sprintf("%o", perm.Perm()))
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: write %s: %v\n%s", s.Name, path, err, out)
	}
}

// Dial opens an SSH connection as the login user with the fleet's identity, checking
// the host key; it is closed when the test ends.
func (s *Server) Dial(t testing.TB) *ssh.Client {
	t.Helper()
	c, err := s.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *Server) dial() (*ssh.Client, error) {
	c, err := ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(s.signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey), Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("servertest: ssh %s: %w", s.Target(), err)
	}
	return c, nil
}

// SSHOutput runs cmd over SSH as the login user (as ssh USER@HOST CMD does: with the
// user's login shell) and returns its standard output and error.
func (s *Server) SSHOutput(cmd string) (stdout, stderr string, err error) {
	c, err := s.dial()
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		return "", "", err
	}
	defer sess.Close()
	var o, e bytes.Buffer
	sess.Stdout, sess.Stderr = &o, &e
	err = sess.Run(cmd)
	return o.String(), e.String(), err
}

// SSH runs cmd over SSH as the login user and returns its standard output; it fails
// the test when the command fails.
func (s *Server) SSH(t testing.TB, cmd string) string {
	t.Helper()
	out, errOut, err := s.SSHOutput(cmd)
	if err != nil {
		t.Fatalf("ssh %s %s: %v\n%s%s", s.Target(), cmd, err, out, errOut)
	}
	return out
}
