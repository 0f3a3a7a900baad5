package repo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blakesmith/ar"
)

func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run .ci/install-deps (it installs .ci/packages)", tool)
		}
	}
}

// newRepo makes an initialised repository in a temporary directory.
func newRepo(t testing.TB, opt InitOptions) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := Init(dir, opt); err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildDeb builds NAME_VERSION_ARCH.deb with dpkg-deb into out and returns its path.
// fields are extra control lines ("Depends: foo").
func buildDeb(t testing.TB, out, name, version, arch string, fields ...string) string {
	t.Helper()
	need(t, "dpkg-deb")
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/share/doc", name), 0o755)
	os.WriteFile(filepath.Join(root, "usr/share/doc", name, "README"), []byte(name+" "+version+"\n"), 0o644)
	ctl := "Package: " + name + "\nVersion: " + version + "\nArchitecture: " + arch +
		"\nMaintainer: Test <test@example.com>\n"
	for _, f := range fields {
		ctl += f + "\n"
	}
	ctl += "Description: test package " + name + "\n a test package.\n"
	if err := os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(ctl), 0o644); err != nil {
		t.Fatal(err)
	}
	ver := version
	if i := strings.IndexByte(ver, ':'); i >= 0 {
		ver = ver[i+1:]
	}
	p := filepath.Join(out, name+"_"+ver+"_"+arch+".deb")
	// Fixed times: the same package built twice is the same bytes, whatever the clock says.
	filepath.WalkDir(root, func(p string, _ fs.DirEntry, _ error) error {
		return os.Chtimes(p, time.Unix(1e9, 0), time.Unix(1e9, 0))
	})
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "-b", root, p)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1000000000")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v: %s", err, b)
	}
	return p
}

// upload builds a package straight into the repository's incoming/.
func upload(t testing.TB, dir, name, version, arch string, fields ...string) string {
	t.Helper()
	return buildDeb(t, filepath.Join(dir, IncomingDir), name, version, arch, fields...)
}

// craftDeb writes a .deb by hand (Go's ar and tar), with the given data.tar entries.
func craftDeb(t testing.TB, path, control string, dataNames []string) {
	t.Helper()
	tgz := func(files map[string]string, order []string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		tw := tar.NewWriter(zw)
		for _, n := range order {
			if name, target, ok := strings.Cut(n, " -> "); ok { // a symbolic link
				tw.WriteHeader(&tar.Header{Name: name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: target, ModTime: time.Unix(0, 0)})
				continue
			}
			tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
			tw.Write([]byte(files[n]))
		}
		tw.Close()
		zw.Close()
		return b.Bytes()
	}
	ctl := tgz(map[string]string{"./control": control}, []string{"./control"})
	data := map[string]string{}
	for _, n := range dataNames {
		data[n] = "x\n"
	}
	dt := tgz(data, dataNames)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := ar.NewWriter(f)
	w.WriteGlobalHeader()
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", ctl}, {"data.tar.gz", dt}} {
		w.WriteHeader(&ar.Header{Name: m.name, Size: int64(len(m.data)), Mode: 0o644, ModTime: time.Unix(0, 0)})
		w.Write(m.data)
	}
}

// apt runs apt-get/apt-cache against the repository served at url, with a private
// configuration, and fails the test on any W: or E: line.
type apt struct {
	t     testing.TB
	dir   string
	sysd  []string
	flags []string
}

func newApt(t testing.TB, url, keyFile, suite string) *apt {
	t.Helper()
	need(t, "apt-get", "apt-cache")
	d := t.TempDir()
	for _, p := range []string{"lists/partial", "cache/archives/partial", "etc", "dl"} {
		os.MkdirAll(filepath.Join(d, p), 0o755)
	}
	os.WriteFile(filepath.Join(d, "status"), nil, 0o644)
	src := filepath.Join(d, "etc", "sources.list")
	os.WriteFile(src, []byte("deb [signed-by="+keyFile+"] "+url+" "+suite+" main\n"), 0o644)
	return &apt{t: t, dir: d, flags: []string{
		"-o", "Dir::Etc::SourceList=" + src,
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::Etc::Parts=/dev/null",
		"-o", "Dir::Etc::Preferences=/dev/null",
		"-o", "Dir::Etc::PreferencesParts=/dev/null",
		"-o", "Dir::State::Lists=" + filepath.Join(d, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(d, "cache"),
		"-o", "Dir::State::status=" + filepath.Join(d, "status"),
		"-o", "APT::Sandbox::User=root",
		"-o", "APT::Architecture=amd64",
		"-o", "APT::Architectures::=amd64",
		"-o", "Acquire::Check-Valid-Until=true",
		"-o", "Acquire::Check-Date=true",
		"-o", "Acquire::Languages=none",
		"-o", "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false",
		"-o", "Debug::NoLocking=true",
	}}
}

// run runs the tool and returns its output; problems are returned, not fatal, so that
// it can be used from goroutines.
func (a *apt) run(tool string, args ...string) (string, error) {
	cmd := exec.Command(tool, append(append([]string{}, a.flags...), args...)...)
	cmd.Dir = filepath.Join(a.dir, "dl")
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	s := string(out)
	if err != nil {
		return s, &aptError{tool, args, err, s}
	}
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "W:") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "Err:") {
			return s, &aptError{tool, args, nil, s}
		}
	}
	return s, nil
}

func (a *apt) must(tool string, args ...string) string {
	a.t.Helper()
	out, err := a.run(tool, args...)
	if err != nil {
		a.t.Fatal(err)
	}
	return out
}

type aptError struct {
	tool string
	args []string
	err  error
	out  string
}

func (e *aptError) Error() string {
	return e.tool + " " + strings.Join(e.args, " ") + ": " + errString(e.err) + " (output has W:/E: lines or failed):\n" + e.out
}

func errString(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// serve serves the repository with Handler on 127.0.0.1.
func serve(t testing.TB, dir string) *httptest.Server {
	t.Helper()
	h, err := Handler(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
