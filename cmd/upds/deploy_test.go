package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/audit"
	"github.com/upds/upds/stdlib/deploy"
	"github.com/upds/upds/stdlib/setup"
)

// TestPrintDeployReport: the lines upds deploy prints for each way a server can end.
func TestPrintDeployReport(t *testing.T) {
	for _, c := range []struct {
		r    deploy.Report
		want string
	}{
		{deploy.Report{Server: "web1", Status: deploy.Current, Seconds: 2.04, Waited: true,
			Replaced: []string{"/etc/apt/sources.list.d/old.list: removed, it configured http://x/"},
			Repairs:  []string{"dpkg --configure -a (an earlier run was interrupted)"},
			Changes:  []setup.Change{{Action: setup.Upgraded, Package: "hello", Old: "1.0", New: "1.1"}}},
			`web1: waited     for an earlier setup there to end
web1: replaced   /etc/apt/sources.list.d/old.list: removed, it configured http://x/
web1: repaired   dpkg --configure -a (an earlier run was interrupted)
web1: upgraded   hello 1.0 -> 1.1
web1: current: 1 package change(s) in 2.0s
`},
		{deploy.Report{Server: "web2", Status: deploy.Outdated, Seconds: 1, Problems: []audit.Row{
			{Package: "a", Installed: "1", Latest: "2", Status: audit.Outdated},
			{Package: "b", Latest: "2", Status: audit.Missing},
			{Package: "c", File: "/etc/c.dpkg-dist", Status: audit.Conflict}}},
			`web2: outdated   a 1 (repository: 2)
web2: missing    b 2
web2: conflict   /etc/c.dpkg-dist: the package's new version of a configuration file you changed (yours stays in use): merge, then delete it
web2: OUTDATED: 0 package change(s) in 1.0s, 3 problem(s) above
`},
		{deploy.Report{Server: "db1", Status: deploy.Failed, Error: "ssh 10.0.0.7:22: refused\napt said no"},
			"db1: FAILED: ssh 10.0.0.7:22: refused\ndb1:   apt said no\n"},
		{deploy.Report{Server: "web3", Status: deploy.Skipped}, "web3: skipped: an earlier server did not end current\n"},
		{deploy.Report{Server: "web4", Status: deploy.Interrupted}, "web4: interrupted: not started\n"},
		{deploy.Report{Server: "web5", Status: deploy.Interrupted, Detached: true, AptRunning: true},
			"web5: interrupted: upds stopped waiting; the setup is still running there (log: /var/log/upds/setup.log); deploy again when it ended\n"},
	} {
		var b bytes.Buffer
		printDeployReport(&b, &c.r)
		if b.String() != c.want {
			t.Errorf("printed:\n%s\nwant:\n%s", b.String(), c.want)
		}
	}
}

// TestServersCommand: upds servers lists the inventory (all, by name or group, JSON);
// deploy --dry-run picks the same servers; mistakes are usage errors.
func TestServersCommand(t *testing.T) {
	dir := project(t, map[string]string{"BUILD.star": `
fleet(repo = "https://apt.example.com/", key = "keys/apt.asc")
for n in ["web1", "web2"]:
    server(n, ssh = "deploy@%s.example.com" % n, packages = ["app-server", "app-config-production"], groups = ["web", "production"])
server("db1", ssh = "root@10.0.0.7:2222", groups = ["db"])
`})
	r := upds(t, dir, "servers")
	want := `SERVER  SSH                      GROUPS          PACKAGES
web1    deploy@web1.example.com  web,production  app-server app-config-production
web2    deploy@web2.example.com  web,production  app-server app-config-production
db1     root@10.0.0.7:2222       db              
repository https://apt.example.com/ (suite stable, key ` + dir + `/keys/apt.asc)
`
	if r.code != 0 || r.stdout != want {
		t.Errorf("upds servers: exit %d\n%q\nwant\n%q\n%s", r.code, r.stdout, want, r.stderr)
	}
	r = upds(t, dir, "servers", "--json", "db1", "production")
	var inv struct {
		Servers    []struct{ Name, SSH string }
		Repository struct{ URL string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &inv); err != nil || len(inv.Servers) != 3 || inv.Servers[2].Name != "db1" || inv.Repository.URL != "https://apt.example.com/" {
		t.Errorf("servers --json: %v %+v\n%s", err, inv, r.stdout)
	}
	if r := upds(t, dir, "deploy", "--dry-run", "db"); r.code != 0 || r.stdout != "db1\troot@10.0.0.7:2222\t\n" {
		t.Errorf("deploy --dry-run db: exit %d %q", r.code, r.stdout)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"servers", "web9"}, `no server or group "web9"`},
		{[]string{"deploy", "web9"}, `no server or group "web9"`},
		{[]string{"deploy", "web1", "--repo", "ftp://x/", "--key", "k"}, "want the repository's http"},
		{[]string{"audit", "web1", "--host", "root@web1"}, "not both"},
	} {
		if r := upds(t, dir, c.args...); r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("upds %s: exit %d, want 2 and %q\n%s", strings.Join(c.args, " "), r.code, c.want, r.stderr)
		}
	}
	for _, cmd := range []string{"deploy", "servers", "audit"} {
		got, directive := complete(t, dir, cmd, "web1", "")
		if strings.Join(got, "|") != "web2\tdeploy@web2.example.com|db1\troot@10.0.0.7:2222|db\tgroup|production\tgroup|web\tgroup" || directive != ":4" {
			t.Errorf("upds %s web1 <TAB>: %q %s", cmd, got, directive)
		}
	}
	empty := project(t, map[string]string{"BUILD.star": "project(name = \"x\")\n"})
	if r := upds(t, empty, "servers"); r.code != 0 || !strings.Contains(r.stdout, "declares no server()") {
		t.Errorf("no servers: exit %d %q", r.code, r.stdout)
	}
	if r := upds(t, empty, "deploy"); r.code != 2 || !strings.Contains(r.stderr, "no servers") {
		t.Errorf("deploy without servers: exit %d %q", r.code, r.stderr)
	}
}

// TestPrintSetupResultStates: upds setup's lines for replaced sources, repairs, conflicts
// and interrupts.
func TestPrintSetupResultStates(t *testing.T) {
	r := setup.ParseOutput("web1", []byte("waited    for an earlier upds setup\nkey       /k.asc unchanged (fingerprint F)\n"+
		"replaced  /etc/apt/sources.list.d/a.list: removed, it configured http://x/ (/s does now)\nsource    /s written\n"+
		"repaired  apt-get --fix-broken install (unmet dependencies)\ninstalled app 1.0\nrole      web 1.0\n"+
		"conffile  app /etc/app.ini /etc/app.ini.dpkg-old\ndone\n"))
	var b bytes.Buffer
	printSetupResult(&b, r, true)
	want := `web1: key     /k.asc unchanged (fingerprint F)
web1: source  /s written
web1: waited     for an earlier setup there to end
web1: replaced   /etc/apt/sources.list.d/a.list: removed, it configured http://x/ (/s does now)
web1: repaired   apt-get --fix-broken install (unmet dependencies)
web1: installed  app 1.0
web1: role       web 1.0
web1: conflict   /etc/app.ini.dpkg-old: your old version of the configuration file, replaced by the package's: check, then delete it
web1: done: 1 package change(s); 1 configuration file(s) need a decision
`
	if b.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", b.String(), want)
	}
	for _, c := range []struct {
		r    setup.Result
		want string
	}{
		{setup.Result{Host: "h", NotStarted: true}, "h: interrupted: not started\n"},
		{setup.Result{Host: "h", Detached: true, AptRunning: true}, "h: interrupted: upds stopped waiting; the setup is still running there (log: /var/log/upds/setup.log)\n"},
		{setup.Result{Host: "h", Detached: true}, "h: interrupted: upds stopped waiting; the setup has ended there since (log: /var/log/upds/setup.log)\n"},
	} {
		b.Reset()
		printSetupResult(&b, &c.r, true)
		if b.String() != c.want {
			t.Errorf("printed %q, want %q", b.String(), c.want)
		}
	}
}
