package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/upds/upds/stdlib/deploy"
	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/sshconn/servertest"
)

// fleetRun is what the stages of TestFleet share: two real Debian 12 servers (web1 with a
// root login, web2 with the sudo user deploy), a copy of examples/hello whose inventory
// names them, and its repository served on 127.0.0.1.
type fleetRun struct {
	t          *testing.T
	f          *servertest.Fleet
	web1, web2 *servertest.Server
	proj       string
	url, key   string
	start      time.Time
}

// TestFleet is issue 14 on real servers: the example deployed to two servers (install,
// release, deploy, audit clean), other sources of the repository replaced, a config
// package chosen through an alternative upgraded, setup.sh on an upds-configured server,
// a conffile conflict reported, a half-removed role and an interrupted dpkg repaired,
// ~/.ssh/config from the passwd home. TestFleetInterrupt does Ctrl-C.
func TestFleet(t *testing.T) {
	s := newFleetRun(t)
	s.step("legacy sources", s.legacySources)
	s.step("first deploy", s.firstDeploy)
	s.step("audit and rerun", s.auditAndRerun)
	s.step("release", s.release)
	s.step("setup.sh", s.setupScript)
	s.step("conffile conflict", s.conffileConflict)
	s.step("repairs", s.repairs)
	s.step("ssh config from the passwd home", s.passwdHome)
}

func newFleetRun(t *testing.T) *fleetRun {
	t.Helper()
	need(t, "dpkg-deb", "unshare", "mount")
	if os.Geteuid() != 0 {
		t.Fatal("the test servers need root: run the tests as root, as .ci/run does")
	}
	s := &fleetRun{t: t, start: time.Now()}
	s.f = servertest.Start(t)
	s.web1, s.web2 = s.f.Server("web1"), s.f.Server("web2")
	t.Logf("servers started in %s", time.Since(s.start).Round(time.Millisecond))
	s.proj = copyExample(t, "hello")
	if r := upds(t, s.proj, "repo", "init", "repo"); r.code != 0 {
		t.Fatalf("repo init: %s", r.stderr)
	}
	h, err := repo.Handler(filepath.Join(s.proj, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url, s.key = srv.URL+"/", filepath.Join(s.proj, "repo", "public", "key.asc")
	appendFile(t, filepath.Join(s.proj, "repo", "repo.conf"), "URL: "+s.url+"\n")
	if r := upds(t, s.proj, "run", "publish"); r.code != 0 {
		t.Fatalf("publish: %s", r.stderr)
	}
	// fleet() names the test's repository.
	sh(t, s.proj, "sed -i 's|http://apt.example.com/|"+s.url+"|' BUILD.star")
	return s
}

// step runs a stage and logs how long it took.
func (s *fleetRun) step(name string, fn func()) {
	start := time.Now()
	fn()
	s.t.Logf("%s: %s (%s since the start)", name, time.Since(start).Round(time.Millisecond), time.Since(s.start).Round(time.Second))
	if s.t.Failed() {
		s.t.FailNow()
	}
}

// copyExample copies examples/NAME as a fresh clone has it.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	sh(t, ".", "cp -a ../../examples/"+name+" "+dst+" && rm -rf "+dst+"/dist "+dst+"/.upds "+dst+"/repo")
	return dst
}

func appendFile(t *testing.T, p, text string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// fleetArgs are the flags that point upds at the test's repository and servers.
func (s *fleetRun) fleetArgs(args ...string) []string {
	return append(args, "--repo", s.url, "--key", s.key, "--ssh-config", s.f.SSHConfig)
}

// deploy runs upds deploy --json and returns its reports.
func (s *fleetRun) deploy(wantCode int, args ...string) (map[string]*deploy.Report, result) {
	t := s.t
	t.Helper()
	r := upds(t, s.proj, s.fleetArgs(append([]string{"deploy", "--json"}, args...)...)...)
	var reports []*deploy.Report
	if err := json.Unmarshal([]byte(r.stdout), &reports); err != nil {
		t.Fatalf("deploy --json: exit %d: %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	byName := map[string]*deploy.Report{}
	for _, rep := range reports {
		byName[rep.Server] = rep
	}
	if r.code != wantCode {
		t.Errorf("deploy %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), r.code, wantCode, r.stdout, r.stderr)
	}
	return byName, r
}

// versions returns "NAME VERSION" lines of the hello packages installed on a server.
func versions(t *testing.T, s *servertest.Server) string {
	t.Helper()
	return s.Run(t, `dpkg-query -W -f='${db:Status-Abbrev}${Package} ${Version}\n' 'hello*' | sed -n 's/^ii //p' | sort`)
}

// changes renders a report's changes as "ACTION NAME VERSIONS" lines, sorted.
func changes(r *deploy.Report) string {
	var out []string
	for _, c := range r.Changes {
		if strings.HasPrefix(c.Package, "hello") {
			out = append(out, string(c.Action)+" "+c.Package+" "+c.Versions())
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// aptUpdate runs apt-get update on a server; it must succeed without warnings about the
// repository's sources.
func aptUpdate(t *testing.T, s *servertest.Server) {
	t.Helper()
	out, errOut, err := s.Output("apt-get -q update 2>&1")
	if err != nil || strings.Contains(out+errOut, "Conflicting") || strings.Contains(out+errOut, "configured multiple times") {
		t.Errorf("%s: apt-get update: %v\n%s%s", s.Name, err, out, errOut)
	}
}

// legacySources gives each server the sources an older upds setup and setup.sh left: two
// sources of one URL with different keys, the state that broke apt.
func (s *fleetRun) legacySources() {
	t := s.t
	k, err := os.ReadFile(s.key)
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*servertest.Server{s.web1, s.web2} {
		srv.WriteFile(t, "/etc/apt/keyrings/127.0.0.1.asc", k, 0o644)
		srv.WriteFile(t, "/etc/apt/sources.list.d/127.0.0.1.sources", []byte("# written by upds setup\nTypes: deb\nURIs: "+
			strings.TrimSuffix(s.url, "/")+"\nSuites: stable\nComponents: main\nSigned-By: /etc/apt/keyrings/127.0.0.1.asc\n"), 0o644)
	}
	s.web1.WriteFile(t, "/etc/apt/keyrings/old.asc", k, 0o644)
	s.web1.WriteFile(t, "/etc/apt/sources.list.d/old.list", []byte("deb [signed-by=/etc/apt/keyrings/old.asc] "+s.url+" stable main\n"), 0o644)
	out, _, _ := s.web1.Output("apt-get -q update 2>&1")
	if !strings.Contains(out, "Conflicting values set for option Signed-By") {
		t.Fatalf("the legacy sources do not break apt as they did:\n%s", out)
	}
}

// firstDeploy installs the example on both servers: web1 (root) names only the role and
// gets the production configuration through the role's alternative; web2 (sudo) the beta one.
func (s *fleetRun) firstDeploy() {
	t := s.t
	reps, _ := s.deploy(0)
	want := map[string]string{
		"web1": "installed hello 0.1.0\ninstalled hello-config-production 0.1.0\ninstalled hello-server 0.1.0\ninstalled hello-virtualenv 0.1.0",
		"web2": "installed hello 0.1.0\ninstalled hello-config-beta 0.1.0\ninstalled hello-server 0.1.0\ninstalled hello-virtualenv 0.1.0",
	}
	for name, w := range want {
		r := reps[name]
		if r == nil || r.Status != deploy.Current || changes(r) != w {
			t.Errorf("%s: report %+v\nchanges:\n%s\nwant\n%s", name, r, changes(r), w)
		}
	}
	if r := reps["web1"]; len(r.Replaced) != 4 {
		t.Errorf("web1: replaced %q, want the two sources and their keys", r.Replaced)
	}
	if r := reps["web2"]; len(r.Replaced) != 2 {
		t.Errorf("web2: replaced %q, want the source and its key", r.Replaced)
	}
	for _, srv := range []*servertest.Server{s.web1, s.web2} {
		ls := srv.Run(t, "ls /etc/apt/sources.list.d /etc/apt/keyrings")
		if ls != "/etc/apt/keyrings:\nupds.asc\n\n/etc/apt/sources.list.d:\nupds.sources\n" {
			t.Errorf("%s: apt's files:\n%s", srv.Name, ls)
		}
		aptUpdate(t, srv)
	}
	if v := versions(t, s.web1); !strings.Contains(v, "hello-config-production 0.1.0") {
		t.Errorf("web1: %s", v)
	}
}

// auditAndRerun: the inventory's audit is clean; a second deploy changes nothing.
func (s *fleetRun) auditAndRerun() {
	t := s.t
	// Every server of the inventory, against fleet()'s repository.
	r := upds(t, s.proj, "audit", "--ssh-config", s.f.SSHConfig)
	if r.code != 0 || !strings.Contains(r.stdout, "web1  hello-config-production  0.1.0") || !strings.Contains(r.stdout, "8 current") {
		t.Errorf("audit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	reps, _ := s.deploy(0, "--parallel", "2")
	for _, name := range []string{"web1", "web2"} {
		if rep := reps[name]; rep.Status != deploy.Current || len(rep.Changes) != 0 || len(rep.Replaced) != 0 {
			t.Errorf("%s: second deploy: %+v", name, rep)
		}
	}
}

// release: a code change and a bump; the deploy upgrades every package whose version changed,
// the configuration web1 got through the role's alternative included; the virtualenv keeps
// its version (its content did not change) and stays.
func (s *fleetRun) release() {
	t := s.t
	sh(t, s.proj, `sed -i 's|<h1>{greeting}</h1>|<h1>{greeting} Welcome back.</h1>|' src/hello/app.py`)
	if r := upds(t, s.proj, "run", "release"); r.code != 0 {
		t.Fatalf("release: %s", r.stderr)
	}
	r := upds(t, s.proj, s.fleetArgs("audit", "web1", "web2")...)
	if r.code != 1 || !strings.Contains(r.stdout, "2 current, 6 outdated") {
		t.Errorf("audit after the release: exit %d\n%s", r.code, r.stdout)
	}
	reps, out := s.deploy(0, "--canary")
	for _, name := range []string{"web1", "web2"} {
		cfg := map[string]string{"web1": "production", "web2": "beta"}[name]
		w := "upgraded hello 0.1.0 -> 0.1.1\nupgraded hello-config-" + cfg + " 0.1.0 -> 0.1.1\nupgraded hello-server 0.1.0 -> 0.1.1"
		if rep := reps[name]; rep.Status != deploy.Current || changes(rep) != w {
			t.Errorf("%s: deploy of 0.1.1: %+v\n%s", name, rep, out.stderr)
		}
	}
	if got := s.web2.Run(t, "grep -c 'Welcome back' /srv/python/hello/app.py"); got != "1\n" {
		t.Errorf("web2 runs the old code")
	}
	if r := upds(t, s.proj, s.fleetArgs("audit", "web1", "web2")...); r.code != 0 {
		t.Errorf("audit after the deploy: exit %d\n%s", r.code, r.stdout)
	}
}

// setupScript: the repository's setup.sh on an upds-configured server keeps apt working,
// and setup.sh and upds deploy each find nothing to do after the other.
func (s *fleetRun) setupScript() {
	t := s.t
	for i := 0; i < 2; i++ {
		out := s.web2.SSH(t, "curl -fsSL "+s.url+"setup.sh | sudo sh -s -- hello-server hello-config-beta 2>/dev/null")
		if !strings.HasSuffix(out, "nothing to do\n") || !strings.Contains(out, "source    /etc/apt/sources.list.d/upds.sources unchanged") {
			t.Errorf("setup.sh on web2 (run %d):\n%s", i+1, out)
		}
	}
	aptUpdate(t, s.web2)
	if ls := s.web2.Run(t, "ls /etc/apt/sources.list.d"); ls != "upds.sources\n" {
		t.Errorf("web2 sources after setup.sh: %s", ls)
	}
	reps, _ := s.deploy(0, "web2")
	if rep := reps["web2"]; rep.Status != deploy.Current || len(rep.Changes)+len(rep.Replaced) != 0 {
		t.Errorf("deploy after setup.sh: %+v", rep)
	}
}

// conffileConflict: a conffile edited on web2, a release that changes it: the deploy
// installs the rest, keeps the local file, reports the conflict and exits 1; audit too.
func (s *fleetRun) conffileConflict() {
	t := s.t
	conf := "/etc/nginx/sites-available/hello"
	s.web2.Run(t, "echo '# local change' >> "+conf)
	appendFile(t, filepath.Join(s.proj, "config/beta/nginx.conf"), "# 0.1.2: a new comment\n")
	if r := upds(t, s.proj, "run", "release"); r.code != 0 {
		t.Fatalf("release: %s", r.stderr)
	}
	reps, out := s.deploy(1, "--keep-going")
	rep := reps["web2"]
	if rep.Status != deploy.Conflicts || len(rep.Conflicts) != 1 || rep.Conflicts[0].File != conf+".dpkg-dist" ||
		!strings.Contains(changes(rep), "upgraded hello-config-beta 0.1.1 -> 0.1.2") {
		t.Errorf("web2: %+v\n%s", rep, out.stderr)
	}
	if reps["web1"].Status != deploy.Current {
		t.Errorf("web1: %+v", reps["web1"])
	}
	if !strings.Contains(string(s.web2.ReadFile(t, conf)), "# local change") {
		t.Errorf("the local change was overwritten")
	}
	r := upds(t, s.proj, s.fleetArgs("audit", "web1", "web2")...)
	if r.code != 1 || !strings.Contains(r.stdout, "web2  hello-config-beta        0.1.2      0.1.2   conflict") ||
		!strings.Contains(r.stdout, "web2: "+conf+".dpkg-dist: the package's new version") {
		t.Errorf("audit of the conflict: exit %d\n%s", r.code, r.stdout)
	}
	r = upds(t, s.proj, s.fleetArgs("deploy", "web2")...)
	if r.code != 1 || !strings.Contains(r.stdout, "web2: conflict   "+conf+".dpkg-dist") || !strings.Contains(r.stdout, "web2: CONFLICTS") {
		t.Errorf("deploy text output: exit %d\n%s", r.code, r.stdout)
	}
	s.web2.Run(t, "mv "+conf+".dpkg-dist "+conf)
	if r := upds(t, s.proj, s.fleetArgs("audit", "web1", "web2")...); r.code != 0 {
		t.Errorf("audit after the merge: exit %d\n%s", r.code, r.stdout)
	}
}

// repairs: a half-removed role on web1 (dpkg -r --force-depends) and a package left
// unpacked on web2 (an interrupted dpkg): deploy repairs both and says so.
func (s *fleetRun) repairs() {
	t := s.t
	s.web1.Run(t, "dpkg -r --force-depends hello >/dev/null 2>&1")
	deb := filepath.Join(s.proj, "dist", "hello-config-beta_0.1.2_all.deb")
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	s.web2.WriteFile(t, "/tmp/c.deb", data, 0o644)
	s.web2.Run(t, "dpkg --force-confold --unpack /tmp/c.deb >/dev/null 2>&1")
	if out := s.web2.Run(t, "dpkg --audit"); !strings.Contains(out, "hello-config-beta") {
		t.Fatalf("dpkg --audit on web2: %q", out)
	}
	if r := upds(t, s.proj, s.fleetArgs("audit", "web1", "web2")...); r.code != 1 || !strings.Contains(r.stdout, "web1  hello ") || !strings.Contains(r.stdout, "missing") {
		t.Errorf("audit of the broken servers: exit %d\n%s", r.code, r.stdout)
	}
	reps, out := s.deploy(0, "--keep-going")
	if rep := reps["web1"]; rep.Status != deploy.Current || len(rep.Repairs) != 1 || !strings.HasPrefix(rep.Repairs[0], "apt-get --fix-broken install") ||
		!strings.Contains(changes(rep), "installed hello 0.1.2") {
		t.Errorf("web1: %+v\n%s", rep, out.stderr)
	}
	if rep := reps["web2"]; rep.Status != deploy.Current || len(rep.Repairs) != 1 || !strings.HasPrefix(rep.Repairs[0], "dpkg --configure -a") {
		t.Errorf("web2: %+v\n%s", rep, out.stderr)
	}
	for _, srv := range []*servertest.Server{s.web1, s.web2} {
		if out := srv.Run(t, "dpkg --audit; apt-get -q check 2>&1 | grep -c ^E: || true"); out != "0\n" {
			t.Errorf("%s still broken: %s", srv.Name, out)
		}
	}
}

// passwdHome: with no --ssh-config, upds reads ~/.ssh/config of the passwd home (not
// $HOME), for audit, deploy and send(): the test binds a directory on /root in a mount
// namespace of its own and points $HOME elsewhere.
func (s *fleetRun) passwdHome() {
	t := s.t
	home := t.TempDir()
	cfg, err := os.ReadFile(s.f.SSHConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, ".ssh", "config"), cfg, 0o600)
	ship := project(t, map[string]string{"BUILD.star": `task("ship", run = lambda ctx: send(["f.txt"], to = "sftp://web2/~/incoming"))` + "\n", "f.txt": "shipped\n"})
	script := `mount --bind "$1" /root && shift && cd "$1" && shift && HOME=/nonexistent exec "$@"`
	run := func(dir string, args ...string) string {
		return sh(t, dir, "unshare --mount sh -c '"+script+"' sh "+home+" "+dir+" "+updsBin+" "+strings.Join(args, " "))
	}
	if out := run(s.proj, "audit", "web1", "web2", "--repo", s.url, "--key", s.key); !strings.Contains(out, "8 current") {
		t.Errorf("audit through ~/.ssh/config:\n%s", out)
	}
	if out := run(s.proj, "deploy", "--repo", s.url, "--key", s.key, "web1"); !strings.Contains(out, "web1: current: 0 package change(s)") {
		t.Errorf("deploy through ~/.ssh/config:\n%s", out)
	}
	s.web2.SSH(t, "mkdir -p incoming")
	run(ship, "run", "ship")
	if got := s.web2.Run(t, "cat /home/deploy/incoming/f.txt"); got != "shipped\n" {
		t.Errorf("send() through ~/.ssh/config: %q", got)
	}
	// Without the configuration the aliases do not resolve.
	r := upds(t, s.proj, "audit", "production", "beta", "--repo", s.url, "--key", s.key, "--ssh-config", "none", "--timeout", "5s")
	if r.code != 1 || !strings.Contains(r.stdout, "2 unreachable") {
		t.Errorf("audit with --ssh-config none: exit %d\n%s", r.code, r.stdout)
	}
}
