package deb

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// hardlinkPackage is samplePackage with a file of three names: one sorts before the file,
// one is a link to that link.
func hardlinkPackage(name, compression string) *Package {
	p := samplePackage(name, compression)
	body := strings.Repeat("hard-linked\n", 300) // 3600 bytes: 4 KiB, counted once
	p.Entries = append(p.Entries,
		fileEntry("/usr/bin/"+name, body, 0o755),
		Entry{Path: "/usr/bin/a-" + name, Type: TypeHardlink, Target: "/usr/bin/" + name},
		Entry{Path: "/usr/sbin/" + name, Type: TypeHardlink, Target: "/usr/bin/a-" + name},
	)
	return p
}

// TestHardlinks writes a file with three names in every compression and checks it the way
// dpkg-deb writes hard links: the first name in the archive is the file, the others tar hard
// links to it ("./usr/bin/a-NAME"), every name in md5sums, extracted as one inode.
func TestHardlinks(t *testing.T) {
	need(t, "dpkg-deb")
	need(t, "md5sum")
	for _, comp := range writtenCompressions {
		t.Run(comp, func(t *testing.T) {
			const name = "upds-test-hard"
			dir := t.TempDir()
			deb := filepath.Join(dir, "x.deb")
			if _, err := WriteFile(deb, hardlinkPackage(name, comp)); err != nil {
				t.Fatal(err)
			}
			contents := run(t, "dpkg-deb", "--contents", deb)
			for _, re := range []string{
				`(?m)^-rwxr-xr-x root/root +3600 .* \./usr/bin/a-` + name + `$`,
				`(?m)^hrwxr-xr-x root/root +0 .* \./usr/bin/` + name + ` link to \./usr/bin/a-` + name + `$`,
				`(?m)^hrwxr-xr-x root/root +0 .* \./usr/sbin/` + name + ` link to \./usr/bin/a-` + name + `$`,
			} {
				if !regexp.MustCompile(re).MatchString(contents) {
					t.Errorf("dpkg-deb --contents does not match %s:\n%s", re, contents)
				}
			}
			root := filepath.Join(dir, "root")
			run(t, "dpkg-deb", "--extract", deb, root)
			a, err1 := os.Stat(filepath.Join(root, "usr/bin/a-"+name))
			b, err2 := os.Stat(filepath.Join(root, "usr/sbin/"+name))
			if err1 != nil || err2 != nil || !os.SameFile(a, b) || a.Size() != 3600 {
				t.Errorf("extracted names are not one file: %v %v", err1, err2)
			}
			ctl := filepath.Join(dir, "ctl")
			run(t, "dpkg-deb", "--control", deb, ctl)
			sums, _ := os.ReadFile(filepath.Join(ctl, "md5sums"))
			for _, p := range []string{"usr/bin/a-" + name, "usr/bin/" + name, "usr/sbin/" + name} {
				if !strings.Contains(string(sums), "  "+p+"\n") {
					t.Errorf("md5sums lacks %s:\n%s", p, sums)
				}
			}
			cmd := exec.Command("md5sum", "--quiet", "-c", filepath.Join(ctl, "md5sums"))
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("md5sum -c: %v\n%s", err, out)
			}
			info, err := ReadFile(deb, ReadOptions{Files: true, Verify: true})
			if err != nil {
				t.Fatal(err)
			}
			links := 0
			for _, f := range info.Files {
				if f.Type == TypeHardlink {
					links++
					if f.Target != "/usr/bin/a-"+name || f.Mode != 0o755 {
						t.Errorf("read: %+v", f)
					}
				}
			}
			if links != 2 {
				t.Errorf("read %d hard links, want 2", links)
			}
		})
	}
}

// TestHardlinksStoredOnce: a file of ten names is in the archive once.
func TestHardlinksStoredOnce(t *testing.T) {
	body := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{1}).Read(body) // incompressible
	p := samplePackage("upds-test-once", "none")
	p.Entries = append(p.Entries, fileEntry("/usr/lib/once/0", string(body), 0o644))
	for i := 1; i < 10; i++ {
		p.Entries = append(p.Entries, Entry{Path: fmt.Sprintf("/usr/lib/once/%d", i), Type: TypeHardlink, Target: "/usr/lib/once/0"})
	}
	res, err := WriteFile(filepath.Join(t.TempDir(), "x.deb"), p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size > 1<<20+64<<10 || res.InstalledSize > 1024+64 {
		t.Errorf("size %d, Installed-Size %d KiB: the file is counted more than once", res.Size, res.InstalledSize)
	}
}

func TestHardlinksInvalid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry Entry
		want  string
	}{
		{"missing target", Entry{Path: "/x", Type: TypeHardlink, Target: "/nope"}, "entry /x: hard link to /nope, which is not in the package"},
		{"relative target", Entry{Path: "/x", Type: TypeHardlink, Target: "nope"}, "entry /x: hard link: path \"nope\" is not absolute"},
		{"to a directory", Entry{Path: "/x", Type: TypeHardlink, Target: "/var/lib/t1"}, "which is a dir: only regular files have hard links"},
		{"to a symlink", Entry{Path: "/x", Type: TypeHardlink, Target: "/srv/t1/current"}, "which is a symlink"},
		{"to itself", Entry{Path: "/x", Type: TypeHardlink, Target: "/x"}, "lead back to themselves"},
		{"to a conffile", Entry{Path: "/x", Type: TypeHardlink, Target: "/etc/t1/app.conf"}, "conffile /etc/t1/app.conf: has hard links"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := samplePackage("t1", "gzip")
			p.Entries = append(p.Entries, tc.entry)
			if err := Validate(p); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
	// Two links that name each other, and no file.
	p := samplePackage("t1", "gzip")
	p.Entries = append(p.Entries, Entry{Path: "/x", Type: TypeHardlink, Target: "/y"}, Entry{Path: "/y", Type: TypeHardlink, Target: "/x"})
	if err := Validate(p); err == nil || !strings.Contains(err.Error(), "lead back to themselves") {
		t.Fatalf("cycle: %v", err)
	}
}
