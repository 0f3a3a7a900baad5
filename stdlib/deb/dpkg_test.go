package deb

import (
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDpkgDeb checks packages in every compression with the real dpkg-deb: --info, --field,
// --contents (owners, modes, symlinks, empty dirs, the long path), --extract and md5sum -c.
func TestDpkgDeb(t *testing.T) {
	need(t, "dpkg-deb")
	need(t, "md5sum")
	for _, comp := range writtenCompressions {
		t.Run(comp, func(t *testing.T) {
			dir := t.TempDir()
			deb := filepath.Join(dir, "x.deb")
			p := samplePackage("upds-test-dpkgdeb", comp)
			res, err := WriteFile(deb, p)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(deb)
			if err != nil || st.Size() != res.Size || st.Mode().Perm() != 0o644 {
				t.Fatalf("stat: %v %v, result size %d", st, err, res.Size)
			}
			info := run(t, "dpkg-deb", "--info", deb)
			for _, want := range []string{"Package: upds-test-dpkgdeb", "Version: 1:1.2.3-1",
				"Depends: dpkg (>= 1.19), base-files | base-passwd", " It has a second paragraph.", " .\n"} {
				if !strings.Contains(info, want) {
					t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
				}
			}
			suffix := map[string]string{"gzip": ".gz", "xz": ".xz", "zstd": ".zst", "none": ""}[comp]
			if got, want := run(t, "ar", "t", deb), "debian-binary\ncontrol.tar"+suffix+"\ndata.tar"+suffix+"\n"; got != want {
				t.Errorf("ar t: %q, want %q", got, want)
			}
			if got := strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, "Installed-Size")); got != "34" || res.InstalledSize != 34 {
				// 22 directories (the root included), 1 symlink, 5 small files, one of 5000 bytes (5 KiB), one empty;
				// DEBIAN/ and its conffiles.
				t.Errorf("Installed-Size %s (result %d), want 34", got, res.InstalledSize)
			}
			contents := run(t, "dpkg-deb", "--contents", deb)
			for _, re := range []string{
				`(?m)^drwxr-xr-x root/root +0 2024-05-01 12:00 \./$`,
				`(?m)^-rw-r----- www-data/www-data +3 .* \./srv/upds-test-dpkgdeb/app\.py\.owned$`,
				`(?m)^-rwxr-xr-x root/root +18 .* \./srv/upds-test-dpkgdeb/run\.sh$`,
				`(?m)^lrwxrwxrwx root/root +0 .* \./srv/upds-test-dpkgdeb/current -> app\.py$`,
				`(?m)^drwxr-x--- www-data/www-data +0 .* \./var/lib/upds-test-dpkgdeb/$`,
				`(?m)^drwxrwsr-x nobody/nogroup +0 .* \./var/lib/upds-test-dpkgdeb/shared/$`,
				`(?m)^-rw-r--r-- root/root +0 .* \./srv/upds-test-dpkgdeb/empty$`,
				`(?m)^-rw-r--r-- root/root +5000 .* \.` + regexp.QuoteMeta(longPath) + `$`,
			} {
				if !regexp.MustCompile(re).MatchString(contents) {
					t.Errorf("dpkg-deb --contents does not match %s:\n%s", re, contents)
				}
			}
			// Numeric ids: GNU tar shows them with --numeric-owner.
			tarOut, err := exec.Command("sh", "-c", "dpkg-deb --fsys-tarfile "+deb+" | tar -tv --numeric-owner").CombinedOutput()
			if err != nil {
				t.Fatalf("tar: %v\n%s", err, tarOut)
			}
			if !strings.Contains(string(tarOut), "33/33") || !strings.Contains(string(tarOut), "65534/65534") {
				t.Errorf("numeric ids missing:\n%s", tarOut)
			}
			// Entries are sorted, the root first, parents before children.
			var names []string
			for _, l := range strings.Split(strings.TrimSpace(contents), "\n") {
				f := strings.Fields(l)
				names = append(names, f[5])
			}
			if names[0] != "./" {
				t.Errorf("first entry %q", names[0])
			}
			for i := 1; i < len(names); i++ {
				if strings.TrimSuffix(names[i-1], "/") >= strings.TrimSuffix(names[i], "/") {
					t.Errorf("order: %q before %q", names[i-1], names[i])
				}
			}
			// Extract and check md5sums against the extracted tree.
			root := filepath.Join(dir, "root")
			run(t, "dpkg-deb", "--extract", deb, root)
			ctl := filepath.Join(dir, "ctl")
			run(t, "dpkg-deb", "--control", deb, ctl)
			cmd := exec.Command("md5sum", "--quiet", "-c", filepath.Join(ctl, "md5sums"))
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("md5sum -c: %v\n%s", err, out)
			}
			sums, _ := os.ReadFile(filepath.Join(ctl, "md5sums"))
			// Every regular file but the conffile (dh_md5sums leaves conffiles out).
			if n := strings.Count(string(sums), "\n"); n != 5 || strings.Contains(string(sums), "app.conf") {
				t.Errorf("md5sums has %d lines, want 5 without the conffile:\n%s", n, sums)
			}
			conff, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
			if string(conff) != "/etc/upds-test-dpkgdeb/app.conf\n" {
				t.Errorf("conffiles = %q", conff)
			}
			if target, err := os.Readlink(filepath.Join(root, "srv/upds-test-dpkgdeb/current")); err != nil || target != "app.py" {
				t.Errorf("symlink: %q %v", target, err)
			}
			if fi, err := os.Stat(filepath.Join(root, "var/lib/upds-test-dpkgdeb/shared")); err != nil || !fi.IsDir() {
				t.Errorf("empty dir: %v", err)
			}
		})
	}
}

// TestInstalledSize compares Installed-Size with what dpkg-gencontrol computes on the
// extracted package, the way debhelper runs it: DEBIAN/ holds the scripts, conffiles,
// triggers, templates, shlibs and symbols, not yet control and md5sums.
func TestInstalledSize(t *testing.T) {
	need(t, "dpkg-gencontrol")
	for _, p := range []*Package{samplePackage("upds-test-size", "gzip"), richPackage("upds-test-size", "xz")} {
		deb := filepath.Join(t.TempDir(), "x.deb")
		res, err := WriteFile(deb, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := gencontrolSize(t, deb); want != res.Control.Get("Installed-Size") || want != fmtInt(res.InstalledSize) {
			t.Errorf("Installed-Size %s (result %d), dpkg-gencontrol says %s", res.Control.Get("Installed-Size"), res.InstalledSize, want)
		}
	}
}

// gencontrolSize is the Installed-Size dpkg-gencontrol computes for the package's tree.
func gencontrolSize(t *testing.T, deb string) string {
	t.Helper()
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "debian"), 0o755))
	tmp := filepath.Join(src, "debian/tmp")
	run(t, "dpkg-deb", "--raw-extract", deb, tmp)
	must(t, os.Remove(filepath.Join(tmp, "DEBIAN/control")))
	os.Remove(filepath.Join(tmp, "DEBIAN/md5sums"))
	must(t, os.WriteFile(filepath.Join(src, "debian/control"), []byte(
		"Source: upds-test-size\nMaintainer: T <t@example.com>\n\nPackage: upds-test-size\nArchitecture: all\nDescription: x\n y\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "debian/changelog"), []byte(
		"upds-test-size (1.0) unstable; urgency=medium\n\n  * x\n\n -- T <t@example.com>  Mon, 01 Jan 2024 00:00:00 +0000\n"), 0o644))
	cmd := exec.Command("dpkg-gencontrol", "-pupds-test-size", "-Pdebian/tmp", "-O")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-gencontrol: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^Installed-Size: (\d+)$`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no Installed-Size in:\n%s", out)
	}
	return m[1]
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func fmtInt(n int64) string { return strconv.FormatInt(n, 10) }

// TestXZBlocks checks the parallel xz writer on data spanning many blocks with xz itself and
// with dpkg-deb.
func TestXZBlocks(t *testing.T) {
	need(t, "xz")
	need(t, "dpkg-deb")
	var body strings.Builder
	for i := 0; body.Len() < 5<<20; i++ {
		fmt.Fprintf(&body, "line %d: %x\n", i, i*2654435761)
	}
	p := &Package{Control: testControl("upds-test-xz"), Compression: "xz", Level: 1,
		Entries: []Entry{fileEntry("/usr/share/upds-test-xz/big.txt", body.String(), 0o644)}}
	dir := t.TempDir()
	deb := filepath.Join(dir, "x.deb")
	if _, err := WriteFile(deb, p); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ar", "x", deb, "data.tar.xz")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ar x: %v\n%s", err, out)
	}
	list := run(t, "xz", "--robot", "-lv", filepath.Join(dir, "data.tar.xz"))
	if n := strings.Count(list, "\nblock\t"); n < 5 {
		t.Errorf("%d xz blocks, want at least 5:\n%s", n, list)
	}
	if !strings.Contains(list, "CRC64") {
		t.Errorf("xz -l: %s", list)
	}
	root := filepath.Join(dir, "root")
	run(t, "dpkg-deb", "-x", deb, root)
	got, err := os.ReadFile(filepath.Join(root, "usr/share/upds-test-xz/big.txt"))
	if err != nil || string(got) != body.String() {
		t.Errorf("extracted content differs (%d bytes, %v)", len(got), err)
	}
}

// TestLongSymlinkTarget checks a symlink whose target needs a GNU long-link record.
func TestLongSymlinkTarget(t *testing.T) {
	need(t, "dpkg-deb")
	target := "../../" + strings.Repeat("long-target-directory/", 8) + "file.py"
	p := &Package{Control: testControl("upds-test-longlink"), Compression: "gzip",
		Entries: []Entry{{Path: "/usr/share/upds-test-longlink/link", Type: TypeSymlink, Target: target}}}
	dir := t.TempDir()
	deb := filepath.Join(dir, "x.deb")
	if _, err := WriteFile(deb, p); err != nil {
		t.Fatal(err)
	}
	run(t, "dpkg-deb", "-x", deb, filepath.Join(dir, "root"))
	got, err := os.Readlink(filepath.Join(dir, "root/usr/share/upds-test-longlink/link"))
	if err != nil || got != target {
		t.Errorf("readlink = %q, %v; want %q", got, err, target)
	}
	info, err := ReadFile(deb, ReadOptions{Files: true})
	if err != nil || info.Files[len(info.Files)-1].Target != target {
		t.Errorf("Read: %v", err)
	}
}

// TestMD5SumsManyFiles checks md5sums where the hashing is spread over its hashers: more files
// than hashers and blocks, sizes at the md5 block and block boundaries, empty files; each
// line against crypto/md5 and all of them with md5sum -c on the tree dpkg-deb extracts.
func TestMD5SumsManyFiles(t *testing.T) {
	need(t, "dpkg-deb")
	need(t, "md5sum")
	sizes := []int{0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, blockSize - 1, blockSize, blockSize + 1,
		3*blockSize + 7, 5 << 20}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]string{}
	p := &Package{Control: testControl("upds-test-md5"), Compression: "zstd", MTime: DefaultMTime()}
	for i := 0; i < 3*blocks+5; i++ {
		body := make([]byte, sizes[i%len(sizes)]+i%3)
		for j := range body {
			body[j] = byte(rng.UintN(256))
		}
		path := fmt.Sprintf("/usr/share/upds-test-md5/f%03d", i)
		p.Entries = append(p.Entries, fileEntry(path, string(body), 0o644))
		want[path[1:]] = fmt.Sprintf("%x", md5.Sum(body))
	}
	dir := t.TempDir()
	deb := filepath.Join(dir, "x.deb")
	if _, err := WriteFile(deb, p); err != nil {
		t.Fatal(err)
	}
	run(t, "dpkg-deb", "--extract", deb, filepath.Join(dir, "root"))
	run(t, "dpkg-deb", "--control", deb, filepath.Join(dir, "ctl"))
	sums, err := os.ReadFile(filepath.Join(dir, "ctl", "md5sums"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(sums), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("md5sums has %d lines, want %d", len(lines), len(want))
	}
	for _, l := range lines {
		sum, path, _ := strings.Cut(l, "  ")
		if want[path] != sum {
			t.Errorf("%s: md5sums says %s, crypto/md5 %s", path, sum, want[path])
		}
	}
	cmd := exec.Command("md5sum", "--quiet", "-c", filepath.Join(dir, "ctl", "md5sums"))
	cmd.Dir = filepath.Join(dir, "root")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("md5sum -c: %v\n%s", err, out)
	}
}
