package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// need fails a test when a real tool is missing; .ci/install-deps installs them all.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run .ci/install-deps (it installs .ci/packages)", tool)
		}
	}
}

func sh(t *testing.T, dir, cmd string) string {
	t.Helper()
	c := exec.Command("/bin/sh", "-c", cmd)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// lintianErrors runs lintian and returns its E: lines.
func lintianErrors(t *testing.T, debs ...string) []string {
	t.Helper()
	out, _ := exec.Command("lintian", append([]string{"--no-cfg", "--allow-root"}, debs...)...).CombinedOutput()
	var errs []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") {
			errs = append(errs, l)
		}
	}
	if strings.Contains(string(out), "fatal") {
		t.Fatalf("lintian failed:\n%s", out)
	}
	return errs
}

const appBuild = `
project(name = "upds-cli-app", maintainer = "Ops Team <ops@example.com>", license = "MIT",
        copyright = "2026 Example Ltd", homepage = "https://example.com/app")
app = deb(
    name = "upds-cli-app",
    contents = [
        tree("src/app", "/srv/python/upds-cli-app", owner = "www-data", exclude = ["*.log"]),
        file("conf/app.ini", "/etc/upds-cli-app/app.ini", mode = 0o640),
        file("conf/defaults", "/usr/share/upds-cli-app/defaults", mode = 0o644),
        link("/usr/share/upds-cli-app/current", "/srv/python/upds-cli-app"),
        directory("/var/lib/upds-cli-app", owner = "www-data", mode = 0o750),
    ],
    depends = ["python3 (>= 3.9)"],
    description = "Greeting web application\nServes a greeting over HTTP.",
    postinst = "scripts/postinst",
    prerm = "#!/bin/sh\nset -e\necho prerm-ran > /tmp/upds-cli-app.prerm\n",
)
role = deb(name = "upds-cli-role", arch = "all", depends = [app], description = "Role: the app server\nInstalls everything the app server runs.")
task("build", deps = [app, role], doc = "build both")
task("bump-minor", run = lambda ctx: bump("minor"))
task("list", deps = ["build"], run = lambda ctx: print(ctx.outputs))
`

func appProject(t *testing.T) string {
	dir := appFiles(t)
	// Symlinks in a source tree are packaged as symlinks, never followed (even outside).
	os.Symlink("views.py", filepath.Join(dir, "src/app/current.py"))
	os.Symlink("/etc/passwd", filepath.Join(dir, "src/app/outside"))
	return dir
}

func appFiles(t *testing.T) string {
	return project(t, map[string]string{
		"BUILD.star":             appBuild,
		"VERSION":                "1.9\n",
		"src/app/__init__.py":    "",
		"src/app/views.py":       "def index():\n    return 'hello'\n",
		"src/app/static/a b.css": "body {}\n",
		"src/app/debug.log":      "not shipped\n",
		"src/app/__pycache__/views.cpython-311.pyc": "bytecode",
		"conf/app.ini":     "[app]\nport = 8000\n",
		"conf/defaults":    "x=1\n",
		"scripts/postinst": "#!/bin/sh\nset -e\necho \"postinst-ran $1\" > /tmp/upds-cli-app.postinst\n",
	})
}

func TestDebBuildCheckedWithDpkgAndLintian(t *testing.T) {
	need(t, "dpkg-deb", "dpkg", "lintian", "md5sum")
	dir := appProject(t)
	r := upds(t, dir, "run", "build")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	deb := filepath.Join(dir, "dist", "upds-cli-app_1.9_amd64.deb")
	role := filepath.Join(dir, "dist", "upds-cli-role_1.9_all.deb")

	info := sh(t, dir, "dpkg-deb --info "+deb)
	for _, want := range []string{"Package: upds-cli-app", "Version: 1.9", "Architecture: amd64",
		"Maintainer: Ops Team <ops@example.com>", "Depends: python3 (>= 3.9)", "Homepage: https://example.com/app",
		"Description: Greeting web application\n  Serves a greeting over HTTP.", "X-Upds-Source: "} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	if got := sh(t, dir, "dpkg-deb --field "+role+" Depends"); got != "upds-cli-app (= 1.9)\n" {
		t.Errorf("role Depends = %q", got)
	}
	contents := strings.Join(strings.Fields(strings.ReplaceAll(sh(t, dir, "dpkg-deb --contents "+deb), "\n", " | ")), " ")
	for _, want := range []string{
		"drwxr-xr-x www-data/www-data 0 2020-01-01 00:00 ./srv/python/upds-cli-app/\n",
		"-rw-r--r-- www-data/www-data 32 2020-01-01 00:00 ./srv/python/upds-cli-app/views.py\n",
		"./srv/python/upds-cli-app/static/a b.css\n",
		"-rw-r----- root/root        18 2020-01-01 00:00 ./etc/upds-cli-app/app.ini\n",
		"lrwxrwxrwx root/root         0 2020-01-01 00:00 ./usr/share/upds-cli-app/current -> /srv/python/upds-cli-app\n",
		"drwxr-x--- www-data/www-data 0 2020-01-01 00:00 ./var/lib/upds-cli-app/\n",
		"./usr/share/doc/upds-cli-app/copyright\n",
		"./usr/share/doc/upds-cli-app/changelog.gz\n",
		"lrwxrwxrwx www-data/www-data 0 2020-01-01 00:00 ./srv/python/upds-cli-app/current.py -> views.py\n",
		"lrwxrwxrwx www-data/www-data 0 2020-01-01 00:00 ./srv/python/upds-cli-app/outside -> /etc/passwd\n",
	} {
		want = strings.Join(strings.Fields(strings.ReplaceAll(want, "\n", " |")), " ")
		if !strings.Contains(contents, want) {
			t.Errorf("dpkg-deb --contents lacks %q:\n%s", want, contents)
		}
	}
	for _, banned := range []string{"__pycache__", ".pyc", "debug.log"} {
		if strings.Contains(contents, banned) {
			t.Errorf("package ships %s:\n%s", banned, contents)
		}
	}
	if got := sh(t, dir, "dpkg-deb --ctrl-tarfile "+deb+" | tar -xO ./conffiles"); got != "/etc/upds-cli-app/app.ini\n" {
		t.Errorf("conffiles = %q", got)
	}
	// md5sums match the extracted tree.
	x := t.TempDir()
	sh(t, dir, "dpkg-deb --extract "+deb+" "+x)
	sh(t, x, "dpkg-deb --ctrl-tarfile "+deb+" | tar -xO ./md5sums | md5sum -c --quiet")
	if errs := lintianErrors(t, deb, role); len(errs) > 0 {
		t.Errorf("lintian errors:\n%s", strings.Join(errs, "\n"))
	}

	// Install and purge for real: the scripts run, the files land, purge removes them.
	os.Remove("/tmp/upds-cli-app.postinst")
	os.Remove("/tmp/upds-cli-app.prerm")
	t.Cleanup(func() { exec.Command("dpkg", "-P", "upds-cli-role", "upds-cli-app").Run() })
	sh(t, dir, "dpkg -i "+deb+" "+role)
	if b, _ := os.ReadFile("/tmp/upds-cli-app.postinst"); string(b) != "postinst-ran configure\n" {
		t.Errorf("postinst marker = %q", b)
	}
	if _, err := os.Stat("/srv/python/upds-cli-app/views.py"); err != nil {
		t.Error(err)
	}
	if st := sh(t, dir, "stat -c %U:%G /var/lib/upds-cli-app"); st != "www-data:www-data\n" {
		t.Errorf("owner of /var/lib/upds-cli-app = %q", st)
	}
	sh(t, dir, "dpkg -P upds-cli-role upds-cli-app")
	if b, _ := os.ReadFile("/tmp/upds-cli-app.prerm"); string(b) != "prerm-ran\n" {
		t.Errorf("prerm marker = %q", b)
	}
	for _, p := range []string{"/srv/python/upds-cli-app", "/etc/upds-cli-app", "/var/lib/upds-cli-app"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left after purge", p)
		}
	}
}

func TestDebReproducibleAndCached(t *testing.T) {
	dir := appProject(t)
	if r := upds(t, dir, "run", "build"); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	deb := filepath.Join(dir, "dist", "upds-cli-app_1.9_amd64.deb")
	first := fileSum(t, deb)

	// Touch every source: same content, so the same key and a cache hit.
	future := time.Now().Add(time.Hour)
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !strings.Contains(p, ".upds") && !strings.Contains(p, "dist") {
			os.Chtimes(p, future, future)
		}
		return nil
	})
	r := upds(t, dir, "run", "build")
	if r.code != 0 || !strings.Contains(r.stderr, "deb upds-cli-app: cached") {
		t.Fatalf("after touch: exit %d, want a cache hit:\n%s", r.code, r.stderr)
	}
	if fileSum(t, deb) != first {
		t.Fatal("touch changed the package")
	}
	// Without the cache: built again, byte-identical.
	os.RemoveAll(filepath.Join(dir, ".upds"))
	os.RemoveAll(filepath.Join(dir, "dist"))
	if r := upds(t, dir, "run", "build"); r.code != 0 || strings.Contains(r.stderr, ": cached") {
		t.Fatalf("rebuild: exit %d\n%s", r.code, r.stderr)
	}
	if fileSum(t, deb) != first {
		t.Fatal("deleting .upds/ changed the package")
	}
	if r := upds(t, dir, "run", "--no-cache", "build"); r.code != 0 {
		t.Fatalf("--no-cache: exit %d\n%s", r.code, r.stderr)
	}
	if fileSum(t, deb) != first {
		t.Fatal("--no-cache changed the package")
	}
	// A changed source is seen.
	os.WriteFile(filepath.Join(dir, "src/app/views.py"), []byte("def index():\n    return 'bye'\n"), 0o644)
	if r := upds(t, dir, "run", "build"); r.code != 0 || strings.Contains(r.stderr, "deb upds-cli-app: cached") {
		t.Fatalf("after a change: exit %d\n%s", r.code, r.stderr)
	}
	if fileSum(t, deb) == first {
		t.Fatal("a changed source did not change the package")
	}
}

func TestBumpThenBuild(t *testing.T) {
	need(t, "dpkg-deb")
	dir := appProject(t)
	r := upds(t, dir, "run", "bump-minor", "build")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	deb := filepath.Join(dir, "dist", "upds-cli-app_1.10_amd64.deb")
	if got := sh(t, dir, "dpkg-deb --field "+deb+" Version"); got != "1.10\n" {
		t.Fatalf("Version = %q", got)
	}
	if got := sh(t, dir, "dpkg-deb --field "+filepath.Join(dir, "dist", "upds-cli-role_1.10_all.deb")+" Depends"); got != "upds-cli-app (= 1.10)\n" {
		t.Fatalf("role Depends = %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "VERSION")); string(b) != "1.10\n" {
		t.Fatalf("VERSION = %q", b)
	}
	if r := upds(t, dir, "version"); r.stdout != "1.10\n" {
		t.Fatalf("upds version = %q", r.stdout)
	}
	if r := upds(t, dir, "bump", "patch"); r.code != 0 || r.stdout != "1.10.1\n" {
		t.Fatalf("upds bump patch = %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := upds(t, dir, "bump", "tiny"); r.code != 2 {
		t.Fatalf("upds bump tiny: exit %d", r.code)
	}
	// build, bump, then a task that depends on the task build (which already ran): its
	// ctx.outputs are the packages of the new version, rebuilt in this round.
	r = upds(t, dir, "run", "build", "bump-minor", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "upds-cli-app_1.11.0_amd64.deb") || strings.Contains(r.stdout, "1.10.1") {
		t.Fatalf("outputs after a bump: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestDebBadInput(t *testing.T) {
	base := func(contents string, extra ...string) string {
		s := `project(name = "bad", maintainer = "Ops <ops@example.com>")
` + strings.Join(extra, "\n") + `
p = deb(name = "bad", contents = [` + contents + `])
task("build", deps = [p])
`
		return s
	}
	for _, tc := range []struct {
		name, build, want string
	}{
		{"source outside the project", base(`tree("../etc", "/etc/x")`), `BUILD.star:3:* tree: src: "../etc" escapes the project root`},
		{"absolute source", base(`file("/etc/passwd", "/etc/x")`), `BUILD.star:3:* file: src: "/etc/passwd" is absolute`},
		{"relative destination", base(`file("a.txt", "etc/x")`), `BUILD.star:3:* file: dest: "etc/x" is not absolute`},
		{"escaping destination", base(`file("a.txt", "/../etc/passwd")`), `BUILD.star:3:* file: dest: "/../etc/passwd" is not clean`},
		// Reported at the line of the second of the two (a deb() call may be long).
		{"two entries at one path", base("file(\"a.txt\", \"/etc/x\"),\n    file(\"b.txt\", \"/etc/x\")"),
			`BUILD.star:4:* deb bad: contents: two entries at /etc/x: file("a.txt", "/etc/x") and file("b.txt", "/etc/x") (also from BUILD.star:3)`},
		{"tree overlapping a file", base("tree(\"src\", \"/srv/x\"),\n    file(\"a.txt\", \"/srv/x/a.txt\")"),
			`BUILD.star:4:* deb bad: /srv/x/a.txt is in the package twice (also from BUILD.star:3)`},
		{"invalid package name", `deb(name = "Bad_Name", maintainer = "a <b@c>")`, `BUILD.star:1:* deb: name: `},
		{"invalid version", `project(name = "xx", maintainer = "a <b@c>")` + "\n" + `deb(name = "xx", version = "1.0-")`, `BUILD.star:2:* deb xx: version: `},
		{"invalid relation", `project(name = "xx", maintainer = "a <b@c>")` + "\n" + `deb(name = "xx", depends = ["nginx (>> )"])`, `BUILD.star:2:* deb xx: depends[0]: `},
		{"unknown owner without id", base(`file("a.txt", "/etc/x", owner = "hello")`), `BUILD.star:3:* file: owner: "hello" has no static Debian id: write "hello:ID"`},
		{"missing source", base(`file("nope.txt", "/etc/x")`), `BUILD.star:3:* file: src "nope.txt": no such file or directory in the project`},
		{"script without shebang", `project(name = "xx", maintainer = "a <b@c>")` + "\n" + `deb(name = "xx", postinst = "echo hi\nexit 0\n")`, `BUILD.star:2:* deb xx: postinst: the script must start with #!`},
		{"no maintainer", `deb(name = "xx")`, `BUILD.star:1:* deb xx: maintainer: none given`},
		{"bad compression", `project(name = "xx", maintainer = "a <b@c>")` + "\n" + `deb(name = "xx", compression = "bz2")`, `BUILD.star:2:* deb xx: compression: "bz2" is not one of gzip, xz, zstd, none`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := project(t, map[string]string{"BUILD.star": tc.build, "VERSION": "1.0\n", "a.txt": "a\n", "b.txt": "b\n", "src/a.txt": "x\n"})
			r := upds(t, dir, "run", "build")
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\n%s", r.code, r.stderr)
			}
			// tc.want is "BUILD.star:LINE:* message": any column on that line.
			prefix, msg, _ := strings.Cut(tc.want, "* ")
			ok := false
			for _, l := range strings.Split(r.stderr, "\n") {
				if strings.HasPrefix(l, "upds: "+prefix) && strings.Contains(l, msg) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("stderr has no line %q...%q:\n%s", prefix, msg, r.stderr)
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, "dist")); len(entries) > 0 {
				t.Fatalf("dist/ has %d files after an error", len(entries))
			}
		})
	}
}

// TestZstdEncoderInKey: zstd packages are keyed by the encoder that compresses them
// (libzstd's bytes change with its version), so switching to the pure-Go encoder with
// UPDS_ZSTD=go rebuilds instead of reusing libzstd's package.
func TestZstdEncoderInKey(t *testing.T) {
	need(t, "dpkg-deb")
	dir := project(t, map[string]string{
		"BUILD.star": `project(name = "zz", maintainer = "Ops <ops@example.com>")
z = deb(name = "zz", compression = "zstd", description = "z", contents = [tree("src", "/usr/share/zz")])
task("build", deps = [z])
`,
		"VERSION":  "1.0\n",
		"src/a.py": strings.Repeat("print('hello')\n", 1000),
	})
	deb := filepath.Join(dir, "dist", "zz_1.0_amd64.deb")
	if r := upds(t, dir, "run", "build"); r.code != 0 || strings.Contains(r.stderr, ": cached") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	first := fileSum(t, deb)
	if r := upds(t, dir, "run", "build"); r.code != 0 || !strings.Contains(r.stderr, "deb zz: cached") {
		t.Fatalf("second build: exit %d, want a cache hit\n%s", r.code, r.stderr)
	}
	t.Setenv("UPDS_ZSTD", "go")
	if r := upds(t, dir, "run", "build"); r.code != 0 || strings.Contains(r.stderr, ": cached") {
		t.Fatalf("UPDS_ZSTD=go: exit %d, want a rebuild\n%s", r.code, r.stderr)
	}
	if fileSum(t, deb) == first {
		t.Fatal("UPDS_ZSTD=go gave the same bytes")
	}
	sh(t, dir, "dpkg-deb --fsys-tarfile dist/zz_1.0_amd64.deb | tar -t | grep -qx ./usr/share/zz/a.py")
}

// TestInterruptStopsDebBuild: Ctrl-C in the middle of writing a package stops the writer
// (it used to finish the package first: 10 s for an xz venv) and leaves no package and no
// staging file behind.
func TestInterruptStopsDebBuild(t *testing.T) {
	files := map[string]string{
		"BUILD.star": `project(name = "big", maintainer = "Ops <ops@example.com>")
b = deb(name = "big", compression = "xz", description = "b", contents = [tree("data", "/usr/share/big")])
task("build", deps = [b])
`,
		"VERSION": "1.0\n",
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 64; i++ {
		var b strings.Builder
		for b.Len() < 1<<20 {
			fmt.Fprintf(&b, "line %d of file %d: %x\n", b.Len(), i, rng.Uint64()%(1<<20))
		}
		files[fmt.Sprintf("data/f%02d.txt", i)] = b.String()
	}
	dir := project(t, files)
	cmd := exec.Command(updsBin, "-C", dir, "--progress=plain", "run", "build")
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the writer stages data.tar, then interrupt.
	tmp := filepath.Join(dir, ".upds", "tmp")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(tmp, ".upds-data-*")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no staged data.tar after 20 s\n%s", se.String())
		}
	}
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if time.Since(start) > 10*time.Second {
		t.Fatal("Ctrl-C took more than 10 s to stop the build")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want 130\n%s", err, se.String())
	}
	if !strings.Contains(se.String(), "deb big: cancelled") {
		t.Errorf("stderr does not say the build was cancelled:\n%s", se.String())
	}
	var left []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err == nil && !fi.IsDir() && (strings.HasSuffix(rel, ".deb") || strings.HasPrefix(rel, ".upds/tmp/") ||
			strings.HasPrefix(rel, ".upds/objects/") || strings.Contains(rel, ".tmp-")) {
			left = append(left, rel)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
