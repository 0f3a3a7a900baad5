package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upds/upds/stdlib/venv/wheeltest"
)

// venvProject is a project whose venv comes from two local wheels (one depends on the other,
// one has a console script), installed offline.
func venvProject(t *testing.T, name string) string {
	t.Helper()
	dir := project(t, map[string]string{
		"BUILD.star": `
project(name = "` + name + `", maintainer = "Ops Team <ops@example.com>", license = "MIT")
env = venv("` + name + `", requirements = "requirements.txt", pip_args = ["--no-index", "--find-links", "wheels/"])
envpkg = deb("` + name + `-virtualenv", contents = [env], owner = "www-data",
             description = "virtualenv of the test app\nEvery Python dependency, relocated.")
task("build", deps = [envpkg])
`,
		"VERSION":          "1.0.0\n",
		"requirements.txt": "upds-greet==2.0\n",
	})
	wheels := filepath.Join(dir, "wheels")
	os.MkdirAll(wheels, 0o755)
	for _, w := range []wheeltest.Wheel{
		{Name: "upds-words", Version: "1.1", Files: map[string]string{"upds_words/__init__.py": "WORD = 'hello from the venv'\n"}},
		{Name: "upds-greet", Version: "2.0", Requires: []string{"upds-words>=1.0"},
			Files:       map[string]string{"upds_greet/__init__.py": "from upds_words import WORD\n\ndef main():\n    print(WORD)\n"},
			EntryPoints: map[string]string{"upds-greet": "upds_greet:main"}},
	} {
		if _, err := wheeltest.Write(wheels, w); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestVenvPackageInstallsAndRuns(t *testing.T) {
	need(t, "dpkg", "dpkg-deb", "lintian", "/usr/bin/python3")
	const name = "upds-cli-venv"
	dir := venvProject(t, name)
	r := upds(t, dir, "run", "build")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	deb := filepath.Join(dir, "dist", name+"-virtualenv_1.0.0_amd64.deb")
	if got := sh(t, dir, "dpkg-deb --field "+deb+" Depends"); got != "python3.11\n" {
		t.Errorf("Depends = %q, want python3.11", got)
	}
	// No build path anywhere in the package.
	x := t.TempDir()
	sh(t, dir, "dpkg-deb --extract "+deb+" "+x+" && dpkg-deb --control "+deb+" "+x+"/DEBIAN")
	for _, leak := range []string{dir, filepath.Join(dir, ".upds"), os.TempDir() + "/"} {
		out, _ := exec.Command("grep", "-rl", "--", leak, x).Output()
		if len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("build path %s found in:\n%s", leak, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(x, "var/virtualenvs", name, "bin/upds-greet")); !bytes.HasPrefix(b, []byte("#!/var/virtualenvs/"+name+"/bin/python\n")) {
		t.Errorf("console script shebang: %q", firstLine(b))
	}
	if errs := lintianErrors(t, deb); len(errs) > 0 {
		t.Errorf("lintian errors:\n%s", strings.Join(errs, "\n"))
	}

	// Install, run the console script at its server path, purge: nothing left.
	t.Cleanup(func() { exec.Command("dpkg", "-P", name+"-virtualenv").Run() })
	sh(t, dir, "dpkg -i "+deb)
	out, err := exec.Command("/var/virtualenvs/" + name + "/bin/upds-greet").CombinedOutput()
	if err != nil || string(out) != "hello from the venv\n" {
		t.Fatalf("console script: %v %q", err, out)
	}
	sh(t, dir, "dpkg -P "+name+"-virtualenv")
	if _, err := os.Stat("/var/virtualenvs/" + name); err == nil {
		t.Fatalf("/var/virtualenvs/%s is left after purge", name)
	}

	// Unchanged: no pip run, the same bytes.
	sum := fileSum(t, deb)
	r = upds(t, dir, "run", "build")
	if r.code != 0 || !strings.Contains(r.stderr, "venv "+name+": cached") || !strings.Contains(r.stderr, "-virtualenv: cached") {
		t.Fatalf("rebuild: exit %d, want cache hits:\n%s", r.code, r.stderr)
	}
	if fileSum(t, deb) != sum {
		t.Fatal("rebuild changed the venv package")
	}
	// A new wheel in the find-links folder changes the key: rebuilt.
	if _, err := wheeltest.Write(filepath.Join(dir, "wheels"), wheeltest.Wheel{Name: "upds-other", Version: "1.0", Files: map[string]string{"o.py": ""}}); err != nil {
		t.Fatal(err)
	}
	if r := upds(t, dir, "run", "build"); r.code != 0 || strings.Contains(r.stderr, "venv "+name+": cached") {
		t.Fatalf("after a new wheel: exit %d, want a rebuild:\n%s", r.code, r.stderr)
	}
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	return string(l)
}

func TestVenvBadInput(t *testing.T) {
	need(t, "/usr/bin/python3")
	for _, tc := range []struct {
		name string
		edit func(dir string)
		code int
		want string
	}{
		{"missing requirements file", func(dir string) { os.Remove(filepath.Join(dir, "requirements.txt")) },
			2, `upds: BUILD.star:3:11: venv upds-bad: requirements: "requirements.txt": no such file in the project`},
		{"requirement not available offline", func(dir string) {
			os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("upds-greet==9.9\n"), 0o644)
		}, 1, "No matching distribution found for upds-greet==9.9"},
		{"non-system interpreter", func(dir string) {
			// A copy of the system interpreter outside /usr/bin, owned by no package: the
			// server will not have it.
			py := filepath.Join(dir, "py", "python3")
			os.MkdirAll(filepath.Dir(py), 0o755)
			b, _ := os.ReadFile("/usr/bin/python3.11")
			os.WriteFile(py, b, 0o755)
			build, _ := os.ReadFile(filepath.Join(dir, "BUILD.star"))
			os.WriteFile(filepath.Join(dir, "BUILD.star"), bytes.Replace(build, []byte(`requirements = "requirements.txt"`), []byte(`requirements = "requirements.txt", python = "`+py+`"`), 1), 0o644)
		}, 2, "is not a system interpreter: it is outside /usr/bin; the server will not have it"},
		{"missing interpreter", func(dir string) {
			build, _ := os.ReadFile(filepath.Join(dir, "BUILD.star"))
			os.WriteFile(filepath.Join(dir, "BUILD.star"), bytes.Replace(build, []byte(`requirements = "requirements.txt"`), []byte(`requirements = "requirements.txt", python = "/usr/bin/python9.9"`), 1), 0o644)
		}, 2, "upds: BUILD.star:3:11: venv upds-bad: python /usr/bin/python9.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := venvProject(t, "upds-bad")
			tc.edit(dir)
			r := upds(t, dir, "run", "build")
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, "dist")); len(entries) > 0 {
				t.Fatalf("dist/ has %d files after an error", len(entries))
			}
		})
	}
}

// TestInterruptStopsVenvBuild: Ctrl-C while pip waits for an index says the venv build was
// cancelled (as docs/commands.md promises), not FAILED with "context canceled".
func TestInterruptStopsVenvBuild(t *testing.T) {
	need(t, "/usr/bin/python3")
	asked := make(chan struct{}, 1)
	// An index that never answers: pip waits on it until it is stopped.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	dir := project(t, map[string]string{
		"BUILD.star": `project(name = "slow", maintainer = "Ops <ops@example.com>")
env = venv("slow", requirements = "requirements.txt", pip_args = ["--index-url", "` + srv.URL + `/simple/", "--timeout", "60", "--retries", "0"])
task("build", deps = [deb(name = "slow-virtualenv", contents = [env], description = "v\nv")])
`,
		"VERSION":          "1.0\n",
		"requirements.txt": "upds-nothing==1.0\n",
	})
	cmd := exec.Command(updsBin, "-C", dir, "--progress=plain", "run", "build")
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("pip did not ask the index within 30 s\n%s", se.String())
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want 130\n%s", err, se.String())
	}
	out := se.String()
	if !strings.Contains(out, "upds: venv slow: cancelled after ") || !strings.HasSuffix(out, "\nupds: interrupted\n") ||
		strings.Contains(out, "FAILED") || strings.Contains(out, "context canceled") {
		t.Errorf("stderr does not say the venv build was cancelled:\n%s", out)
	}
}
