package deb

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/rules"
)

// rulesPackage evaluates a BUILD.star that loads @upds//service.star and plans its package
// "app"; the project has config/app.service.
func rulesPackage(t *testing.T, build string) (*Plan, error) {
	t.Helper()
	fsys := afero.NewMemMapFs()
	for name, body := range map[string]string{"BUILD.star": build, "config/app.service": "[Service]\nExecStart=/bin/true\n"} {
		must(t, afero.WriteFile(fsys, name, []byte(body), 0o644))
	}
	b, err := interp.Load(interp.Options{FS: fsys, Builtins: Builtins(), Rules: rules.FS,
		VersionFunc: func(*interp.Host) (string, error) { return "1.0", nil }})
	if err != nil {
		return nil, err
	}
	for _, v := range b.Globals {
		if tg, ok := v.(*Target); ok && tg.Name() == "app" {
			return tg.spec.Plan(Inputs{Project: b.Host.Project, FS: fsys})
		}
	}
	t.Fatal("no package app")
	return nil, nil
}

// TestServiceRule checks the scripts @upds//service.star makes for each choice, that sh
// reads them, and its errors.
func TestServiceRule(t *testing.T) {
	head := "load(\"@upds//service.star\", \"service\", \"system_user\")\nproject(name = \"app\", maintainer = \"a <b@c>\")\n"
	for _, tc := range []struct {
		args     string
		has, not map[string][]string // by script: texts it has, texts it has not
	}{
		{"", map[string][]string{"postinst": {"deb-systemd-helper enable 'app.service'", "_dh_action=restart", "deb-systemd-invoke $_dh_action 'app.service'"},
			"prerm": {"deb-systemd-invoke stop 'app.service'"}, "postrm": {"daemon-reload", "deb-systemd-helper purge 'app.service'"}},
			map[string][]string{"preinst": {"stop"}}},
		{"restart = False", map[string][]string{"preinst": {`[ "$1" = upgrade ]`, "deb-systemd-invoke stop 'app.service'"}, "postinst": {"deb-systemd-invoke start 'app.service'"}},
			map[string][]string{"postinst": {"restart"}}},
		{"start = False", map[string][]string{"postinst": {"deb-systemd-invoke try-restart 'app.service'"}},
			map[string][]string{"prerm": {"stop"}, "preinst": {"stop"}}},
		{"enable = False, start = False, restart = False", map[string][]string{"postrm": {"daemon-reload"}},
			map[string][]string{"postinst": {"deb-systemd"}, "postrm": {"deb-systemd-helper"}}},
	} {
		pl, err := rulesPackage(t, head+`app = deb("app", contents = [service("config/app.service", `+tc.args+`), system_user("app", remove_on_purge = True)], owner = "app")`+"\n")
		if err != nil {
			t.Fatalf("%s: %v", tc.args, err)
		}
		scripts := pl.pkg.Scripts
		for name, texts := range tc.has {
			for _, x := range texts {
				if !strings.Contains(string(scripts[name]), x) {
					t.Errorf("service(%s): %s lacks %q:\n%s", tc.args, name, x, scripts[name])
				}
			}
		}
		for name, texts := range tc.not {
			for _, x := range texts {
				if strings.Contains(string(scripts[name]), x) {
					t.Errorf("service(%s): %s has %q:\n%s", tc.args, name, x, scripts[name])
				}
			}
		}
		for name, body := range scripts {
			if out, err := exec.Command("sh", "-n", "-c", string(body)).CombinedOutput(); err != nil {
				t.Errorf("service(%s): sh -n %s: %v\n%s", tc.args, name, err, out)
			}
		}
		if !strings.Contains(string(scripts["preinst"]), "adduser --system --quiet --home /nonexistent --no-create-home --shell /usr/sbin/nologin --group app") ||
			!strings.Contains(string(scripts["postrm"]), "deluser --system --quiet app") || pl.control.Get("Pre-Depends") != "adduser" {
			t.Errorf("system_user: preinst %s\npostrm %s\nPre-Depends %q", scripts["preinst"], scripts["postrm"], pl.control.Get("Pre-Depends"))
		}
		for _, it := range pl.testItems() {
			if it.Path == "/lib/systemd/system/app.service" && (it.uname != "root" || it.mode != 0o644) {
				t.Errorf("unit %s %o", it.uname, it.mode)
			}
		}
	}
	for _, tc := range []struct{ build, want string }{
		{`service("config/app.conf")`, `service: "app.conf" is not a unit name`},
		{`service("config/app.service", name = "app@.service")`, `service: "app@.service" is a template unit`},
		{`system_user("App")`, `system_user: "App" is not a system account name`},
		{`system_user("app", home = "/var/lib/my app")`, `system_user: home "/var/lib/my app": no quotes`},
		{`deb("app", contents = [system_user("app")], owner = "other")`, `deb app: owner: "other" has no static Debian id`},
	} {
		if _, err := rulesPackage(t, head+tc.build+"\n"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.build, err, tc.want)
		}
	}
}
