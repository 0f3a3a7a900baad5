package sshconn_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/sshconn"
	"github.com/upds/upds/stdlib/sshconn/sshtest"
)

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestResolve applies an ssh_config(5) file as ssh -G would.
func TestResolve(t *testing.T) {
	home := t.TempDir()
	cfg := writeFile(t, filepath.Join(home, ".ssh", "config"), `# the user's configuration
Host web1
    HostName 10.0.0.5
    Port 2222
    User deploy
    IdentityFile ~/.ssh/web_key
    IdentityFile "/keys/%r@%h:%p"
    IdentitiesOnly yes
    UserKnownHostsFile ~/.ssh/fleet_hosts %d/other
    StrictHostKeyChecking accept-new
    ProxyJump bastion,ssh://jump@10.0.0.1:2200

Host *.internal
    HostName %h.example.com
    ProxyJump none

Match host db*
    User postgres

Host *
    User nobody
    IdentityFile ~/.ssh/id_fleet
`)
	for _, c := range []struct {
		in   string
		want sshconn.Resolved
	}{
		{"web1", sshconn.Resolved{
			Target: sshconn.Target{User: "deploy", Host: "10.0.0.5", Port: 2222}, Alias: "web1",
			Identity:       []string{filepath.Join(home, ".ssh/web_key"), "/keys/deploy@10.0.0.5:2222", filepath.Join(home, ".ssh/id_fleet")},
			IdentitiesOnly: true, AcceptNew: true,
			KnownHosts: []string{filepath.Join(home, ".ssh/fleet_hosts"), home + "/other"},
			ProxyJump:  []sshconn.Target{{Host: "bastion"}, {User: "jump", Host: "10.0.0.1", Port: 2200}},
		}},
		// What the target names wins.
		{"root@web1:22", sshconn.Resolved{
			Target: sshconn.Target{User: "root", Host: "10.0.0.5", Port: 22}, Alias: "web1",
			Identity:       []string{filepath.Join(home, ".ssh/web_key"), "/keys/root@10.0.0.5:22", filepath.Join(home, ".ssh/id_fleet")},
			IdentitiesOnly: true, AcceptNew: true,
			KnownHosts: []string{filepath.Join(home, ".ssh/fleet_hosts"), home + "/other"},
			ProxyJump:  []sshconn.Target{{Host: "bastion"}, {User: "jump", Host: "10.0.0.1", Port: 2200}},
		}},
		{"app.internal", sshconn.Resolved{Target: sshconn.Target{User: "nobody", Host: "app.internal.example.com"}, Alias: "app.internal",
			Identity: []string{filepath.Join(home, ".ssh/id_fleet")}}},
		{"db1", sshconn.Resolved{Target: sshconn.Target{User: "postgres", Host: "db1"}, Alias: "db1",
			Identity: []string{filepath.Join(home, ".ssh/id_fleet")}}},
	} {
		tg, err := sshconn.ParseTarget(c.in)
		if err != nil {
			t.Fatal(err)
		}
		// The user's file, found under Home, and named explicitly: the same.
		for _, opt := range []sshconn.Options{{Home: home}, {Home: home, ConfigFile: cfg}} {
			got, err := sshconn.Resolve(tg, opt)
			if err != nil {
				t.Fatalf("Resolve(%q): %v", c.in, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Resolve(%q, %+v) =\n%+v\nwant\n%+v", c.in, opt, got, c.want)
			}
		}
	}
	// No configuration: the target as given, the local user.
	got, err := sshconn.Resolve(sshconn.Target{Host: "web1"}, sshconn.Options{Home: home, ConfigFile: sshconn.ConfigNone})
	if err != nil || got.Target.Host != "web1" || got.Target.Port != 0 || got.Target.User == "" || len(got.Identity) != 0 {
		t.Errorf("ConfigNone: %+v, %v", got, err)
	}
	for _, bad := range []struct{ text, want string }{
		{"Host x\n  Port http\n", "Port"},
		{"Host x\n  ProxyJump a b\n", "ProxyJump"},
		{"Match exec true\n  User y\n", "--ssh-config none"},
	} {
		f := writeFile(t, filepath.Join(t.TempDir(), "config"), bad.text)
		if _, err := sshconn.Resolve(sshconn.Target{Host: "x"}, sshconn.Options{ConfigFile: f}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("config %q: %v, want an error with %q", bad.text, err, bad.want)
		}
	}
	if _, err := sshconn.Resolve(sshconn.Target{Host: "x"}, sshconn.Options{ConfigFile: filepath.Join(home, "none-such")}); err == nil {
		t.Error("a missing named config file was accepted")
	}
}

// TestDialConfigAlias reaches a server by its alias in the configuration: HostName, Port,
// User, IdentityFile and UserKnownHostsFile come from it.
func TestDialConfigAlias(t *testing.T) {
	srv := sshtest.Start(t)
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".ssh", "config"), "Host web1\n  HostName 127.0.0.1\n  Port "+strconv.Itoa(srv.Port)+
		"\n  User "+srv.User+"\n  IdentityFile "+srv.Identity+"\n  UserKnownHostsFile "+srv.KnownHosts+"\n")
	c, err := sshconn.Dial(context.Background(), sshconn.Target{Host: "web1"}, sshconn.Options{Home: home, NoAgent: true})
	if err != nil {
		t.Fatalf("Dial web1: %v", err)
	}
	defer c.Close()
	if got := run(t, c, "echo alias"); got != "alias\n" {
		t.Errorf("got %q", got)
	}
	// Without the configuration the alias is just a name.
	if _, err := sshconn.Dial(context.Background(), sshconn.Target{Host: "web1"}, sshconn.Options{Home: home, NoAgent: true, ConfigFile: sshconn.ConfigNone}); err == nil {
		t.Error("web1 reached without the configuration")
	}
}

// TestProxyJump reaches a server through a jump host, two real sshds on 127.0.0.1: the
// configuration names the jump; with forwarding refused on the jump host the target
// cannot be reached (so the connection did go through it); an unknown jump host key is
// refused.
func TestProxyJump(t *testing.T) {
	target := sshtest.Start(t)
	jump := sshtest.Start(t)
	closedJump := sshtest.StartConfig(t, sshtest.Config{Extra: "AllowTcpForwarding no"})
	home := t.TempDir()
	kh := writeFile(t, filepath.Join(home, "known_hosts"), readFile(t, target.KnownHosts)+readFile(t, jump.KnownHosts)+readFile(t, closedJump.KnownHosts))
	block := func(alias string, s *sshtest.Server, extra string) string {
		return "Host " + alias + "\n  HostName 127.0.0.1\n  Port " + strconv.Itoa(s.Port) + "\n  User " + s.User + "\n  IdentityFile " + s.Identity + "\n" + extra
	}
	cfg := writeFile(t, filepath.Join(home, "config"), block("app", target, "  ProxyJump bastion\n")+
		block("app-closed", target, "  ProxyJump closed\n")+block("bastion", jump, "")+block("closed", closedJump, "")+
		block("app-chain", target, "  ProxyJump closed-x,bastion\n")+block("closed-x", jump, "")+
		"Host *\n  UserKnownHostsFile "+kh+"\n")
	opt := sshconn.Options{Home: home, ConfigFile: cfg, NoAgent: true}
	for _, alias := range []string{"app", "app-chain"} {
		c, err := sshconn.Dial(context.Background(), sshconn.Target{Host: alias}, opt)
		if err != nil {
			t.Fatalf("Dial %s through the jump host: %v", alias, err)
		}
		if got := run(t, c, "echo through"); got != "through\n" {
			t.Errorf("%s: got %q", alias, got)
		}
		c.Close()
	}
	_, err := sshconn.Dial(context.Background(), sshconn.Target{Host: "app-closed"}, opt)
	if err == nil || !strings.Contains(err.Error(), "ProxyJump") && !strings.Contains(err.Error(), "prohibited") {
		t.Errorf("through a jump host that refuses forwarding: %v", err)
	}
	// The jump host's key must be known too.
	writeFile(t, kh, readFile(t, target.KnownHosts))
	var he *sshconn.HostKeyError
	if _, err := sshconn.Dial(context.Background(), sshconn.Target{Host: "app"}, opt); !errors.As(err, &he) || he.Target.Port != jump.Port {
		t.Errorf("unknown jump host key: %v", err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
