package main

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/deb"
)

// rebuildPackages are real Debian 12 packages that use what deb() can now express: hard links
// (bzip2, gzip, unzip), debconf config and templates (ssl-cert, ucf, libdebuginfod-common,
// ca-certificates, nginx-common, libpam0g), conffiles, shlibs, symbols and triggers (zlib1g,
// libpam0g), a directory of mode 0700 (ssl-cert), Essential and Multi-Arch fields.
var rebuildPackages = []string{"bzip2", "gzip", "unzip", "libdebuginfod-common", "ssl-cert", "ucf", "libpam0g",
	"zlib1g", "ca-certificates", "nginx-common"}

// TestRebuildDebianPackages is issue 16's "done when" for the package format: each package is
// downloaded (apt-get download, into UPDS_TEST_DEB_CACHE or /var/cache/upds-test-debs),
// extracted, described in a BUILD.star that deb() builds from the extracted tree, and the
// result compared with the original: the same files with the same types, modes, owners, ids,
// sizes, symlink and hard link targets and md5sums, the same control file (Installed-Size
// included; upds adds X-Upds-Source) and the same control members, byte for byte.
func TestRebuildDebianPackages(t *testing.T) {
	need(t, "apt-get", "dpkg-deb")
	cache := os.Getenv("UPDS_TEST_DEB_CACHE")
	if cache == "" {
		cache = "/var/cache/upds-test-debs"
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range rebuildPackages {
		t.Run(name, func(t *testing.T) {
			orig := download(t, cache, name)
			dir := t.TempDir()
			writeRebuild(t, orig, dir)
			if r := upds(t, dir, "run", "build"); r.code != 0 {
				t.Fatalf("upds run build: exit %d\n%s", r.code, r.stderr)
			}
			built, _ := filepath.Glob(filepath.Join(dir, "dist", "*.deb"))
			if len(built) != 1 {
				t.Fatalf("built %v", built)
			}
			compareDebs(t, orig, built[0])
		})
	}
}

// download returns the cached .deb of pkg, fetching it with apt-get download when there is none.
func download(t *testing.T, cache, pkg string) string {
	t.Helper()
	have, _ := filepath.Glob(filepath.Join(cache, pkg+"_*.deb"))
	if len(have) == 0 {
		cmd := exec.Command("apt-get", "download", "-q", pkg)
		cmd.Dir = cache
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get download %s: %v\n%s", pkg, err, out)
		}
		have, _ = filepath.Glob(filepath.Join(cache, pkg+"_*.deb"))
	}
	if len(have) == 0 {
		t.Fatalf("apt-get download %s left no %s_*.deb in %s", pkg, pkg, cache)
	}
	sort.Strings(have)
	return have[len(have)-1]
}

// writeRebuild extracts orig into dir (the tree in pkg/, the control files in ctl/) and
// writes the BUILD.star that describes it to deb().
func writeRebuild(t *testing.T, orig, dir string) {
	t.Helper()
	root := filepath.Join(dir, "pkg")
	if out, err := exec.Command("dpkg-deb", "--raw-extract", orig, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -R: %v\n%s", err, out)
	}
	if err := os.Rename(filepath.Join(root, "DEBIAN"), filepath.Join(dir, "ctl")); err != nil {
		t.Fatal(err)
	}
	info, err := deb.ReadFile(orig, deb.ReadOptions{Files: true})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "project(name = \"rebuild\", maintainer = %s)\n", q(info.Control.Get("Maintainer")))
	fmt.Fprintf(&b, "pkg = deb(\n    name = %s,\n    docs = False,\n    compression = \"xz\",\n", q(info.Control.Get("Package")))
	fmt.Fprintf(&b, "    contents = [\n%s    ],\n", rebuildContents(t, info, root))
	fields := map[string]string{}
	for _, f := range info.Control.Fields {
		arg, ok := controlArgs[f.Name]
		switch {
		case f.Name == "Installed-Size" || f.Name == "Package":
		case !ok:
			fields[f.Name] = f.Value
		case strings.Contains("Pre-Depends Depends Recommends Suggests Conflicts Breaks Replaces Provides", f.Name):
			fmt.Fprintf(&b, "    %s = [%s],\n", arg, q(f.Value))
		default:
			fmt.Fprintf(&b, "    %s = %s,\n", arg, q(f.Value))
		}
	}
	if len(fields) > 0 {
		b.WriteString("    fields = {")
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			fmt.Fprintf(&b, "%s: %s, ", q(k), q(fields[k]))
		}
		b.WriteString("},\n")
	}
	b.WriteString(rebuildControlFiles(t, info, dir))
	b.WriteString(")\ntask(\"build\", deps = [pkg])\n")
	if err := os.WriteFile(filepath.Join(dir, "BUILD.star"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// controlArgs are the control fields deb() has an argument for.
var controlArgs = map[string]string{
	"Version": "version", "Architecture": "arch", "Maintainer": "maintainer", "Description": "description",
	"Section": "section", "Priority": "priority", "Homepage": "homepage", "Pre-Depends": "pre_depends",
	"Depends": "depends", "Recommends": "recommends", "Suggests": "suggests", "Conflicts": "conflicts",
	"Breaks": "breaks", "Replaces": "replaces", "Provides": "provides", "Package": "name",
}

func q(s string) string { return strconv.Quote(s) }

// rebuildContents describes the tree: a tree() per top-level directory, and file() or
// directory() for what a tree() would give another mode or owner (tree() makes directories
// 0755 and files 0755 or 0644, root's).
func rebuildContents(t *testing.T, info *deb.Info, root string) string {
	t.Helper()
	special := map[string]deb.FileInfo{}
	for _, f := range info.Files {
		mode := os.FileMode(0o644)
		if f.Type == deb.TypeDir {
			mode = 0o755
		} else if f.Mode&0o111 != 0 {
			mode = 0o755
		}
		root := f.Owner == "root" && f.Group == "root"
		if (f.Type == deb.TypeFile || f.Type == deb.TypeHardlink || f.Type == deb.TypeDir) && f.Path != "/" && (f.Mode != mode || !root) {
			special[f.Path] = f
		}
	}
	var b strings.Builder
	owner := func(f deb.FileInfo) string {
		return fmt.Sprintf("owner = %s, group = %s, mode = 0o%o", q(fmt.Sprintf("%s:%d", f.Owner, f.UID)), q(fmt.Sprintf("%s:%d", f.Group, f.GID)), f.Mode.Perm()|f.Mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
	}
	tops, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, top := range tops {
		dest := "/" + top.Name()
		if !top.IsDir() {
			t.Fatalf("%s: a top-level %s that is not a directory", info.Control.Get("Package"), dest)
		}
		var exclude []string
		for p := range special {
			if rel, ok := strings.CutPrefix(p, dest+"/"); ok {
				exclude = append(exclude, q(rel))
			}
		}
		sort.Strings(exclude)
		fmt.Fprintf(&b, "        tree(%s, %s, exclude = [%s]),\n", q("pkg"+dest), q(dest), strings.Join(exclude, ", "))
	}
	for _, p := range slices.Sorted(maps.Keys(special)) {
		f := special[p]
		if f.Type == deb.TypeDir {
			for _, g := range info.Files {
				if strings.HasPrefix(g.Path, p+"/") {
					t.Fatalf("%s: directory %s of mode %o is not empty: tree() cannot give it its mode", info.Control.Get("Package"), p, f.Mode)
				}
			}
			fmt.Fprintf(&b, "        directory(%s, %s),\n", q(p), owner(f))
			continue
		}
		fmt.Fprintf(&b, "        file(%s, %s, %s),\n", q("pkg"+p), q(p), owner(f))
	}
	return b.String()
}

// rebuildControlFiles gives deb() the original's scripts and control files, and its conffiles.
func rebuildControlFiles(t *testing.T, info *deb.Info, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, name := range []string{"preinst", "postinst", "prerm", "postrm", "config", "triggers", "templates", "shlibs", "symbols"} {
		if _, err := os.Stat(filepath.Join(dir, "ctl", name)); err == nil {
			fmt.Fprintf(&b, "    %s = %s,\n", name, q("ctl/"+name))
		}
	}
	conf := map[string]bool{}
	var extra, not []string
	for _, c := range info.Conffiles {
		conf[c] = true
		if !strings.HasPrefix(c, "/etc/") {
			extra = append(extra, q(c))
		}
	}
	for _, f := range info.Files {
		if (f.Type == deb.TypeFile || f.Type == deb.TypeHardlink) && strings.HasPrefix(f.Path, "/etc/") && !conf[f.Path] {
			not = append(not, q(f.Path))
		}
	}
	fmt.Fprintf(&b, "    conffiles = [%s],\n    not_conffiles = [%s],\n", strings.Join(extra, ", "), strings.Join(not, ", "))
	return b.String()
}

// compareDebs reports every difference between the original package and the rebuilt one.
func compareDebs(t *testing.T, orig, rebuilt string) {
	t.Helper()
	a, err := deb.ReadFile(orig, deb.ReadOptions{Files: true, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := deb.ReadFile(rebuilt, deb.ReadOptions{Files: true, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range a.Files {
		files[f.Path] = fileLine(f)
	}
	for _, f := range b.Files {
		if want, ok := files[f.Path]; !ok {
			t.Errorf("rebuilt has %s, the original does not", fileLine(f))
		} else if got := fileLine(f); got != want {
			t.Errorf("%s:\n original %s\n  rebuilt %s", f.Path, want, got)
		}
		delete(files, f.Path)
	}
	for _, l := range files {
		t.Errorf("rebuilt lacks %s", l)
	}
	bc := b.Control.Clone()
	bc.Delete("X-Upds-Source")
	ac, _ := a.Control.Bytes()
	bcb, _ := bc.Bytes()
	if !bytes.Equal(ac, bcb) {
		t.Errorf("control differs:\n%s\nrebuilt:\n%s", ac, bcb)
	}
	if a.Control.Get("Installed-Size") != b.Control.Get("Installed-Size") {
		t.Errorf("Installed-Size %s, rebuilt %s", a.Control.Get("Installed-Size"), b.Control.Get("Installed-Size"))
	}
	if fmt.Sprint(a.MD5Sums) != fmt.Sprint(b.MD5Sums) {
		t.Errorf("md5sums differ:\n%v\n%v", a.MD5Sums, b.MD5Sums)
	}
	am, bm := controlMembers(t, orig), controlMembers(t, rebuilt)
	for name, want := range am {
		if name != "control" && name != "md5sums" && !bytes.Equal(bm[name], want) {
			t.Errorf("control member %s differs (%d bytes, rebuilt %d)", name, len(want), len(bm[name]))
		}
	}
	if an, bn := slices.Sorted(maps.Keys(am)), slices.Sorted(maps.Keys(bm)); !slices.Equal(an, bn) {
		t.Errorf("control members %v, rebuilt %v", an, bn)
	}
}

// fileLine is what is compared of an entry: all but its mtime.
func fileLine(f deb.FileInfo) string {
	return fmt.Sprintf("%s %s %s/%s %d/%d %d %s", f.Path, deb.ModeString(f.Type, f.Mode), f.Owner, f.Group, f.UID, f.GID, f.Size, f.Target)
}

// controlMembers are the files of the package's control.tar.
func controlMembers(t *testing.T, p string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--control", p, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v\n%s", err, out)
	}
	ents, _ := os.ReadDir(dir)
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}
