package sshconn_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/upds/upds/stdlib/sshconn"
	"github.com/upds/upds/stdlib/sshconn/sshtest"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want sshconn.Target
		err  bool
	}{
		{"host", sshconn.Target{Host: "host"}, false},
		{"deploy@repo.example.com", sshconn.Target{User: "deploy", Host: "repo.example.com"}, false},
		{"deploy@repo:2222", sshconn.Target{User: "deploy", Host: "repo", Port: 2222}, false},
		{"u@[::1]:22", sshconn.Target{User: "u", Host: "::1", Port: 22}, false},
		{"u@", sshconn.Target{}, true},
		{"u@h:99999", sshconn.Target{}, true},
	}
	for _, tc := range tests {
		got, err := sshconn.ParseTarget(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v, err %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func run(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, out)
	}
	return string(out)
}

func TestDial(t *testing.T) {
	srv := sshtest.StartConfig(t, sshtest.Config{RSAHostKey: true})
	target := sshconn.Target{User: srv.User, Host: srv.Host, Port: srv.Port}
	dir := t.TempDir()
	otherKey, err := sshtest.WriteKey(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	addr := knownhosts.Normalize(srv.Addr())
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := write("empty", "# nothing")
	changed := write("changed", knownhosts.Line([]string{addr}, otherKey))
	hashed := write("hashed", knownhosts.Line([]string{knownhosts.HashHostname(addr)}, srv.HostKey))
	// Only the RSA key is recorded: the client must ask for it (golang/go#29286),
	// not negotiate ed25519 and call the key changed.
	rsaOnly := write("rsa", knownhosts.Line([]string{addr}, srv.RSAHostKey))
	other := write("otherhost", knownhosts.Line([]string{"[127.0.0.2]:22"}, srv.HostKey))

	tests := []struct {
		name       string
		knownHosts string
		wantErr    string // "" ok; "unknown" or "changed"
	}{
		{"known", srv.KnownHosts, ""},
		{"hashed entry", hashed, ""},
		{"rsa only recorded", rsaOnly, ""},
		{"unknown", empty, "unknown"},
		{"other host only", other, "unknown"},
		{"changed", changed, "changed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c, err := sshconn.Dial(ctx, target, sshconn.Options{Identity: []string{srv.Identity}, KnownHosts: []string{tc.knownHosts}, NoAgent: true, Timeout: 10 * time.Second})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				if got := run(t, c, "echo ok"); got != "ok\n" {
					t.Fatalf("echo ok printed %q", got)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded, want a host key error")
			}
			var he *sshconn.HostKeyError
			if !errors.As(err, &he) {
				t.Fatalf("error %v is not a HostKeyError", err)
			}
			if he.Changed != (tc.wantErr == "changed") {
				t.Errorf("Changed = %v, want %s: %v", he.Changed, tc.wantErr, err)
			}
			msg := err.Error()
			fp := ssh.FingerprintSHA256(srv.HostKey)
			wantLine := knownhosts.Line([]string{addr}, srv.HostKey)
			if !strings.Contains(msg, fp) || !strings.Contains(msg, wantLine) {
				t.Errorf("error does not show fingerprint %s and line %q:\n%s", fp, wantLine, msg)
			}
			if tc.wantErr == "changed" && !strings.Contains(msg, "CHANGED") {
				t.Errorf("changed key error does not say so: %s", msg)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	srv := sshtest.Start(t)
	target := sshconn.Target{User: srv.User, Host: srv.Host, Port: srv.Port}
	ctx := context.Background()
	// Unauthorized key.
	dir := t.TempDir()
	if _, err := sshtest.WriteKey(filepath.Join(dir, "stranger")); err != nil {
		t.Fatal(err)
	}
	_, err := sshconn.Dial(ctx, target, sshconn.Options{Identity: []string{filepath.Join(dir, "stranger")}, KnownHosts: []string{srv.KnownHosts}, NoAgent: true})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("unauthorized key: %v", err)
	}
	// Missing identity file named explicitly.
	_, err = sshconn.Dial(ctx, target, sshconn.Options{Identity: []string{filepath.Join(dir, "missing")}, KnownHosts: []string{srv.KnownHosts}, NoAgent: true})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing identity: %v", err)
	}
	// Nothing listening: the connect error comes back, quickly.
	start := time.Now()
	_, err = sshconn.Dial(ctx, sshconn.Target{Host: "127.0.0.1", Port: 1}, sshconn.Options{Identity: []string{srv.Identity}, KnownHosts: []string{srv.KnownHosts}, NoAgent: true, Timeout: 2 * time.Second})
	if err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("closed port: %v after %v", err, time.Since(start))
	}
	// Default files come from the home directory (Options.Home; by default the passwd
	// home, whatever $HOME says).
	home := t.TempDir()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	data, _ := os.ReadFile(srv.Identity)
	os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), data, 0o600)
	_, err = sshconn.Dial(ctx, target, sshconn.Options{Home: home, ConfigFile: sshconn.ConfigNone})
	var he *sshconn.HostKeyError
	if !errors.As(err, &he) || he.Changed {
		t.Fatalf("no ~/.ssh/known_hosts: want unknown host key error, got %v", err)
	}
	kh, _ := os.ReadFile(srv.KnownHosts)
	os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), kh, 0o600)
	c, err := sshconn.Dial(ctx, target, sshconn.Options{Home: home, ConfigFile: sshconn.ConfigNone})
	if err != nil {
		t.Fatalf("default identity and known_hosts: %v", err)
	}
	c.Close()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if got := sshconn.Home(); got != u.HomeDir || got == os.Getenv("HOME") {
		t.Errorf("Home() = %q, want the passwd home %q, not $HOME %q", got, u.HomeDir, os.Getenv("HOME"))
	}
}

// TestDialAgent authenticates with a key held only by a real ssh-agent.
func TestDialAgent(t *testing.T) {
	for _, tool := range []string{"ssh-agent", "ssh-add"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run .ci/install-deps (openssh-client)", tool)
		}
	}
	srv := sshtest.Start(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agentCmd.Process.Kill(); agentCmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not create its socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	add := exec.Command("ssh-add", srv.Identity)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	// No identity files at all: the home directory is empty.
	home := t.TempDir()
	t.Setenv("SSH_AUTH_SOCK", sock)
	target := sshconn.Target{User: srv.User, Host: srv.Host, Port: srv.Port}
	c, err := sshconn.Dial(context.Background(), target, sshconn.Options{KnownHosts: []string{srv.KnownHosts}, Home: home})
	if err != nil {
		t.Fatalf("Dial with ssh-agent: %v", err)
	}
	defer c.Close()
	if got := run(t, c, "echo agent"); got != "agent\n" {
		t.Errorf("got %q", got)
	}
	// With the agent disabled there is no key left.
	if _, err := sshconn.Dial(context.Background(), target, sshconn.Options{KnownHosts: []string{srv.KnownHosts}, NoAgent: true, Home: home}); err == nil || !strings.Contains(err.Error(), "no SSH key") {
		t.Errorf("NoAgent and no identity files: %v", err)
	}
}

func TestDialAcceptNew(t *testing.T) {
	srv := sshtest.Start(t)
	target := sshconn.Target{User: srv.User, Host: srv.Host, Port: srv.Port}
	kh := filepath.Join(t.TempDir(), "ssh", "known_hosts")
	opt := sshconn.Options{Identity: []string{srv.Identity}, KnownHosts: []string{kh}, NoAgent: true, AcceptNew: true}
	// Explicit known_hosts files must exist, except with AcceptNew.
	c, err := sshconn.Dial(context.Background(), target, opt)
	if err != nil {
		t.Fatalf("accept-new: %v", err)
	}
	c.Close()
	data, _ := os.ReadFile(kh)
	if want := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, srv.HostKey) + "\n"; string(data) != want {
		t.Errorf("known_hosts = %q, want %q", data, want)
	}
	// Now known: works without AcceptNew.
	opt.AcceptNew = false
	if c, err = sshconn.Dial(context.Background(), target, opt); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// A changed key is refused even with AcceptNew.
	other, _ := sshtest.WriteKey(filepath.Join(t.TempDir(), "k"))
	os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, other)+"\n"), 0o600)
	opt.AcceptNew = true
	var he *sshconn.HostKeyError
	if _, err := sshconn.Dial(context.Background(), target, opt); !errors.As(err, &he) || !he.Changed {
		t.Errorf("changed key with AcceptNew: %v", err)
	}
}
