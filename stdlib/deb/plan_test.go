package deb

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/upds/upds/interp/cache"
)

// testItem is an entry of a Plan as tests look at it: as it is written.
type testItem struct {
	Path         string
	Type         Type
	Target       string // a symlink's target, or the path a hard link links to
	mode         int64
	uname, gname string
	uid, gid     int
	Open         func() (io.ReadCloser, error) // a regular file's content
}

// testItems returns the entries of pl in order, as they are written.
func (pl *Plan) testItems() []testItem {
	var out []testItem
	for _, i := range pl.order {
		h := pl.header(i)
		o := pl.owners[h.r.owner]
		it := testItem{Path: string(h.path), Type: h.typ, mode: tarMode(fs.FileMode(h.r.mode), h.typ),
			uname: o.uname, gname: o.gname, uid: o.ruid, gid: o.rgid}
		switch h.typ {
		case TypeSymlink:
			it.Target = string(h.link[0])
		case TypeHardlink:
			it.Target = string(h.link[1])
		case TypeFile:
			file := i
			if g, ok := pl.links[i]; ok {
				file = g.file
			}
			it.Open = func() (io.ReadCloser, error) {
				ts := &tarStream{pl: pl, opener: newSrcOpener()}
				return ts.open(pl.recs.at(file))
			}
		}
		out = append(out, it)
	}
	return out
}

func (it testItem) String() string {
	s := fmt.Sprintf("%s %s %o %s:%s", it.Path, it.Type, it.mode, it.uname, it.gname)
	if it.Target != "" {
		s += " -> " + it.Target
	}
	return s
}

// TestRecordSize: what a Plan holds per entry, besides its path, stays one 64-byte record.
func TestRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(rec{}); n != 64 {
		t.Fatalf("rec is %d bytes", n)
	}
}

// TestPlanParents: missing parents are added root:root 0755 whoever owns the entries, in
// sorted order (a directory before "-" names, its content after them); an entry that is the
// parent of others must be a directory, in whichever order they come.
func TestPlanParents(t *testing.T) {
	p := &Package{Control: testControl("upds-test"), Entries: []Entry{
		{Path: "/srv/a/b/c.txt", Type: TypeFile, Size: 1, Open: memOpen("c"), Owner: "www-data", Group: "www-data", UID: -1, GID: -1},
		{Path: "/srv/a-b", Type: TypeFile, Size: 1, Open: memOpen("x")},
		{Path: "/srv/a.d", Type: TypeDir, Owner: "www-data", UID: -1},
	}}
	pl, err := Prepare(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range pl.testItems() {
		got = append(got, it.String())
	}
	want := []string{"/ dir 755 root:root", "/srv dir 755 root:root", "/srv/a dir 755 root:root",
		"/srv/a-b file 644 root:root", "/srv/a.d dir 755 www-data:root", "/srv/a/b dir 755 root:root",
		"/srv/a/b/c.txt file 644 www-data:www-data"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if pl.installed != 1+1+1+1+1+1+1+1 { // the entries, and DEBIAN/ (prepareMembers)
		t.Errorf("Installed-Size %d", pl.installed)
	}
	for _, order := range [][]Entry{
		{fileEntry("/srv/x", "x", 0), fileEntry("/srv/x/y/z", "z", 0)},
		{fileEntry("/srv/x/y/z", "z", 0), fileEntry("/srv/x", "x", 0)},
	} {
		_, err := Prepare(&Package{Control: testControl("upds-test"), Entries: order})
		if err == nil || err.Error() != "entry /srv/x/y: parent /srv/x is a file, not a directory" {
			t.Errorf("%s first: %v", order[0].Path, err)
		}
	}
}

// TestWalkAndSrc: entries from Package.Walk and files by Src make the same package as the
// same entries in Package.Entries with Open functions; Walk's error stops Prepare.
func TestWalkAndSrc(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"a/b.txt": "bee\n", "a/c/d.py": "print(1)\n", "e": strings.Repeat("e", 3*blockSize+5)}
	var entries []Entry
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, Entry{Path: "/opt/x/" + name, Type: TypeFile, Size: int64(len(body)), Src: p})
	}
	opened := &Package{Control: testControl("upds-test"), MTime: DefaultMTime()}
	for _, e := range entries {
		e.Open, e.Src = memOpen(files[strings.TrimPrefix(e.Path, "/opt/x/")]), ""
		opened.Entries = append(opened.Entries, e)
	}
	walked := &Package{Control: testControl("upds-test"), MTime: DefaultMTime(), Entries: entries[:1],
		Walk: func(add func(Entry) error) error {
			for _, e := range entries[1:] {
				if err := add(e); err != nil {
					return err
				}
			}
			return nil
		}}
	if a, b := writeBytes(t, opened), writeBytes(t, walked); !bytes.Equal(a, b) {
		t.Error("Walk and Src give other bytes than Entries and Open")
	}
	walked.Walk = func(add func(Entry) error) error { return add(Entry{Path: "relative", Type: TypeDir}) }
	if _, err := Prepare(walked); err == nil || !strings.Contains(err.Error(), `path "relative" is not absolute`) {
		t.Errorf("Walk's bad entry: %v", err)
	}
	walked.Walk = func(add func(Entry) error) error { return fs.ErrPermission }
	if _, err := Prepare(walked); err != fs.ErrPermission {
		t.Errorf("Walk's error: %v", err)
	}
	if _, err := Prepare(&Package{Control: testControl("upds-test"), Entries: []Entry{{Path: "/x", Type: TypeFile}}}); err == nil ||
		!strings.Contains(err.Error(), "regular file without content") {
		t.Errorf("no Open, no Src: %v", err)
	}
}

// TestSrcChangedWhileWritten: a Src file that grew or shrank after Prepare fails the write.
func TestSrcChangedWhileWritten(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		size int
		want string
	}{{10, "file is longer than 5 bytes"}, {3, "file has 3 bytes, want 5"}, {blockSize + 10, "file is longer than 5 bytes"}} {
		p := filepath.Join(dir, "f")
		os.WriteFile(p, []byte("12345"), 0o644)
		pkg := &Package{Control: testControl("upds-test"), Entries: []Entry{{Path: "/f", Type: TypeFile, Size: 5, Src: p}}}
		pl, err := Prepare(pkg)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, bytes.Repeat([]byte("x"), tc.size), 0o644)
		if _, err := pl.Write(t.Context(), io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("size %d: %v", tc.size, err)
		}
	}
}

// TestGivenMD5OnlyForTheSameFile: the md5 a build found in its stat list is used only while the
// file keeps the stat it had: a file changed since is hashed again.
func TestGivenMD5OnlyForTheSameFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("12345"), 0o644)
	pl, err := Prepare(&Package{Control: testControl("upds-test"), Compression: "none",
		Entries: []Entry{{Path: "/f", Type: TypeFile, Size: 5, Src: p}}})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := pl.find("/f")
	fi, _ := os.Stat(p)
	fp, _ := cache.StatFingerprint(fi)
	r.md5, r.stat, r.flags = md5.Sum([]byte("given")), fp, r.flags|flagMD5
	sums := func() string {
		var b bytes.Buffer
		if _, err := pl.Write(t.Context(), &b); err != nil {
			t.Fatal(err)
		}
		info, err := Read(bytes.NewReader(b.Bytes()), ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return info.MD5Sums["/f"]
	}
	if got, want := sums(), fmt.Sprintf("%x", md5.Sum([]byte("given"))); got != want {
		t.Errorf("unchanged file: md5sums %q, want the given %q", got, want)
	}
	os.WriteFile(p, []byte("54321"), 0o644)
	if got, want := sums(), fmt.Sprintf("%x", md5.Sum([]byte("54321"))); got != want {
		t.Errorf("changed file: md5sums %q, want %q", got, want)
	}
}

// TestHeaderLikeArchiveTar: the headers the writer lays out itself are archive/tar's, byte for
// byte, for every kind of entry, names and link names around the 100-byte limit (trailing
// slashes included), owners and times.
func TestHeaderLikeArchiveTar(t *testing.T) {
	names := []string{"/a", "/" + strings.Repeat("n", 97), "/" + strings.Repeat("n", 98), "/" + strings.Repeat("n", 99),
		"/" + strings.Repeat("d/", 49) + "x", "/" + strings.Repeat("d", 97) + "/e", longPath}
	p := &Package{Control: testControl("upds-test")}
	for i, n := range names {
		p.Entries = append(p.Entries,
			Entry{Path: n + "/dir", Type: TypeDir, Mode: 0o2775, Owner: "www-data", UID: -1},
			Entry{Path: n + "/file", Type: TypeFile, Size: int64(i) << 30, Open: memOpen(""), Mode: 0o4755},
			Entry{Path: n + "/link", Type: TypeSymlink, Target: strings.TrimPrefix(names[(i+3)%len(names)], "/")},
			Entry{Path: n + "/old", Type: TypeFile, Open: memOpen(""), MTime: DefaultMTime().AddDate(-40, 0, 0), Owner: "app", UID: 990, GID: 2097151},
			Entry{Path: n + "/old-too", Type: TypeHardlink, Target: n + "/old"})
	}
	for i, target := range []string{strings.Repeat("t", 98) + "//tail", strings.Repeat("t", 99) + "/", strings.Repeat("t", 100)} {
		p.Entries = append(p.Entries, Entry{Path: fmt.Sprintf("/links/%d", i), Type: TypeSymlink, Target: target})
	}
	pl, err := Prepare(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range pl.order {
		h := pl.header(i)
		var want bytes.Buffer
		if err := tar.NewWriter(&want).WriteHeader(pl.tarHeader(&h)); err != nil {
			t.Fatal(err)
		}
		got, ok := pl.appendHeader(nil, &h)
		if !ok || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: header differs from archive/tar's (ok %v)", pl.pathBytes(i), ok)
		}
	}
	k, _ := pl.position([]byte(names[1] + "/file"))
	h := pl.header(pl.order[k])
	if h.r.size = 8 << 30; !func() bool { _, ok := pl.appendHeader(nil, &h); return !ok }() {
		t.Error("an 8 GiB file: not left to archive/tar")
	}
}
