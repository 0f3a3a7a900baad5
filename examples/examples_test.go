// Package examples_test builds the example projects with the upds binary and checks the result
// with the real tools: dpkg-deb, lintian, apt-get against a repository served on 127.0.0.1,
// dpkg, and the installed application answering over HTTP.
package examples_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/upds/upds/stdlib/repo"
)

// updsBin is the upds binary, built once.
var updsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "upds-examples-")
	if err != nil {
		panic(err)
	}
	updsBin = filepath.Join(dir, "upds")
	if out, err := exec.Command("go", "build", "-o", updsBin, "../cmd/upds").CombinedOutput(); err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// copyProject copies an example into a temporary directory as a fresh clone has it: without
// dist/, .upds/ or a repository.
func copyProject(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join(".", name)
	dst := filepath.Join(t.TempDir(), name)
	skip := map[string]bool{"dist": true, ".upds": true, "repo": true, "build": true}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (skip[d.Name()] || strings.HasSuffix(d.Name(), ".egg-info") || d.Name() == "__pycache__") {
			return filepath.SkipDir
		}
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		return os.WriteFile(out, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

type result struct {
	stdout, stderr string
	code           int
}

func upds(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(updsBin, append([]string{"-C", dir, "--progress=plain"}, args...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustUpds(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := upds(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("upds %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run .ci/install-deps (it installs .ci/packages)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// helloPackages are the files `upds run build` writes for examples/hello at version v.
func helloPackages(v string) []string {
	return []string{
		"hello-config-beta_" + v + "_all.deb",
		"hello-config-production_" + v + "_all.deb",
		"hello-server_" + v + "_all.deb",
		"hello-virtualenv_" + v + "_amd64.deb",
		"hello_" + v + "_all.deb",
	}
}

func listDist(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func field(t *testing.T, deb, name string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, name))
}

// TestHelloBuild is the README's main job on a fresh copy: every package, offline, with the
// fields the issue asks for, and lintian reports no errors (and no warnings) for any of them.
func TestHelloBuild(t *testing.T) {
	need(t, "dpkg-deb", "lintian")
	dir := copyProject(t, "hello")
	mustUpds(t, dir, "run", "build")
	want := helloPackages("0.1.0")
	if got := listDist(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("dist/ holds %v, want %v", got, want)
	}
	dist := filepath.Join(dir, "dist")
	for _, tc := range []struct{ deb, field, want string }{
		{"hello_0.1.0_all.deb", "Depends", "hello-virtualenv (= 0.1.0), nginx, uwsgi, uwsgi-plugin-python3"},
		{"hello-virtualenv_0.1.0_amd64.deb", "Depends", "python3.11"},
		{"hello-config-beta_0.1.0_all.deb", "Conflicts", "hello-config"},
		{"hello-config-beta_0.1.0_all.deb", "Provides", "hello-config"},
		{"hello-config-production_0.1.0_all.deb", "Conflicts", "hello-config"},
		{"hello-server_0.1.0_all.deb", "Depends", "hello (= 0.1.0), hello-config-production | hello-config-beta"},
	} {
		if got := field(t, filepath.Join(dist, tc.deb), tc.field); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.deb, tc.field, got, tc.want)
		}
	}
	contents := run(t, "dpkg-deb", "-c", filepath.Join(dist, "hello-virtualenv_0.1.0_amd64.deb"))
	for _, w := range []string{"www-data/www-data", "./var/virtualenvs/hello/lib/python3.11/site-packages/greeting/__init__.py"} {
		if !strings.Contains(contents, w) {
			t.Errorf("hello-virtualenv has no %q:\n%s", w, contents)
		}
	}
	contents = run(t, "dpkg-deb", "-c", filepath.Join(dist, "hello-config-beta_0.1.0_all.deb"))
	for _, w := range []string{"./etc/nginx/sites-enabled/hello -> ../sites-available/hello", "./etc/uwsgi/apps-enabled/hello.ini -> ../apps-available/hello.ini"} {
		if !strings.Contains(contents, w) {
			t.Errorf("hello-config-beta has no %q:\n%s", w, contents)
		}
	}
	conf := run(t, "sh", "-c", "dpkg-deb --ctrl-tarfile "+filepath.Join(dist, "hello-config-beta_0.1.0_all.deb")+" | tar -xOf - ./conffiles")
	if conf != "/etc/nginx/sites-available/hello\n/etc/uwsgi/apps-available/hello.ini\n" {
		t.Errorf("hello-config-beta conffiles:\n%s", conf)
	}
	args := []string{"--fail-on", "error,warning"}
	for _, f := range want {
		args = append(args, filepath.Join(dist, f))
	}
	cmd := exec.Command("lintian", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	// send uploads to the repository's incoming/ folder, where upds repo watch (or publish)
	// picks the packages up.
	mustUpds(t, dir, "repo", "init", filepath.Join(dir, "repo"))
	mustUpds(t, dir, "run", "send")
	incoming, _ := filepath.Glob(filepath.Join(dir, "repo", "incoming", "*"))
	if len(incoming) != len(want) {
		t.Errorf("send put %v into repo/incoming, want the %d packages", incoming, len(want))
	}
	// A second build changes nothing: every action is a cache hit.
	r := mustUpds(t, dir, "run", "build")
	if !strings.Contains(r.stderr, "7 actions (6 cached, 0 failed)") {
		t.Errorf("second build was not all cache hits:\n%s", r.stderr)
	}
}

// dpkgRetry runs dpkg (or apt-get) and retries while another test holds dpkg's lock.
func dpkgRetry(name string, args ...string) (string, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil && bytes.Contains(out, []byte("lock")) && time.Now().Before(deadline) {
			time.Sleep(2 * time.Second)
			continue
		}
		return string(out), err
	}
}

// aptFlags point apt-get at one repository only (a sources file of its own, with signed-by,
// private lists and cache) while installing into the real system.
func aptFlags(dir, url, key string) []string {
	for _, p := range []string{"lists/partial", "cache/archives/partial"} {
		os.MkdirAll(filepath.Join(dir, p), 0o755)
	}
	src := filepath.Join(dir, "hello.sources")
	os.WriteFile(src, []byte("Types: deb\nURIs: "+url+"\nSuites: stable\nComponents: main\nSigned-By: "+key+"\n"), 0o644)
	return []string{
		"-o", "Dir::Etc::SourceList=/dev/null",
		"-o", "Dir::Etc::SourceParts=" + dir,
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "APT::Sandbox::User=root",
		"-o", "Acquire::Languages=none",
		"-o", "Acquire::Check-Valid-Until=true",
		"-o", "DPkg::Lock::Timeout=180",
		"-o", "Dpkg::Options::=--force-confdef",
		"-o", "Dpkg::Options::=--force-confold",
	}
}

func aptGet(t *testing.T, flags []string, args ...string) string {
	t.Helper()
	out, err := dpkgRetry("apt-get", append(append([]string{}, flags...), args...)...)
	if err != nil {
		t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "W:") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "Err:") {
			t.Fatalf("apt-get %s: %s\n%s", strings.Join(args, " "), l, out)
		}
	}
	return out
}

// serveApp starts the installed application from its virtualenv on a free port and returns
// its URL; the process is stopped when the test ends (or by calling the returned function).
func serveApp(t *testing.T) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("/var/virtualenvs/hello/bin/python", "-m", "hello", "--port", fmt.Sprint(port))
	cmd.Dir = "/srv/python"
	cmd.Env = append(os.Environ(), "HELLO_ENV=beta", "PYTHONDONTWRITEBYTECODE=1")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for i := 0; i < 100; i++ {
		if resp, err := http.Get(url + "health"); err == nil {
			resp.Body.Close()
			return url, stop
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the app did not start on %s:\n%s", url, log.String())
	return "", nil
}

// downloaded are the packages apt-get's output says it fetched ("Get:3 URL stable/main all
// hello all 0.1.1 [2,146 B]"), sorted.
func downloaded(aptOutput string) string {
	var names []string
	for _, l := range strings.Split(aptOutput, "\n") {
		if f := strings.Fields(l); len(f) >= 8 && strings.HasPrefix(f[0], "Get:") {
			names = append(names, f[4])
		}
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

var helloInstalled = []string{"hello-server", "hello-config-beta", "hello-config-production", "hello", "hello-virtualenv"}

// TestHelloEndToEnd is issue 8's "done when": build, publish to a repository served on
// 127.0.0.1, install the role with apt-get, run the installed app and get its page, release a
// new version after a one-line change, upgrade, get the new page, and purge everything cleanly.
func TestHelloEndToEnd(t *testing.T) {
	need(t, "apt-get", "dpkg", "nginx", "uwsgi")
	if os.Geteuid() != 0 {
		t.Fatal("the end-to-end test installs packages: run it as root")
	}
	for _, p := range helloInstalled {
		if exec.Command("dpkg-query", "-W", p).Run() == nil {
			t.Fatalf("%s is already installed on this machine: purge it first (dpkg -P %s)", p, p)
		}
	}
	dir := copyProject(t, "hello")
	mustUpds(t, dir, "repo", "init", filepath.Join(dir, "repo")) // repo init ignores -C
	mustUpds(t, dir, "run", "publish")

	h, err := repo.Handler(filepath.Join(dir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	flags := aptFlags(t.TempDir(), srv.URL, filepath.Join(dir, "repo", "public", "key.asc"))
	t.Cleanup(func() {
		// Purge whatever got installed, even when the test failed half-way.
		for _, p := range helloInstalled {
			if exec.Command("dpkg-query", "-W", p).Run() == nil {
				if out, err := dpkgRetry("dpkg", "-P", p); err != nil {
					t.Errorf("cleanup: dpkg -P %s: %v\n%s", p, err, out)
				}
			}
		}
	})
	aptGet(t, flags, "update")
	aptGet(t, flags, "install", "-y", "--no-install-recommends", "hello-server", "hello-config-beta")

	for _, p := range []string{"hello-server", "hello", "hello-virtualenv", "hello-config-beta"} {
		if v := strings.TrimSpace(run(t, "dpkg-query", "-W", "-f=${Version}", p)); v != "0.1.0" {
			t.Fatalf("%s: installed version %q, want 0.1.0", p, v)
		}
	}
	if target, err := os.Readlink("/etc/nginx/sites-enabled/hello"); err != nil || target != "../sites-available/hello" {
		t.Fatalf("nginx site not enabled: %q %v", target, err)
	}
	if out, err := exec.Command("nginx", "-t").CombinedOutput(); err != nil {
		t.Fatalf("nginx -t with hello's site: %v\n%s", err, out)
	}
	if owner := strings.TrimSpace(run(t, "stat", "-c", "%U:%G", "/var/virtualenvs/hello/lib")); owner != "www-data:www-data" {
		t.Errorf("/var/virtualenvs/hello/lib is owned by %s, want www-data:www-data", owner)
	}

	url, stop := serveApp(t)
	page := get(t, url+"?name=upds")
	for _, w := range []string{"Hello, upds!", "hello 0.1.0 on beta"} {
		if !strings.Contains(page, w) {
			t.Fatalf("page has no %q:\n%s", w, page)
		}
	}
	stop()

	// A one-line change, a release, an upgrade.
	app := filepath.Join(dir, "src", "hello", "app.py")
	b, _ := os.ReadFile(app)
	b = bytes.Replace(b, []byte("<p>hello {version} on {env}</p>"), []byte("<p>hello {version} on {env}, upgraded</p>"), 1)
	os.WriteFile(app, b, 0o644)
	r := mustUpds(t, dir, "run", "release")
	if !strings.Contains(r.stdout, "hello is now version 0.1.1") {
		t.Fatalf("release printed:\n%s\n%s", r.stdout, r.stderr)
	}
	aptGet(t, flags, "update")
	upgrade := aptGet(t, flags, "dist-upgrade", "-y")
	// The code changed, the virtualenv did not: it keeps its version (upds.lock), and the
	// server downloads only the small packages.
	for p, want := range map[string]string{"hello-server": "0.1.1", "hello": "0.1.1", "hello-config-beta": "0.1.1", "hello-virtualenv": "0.1.0"} {
		if v := strings.TrimSpace(run(t, "dpkg-query", "-W", "-f=${Version}", p)); v != want {
			t.Fatalf("%s: version %q after the upgrade, want %s", p, v, want)
		}
	}
	if got := downloaded(upgrade); got != "hello hello-config-beta hello-server" {
		t.Errorf("the upgrade downloaded %q, want the three small packages:\n%s", got, upgrade)
	}
	url, stop = serveApp(t)
	page = get(t, url)
	if !strings.Contains(page, "hello 0.1.1 on beta, upgraded") {
		t.Fatalf("page after the upgrade:\n%s", page)
	}
	stop()

	// Switching the server to production replaces the beta configuration (Conflicts).
	aptGet(t, flags, "install", "-y", "hello-config-production")
	if exec.Command("dpkg-query", "-W", "-f=${Status}", "hello-config-beta").Run() == nil {
		st, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", "hello-config-beta").Output()
		if strings.Contains(string(st), "installed") && !strings.Contains(string(st), "not-installed") && !strings.Contains(string(st), "config-files") {
			t.Errorf("hello-config-beta still installed next to hello-config-production: %s", st)
		}
	}

	// Purge: nothing may be left behind.
	out, err := dpkgRetry("dpkg", "-P", "hello-server", "hello-config-production", "hello-config-beta", "hello", "hello-virtualenv")
	if err != nil {
		t.Fatalf("dpkg -P: %v\n%s", err, out)
	}
	if strings.Contains(out, "warning") {
		t.Errorf("dpkg -P warned:\n%s", out)
	}
	for _, p := range []string{"/srv/python/hello", "/var/virtualenvs/hello", "/etc/nginx/sites-enabled/hello",
		"/etc/nginx/sites-available/hello", "/etc/uwsgi/apps-enabled/hello.ini", "/usr/share/doc/hello"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after purge", p)
		}
	}
}
