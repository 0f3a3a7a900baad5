package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/sshconn/servertest"
)

const serviceBuild = `
load("@upds//python.star", "python_app")

project(name = "upds-svc", maintainer = "Ops Team <ops@example.com>", license = "MIT")
app = python_app(
    "upds-svc",
    user = "upds-svc",
    service = "config/upds-svc.service",
    contents = [directory("/var/lib/upds-svc")],
    changelog = "CHANGELOG.md",
)
task("build", deps = app.packages)
`

// fakeSystemctl stands in for systemctl where no systemd runs: it records its arguments,
// reports a unit enabled when deb-systemd-helper made its symlink, and active once started.
const fakeSystemctl = `#!/bin/sh
echo "$*" >> /var/log/fake-systemctl.log
action= unit=
for a in "$@"; do
	case "$a" in
	-*) ;;
	*) if [ -z "$action" ]; then action=$a; else unit=$a; fi ;;
	esac
done
mkdir -p /run/fake-active
case "$action" in
is-enabled) ls /etc/systemd/system/*.wants/"$unit" >/dev/null 2>&1 && echo enabled && exit 0; echo disabled; exit 1 ;;
is-active) [ -e /run/fake-active/"$unit" ] ;;
start|restart) touch /run/fake-active/"$unit" ;;
stop) rm -f /run/fake-active/"$unit" ;;
esac
exit 0
`

// TestServiceOnDebian is issue 16's "done when" for services and users: a python_app with a
// system user and a service, installed with dpkg on a Debian 12 root (servertest): the user
// exists before the files are unpacked and owns them, the unit is enabled by
// deb-systemd-helper; an upgrade restarts it and a purge leaves nothing (but the user, as
// Debian's packages leave theirs). Where no systemd runs, nothing is started; with
// /run/systemd/system present, deb-systemd-invoke calls a recording systemctl: that proves
// which calls are made, not what systemd does with them.
func TestServiceOnDebian(t *testing.T) {
	need(t, "dpkg-deb", "lintian", "/usr/bin/python3")
	dir := project(t, map[string]string{
		"BUILD.star":               serviceBuild,
		"VERSION":                  "1.0.0\n",
		"requirements.txt":         "# nothing\n",
		"src/upds-svc/__init__.py": "",
		"src/upds-svc/__main__.py": "print('serving')\n",
		"CHANGELOG.md":             "## 1.0.0 (2024-05-01)\n- First release.\n",
		"config/upds-svc.service":  "[Unit]\nDescription=upds service test\nDocumentation=https://example.com\n\n[Service]\nUser=upds-svc\nExecStart=/var/virtualenvs/upds-svc/bin/python -m upds-svc\n\n[Install]\nWantedBy=multi-user.target\n",
	})
	build := func(version string) []string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte(version+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := upds(t, dir, "run", "build"); r.code != 0 {
			t.Fatalf("build %s: exit %d\n%s", version, r.code, r.stderr)
		}
		// The virtualenv keeps the version at which its content last changed: 1.0.0.
		return []string{filepath.Join(dir, "dist", "upds-svc-virtualenv_1.0.0_amd64.deb"), filepath.Join(dir, "dist", "upds-svc_"+version+"_all.deb")}
	}
	v1, v2 := build("1.0.0"), build("1.0.1")
	// lintian: no error and no warning (only informational tags).
	out, _ := exec.Command("lintian", append([]string{"--no-cfg", "--allow-root"}, v1...)...).CombinedOutput()
	if regexp.MustCompile(`(?m)^[EW]: `).Match(out) || strings.Contains(string(out), "fatal") {
		t.Errorf("lintian:\n%s", out)
	}

	// The archive has the placeholder id for the user the preinst creates; dpkg uses the name.
	if tv := sh(t, dir, "dpkg-deb --fsys-tarfile "+v1[1]+" | tar -tv --numeric-owner | grep __main__"); !strings.Contains(tv, " 65534/65534 ") {
		t.Errorf("numeric owner: %s", tv)
	}

	f := servertest.Start(t, servertest.Spec{Name: "svc1", User: "root"})
	srv := f.Server("svc1")
	put := func(debs []string) string {
		var names []string
		for _, d := range debs {
			b, err := os.ReadFile(d)
			if err != nil {
				t.Fatal(err)
			}
			srv.WriteFile(t, "/root/"+filepath.Base(d), b, 0o644)
			names = append(names, "/root/"+filepath.Base(d))
		}
		return strings.Join(names, " ")
	}
	srv.WriteFile(t, "/usr/local/sbin/systemctl", []byte(fakeSystemctl), 0o755)
	const unitLink = "/etc/systemd/system/multi-user.target.wants/upds-svc.service"

	// No systemd: enabled, nothing started.
	srv.Run(t, "dpkg -i "+put(v1))
	checkInstalled(t, srv)
	if out, _, _ := srv.Output("cat /var/log/fake-systemctl.log"); out != "" {
		t.Errorf("systemctl called without systemd:\n%s", out)
	}
	srv.Run(t, "dpkg -P upds-svc upds-svc-virtualenv")
	checkPurged(t, srv)

	// With systemd (as far as the scripts can tell): started, restarted by the upgrade,
	// stopped on removal.
	srv.Run(t, "mkdir -p /run/systemd/system && printf '#!/bin/sh\\nexit 0\\n' > /usr/sbin/policy-rc.d")
	srv.Run(t, "dpkg -i "+put(v1))
	checkInstalled(t, srv)
	srv.Run(t, "dpkg -i "+put(v2))
	if got := srv.Run(t, "readlink "+unitLink); got != "/lib/systemd/system/upds-svc.service\n" {
		t.Errorf("after the upgrade %s -> %q", unitLink, got)
	}
	srv.Run(t, "dpkg -P upds-svc upds-svc-virtualenv")
	log := srv.Run(t, "cat /var/log/fake-systemctl.log")
	for _, re := range []string{
		`(?s)--system daemon-reload\n.*--quiet --system start upds-svc.service\n`, // installed: start
		`(?s)--quiet --system restart upds-svc.service\n`,                         // upgraded: restart
		`restart upds-svc.service\n(.*\n)?stop upds-svc.service\n`,                // removed: stop
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("systemctl calls do not match %s:\n%s", re, log)
		}
	}
	checkPurged(t, srv)
}

// checkInstalled: the user exists and owns the files, the unit is root's and enabled.
func checkInstalled(t *testing.T, srv *servertest.Server) {
	t.Helper()
	out := srv.Run(t, `getent passwd upds-svc | cut -d: -f3,6,7
stat -c '%U:%G %a %n' /srv/python/upds-svc/__main__.py /var/lib/upds-svc /var/virtualenvs/upds-svc/bin/python3 /lib/systemd/system/upds-svc.service
readlink /etc/systemd/system/multi-user.target.wants/upds-svc.service
ls /var/lib/systemd/deb-systemd-helper-enabled/
zcat /usr/share/doc/upds-svc/changelog.gz | head -1`)
	if m := regexp.MustCompile(`(?m)^(\d+):/nonexistent:/usr/sbin/nologin$`).FindStringSubmatch(out); m == nil || m[1] == "65534" || len(m[1]) > 3 {
		t.Errorf("user: want a system uid (not the archive's 65534):\n%s", out) // adduser --system: 100-999
	}
	for _, want := range []string{
		"upds-svc:upds-svc 644 /srv/python/upds-svc/__main__.py\n",
		"upds-svc:upds-svc 755 /var/lib/upds-svc\n",
		"root:root 644 /lib/systemd/system/upds-svc.service\n",
		"/lib/systemd/system/upds-svc.service\n",
		"upds-svc.service.dsh-also\n",
		"upds-svc (1.0.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("installed: no %q in\n%s", want, out)
		}
	}
}

// checkPurged: nothing of the packages is left, but the system user.
func checkPurged(t *testing.T, srv *servertest.Server) {
	t.Helper()
	out := srv.Run(t, `dpkg-query -W 'upds-svc*' 2>&1 || true
find / -xdev \( -path /proc -o -path /root -o -path /var/log \) -prune -o -name '*upds-svc*' -print
getent passwd upds-svc | cut -d: -f1`)
	if out != "dpkg-query: no packages found matching upds-svc*\nupds-svc\n" {
		t.Errorf("after purge:\n%s", out)
	}
}
