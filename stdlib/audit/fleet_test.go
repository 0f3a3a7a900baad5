package audit

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/repo"
)

// TestCheck: conffile conflicts of repository packages and expected packages that are
// not installed are rows too.
func TestCheck(t *testing.T) {
	ix := &repo.Index{Packages: []repo.Package{
		{Name: "app", Version: "1.1", Architecture: "all"},
		{Name: "app-config-beta", Version: "1.1", Architecture: "all"},
		{Name: "app-role", Version: "1.1", Architecture: "all"},
	}}
	conf, err := ParseConffiles(strings.NewReader("app-config-beta\t/etc/app.ini\t/etc/app.ini.dpkg-dist\nnginx\t/etc/nginx/nginx.conf\t/etc/nginx/nginx.conf.dpkg-old\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := &Facts{
		Installed: []Installed{{Name: "dpkg", Version: "1.21", Arch: "amd64"}, {Name: "app", Version: "1.1", Arch: "all"},
			{Name: "app-config-beta", Version: "1.0", Arch: "all"}, {Name: "nginx", Version: "1.22", Arch: "amd64"}},
		Conffiles: conf,
	}
	got := Check("web1", f, []string{"app-role", "app", "nginx", "curl"}, ix)
	want := []Row{
		{Host: "web1", Package: "app", Installed: "1.1", Latest: "1.1", Status: Current, Arch: "all"},
		{Host: "web1", Package: "app-config-beta", Installed: "1.0", Latest: "1.1", Status: Outdated, Arch: "all"},
		{Host: "web1", Package: "app-config-beta", Installed: "1.0", Latest: "1.1", Status: Conflict, Arch: "all", File: "/etc/app.ini.dpkg-dist"},
		{Host: "web1", Package: "app-role", Latest: "1.1", Status: Missing},
		{Host: "web1", Package: "curl", Status: Missing},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	var b bytes.Buffer
	WriteTable(&b, got, false)
	for _, s := range []string{"web1  app-config-beta  1.0        1.1     conflict", "web1: /etc/app.ini.dpkg-dist: the package's new version",
		"1 current, 1 outdated, 2 missing, 1 conflict"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, b.String())
		}
	}
	if _, err := ParseConffiles(strings.NewReader("a\tb\n")); err == nil {
		t.Error("a malformed conffile line was accepted")
	}
}
