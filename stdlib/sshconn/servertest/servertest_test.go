package servertest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

// buildDeb makes NAME_1.0_all.deb holding /usr/share/NAME/hello with dpkg-deb.
func buildDeb(t *testing.T, dir, name string) string {
	t.Helper()
	root := filepath.Join(dir, name)
	for p, content := range map[string]string{
		"DEBIAN/control":               "Package: " + name + "\nVersion: 1.0\nArchitecture: all\nMaintainer: Tests <tests@example.com>\nDescription: servertest probe\n",
		"usr/share/" + name + "/hello": "hello from " + name + "\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(dir, name+"_1.0_all.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-b", root, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -b: %v\n%s", err, out)
	}
	return deb
}

func mountinfo(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestServers starts web1 (root) and web2 (a sudo user), checks that SSH sessions run
// inside Debian 12 roots where dpkg, apt and sudo work, installs a package into each
// (dpkg -i over SFTP on web1, apt from a repository on 127.0.0.1 on web2), checks each
// landed only on its server, and that stopping leaves no process and no mount.
func TestServers(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "dpkg-scanpackages", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: .ci/install-deps installs it", tool)
		}
	}
	mountsBefore := mountinfo(t)
	// The first Start on a machine makes the base root: time it apart.
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b, err := Prepare(t.Context(), cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	t.Logf("base root %s ready in %s", b.Root, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	f := Start(t)
	t.Logf("two servers started in %s", time.Since(start).Round(time.Millisecond))
	web1, web2 := f.Server("web1"), f.Server("web2")
	if web1 == nil || web2 == nil || web1.User != "root" || web2.User != "deploy" || web1.Port == web2.Port {
		t.Fatalf("servers: %+v", f.Servers)
	}
	if mountinfo(t) != mountsBefore {
		t.Errorf("starting servers changed this machine's mounts:\n%s", mountinfo(t))
	}

	checkLogins(t, f)
	installProbes(t, f)
	checkApart(t, f)
	// Services are not started, apt has no Debian source, and Run and WriteFile work.
	if out, errOut, err := web1.Output("invoke-rc.d nginx start"); err != nil || !strings.Contains(errOut, "denied") {
		t.Errorf("invoke-rc.d nginx start: %v\n%s%s", err, out, errOut)
	}
	if got := web1.Run(t, "cat /etc/apt/sources.list | grep -v '^#' | wc -l"); got != "0\n" {
		t.Errorf("sources.list has %s lines", got)
	}
	web1.WriteFile(t, "/etc/servertest/x", []byte("x\n"), 0o600)
	if got := web1.Run(t, "stat -c '%a %U' /etc/servertest/x; hostname; id -u"); got != "600 root\nweb1\n0\n" {
		t.Errorf("Run: %q", got)
	}

	checkStop(t, f, mountsBefore)
}

// checkLogins: SSH sessions run in Debian 12 with the server's hostname, sshd is PID 1,
// web1 logs in as root and web2 as deploy with sudo; OpenSSH's client works with the
// fleet's ssh_config.
func checkLogins(t *testing.T, f *Fleet) {
	web1, web2 := f.Server("web1"), f.Server("web2")
	for _, s := range f.Servers {
		if got := s.SSH(t, "cat /etc/debian_version"); !strings.HasPrefix(got, "12.") {
			t.Errorf("%s: /etc/debian_version %q", s.Name, got)
		}
		if got := s.SSH(t, "hostname"); got != s.Name+"\n" {
			t.Errorf("%s: hostname %q", s.Name, got)
		}
		if got := s.SSH(t, "dpkg -l apt | tail -n 1"); !strings.HasPrefix(got, "ii  apt ") {
			t.Errorf("%s: dpkg -l apt: %q", s.Name, got)
		}
		if got := s.SSH(t, "ps -o pid=,comm= -p 1"); strings.Fields(got)[1] != "sshd" {
			t.Errorf("%s: PID 1 is %q, want sshd", s.Name, got)
		}
	}
	if got := web1.SSH(t, "id -u"); got != "0\n" {
		t.Errorf("web1: id -u %q", got)
	}
	if got := web2.SSH(t, "id -un; sudo -n id -u; echo $HOME"); got != "deploy\n0\n/home/deploy\n" {
		t.Errorf("web2: %q", got)
	}
	// Root cannot log in on web2, and the deploy key does not open web1 as deploy.
	if _, _, err := (&Server{Host: web2.Host, Port: web2.Port, User: "root", HostKey: web2.HostKey, signer: f.Signer}).SSHOutput("true"); err == nil {
		t.Error("root logged in on web2")
	}
	// OpenSSH's client with the fleet's ssh_config.
	if out, err := exec.Command("ssh", "-F", f.SSHConfig, "-o", "BatchMode=yes", "web2", "sudo -n hostname").CombinedOutput(); err != nil || string(out) != "web2\n" {
		t.Errorf("ssh -F %s web2: %v\n%s", f.SSHConfig, err, out)
	}
	if kh, _ := os.ReadFile(f.KnownHosts); strings.Count(string(kh), "\n") != 2 || !strings.Contains(string(kh), web1.KnownHostsLine()) {
		t.Errorf("known_hosts:\n%s", kh)
	}

}

// installProbes installs a package on each server: on web1 with dpkg -i after an SFTP
// upload, on web2 with apt from a repository on 127.0.0.1, with sudo.
func installProbes(t *testing.T, f *Fleet) {
	web1, web2 := f.Server("web1"), f.Server("web2")
	// web1: a package sent over SFTP, installed with dpkg -i over SSH.
	debs := t.TempDir()
	debA := buildDeb(t, debs, "servertest-probe-a")
	c := web1.Dial(t)
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(debA)
	w, err := sc.Create("/tmp/probe-a.deb")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	w.Close()
	sc.Close()
	web1.SSH(t, "dpkg -i /tmp/probe-a.deb && rm /tmp/probe-a.deb")

	// web2: a package from an apt repository on 127.0.0.1, with sudo.
	debB := buildDeb(t, debs, "servertest-probe-b")
	pool := t.TempDir()
	os.Rename(debB, filepath.Join(pool, filepath.Base(debB)))
	scan := exec.Command("dpkg-scanpackages", ".")
	scan.Dir = pool
	pkgs, err := scan.Output()
	if err != nil {
		t.Fatalf("dpkg-scanpackages: %v", err)
	}
	os.WriteFile(filepath.Join(pool, "Packages"), pkgs, 0o644)
	srv := httptest.NewServer(http.FileServer(http.Dir(pool)))
	defer srv.Close()
	web2.WriteFile(t, "/etc/apt/sources.list.d/probe.list", []byte("deb [trusted=yes] "+srv.URL+"/ ./\n"), 0o644)
	web2.SSH(t, "sudo -n apt-get -q update && sudo -n DEBIAN_FRONTEND=noninteractive apt-get -q -y install servertest-probe-b")

}

// checkApart: each package is on its server only: not on the other, the base or this machine.
func checkApart(t *testing.T, f *Fleet) {
	web1, web2 := f.Server("web1"), f.Server("web2")
	status := func(s *Server, pkg string) string {
		out, _, _ := s.Output("dpkg-query -W -f='${db:Status-Status}' " + pkg)
		return out
	}
	for _, c := range []struct {
		s        *Server
		pkg      string
		want     string
		inChange bool
	}{
		{web1, "servertest-probe-a", "installed", true},
		{web2, "servertest-probe-a", "", false},
		{web2, "servertest-probe-b", "installed", true},
		{web1, "servertest-probe-b", "", false},
	} {
		if got := status(c.s, c.pkg); got != c.want {
			t.Errorf("%s: %s status %q, want %q", c.s.Name, c.pkg, got, c.want)
		}
		file := "/usr/share/" + c.pkg + "/hello"
		_, err := os.Stat(filepath.Join(c.s.Changes, file))
		if (err == nil) != c.inChange {
			t.Errorf("%s: %s in Changes: %v, want %v", c.s.Name, file, err == nil, c.inChange)
		}
		if _, err := os.Stat(filepath.Join(c.s.Root(), file)); (err == nil) != c.inChange {
			t.Errorf("%s: %s under Root(): %v, want %v", c.s.Name, file, err == nil, c.inChange)
		}
		if c.inChange {
			if got := string(c.s.ReadFile(t, file)); got != "hello from "+c.pkg+"\n" {
				t.Errorf("%s: %s = %q", c.s.Name, file, got)
			}
		}
		for _, p := range []string{file, filepath.Join(f.Base.Root, file)} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s exists outside the servers", p)
			}
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "servertest-probe-a").CombinedOutput(); err == nil {
		t.Errorf("servertest-probe-a is installed on this machine: %s", out)
	}

}

// checkStop: a process left running in a server (as after a Ctrl-C) dies with it; the stop
// leaves no process, no mount and no directory.
func checkStop(t *testing.T, f *Fleet, mountsBefore string) {
	web1, web2 := f.Server("web1"), f.Server("web2")
	// A process left running in the server (as after a Ctrl-C) dies with it.
	web2.SSH(t, "sudo -n sh -c 'nohup sleep 1000 >/dev/null 2>&1 &'")
	if got := web2.Run(t, "for i in $(seq 100); do pgrep -x sleep && break; sleep 0.05; done | wc -l"); got != "1\n" {
		t.Errorf("pgrep sleep: %q", got)
	}
	var procs []string // "PID STARTTIME": PIDs alone are reused
	for _, s := range f.Servers {
		for _, p := range s.Processes() {
			procs = append(procs, processID(p))
		}
	}
	if len(procs) < 5 {
		t.Errorf("processes of the servers: %v", procs)
	}
	dirs := []string{f.Dir, web1.Dir, web2.Dir}
	start := time.Now()
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("two servers stopped in %s", time.Since(start).Round(time.Millisecond))
	for _, s := range f.Servers {
		if s.Running() || s.Root() != "" || len(s.Processes()) > 0 {
			t.Errorf("%s still running", s.Name)
		}
		if out, _, err := s.Output("true"); err == nil {
			t.Errorf("Output on a stopped server: %s", out)
		}
	}
	for _, p := range procs {
		pid, _ := strconv.Atoi(strings.Fields(p)[0])
		if processID(pid) == p {
			t.Errorf("process %s still exists", p)
		}
	}
	if m := mountinfo(t); m != mountsBefore {
		t.Errorf("mounts after stop differ:\n%s\nbefore:\n%s", m, mountsBefore)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s not removed", d)
		}
	}
	if bytes.Contains([]byte(mountinfo(t)), []byte("servertest")) {
		t.Error("a servertest mount is left")
	}
}

// TestSpecs: three servers at once, a user without sudo, and specs Start refuses.
func TestSpecs(t *testing.T) {
	for _, bad := range [][]Spec{
		{{Name: "Web1"}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "a", User: "Bad User"}},
	} {
		if _, err := start(t, bad); err == nil || !strings.Contains(err.Error(), "servertest:") {
			t.Errorf("start(%+v): %v", bad, err)
		}
	}
	f := Start(t, Spec{Name: "db1"}, Spec{Name: "db2", User: "admin"}, Spec{Name: "db3", User: "guest", NoSudo: true})
	if got := f.Servers[0].SSH(t, "id -un"); got != "root\n" {
		t.Errorf("db1: login user %q", got)
	}
	if got := f.Server("db2").SSH(t, "sudo -n id -un"); got != "root\n" {
		t.Errorf("db2: sudo -n id -un %q", got)
	}
	if out, errOut, err := f.Server("db3").SSHOutput("sudo -n true"); err == nil {
		t.Errorf("db3: sudo worked without rights: %s%s", out, errOut)
	}
	if len(f.Targets()) != 3 || f.Targets()[2] != "guest@"+f.Server("db3").Addr() {
		t.Errorf("Targets: %v", f.Targets())
	}
	cfg, _ := os.ReadFile(f.SSHConfig)
	for _, s := range f.Servers {
		if !strings.Contains(string(cfg), s.SSHConfigBlock(s.Name)) {
			t.Errorf("ssh_config lacks the block of %s:\n%s", s.Name, cfg)
		}
	}
}
