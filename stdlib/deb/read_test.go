package deb

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/blakesmith/ar"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestReadRoundTrip(t *testing.T) {
	for _, comp := range writtenCompressions {
		t.Run(comp, func(t *testing.T) {
			p := samplePackage("upds-test-read", comp)
			p.Scripts = map[string][]byte{"postinst": []byte("#!/bin/sh\nset -e\n")}
			p.Triggers = []byte("interest-noawait /usr/share/upds\n")
			var b bytes.Buffer
			p.TempDir = t.TempDir()
			res, err := Write(&b, p)
			if err != nil {
				t.Fatal(err)
			}
			info, err := Read(bytes.NewReader(b.Bytes()), ReadOptions{Files: true, Verify: true, Hash: true})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(info.Control, res.Control) {
				t.Errorf("control:\n%v\n%v", info.Control, res.Control)
			}
			md, sha := md5.Sum(b.Bytes()), sha256.Sum256(b.Bytes())
			if info.Size != res.Size || info.Size != int64(b.Len()) || info.MD5 != hex.EncodeToString(md[:]) || info.SHA256 != hex.EncodeToString(sha[:]) {
				t.Errorf("read %d %s %s; wrote %d (Result %d) %x %x", info.Size, info.MD5, info.SHA256, b.Len(), res.Size, md, sha)
			}
			if info.ControlCompression != comp || info.DataCompression != comp {
				t.Errorf("compression %s/%s", info.ControlCompression, info.DataCompression)
			}
			if !reflect.DeepEqual(info.Conffiles, p.Conffiles) {
				t.Errorf("conffiles %v", info.Conffiles)
			}
			if string(info.Scripts["postinst"]) != "#!/bin/sh\nset -e\n" || string(info.Triggers) != string(p.Triggers) {
				t.Errorf("scripts %q triggers %q", info.Scripts, info.Triggers)
			}
			if len(info.Files) != res.Files || info.Files[0].Path != "/" {
				t.Fatalf("%d files, want %d", len(info.Files), res.Files)
			}
			if len(info.MD5Sums) != 5 || info.MD5Sums["/srv/upds-test-read/empty"] != "d41d8cd98f00b204e9800998ecf8427e" {
				t.Errorf("md5sums %v", info.MD5Sums)
			}
			byPath := map[string]FileInfo{}
			for _, f := range info.Files {
				byPath[f.Path] = f
			}
			for _, e := range p.Entries {
				f, ok := byPath[e.Path]
				if !ok {
					t.Errorf("%s missing", e.Path)
					continue
				}
				if f.Type != e.Type || f.Size != e.Size || f.Target != e.Target {
					t.Errorf("%s: %+v vs %+v", e.Path, f, e)
				}
			}
			own := byPath["/srv/upds-test-read/app.py.owned"]
			if own.Owner != "www-data" || own.UID != 33 || own.GID != 33 || own.Mode != 0o640 {
				t.Errorf("owned: %+v", own)
			}
			if sh := byPath["/var/lib/upds-test-read/shared"]; sh.Mode != 0o775|os.ModeSetgid || sh.UID != 65534 {
				t.Errorf("shared: %+v", sh)
			}
			// Without options only control.tar is decompressed.
			quick, err := Read(bytes.NewReader(b.Bytes()), ReadOptions{})
			if err != nil || quick.Files != nil || !reflect.DeepEqual(quick.Control, res.Control) {
				t.Errorf("quick read: %v %+v", err, quick)
			}
		})
	}
}

// TestReadDpkgDeb reads a package built by dpkg-deb itself.
func TestReadDpkgDeb(t *testing.T) {
	need(t, "dpkg-deb")
	dir := t.TempDir()
	root := filepath.Join(dir, "p")
	must(t, os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "usr/share/x"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte("Package: xx-dpkg\nVersion: 1.0\nArchitecture: all\nMaintainer: a <a@example.com>\nDescription: x\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "usr/share/x/f"), []byte("hi\n"), 0o644))
	must(t, os.Symlink("f", filepath.Join(root, "usr/share/x/l")))
	must(t, os.Link(filepath.Join(root, "usr/share/x/f"), filepath.Join(root, "usr/share/x/h")))
	for _, z := range []string{"gzip", "xz", "zstd", "none"} {
		deb := filepath.Join(dir, z+".deb")
		run(t, "dpkg-deb", "--root-owner-group", "-Z"+z, "-b", root, deb)
		info, err := ReadFile(deb, ReadOptions{Files: true, Verify: true})
		if err != nil {
			t.Fatalf("%s: %v", z, err)
		}
		if info.Control.Get("Package") != "xx-dpkg" || len(info.Files) != 7 || info.DataCompression != z {
			t.Fatalf("%s: %+v", z, info)
		}
		if h := info.Files[len(info.Files)-2]; h.Type != TypeHardlink || h.Target != "/usr/share/x/f" || h.Path != "/usr/share/x/h" {
			t.Errorf("%s: hard link %+v", z, h)
		}
	}
}

// hostileDeb builds a .deb whose data.tar holds the given names.
func hostileDeb(t *testing.T, names ...string) []byte {
	t.Helper()
	tarOf := func(entries map[string]string, order []string) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, n := range order {
			if name, target, ok := strings.Cut(n, " -> "); ok { // a symbolic link
				tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777})
				continue
			}
			if strings.HasSuffix(n, "/") {
				tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755})
				continue
			}
			tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(entries[n]))})
			tw.Write([]byte(entries[n]))
		}
		tw.Close()
		return b.Bytes()
	}
	ctl := tarOf(map[string]string{"./control": "Package: evil\nVersion: 1\nArchitecture: all\n"}, []string{"./control"})
	data := map[string]string{}
	for _, n := range names {
		data[n] = "x"
	}
	dt := tarOf(data, names)
	var out bytes.Buffer
	aw := ar.NewWriter(&out)
	aw.WriteGlobalHeader()
	for _, m := range []struct {
		name string
		b    []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar", ctl}, {"data.tar", dt}} {
		aw.WriteHeader(&ar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.b))})
		aw.Write(m.b)
	}
	return out.Bytes()
}

func TestReadRejects(t *testing.T) {
	good := writeBytes(t, samplePackage("upds-test-bad", "gzip"))
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"dotdot", hostileDeb(t, "./usr/../../etc/passwd"), "escapes the package root"},
		{"absolute", hostileDeb(t, "/etc/passwd"), "absolute path escapes"},
		{"through a symlink", hostileDeb(t, "./usr/up -> ../../escaped", "./usr/up/evil"), `"/usr/up/evil": goes through the symbolic link /usr/up`},
		{"deeper through a symlink", hostileDeb(t, "./usr -> /", "./usr/a/b/evil"), "goes through the symbolic link /usr"},
		{"not ar", []byte("hello world, not a deb"), "not a Debian package"},
		{"truncated", good[:len(good)/2], "truncated"},
		{"no data", good[:8+60+4+60], "truncated"},
		{"bad version", bytes.Replace(good, []byte("2.0\n"), []byte("3.0\n"), 1), "want 2.x"},
		{"corrupt data", corrupt(good), ""},
	} {
		_, err := Read(bytes.NewReader(tc.in), ReadOptions{Files: true, Verify: true})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestReadSymlinkEscapeLikeDpkg: a file written through the package's own symbolic link is
// refused by Read as dpkg-deb -x refuses it, and a package whose links only point somewhere
// (even outside the root) is read by both.
func TestReadSymlinkEscapeLikeDpkg(t *testing.T) {
	need(t, "dpkg-deb")
	for _, tc := range []struct {
		names []string
		ok    bool
	}{
		{[]string{"./usr/up -> ../../escaped", "./usr/up/evil"}, false},
		{[]string{"./usr/", "./usr/up -> ../../escaped", "./usr/real"}, true},
	} {
		b := hostileDeb(t, tc.names...)
		_, err := Read(bytes.NewReader(b), ReadOptions{Files: true, Verify: true})
		f := filepath.Join(t.TempDir(), "x.deb")
		must(t, os.WriteFile(f, b, 0o644))
		root := t.TempDir()
		dest := filepath.Join(root, "a", "b") // ../../escaped of usr/up is root/a/escaped
		must(t, os.MkdirAll(dest, 0o755))
		out, derr := exec.Command("dpkg-deb", "-x", f, dest).CombinedOutput()
		if (err == nil) != tc.ok || (derr == nil) != tc.ok {
			t.Errorf("%v: upds %v, dpkg-deb -x %v %s; want ok=%v", tc.names, err, derr, out, tc.ok)
		}
		if _, serr := os.Stat(filepath.Join(root, "a", "escaped", "evil")); serr == nil {
			t.Errorf("%v: dpkg-deb -x wrote outside its directory", tc.names)
		}
	}
}

// corrupt flips a byte in the middle of data.tar.gz.
func corrupt(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)-len(c)/4] ^= 0xff
	return c
}

func TestWriteTextGolden(t *testing.T) {
	p := samplePackage("upds-test-text", "xz")
	p.Scripts = map[string][]byte{"postinst": []byte("#!/bin/sh\nset -e\necho configured\n"), "prerm": []byte("#!/bin/sh\n")}
	info, err := Read(bytes.NewReader(writeBytes(t, p)), ReadOptions{Files: true})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := info.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "inspect.golden")
	if *update {
		must(t, os.WriteFile(golden, b.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("WriteText differs from %s (go test -update rewrites it):\n%s", golden, b.String())
	}
	// The file list agrees with dpkg-deb -c on everything but column padding.
	if _, err := exec.LookPath("dpkg-deb"); err == nil {
		deb := filepath.Join(t.TempDir(), "x.deb")
		p.TempDir = ""
		if _, err := WriteFile(deb, p); err != nil {
			t.Fatal(err)
		}
		want := strings.Fields(run(t, "dpkg-deb", "-c", deb))
		got := strings.Fields(b.String()[strings.Index(b.String(), "Files:\n")+7:])
		if !reflect.DeepEqual(got, want) {
			t.Errorf("file list:\n%v\ndpkg-deb -c:\n%v", got, want)
		}
	}
}

func TestReadFileSeeks(t *testing.T) {
	deb := filepath.Join(t.TempDir(), "x.deb")
	res, err := WriteFile(deb, samplePackage("upds-test-seek", "gzip"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadFile(deb, ReadOptions{})
	if err != nil || !reflect.DeepEqual(info.Control, res.Control) {
		t.Fatalf("ReadFile: %v", err)
	}
	// A truncated file is still an error when the data member is skipped by seeking.
	b, _ := os.ReadFile(deb)
	must(t, os.WriteFile(deb, b[:len(b)-100], 0o644))
	if _, err := ReadFile(deb, ReadOptions{}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated: %v", err)
	}
}

func TestInfoJSON(t *testing.T) {
	p := samplePackage("upds-test-json", "gzip")
	p.Scripts = map[string][]byte{"postinst": []byte("#!/bin/sh\n")}
	info, err := Read(bytes.NewReader(writeBytes(t, p)), ReadOptions{Files: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"control":{"Package":"upds-test-json","Version":"1:1.2.3-1"`,
		`"scripts":{"postinst":"#!/bin/sh\n"}`, `"mode":"2775","mode_string":"drwxrwsr-x"`,
		`"type":"symlink"`, `"owner":"www-data"`, `"conffiles":["/etc/upds-test-json/app.conf"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	var back struct {
		Files []FileInfo `json:"files"`
	}
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back.Files, info.Files) {
		t.Errorf("files round trip: %v", err)
	}
}
