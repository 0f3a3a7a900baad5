package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/setup"
	"github.com/upds/upds/stdlib/sshconn/sshtest"
)

const serversBuild = `
project(name = "upds-audit-test-app", maintainer = "Ops Team <ops@example.com>", license = "MIT",
        copyright = "2026 Example Ltd")
app = deb(
    name = "upds-audit-test-app",
    arch = "all",
    contents = [file("src/hello.txt", "/usr/share/upds-audit-test-app/hello.txt")],
    description = "Test application\nA file, nothing more.",
)
role = deb(name = "upds-audit-test-role", arch = "all", depends = [app],
           description = "Role: the test server\nInstalls everything the test server runs.")
web = deb(name = "upds-audit-test-web", arch = "all", depends = [app, "nginx"],
          description = "Role: a web server\nThe application behind nginx.")
task("build", deps = [app, role, web])
`

// serverRepo is a repository served on 127.0.0.1 by repo.Handler.
type serverRepo struct {
	dir, url, key string
}

func newServerRepo(t *testing.T) *serverRepo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := repo.Init(dir, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err := repo.Handler(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r := &serverRepo{dir: dir, url: srv.URL + "/", key: filepath.Join(dir, "public", "key.asc")}
	f, err := os.OpenFile(filepath.Join(dir, "repo.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "URL: %s\n", r.url)
	f.Close()
	return r
}

// publish copies debs into incoming/ and runs upds repo publish.
func (r *serverRepo) publish(t *testing.T, debs ...string) {
	t.Helper()
	for _, d := range debs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r.dir, "incoming", filepath.Base(d)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if res := upds(t, ".", "repo", "publish", r.dir); res.code != 0 {
		t.Fatalf("repo publish: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// cleanupSource removes what a setup named name leaves behind, and the lists apt
// fetched from the repository.
func cleanupSource(t *testing.T, name, url string) {
	t.Cleanup(func() {
		os.Remove("/etc/apt/keyrings/" + name + ".asc")
		os.Remove("/etc/apt/sources.list.d/" + name + ".sources")
		host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
		lists, _ := filepath.Glob("/var/lib/apt/lists/" + host + "_*")
		for _, l := range lists {
			os.Remove(l)
		}
	})
}

func installed(t *testing.T, pkg string) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	st, ver, _ := strings.Cut(string(out), " ")
	if st != "installed" {
		return ""
	}
	return ver
}

type auditRow struct {
	Host, Package, Installed, Latest, Status, Source, Error string
}

func auditJSON(t *testing.T, res result) []auditRow {
	t.Helper()
	var rows []auditRow
	if err := json.Unmarshal([]byte(res.stdout), &rows); err != nil {
		t.Fatalf("audit --json: %v\n%s\n%s", err, res.stdout, res.stderr)
	}
	return rows
}

func gpgFingerprint(t *testing.T, key string) string {
	t.Helper()
	cmd := exec.Command("gpg", "--batch", "--show-keys", "--with-colons", key)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg --show-keys: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Split(l, ":"); len(f) > 9 && f[0] == "fpr" {
			return f[9]
		}
	}
	t.Fatalf("gpg printed no fingerprint:\n%s", out)
	return ""
}

// TestServersEndToEnd is issue 7's "done when": a role and its app published to a
// repository on 127.0.0.1, upds setup on this machine (and again over SSH: nothing
// to do), audits clean, 1.10.0 published over 1.9.0, audits outdated, apt upgrades,
// audits clean, everything purged; then public/setup.sh does the same with sh.
func TestServersEndToEnd(t *testing.T) {
	need(t, "apt-get", "dpkg", "dpkg-query", "lintian", "curl", "gpg")
	if os.Geteuid() != 0 {
		t.Fatal("installs packages with dpkg and apt-get: run the tests as root, as .ci/run does")
	}
	start := time.Now()
	t.Cleanup(func() { exec.Command("dpkg", "-P", serversRole, serversApp).Run() })
	s := &serversRun{t: t, name: fmt.Sprintf("upds-audit-test-%d", os.Getpid())}
	s.keyFile, s.srcFile = "/etc/apt/keyrings/"+s.name+".asc", "/etc/apt/sources.list.d/"+s.name+".sources"
	s.proj = project(t, map[string]string{"BUILD.star": serversBuild, "VERSION": "1.9.0\n", "src/hello.txt": "hello\n"})
	s.buildRoles()
	s.rp = newServerRepo(t)
	cleanupSource(t, s.name, s.rp.url)
	s.rp.publish(t, s.dist(serversApp, "1.9.0"), s.dist(serversRole, "1.9.0"))
	if _, err := os.Stat(filepath.Join(s.rp.dir, "public", "setup.sh")); err != nil {
		t.Fatalf("publish wrote no setup.sh: %v", err)
	}
	s.setupLocal()
	sshd := sshtest.Start(t)
	s.sshArgs = []string{"--identity", sshd.Identity, "--known-hosts", sshd.KnownHosts}
	s.host = sshd.User + "@" + sshd.Addr()
	s.setupOverSSH(sshd)
	s.auditCurrent()
	s.upgrade()
	// Purge everything, remove the source and the key.
	sh(t, s.proj, "dpkg -P "+serversRole+" "+serversApp+" && rm "+s.keyFile+" "+s.srcFile)
	if installed(t, serversApp) != "" || installed(t, serversRole) != "" {
		t.Fatal("packages still installed after dpkg -P")
	}
	t.Logf("upds setup/audit end to end: %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	s.setupScript()
	t.Logf("setup.sh end to end: %s", time.Since(start).Round(time.Millisecond))
}

// The packages of serversBuild that TestServersEndToEnd installs.
const serversApp, serversRole = "upds-audit-test-app", "upds-audit-test-role"

// serversRun is what the stages of TestServersEndToEnd share.
type serversRun struct {
	t                *testing.T
	proj             string      // the project of serversBuild
	rp               *serverRepo // its repository
	name             string      // of the key and source files of upds setup
	keyFile, srcFile string      // those files
	fpr              string      // the repository key's fingerprint
	host             string      // the SSH server, user@127.0.0.1:port
	sshArgs          []string    // upds's flags to reach it
}

func (s *serversRun) dist(pkg, ver string) string {
	return filepath.Join(s.proj, "dist", pkg+"_"+ver+"_all.deb")
}

// setupArgs are the arguments of upds setup on this machine.
func (s *serversRun) setupArgs() []string {
	return []string{"setup", "--repo", s.rp.url, "--key", s.rp.key, "--name", s.name, "--update=repo", "-q", serversRole}
}

// buildRoles builds 1.9.0; a role package without contents is lintian-clean.
func (s *serversRun) buildRoles() {
	t := s.t
	if r := upds(t, s.proj, "run", "build"); r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	web := s.dist("upds-audit-test-web", "1.9.0")
	if got := sh(t, s.proj, "dpkg-deb --field "+web+" Depends"); got != serversApp+" (= 1.9.0), nginx\n" {
		t.Errorf("web role Depends = %q", got)
	}
	if errs := lintianErrors(t, web, s.dist(serversRole, "1.9.0")); len(errs) > 0 {
		t.Errorf("lintian errors on role packages:\n%s", strings.Join(errs, "\n"))
	}
}

// setupLocal runs upds setup on this machine: key, source and packages in place.
func (s *serversRun) setupLocal() {
	t := s.t
	r := upds(t, s.proj, s.setupArgs()...)
	if r.code != 0 {
		t.Fatalf("setup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	s.fpr = gpgFingerprint(t, s.rp.key)
	for _, want := range []string{"installed  " + serversApp + " 1.9.0", "installed  " + serversRole + " 1.9.0", "role       " + serversRole + " 1.9.0",
		s.keyFile + " written (fingerprint " + s.fpr + ")", s.srcFile + " written"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("setup output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, pkg := range []string{serversApp, serversRole} {
		if v := installed(t, pkg); v != "1.9.0" {
			t.Errorf("dpkg: %s %q installed, want 1.9.0", pkg, v)
		}
	}
	if got, want := sh(t, s.proj, "cat "+s.keyFile), sh(t, s.proj, "cat "+s.rp.key); got != want {
		t.Errorf("%s differs from the repository key", s.keyFile)
	}
	wantSrc := "# written by upds setup\nTypes: deb\nURIs: " + s.rp.url + "\nSuites: stable\nComponents: main\nSigned-By: " + s.keyFile + "\n"
	if got := sh(t, s.proj, "cat "+s.srcFile); got != wantSrc {
		t.Errorf("%s:\n%s\nwant\n%s", s.srcFile, got, wantSrc)
	}
}

// setupOverSSH sets up again over SSH: nothing to do, nothing rewritten; a host on a closed
// port fails on its own, and a host whose key is not in known_hosts is refused.
func (s *serversRun) setupOverSSH(sshd *sshtest.Server) {
	t := s.t
	before := modTimes(t, s.keyFile, s.srcFile)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedHost := sshd.User + "@" + closed.Addr().String()
	closed.Close()
	r := upds(t, s.proj, append(append([]string{"setup", "--host", s.host, "--host", closedHost}, s.sshArgs...), s.setupArgs()[1:]...)...)
	if r.code != 1 || !strings.Contains(r.stdout, s.host+": nothing to do") ||
		!strings.Contains(r.stdout, closedHost+": FAILED: ssh "+strings.TrimPrefix(closedHost, sshd.User+"@")) ||
		!strings.Contains(r.stderr, "setup failed on 1 of 2 host(s)") {
		t.Errorf("second setup over SSH: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if after := modTimes(t, s.keyFile, s.srcFile); after != before {
		t.Errorf("second setup rewrote the key or source file")
	}
	unknown := sshd.User + "@localhost:" + fmt.Sprint(sshd.Port)
	r = upds(t, s.proj, append(append([]string{"setup", "--host", unknown}, s.sshArgs...), s.setupArgs()[1:]...)...)
	if r.code != 1 || !strings.Contains(r.stdout, "host key unknown") {
		t.Errorf("setup on an unknown host: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// auditCurrent audits after setup: clean, locally and over SSH.
func (s *serversRun) auditCurrent() {
	t := s.t
	r := upds(t, s.proj, "audit", "--repo", s.rp.url, "--key", s.rp.key, "--json", "--verbose")
	rows := auditJSON(t, r)
	if r.code != 0 || len(rows) != 2 {
		t.Fatalf("audit after setup: exit %d, rows %+v\n%s", r.code, rows, r.stderr)
	}
	for _, row := range rows {
		if row.Host != "localhost" || row.Status != "current" || row.Installed != "1.9.0" || row.Latest != "1.9.0" || len(row.Source) != 64 {
			t.Errorf("audit row %+v", row)
		}
	}
	if want := sh(t, s.proj, "dpkg-deb --field "+s.dist(serversApp, "1.9.0")+" X-Upds-Source"); rows[0].Source+"\n" != want {
		t.Errorf("audit --verbose source %q, package has %q", rows[0].Source, want)
	}
	r = upds(t, s.proj, append([]string{"audit", "--repo", s.rp.url, "--key", s.rp.key, "--host", s.host}, s.sshArgs...)...)
	if r.code != 0 || !strings.Contains(r.stdout, s.host) || !strings.Contains(r.stdout, "2 current") {
		t.Errorf("audit over SSH: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// publish110 builds the project at 1.10.0 and publishes its app and role packages.
func (s *serversRun) publish110() {
	t := s.t
	if err := os.WriteFile(filepath.Join(s.proj, "VERSION"), []byte("1.10.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := upds(t, s.proj, "run", "build"); r.code != 0 {
		t.Fatalf("build 1.10.0: exit %d\n%s", r.code, r.stderr)
	}
	s.rp.publish(t, s.dist(serversApp, "1.10.0"), s.dist(serversRole, "1.10.0"))
}

// upgrade publishes 1.10.0 over 1.9.0 (audit: outdated), upgrades with apt-get (audit: clean).
func (s *serversRun) upgrade() {
	t := s.t
	s.publish110()
	r := upds(t, s.proj, "audit", "--repo", s.rp.url, "--key", s.rp.key, "--json")
	rows := auditJSON(t, r)
	if r.code != 1 || len(rows) != 2 {
		t.Fatalf("audit after 1.10.0: exit %d, rows %+v", r.code, rows)
	}
	for i, pkg := range []string{serversApp, serversRole} {
		want := auditRow{Host: "localhost", Package: pkg, Installed: "1.9.0", Latest: "1.10.0", Status: "outdated"}
		if rows[i] != want {
			t.Errorf("audit row %d = %+v, want %+v", i, rows[i], want)
		}
	}
	var raw []map[string]any
	json.Unmarshal([]byte(r.stdout), &raw)
	if _, ok := raw[0]["source"]; ok {
		t.Errorf("source shown without --verbose: %v", raw[0])
	}
	aptOnly := "-o Dir::Etc::SourceList=" + s.srcFile + " -o Dir::Etc::SourceParts=/dev/null -o APT::Get::List-Cleanup=0"
	sh(t, s.proj, "apt-get -q "+aptOnly+" update && DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=120 install --only-upgrade "+serversApp+" "+serversRole)
	r = upds(t, s.proj, "audit", "--repo", s.rp.url, "--key", s.rp.key)
	if r.code != 0 || !strings.Contains(r.stdout, "localhost  "+serversApp+"   1.10.0     1.10.0  current") {
		t.Errorf("audit after upgrade: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// setupScript runs public/setup.sh, fetched with curl, with sh: twice, the second time with
// nothing to do.
func (s *serversRun) setupScript() {
	t := s.t
	name := s.name + "-sh"
	cleanupSource(t, name, s.rp.url)
	script := "curl -fsSL " + s.rp.url + "setup.sh | sh -s -- --update=repo --name " + name + " " + serversRole
	out := sh(t, s.proj, script+" 2>/dev/null")
	for _, want := range []string{"key       /etc/apt/keyrings/" + name + ".asc written (fingerprint " + s.fpr + ")",
		"source    /etc/apt/sources.list.d/" + name + ".sources written",
		"installed " + serversApp + " 1.10.0", "installed " + serversRole + " 1.10.0", "role      " + serversRole + " 1.10.0", "\ndone\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("setup.sh output lacks %q:\n%s", want, out)
		}
	}
	if installed(t, serversApp) != "1.10.0" {
		t.Errorf("setup.sh did not install %s 1.10.0", serversApp)
	}
	if out := sh(t, s.proj, script+" 2>/dev/null"); !strings.HasSuffix(out, "nothing to do\n") || !strings.Contains(out, "unchanged") {
		t.Errorf("second setup.sh run:\n%s", out)
	}
	sh(t, s.proj, "dpkg -P "+serversRole+" "+serversApp)
}

func modTimes(t *testing.T, files ...string) string {
	t.Helper()
	var b bytes.Buffer
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %d\n", f, fi.ModTime().UnixNano(), fi.Sys().(*syscall.Stat_t).Ino)
	}
	return b.String()
}

// TestAuditAndSetupBadInput: no answer, a signature that does not verify, a tampered
// index, malformed hosts files and bad flags give clear errors and non-zero exits.
func TestAuditAndSetupBadInput(t *testing.T) {
	rp := newServerRepo(t)
	other := newServerRepo(t)
	dir := t.TempDir()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String() + "/"
	closed.Close()

	tampered := filepath.Join(t.TempDir(), "tampered")
	sh(t, dir, "cp -a "+rp.dir+" "+tampered+" && sed -i 's/^Suite: stable/Suite: stab1e/' "+tampered+"/public/dists/stable/InRelease")
	badHosts := filepath.Join(dir, "hosts")
	os.WriteFile(badHosts, []byte("# servers\nroot@web1\nroot@web2 root@web3\n"), 0o644)

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no answer", []string{"audit", "--repo", deadURL, "--key", rp.key}, 1, "connection refused"},
		{"wrong key", []string{"audit", "--repo", rp.url, "--key", other.key}, 1, "verify"},
		{"tampered index", []string{"audit", "--repo", tampered}, 1, "verify"},
		{"malformed hosts file", []string{"audit", "--repo", rp.dir, "--hosts", badHosts}, 2, badHosts + ":3:"},
		{"missing hosts file", []string{"audit", "--repo", rp.dir, "--hosts", badHosts + ".none"}, 2, "no such file"},
		{"bad --host", []string{"audit", "--repo", rp.dir, "--host", "root@web1:http"}, 2, "--host"},
		{"no --repo", []string{"audit"}, 2, "--repo"},
		{"URL without key", []string{"audit", "--repo", rp.url}, 2, "--key"},
		{"not a repo", []string{"audit", "--repo", dir + "/nothing"}, 2, "not a URL"},
		{"server arguments without BUILD.star", []string{"audit", "--repo", rp.dir, "extra"}, 2, "no BUILD.star"},
		{"setup without key", []string{"setup", "--repo", rp.url, "role"}, 2, "--key"},
		{"setup of a directory", []string{"setup", "--repo", rp.dir, "--key", rp.key, "role"}, 2, "http"},
		{"setup bad role", []string{"setup", "--repo", rp.url, "--key", rp.key, "Bad_Role"}, 2, "Bad_Role"},
		{"setup bad name", []string{"setup", "--repo", rp.url, "--key", rp.key, "--name", "../x", "role"}, 2, "name"},
		{"setup bad update", []string{"setup", "--repo", rp.url, "--key", rp.key, "--update", "some", "role"}, 2, "--update"},
		{"setup unknown role", []string{"setup", "--repo", rp.url, "--key", rp.key, "upds-audit-test-none"}, 1, "not a package of"},
		{"setup wrong key", []string{"setup", "--repo", rp.url, "--key", other.key, "role"}, 1, "verify"},
		{"setup no answer", []string{"setup", "--repo", deadURL, "--key", rp.key, "role"}, 1, "connection refused"},
		{"setup private key", []string{"setup", "--repo", rp.url, "--key", filepath.Join(rp.dir, "private", "signing-key.asc"), "role"}, 2, "PUBLIC KEY"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := upds(t, dir, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Errorf("upds %s: exit %d, want %d and %q in:\n%s%s", strings.Join(c.args, " "), r.code, c.code, c.want, r.stdout, r.stderr)
			}
			if strings.Count(strings.TrimSpace(r.stderr), "\n") > 3 {
				t.Errorf("error is not short:\n%s", r.stderr)
			}
		})
	}
}

// TestPrintSetupResult: the lines upds setup prints for each kind of change.
func TestPrintSetupResult(t *testing.T) {
	r := setup.ParseOutput("web1", []byte("installed app 1.9.0\nupgraded  lib 1.0 -> 1.1\ndowngraded old 2.0 -> 1.0\nremoved   gone 3\nrole      web 1.9.0\n"))
	var b bytes.Buffer
	printSetupResult(&b, r, true)
	want := `web1: installed  app 1.9.0
web1: upgraded   lib 1.0 -> 1.1
web1: downgraded old 2.0 -> 1.0
web1: removed    gone 3
web1: role       web 1.9.0
web1: done: 4 package change(s)
`
	if b.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", b.String(), want)
	}
}
