package debtest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/deb"
	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/venv"
	"github.com/upds/upds/stdlib/venv/wheeltest"
)

// venvEntries turns a built venv into package entries at res.Into, owned by owner.
func venvEntries(t *testing.T, res *venv.Result, owner string) []deb.Entry {
	t.Helper()
	var entries []deb.Entry
	err := filepath.WalkDir(res.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(res.Dir, p)
		dest := res.Into
		if rel != "." {
			dest = res.Into + "/" + filepath.ToSlash(rel)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := deb.Entry{Path: dest, Mode: info.Mode().Perm(), Owner: owner, Group: owner, UID: -1, GID: -1}
		switch {
		case d.IsDir():
			e.Type = deb.TypeDir
		case d.Type()&fs.ModeSymlink != 0:
			e.Type = deb.TypeSymlink
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case d.Type().IsRegular():
			e.Type, e.Size = deb.TypeFile, info.Size()
			e.Open = func() (io.ReadCloser, error) { return os.Open(p) }
		default:
			return nil
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func memFile(path, body string) deb.Entry {
	return deb.Entry{Path: path, Type: deb.TypeFile, Mode: 0o644, Size: int64(len(body)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
}

// TestDebInstallPurge packages a built venv with stdlib/deb, installs it with dpkg, runs its
// console script, purges it and checks that nothing is left; lintian reports no errors beyond
// the layout tags the binding overrides.
func TestDebInstallPurge(t *testing.T) {
	for _, tool := range []string{"/usr/bin/python3", "/usr/bin/dpkg", "/usr/bin/lintian"} {
		if _, err := os.Stat(tool); err != nil {
			t.Fatalf("%s is not installed: run .ci/install-deps", tool)
		}
	}
	proj := t.TempDir()
	wheels := filepath.Join(proj, "wheels")
	os.Mkdir(wheels, 0o755)
	for _, w := range []wheeltest.Wheel{
		{Name: "greet-lib", Version: "1.0", Files: map[string]string{"greet_lib/__init__.py": "def greet():\n    return 'hi'\n"}},
		{Name: "greet-app", Version: "1.0", Requires: []string{"greet-lib"}, EntryPoints: map[string]string{"greet": "greet_app:main"},
			Files: map[string]string{"greet_app/__init__.py": "import greet_lib\n\ndef main():\n    print(greet_lib.greet())\n"}},
	} {
		if _, err := wheeltest.Write(wheels, w); err != nil {
			t.Fatal(err)
		}
	}
	// A compiled module too: the package is then amd64 and depends on zlib1g.
	ext := filepath.Join(t.TempDir(), "ext")
	if out, err := exec.Command("cp", "-r", "../testdata/ext", ext).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	cmd := exec.Command("/usr/bin/python3", "-m", "pip", "wheel", "--no-build-isolation", "--no-index", "--no-deps", "-w", wheels, ext)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "PIP_CONFIG_FILE=/dev/null"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip wheel: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(proj, "requirements.txt"), []byte("greet-app\nupds-ext\n"), 0o644)
	b := make([]byte, 4)
	rand.Read(b)
	name := "upds-test-" + hex.EncodeToString(b)
	pkgName := name + "-virtualenv"
	res, err := venv.Build(context.Background(), venv.Spec{Name: name, Requirements: []string{"requirements.txt"},
		ProjectDir: proj, PipArgs: []string{"--no-index", "--find-links", "wheels"}}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(res.Dir)
	if !res.ArchSpecific {
		t.Errorf("ArchSpecific = false with a compiled module")
	}

	arch := "all"
	if res.ArchSpecific {
		arch = "amd64"
	}
	depends := append([]string{res.PythonPackage}, res.SharedLibDepends...)
	var changelog bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&changelog, gzip.BestCompression)
	zw.Write([]byte(pkgName + " (1.0) unstable; urgency=medium\n\n  * Built by the stdlib/venv tests.\n\n -- Upds Test <test@example.com>  Wed, 25 Nov 2026 12:00:00 +0000\n"))
	zw.Close()
	doc := "/usr/share/doc/" + pkgName
	entries := venvEntries(t, res, "www-data")
	entries = append(entries,
		memFile(doc+"/copyright", "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2026 Upds Test\nLicense: MIT\n"),
		memFile(doc+"/changelog.gz", changelog.String()),
		memFile("/usr/share/lintian/overrides/"+pkgName, pkgName+": non-standard-dir-in-var *\n"+pkgName+": file-in-unusual-dir *\n"+pkgName+": unusual-interpreter *\n"),
	)
	pkg := &deb.Package{
		Control: control.Paragraph{Fields: []control.Field{
			{Name: "Package", Value: pkgName},
			{Name: "Version", Value: "1.0"},
			{Name: "Architecture", Value: arch},
			{Name: "Maintainer", Value: "Upds Test <test@example.com>"},
			{Name: "Depends", Value: strings.Join(depends, ", ")},
			{Name: "Section", Value: "python"},
			{Name: "Priority", Value: "optional"},
			{Name: "Description", Value: "virtualenv of the stdlib/venv tests\nThe Python virtualenv of a test application, installed at\n" + res.Into + " and byte-compiled by its postinst."},
		}},
		Entries: entries,
		Scripts: map[string][]byte{"postinst": res.Postinst, "prerm": res.Prerm},
	}
	debPath := filepath.Join(t.TempDir(), pkgName+"_1.0_"+arch+".deb")
	if _, err := deb.WriteFile(debPath, pkg); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		exec.Command("dpkg", "-P", pkgName).Run()
		os.RemoveAll(res.Into)
	})
	if out, err := exec.Command("dpkg", "-i", debPath).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	out, err := exec.Command(res.Into + "/bin/greet").CombinedOutput()
	if err != nil || string(out) != "hi\n" {
		t.Errorf("%s/bin/greet: %v %q", res.Into, err, out)
	}
	if out, err := exec.Command(res.Into+"/bin/python", "-c", "import ext; print(ext.add(1, 2))").CombinedOutput(); err != nil || string(out) != "3\n" {
		t.Errorf("import ext: %v %q", err, out)
	}
	if m, _ := filepath.Glob(res.Into + "/lib/python3.*/site-packages/greet_lib/__pycache__/*.pyc"); len(m) == 0 {
		t.Errorf("postinst did not byte-compile the venv")
	}
	if out, err := exec.Command("dpkg", "-P", pkgName).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -P: %v\n%s", err, out)
	}
	if _, err := os.Lstat(res.Into); !os.IsNotExist(err) {
		left, _ := exec.Command("find", res.Into).CombinedOutput()
		t.Errorf("after purge %s is still there:\n%s", res.Into, left)
	}

	out, _ = exec.Command("lintian", "--no-cfg", "--tag-display-limit", "0", "--display-info", "--show-overrides", debPath).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") {
			t.Errorf("lintian error: %s", line)
		}
	}
}
