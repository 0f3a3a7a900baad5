package audit

import (
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/repo"
)

func TestParseStatus(t *testing.T) {
	got, err := ReadStatus("testdata/status")
	if err != nil {
		t.Fatal(err)
	}
	want := []Installed{
		{Name: "web-server", Version: "1.9.0", Arch: "all", Source: "3e34130ee161bb93582bc820a5adc4a6e11c6e4557a8972e3c40b428cf4c112c",
			Depends: "app (= 1.9.0), app-config-prod | app-config-beta, nginx, worker"},
		{Name: "app", Version: "1.9.0", Arch: "amd64", Source: "c8e78c800a2f9b7d62be99bb745c2c46256f9e57cda0533aa2679fd69e475d77",
			Depends: "app-venv (= 1.9.0), python3 (>= 3.11)"},
		{Name: "app-venv", Version: "1.9.0", Arch: "amd64"},
		{Name: "app-config-beta", Version: "2:0.1", Arch: "all"},
		{Name: "nginx", Version: "1.22.1-9", Arch: "amd64"},
		{Name: "python3", Version: "3.11.2-1+b1", Arch: "amd64"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if _, err := ParseStatus(strings.NewReader("Package: x\n continuation\nnot a field\n")); err == nil {
		t.Error("malformed status file accepted")
	}
}

// TestParseQueryMatchesStatus runs the real dpkg-query and checks that it agrees with
// the real status file on what is installed.
func TestParseQueryMatchesStatus(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Fatal("dpkg-query is not installed: run .ci/install-deps")
	}
	out, err := exec.Command("sh", "-c", QueryCommand).Output()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseQuery(strings.NewReader(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadStatus(StatusFile)
	if err != nil {
		t.Fatal(err)
	}
	key := func(ps []Installed) map[string]string {
		m := map[string]string{}
		for _, p := range ps {
			m[p.Name+":"+p.Arch] = p.Version
		}
		return m
	}
	kq, ks := key(q), key(s)
	if len(kq) < 10 {
		t.Fatalf("dpkg-query listed %d packages", len(kq))
	}
	// Another test may install or remove a package between the two reads: allow a few.
	diff := 0
	for k, v := range ks {
		if kq[k] != v {
			diff++
		}
	}
	if diff > 3 {
		t.Errorf("dpkg-query and %s disagree on %d packages", StatusFile, diff)
	}
	if _, err := ParseQuery(strings.NewReader("installed\tx\n")); err == nil {
		t.Error("short dpkg-query line accepted")
	}
}

func testIndex() *repo.Index {
	pk := func(name, ver, arch string) repo.Package {
		return repo.Package{Name: name, Version: ver, Architecture: arch}
	}
	return &repo.Index{Packages: []repo.Package{
		pk("app", "1.9.0", "amd64"), pk("app", "1.10.0", "amd64"), pk("app", "1.11.0", "arm64"),
		pk("app-venv", "1.9.0", "amd64"),
		pk("web-server", "1.9.0", "all"), pk("web-server", "1.9.0~rc1", "all"),
		pk("app-config-beta", "1:0.5", "all"), pk("app-config-prod", "1:0.5", "all"),
		pk("worker", "1.0", "all"), pk("old-tool", "0.6", "amd64"),
	}}
}

func TestCompare(t *testing.T) {
	inst, err := ReadStatus("testdata/status")
	if err != nil {
		t.Fatal(err)
	}
	got := Compare("web1", inst, testIndex())
	for i := range got {
		got[i].Source = ""
	}
	want := []Row{
		{Host: "web1", Package: "app", Installed: "1.9.0", Latest: "1.10.0", Status: Outdated, Arch: "amd64"},
		{Host: "web1", Package: "app-config-beta", Installed: "2:0.1", Latest: "1:0.5", Status: Ahead, Arch: "all"},
		{Host: "web1", Package: "app-venv", Installed: "1.9.0", Latest: "1.9.0", Status: Current, Arch: "amd64"},
		{Host: "web1", Package: "web-server", Installed: "1.9.0", Latest: "1.9.0", Status: Current, Arch: "all"},
		{Host: "web1", Package: "worker", Latest: "1.0", Status: Missing},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if OK(got) {
		t.Error("OK with outdated rows")
	}
	if !OK(got[2:4]) {
		t.Error("not OK with current rows")
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		inst, latest string
		want         Status
	}{
		{"1.9.0", "1.10.0", Outdated},
		{"1.10.0", "1.9.0", Ahead},
		{"1.0~rc1", "1.0", Outdated},
		{"1:0.1", "2.0", Ahead},
		{"1.0-1", "1.0-1", Current},
		{"1.0", "1.0-0", Current},
	} {
		if got := compareVersions(c.inst, c.latest); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %s, want %s", c.inst, c.latest, got, c.want)
		}
	}
}

func TestParseHosts(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []string
		err      string
	}{
		{"ok", "# web servers\nroot@web1\n\ndeploy@web2:2222  # second\n[::1]:22\n", []string{"root@web1", "deploy@web2:2222", "[::1]:22"}, ""},
		{"two per line", "web1 web2\n", nil, "hosts:1:"},
		{"bad port", "web1\nweb2:99999\n", nil, "hosts:2:"},
		{"no host", "root@\n", nil, "hosts:1:"},
		{"empty", "# nothing\n", nil, "no hosts"},
		{"quote", "we'b1\n", nil, "hosts:1:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseHosts(strings.NewReader(c.in), "hosts")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
	p := t.TempDir() + "/bin"
	os.WriteFile(p, []byte("a\x00b"), 0o644)
	if _, err := ReadHostsFile(p); err == nil {
		t.Error("binary hosts file accepted")
	}
}

func TestWriteTable(t *testing.T) {
	rows := []Row{
		{Host: "web1", Package: "app", Installed: "1.9.0", Latest: "1.10.0", Status: Outdated, Source: "abc"},
		{Host: "web2", Status: Unreachable, Error: "ssh 10.0.0.2:22: connection refused"},
	}
	var b strings.Builder
	if err := WriteTable(&b, rows, true); err != nil {
		t.Fatal(err)
	}
	want := `HOST  PACKAGE  INSTALLED  LATEST  STATUS       SOURCE
web1  app      1.9.0      1.10.0  outdated     abc
web2  -        -          -       unreachable  -
web2: ssh 10.0.0.2:22: connection refused
1 outdated, 1 unreachable
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// BenchmarkReadStatus reads this machine's dpkg status file.
func BenchmarkReadStatus(b *testing.B) {
	fi, err := os.Stat(StatusFile)
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(fi.Size())
	for b.Loop() {
		if _, err := ReadStatus(StatusFile); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompare compares a machine's packages with an index that carries all of them.
func BenchmarkCompare(b *testing.B) {
	inst, err := ReadStatus(StatusFile)
	if err != nil {
		b.Skip(err)
	}
	ix := &repo.Index{}
	for _, p := range inst {
		ix.Packages = append(ix.Packages, repo.Package{Name: p.Name, Version: p.Version, Architecture: p.Arch},
			repo.Package{Name: p.Name, Version: p.Version + "+1", Architecture: p.Arch})
	}
	b.ReportMetric(float64(len(inst)), "packages")
	for b.Loop() {
		Compare("h", inst, ix)
	}
}

// TestCompareMissingInServerArch: the dependencies of an arch:all role are looked up in the
// server's architecture: a missing amd64 venv shows the repository's version, and an arm64
// server gets the arm64 version.
func TestCompareMissingInServerArch(t *testing.T) {
	ix := testIndex()
	role := Installed{Name: "web-server", Version: "1.9.0", Arch: "all", Depends: "app, app-venv"}
	for _, tc := range []struct {
		name      string
		installed []Installed
		app, venv string // Latest of the missing rows
	}{
		{"amd64 by dpkg", []Installed{role, {Name: "dpkg", Version: "1.21", Arch: "amd64"}}, "1.10.0", "1.9.0"},
		{"arm64 by dpkg", []Installed{role, {Name: "dpkg", Version: "1.21", Arch: "arm64"}, {Name: "a", Arch: "amd64"}, {Name: "b", Arch: "amd64"}}, "1.11.0", ""},
		{"amd64 by count", []Installed{role, {Name: "libc6", Version: "2.36", Arch: "amd64"}}, "1.10.0", "1.9.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			latest := map[string]string{}
			for _, r := range Compare("web1", tc.installed, ix) {
				if r.Status == Missing {
					latest[r.Package] = r.Latest
				}
			}
			if want := map[string]string{"app": tc.app, "app-venv": tc.venv}; !reflect.DeepEqual(latest, want) {
				t.Errorf("missing rows' latest versions: %v, want %v", latest, want)
			}
		})
	}
}
