package deb

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upds/upds/stdlib/deb/control"
)

func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(p *Package)
		want   string
	}{
		{"invalid name", func(p *Package) { p.Control.Set("Package", "Bad_Name") }, `package name "Bad_Name"`},
		{"short name", func(p *Package) { p.Control.Set("Package", "a") }, "at least 2 characters"},
		{"invalid version", func(p *Package) { p.Control.Set("Version", "1.0-") }, "revision number is empty"},
		{"version letter", func(p *Package) { p.Control.Set("Version", "v1.0") }, "does not start with digit"},
		{"missing maintainer", func(p *Package) { p.Control.Delete("Maintainer") }, "missing Maintainer"},
		{"empty synopsis", func(p *Package) { p.Control.Set("Description", "\nlong text") }, "synopsis"},
		{"wildcard arch", func(p *Package) { p.Control.Set("Architecture", "any") }, "wildcard"},
		{"invalid relation", func(p *Package) { p.Control.Set("Depends", "python3 (> 3.11)") }, "obsolete operator"},
		{"source-only relation", func(p *Package) { p.Control.Set("Depends", "python3 [amd64]") }, "only in source packages"},
		{"duplicate path", func(p *Package) { p.Entries = append(p.Entries, fileEntry("/srv/t1/app.py", "x", 0)) }, "duplicate path"},
		{"relative path", func(p *Package) { p.Entries = append(p.Entries, fileEntry("srv/x", "x", 0)) }, "not absolute"},
		{"dotdot path", func(p *Package) { p.Entries = append(p.Entries, fileEntry("/srv/../../etc/passwd", "x", 0)) }, "escapes the package root"},
		{"unclean path", func(p *Package) { p.Entries = append(p.Entries, fileEntry("/srv//x", "x", 0)) }, "not clean"},
		{"trailing slash", func(p *Package) { p.Entries = append(p.Entries, Entry{Path: "/srv/d/", Type: TypeDir}) }, "not clean"},
		{"root entry", func(p *Package) { p.Entries = append(p.Entries, Entry{Path: "/", Type: TypeDir}) }, "implicit"},
		{"newline", func(p *Package) { p.Entries = append(p.Entries, fileEntry("/srv/a\nb", "x", 0)) }, "newline"},
		{"parent is file", func(p *Package) { p.Entries = append(p.Entries, fileEntry("/srv/t1/app.py/x", "x", 0)) }, "not a directory"},
		{"no content", func(p *Package) { p.Entries = append(p.Entries, Entry{Path: "/x", Type: TypeFile}) }, "Open is nil"},
		{"no target", func(p *Package) { p.Entries = append(p.Entries, Entry{Path: "/x", Type: TypeSymlink}) }, "without target"},
		{"bad type", func(p *Package) { p.Entries = append(p.Entries, Entry{Path: "/x", Type: 9}) }, "unsupported type"},
		{"conffile not in entries", func(p *Package) { p.Conffiles = append(p.Conffiles, "/etc/t1/missing.conf") }, "not in the package"},
		{"conffile is dir", func(p *Package) { p.Conffiles = []string{"/etc/t1"} }, "not a regular file"},
		{"conffile relative", func(p *Package) { p.Conffiles = []string{"etc/t1/app.conf"} }, "not absolute"},
		{"script without #!", func(p *Package) { p.Scripts = map[string][]byte{"postinst": []byte("echo hi\n")} }, `must start with "#!"`},
		{"unknown script", func(p *Package) { p.Scripts = map[string][]byte{"postinstall": []byte("#!/bin/sh\n")} }, "want one of"},
		{"bad triggers", func(p *Package) { p.Triggers = []byte("listen foo\n") }, "triggers line 1"},
		{"unknown owner", func(p *Package) {
			p.Entries = append(p.Entries, Entry{Path: "/srv/t1/x", Type: TypeDir, Owner: "hello"})
		}, `user "hello" has no static Debian id: give its numeric id`},
		{"unknown group", func(p *Package) {
			p.Entries = append(p.Entries, Entry{Path: "/srv/t1/x", Type: TypeDir, Group: "hello", GID: -1})
		}, `group "hello" has no static Debian id`},
		{"bad compression", func(p *Package) { p.Compression = "bzip2" }, "want gzip, xz, zstd or none"},
		{"bad level", func(p *Package) { p.Level = 10 }, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := samplePackage("t1", "gzip")
			tc.modify(p)
			err := Validate(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			var b bytes.Buffer
			if _, err := Write(&b, p); err == nil || b.Len() != 0 {
				t.Fatalf("Write = %v after %d bytes", err, b.Len())
			}
		})
	}
	// Explicit ids make unknown names fine.
	p := samplePackage("t1", "gzip")
	p.Entries = append(p.Entries, Entry{Path: "/srv/t1/x", Type: TypeDir, Owner: "hello", UID: 999, Group: "hello", GID: 999})
	if err := Validate(p); err != nil {
		t.Fatal(err)
	}
}

func TestReproducible(t *testing.T) {
	for _, comp := range writtenCompressions {
		a := writeBytes(t, samplePackage("upds-test-repro", comp))
		b := writeBytes(t, samplePackage("upds-test-repro", comp))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two writes differ", comp)
		}
		// Entry order does not matter.
		p := samplePackage("upds-test-repro", comp)
		for i, j := 0, len(p.Entries)-1; i < j; i, j = i+1, j-1 {
			p.Entries[i], p.Entries[j] = p.Entries[j], p.Entries[i]
		}
		if c := writeBytes(t, p); !bytes.Equal(a, c) {
			t.Errorf("%s: entry order changes the output", comp)
		}
	}
}

func TestMTimeClamp(t *testing.T) {
	p := samplePackage("upds-test-mtime", "none")
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	p.Entries[0].MTime = old                                         // older than the clamp: kept
	p.Entries[2].MTime = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // newer: clamped
	info, err := Read(bytes.NewReader(writeBytes(t, p)), ReadOptions{Files: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range info.Files {
		want := p.MTime
		if f.Path == p.Entries[0].Path {
			want = old
		}
		if !f.MTime.Equal(want) {
			t.Errorf("%s: mtime %s, want %s", f.Path, f.MTime, want)
		}
	}
	p.MTime = time.Time{}
	info, err = Read(bytes.NewReader(writeBytes(t, p)), ReadOptions{Files: true})
	if err != nil || !info.Files[0].MTime.Equal(DefaultMTime()) {
		t.Errorf("default mtime: %v %v", err, info.Files[0].MTime)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.deb")
	must(t, os.WriteFile(out, []byte("old"), 0o644))
	p := samplePackage("upds-test-atomic", "gzip")
	p.Entries = append(p.Entries, Entry{Path: "/srv/fail", Type: TypeFile, Size: 10,
		Open: func() (io.ReadCloser, error) { return nil, errors.New("disk on fire") }})
	if _, err := WriteFile(out, p); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("WriteFile = %v", err)
	}
	// A file that is shorter than its Size.
	p.Entries[len(p.Entries)-1].Open = memOpen("short")
	if _, err := WriteFile(out, p); err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Fatalf("WriteFile = %v", err)
	}
	b, _ := os.ReadFile(out)
	ents, _ := os.ReadDir(dir)
	if string(b) != "old" || len(ents) != 1 {
		t.Errorf("after failures: %q, %d files in dir", b, len(ents))
	}
}

// TestWriteFileCancel: a cancelled context stops the write in every compression (the files
// after the cancel are never opened) and leaves nothing behind, neither the output, nor the
// staged data.tar, nor the temporary package; an existing package at the path stays.
func TestWriteFileCancel(t *testing.T) {
	for _, comp := range writtenCompressions {
		t.Run(comp, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "x.deb")
			must(t, os.WriteFile(out, []byte("old"), 0o644))
			p := syntheticPackage(comp)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var opened atomic.Int32
			for i := range p.Entries {
				open := p.Entries[i].Open
				p.Entries[i].Open = func() (io.ReadCloser, error) {
					if opened.Add(1) == 100 {
						cancel()
					}
					return open()
				}
			}
			_, err := WriteFileContext(ctx, out, p)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WriteFileContext = %v, want context.Canceled", err)
			}
			if n := opened.Load(); n > 101 {
				t.Errorf("%d of %d files opened after the cancel at the 100th", n, len(p.Entries))
			}
			b, _ := os.ReadFile(out)
			ents, _ := os.ReadDir(dir)
			if string(b) != "old" || len(ents) != 1 {
				t.Errorf("after the cancel: %q, %d files in dir", b, len(ents))
			}
		})
	}
}

func TestFilename(t *testing.T) {
	c := control.Paragraph{Fields: []control.Field{{Name: "Package", Value: "hello"}, {Name: "Version", Value: "2:1.4.2-3"}, {Name: "Architecture", Value: "amd64"}}}
	if got := Filename(c); got != "hello_1.4.2-3_amd64.deb" {
		t.Errorf("Filename = %q", got)
	}
}

// TestDpkgInstall installs and purges a package with maintainer scripts on this machine.
func TestDpkgInstall(t *testing.T) {
	need(t, "dpkg")
	if os.Geteuid() != 0 {
		t.Fatal("dpkg -i needs root: run the tests as root, as .ci/run does")
	}
	for _, comp := range writtenCompressions {
		t.Run(comp, func(t *testing.T) { testDpkgInstall(t, comp) })
	}
}

func testDpkgInstall(t *testing.T, comp string) {
	name := "upds-test-install-7f3a-" + comp
	marker := t.TempDir()
	script := func(s string) []byte {
		return []byte("#!/bin/sh\nset -e\necho \"$0 $*\" >> " + marker + "/" + s + "\n")
	}
	p := &Package{
		Control: testControl(name),
		Entries: []Entry{
			fileEntry("/usr/share/"+name+"/data.txt", "data\n", 0o644),
			{Path: "/usr/share/" + name + "/owned", Type: TypeFile, Owner: "www-data", Group: "www-data", Mode: 0o600, Size: 1, Open: memOpen("x")},
			{Path: "/usr/share/" + name + "/link", Type: TypeSymlink, Target: "data.txt"},
			{Path: "/usr/share/" + name + "/empty.d", Type: TypeDir, Mode: 0o700},
			fileEntry("/etc/"+name+".conf", "a = 1\n", 0o644),
		},
		Conffiles: []string{"/etc/" + name + ".conf"},
		Scripts: map[string][]byte{"preinst": script("preinst"), "postinst": script("postinst"),
			"prerm": script("prerm"), "postrm": script("postrm")},
		MTime:       time.Unix(1700000000, 0),
		Compression: comp,
	}
	p.Control.Set("Depends", "dpkg")
	deb := filepath.Join(t.TempDir(), Filename(p.Control))
	if _, err := WriteFile(deb, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("dpkg", "-P", name).Run() })
	run(t, "dpkg", "-i", deb)
	for _, s := range []string{"preinst", "postinst"} {
		b, err := os.ReadFile(filepath.Join(marker, s))
		if err != nil || !strings.Contains(string(b), s+" install") && !strings.Contains(string(b), s+" configure") {
			t.Errorf("%s did not run: %q %v", s, b, err)
		}
	}
	fi, err := os.Lstat("/usr/share/" + name + "/owned")
	if err != nil {
		t.Fatal(err)
	}
	if st := statOwner(fi); st != "33:33" || fi.Mode().Perm() != 0o600 {
		t.Errorf("owned: %s %v", st, fi.Mode())
	}
	if target, _ := os.Readlink("/usr/share/" + name + "/link"); target != "data.txt" {
		t.Errorf("link -> %q", target)
	}
	if fi, err := os.Stat("/usr/share/" + name + "/empty.d"); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("empty dir: %v %v", fi, err)
	}
	status := run(t, "dpkg-query", "-W", "-f=${Status} ${Version} ${Conffiles}", name)
	if !strings.HasPrefix(status, "install ok installed 1:1.2.3-1") || !strings.Contains(status, "/etc/"+name+".conf") {
		t.Errorf("dpkg-query: %q", status)
	}
	run(t, "dpkg", "-P", name)
	for _, s := range []string{"prerm", "postrm"} {
		b, _ := os.ReadFile(filepath.Join(marker, s))
		if !strings.Contains(string(b), s+" remove") {
			t.Errorf("%s did not run: %q", s, b)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(marker, "postrm")); !strings.Contains(string(b), "postrm purge") {
		t.Errorf("postrm purge did not run: %q", b)
	}
	for _, p := range []string{"/usr/share/" + name, "/etc/" + name + ".conf"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after purge: %v", p, err)
		}
	}
}

// TestLintian checks that a well-formed package gets no lintian errors.
func TestLintian(t *testing.T) {
	need(t, "lintian")
	// One lintian run for all three files (its start-up is the slow part); lintian looks at
	// one package per name, so each compression gets its own name.
	var debs []string
	for _, comp := range []string{"gzip", "xz", "zstd"} {
		p := lintianPackage("upds-test-lintian-" + comp)
		p.Compression = comp
		deb := filepath.Join(t.TempDir(), Filename(p.Control))
		if _, err := WriteFile(deb, p); err != nil {
			t.Fatal(err)
		}
		debs = append(debs, deb)
	}
	name := "upds-test-lintian-zstd"
	out, _ := exec.Command("lintian", append([]string{"--no-cfg", "--display-level", ">=warning"}, debs...)...).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	var errs []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") {
			errs = append(errs, l)
		}
	}
	// Debian 12's lintian knows only gz/xz members (the Debian archive does not take zstd),
	// so the zstd package gets exactly these two; dpkg itself reads it (TestDpkgDeb).
	want := []string{
		"E: " + name + ": malformed-deb-archive second (official) member control.tar.zst not control.tar.(gz|xz)",
		"E: " + name + ": malformed-deb-archive third (official) member data.tar.zst not data.tar.(gz|xz|bz2|lzma)",
	}
	if strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Errorf("lintian errors:\n%s\nwant only:\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
	if strings.Count(string(out), "no-manual-page") != 3 {
		t.Errorf("lintian did not look at the package: %s", out)
	}
}

// lintianPackage is a well-formed package with the copyright and changelog.gz Debian wants.
func lintianPackage(name string) *Package {
	maint := "Upds Test <test@example.com>"
	mtime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var cl bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&cl, gzip.BestCompression)
	zw.ModTime = mtime
	zw.Write([]byte(name + " (1.0) unstable; urgency=medium\n\n  * Release 1.0.\n\n -- " + maint + "  Wed, 01 May 2024 12:00:00 +0000\n"))
	zw.Close()
	copyright := "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: " + name +
		"\n\nFiles: *\nCopyright: 2024 Upds Test\nLicense: MIT\n Permission is hereby granted, free of charge, to any person obtaining a copy\n of this software, to deal in the Software without restriction.\n"
	return &Package{
		Control: control.Paragraph{Fields: []control.Field{
			{Name: "Package", Value: name}, {Name: "Version", Value: "1.0"}, {Name: "Architecture", Value: "all"},
			{Name: "Maintainer", Value: maint}, {Name: "Section", Value: "misc"}, {Name: "Priority", Value: "optional"},
			{Name: "Depends", Value: "python3"},
			{Name: "Description", Value: "lintian test package for upds\nThis package is written by the stdlib/deb tests to check that\nlintian reports no errors on what the writer produces."},
		}},
		Entries: []Entry{
			fileEntry("/usr/share/doc/"+name+"/copyright", copyright, 0o644),
			{Path: "/usr/share/doc/" + name + "/changelog.gz", Type: TypeFile, Mode: 0o644, Size: int64(cl.Len()), Open: memOpen(cl.String())},
			fileEntry("/usr/share/"+name+"/hello.py", "print('hello')\n", 0o644),
			fileEntry("/usr/bin/"+name, "#!/usr/bin/python3\nprint('hello')\n", 0o755),
			fileEntry("/etc/"+name+"/app.conf", "key = value\n", 0o644),
			{Path: "/usr/share/" + name + "/current", Type: TypeSymlink, Target: "hello.py"},
		},
		Conffiles: []string{"/etc/" + name + "/app.conf"},
		MTime:     mtime,
	}
}

func TestControlGolden(t *testing.T) {
	p := samplePackage("upds-test-golden", "gzip")
	p.Control.Set("Homepage", "https://example.com/hello")
	p.Control.Set("Pre-Depends", "dpkg(>=1.19)")
	var b bytes.Buffer
	p.TempDir = t.TempDir()
	if _, err := Write(&b, p); err != nil {
		t.Fatal(err)
	}
	info, err := Read(&b, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := info.Control.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "control.golden")
	if *update {
		must(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("control differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
}

// TestOutputIndependentOfCPUs checks that the number of CPUs (which sets how many blocks are
// compressed at once) does not change the bytes.
func TestOutputIndependentOfCPUs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, comp := range []string{"gzip", "xz", "zstd"} {
		p := syntheticPackage(comp)
		p.Level = 1 // small xz blocks: several of them
		runtime.GOMAXPROCS(1)
		a := writeBytes(t, p)
		runtime.GOMAXPROCS(4)
		b := writeBytes(t, p)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: output differs between 1 and 4 CPUs", comp)
		}
	}
}
