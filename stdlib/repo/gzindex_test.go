package repo

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/deb/control"
)

// gzMembers splits a gzip file into its members.
func gzMembers(t *testing.T, gz []byte) [][]byte {
	t.Helper()
	var out [][]byte
	r := bytes.NewReader(gz)
	for r.Len() > 0 {
		start := len(gz) - r.Len()
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, zr); err != nil {
			t.Fatal(err)
		}
		out = append(out, gz[start:len(gz)-r.Len()])
	}
	return out
}

// quickDeb writes NAME_VERSION_amd64.deb (Go's ar and tar) into dir.
func quickDeb(t *testing.T, dir, name, ver string) {
	t.Helper()
	craftDeb(t, filepath.Join(dir, name+"_"+ver+"_amd64.deb"),
		"Package: "+name+"\nVersion: "+ver+"\nArchitecture: amd64\nMaintainer: x <x@x>\nDescription: x\n x\n", []string{"./usr/" + name})
}

// TestPackagesGzSegments: Packages.gz is one gzip member per segment, apt reads it, and a
// publish that adds a package compresses one segment again and reuses the others.
func TestPackagesGzSegments(t *testing.T) {
	defer func(e, m uint32) { segmentEvery, segmentMax = e, m }(segmentEvery, segmentMax)
	segmentEvery, segmentMax = 3, 5
	dir := newRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}}})
	inc := filepath.Join(dir, IncomingDir)
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("seg%02d", i))
		quickDeb(t, inc, names[i], "1.0")
	}
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	idx := filepath.Join(dir, "public/dists/stable/main/binary-amd64")
	check := func() [][]byte {
		t.Helper()
		gz := mustRead(t, filepath.Join(idx, "Packages.gz"))
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		text, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(text, mustRead(t, filepath.Join(idx, "Packages"))) {
			t.Fatalf("Packages.gz does not hold Packages (%v)", err)
		}
		if got, want := releaseSums(t, dir, "main/binary-amd64/Packages"), sums(text); got != want {
			t.Fatalf("Release lists Packages as %+v, want %+v", got, want)
		}
		if got, want := releaseSums(t, dir, "main/binary-amd64/Packages.gz"), sums(gz); got != want {
			t.Fatalf("Release lists Packages.gz as %+v, want %+v", got, want)
		}
		return gzMembers(t, gz)
	}
	before := check()
	if len(before) < 6 {
		t.Fatalf("%d gzip members, want one per segment", len(before))
	}
	srv := serve(t, dir)
	// apt reads Packages.gz (a fresh apt each time: a publish in the same second as the
	// last keeps InRelease's Last-Modified second, and apt's If-Modified-Since gets 304).
	// Without the uncompressed Packages, it can read nothing else.
	aptShow := func(names ...string) string {
		t.Helper()
		os.Remove(filepath.Join(idx, "by-hash/SHA256", sums(mustRead(t, filepath.Join(idx, "Packages"))).SHA256))
		os.Remove(filepath.Join(idx, "Packages"))
		a := newApt(t, srv.URL, filepath.Join(dir, PublicKeyFile), "stable")
		a.must("apt-get", "update")
		return a.must("apt-cache", append([]string{"show"}, names...)...)
	}
	if out := aptShow(names...); strings.Count(out, "Package: seg") != len(names) {
		t.Errorf("apt-cache show lists %d packages, want %d", strings.Count(out, "Package: seg"), len(names))
	}

	quickDeb(t, inc, "seg14a", "1.0")
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	after := check()
	reused := 0
	for _, m := range after {
		if slices.ContainsFunc(before, func(b []byte) bool { return bytes.Equal(b, m) }) {
			reused++
		}
	}
	if reused < len(after)-2 {
		t.Errorf("%d of %d gzip members reused after adding one package", reused, len(after))
	}
	aptShow("seg14a")

	// A damaged cache of members is not used.
	cache := gzCachePath(dir, "main/binary-amd64")
	b := mustRead(t, cache)
	b[len(b)/2] ^= 1
	os.WriteFile(cache, b, 0o600)
	quickDeb(t, inc, "seg00a", "1.0")
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	check()
	aptShow("seg00a", "seg14a")
}

// releaseSums is what Release lists for name (main/binary-amd64/Packages, say).
func releaseSums(t *testing.T, dir, name string) fileSum {
	t.Helper()
	rel, err := control.ParseOne(bytes.NewReader(mustRead(t, filepath.Join(dir, "public/dists/stable/Release"))))
	if err != nil {
		t.Fatal(err)
	}
	var s fileSum
	for _, field := range []string{"MD5Sum", "SHA256"} {
		for _, l := range strings.Split(rel.Get(field), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[2] == name {
				s.Size, _ = strconv.ParseInt(f[1], 10, 64)
				if field == "MD5Sum" {
					s.MD5 = f[0]
				} else {
					s.SHA256 = f[0]
				}
			}
		}
	}
	if s.MD5 == "" || s.SHA256 == "" {
		t.Fatalf("Release lists no MD5Sum and SHA256 of %s", name)
	}
	return s
}

// TestIndexDigestsResume: the sums of Packages and Packages.gz resumed from the cache are
// those of the files, whatever changed in the index since the cache was written.
func TestIndexDigestsResume(t *testing.T) {
	defer func(e, m uint32) { segmentEvery, segmentMax = e, m }(segmentEvery, segmentMax)
	segmentEvery, segmentMax = 8, 32
	entry := func(i int, ver string) *poolEntry {
		p := fmt.Sprintf("pool/main/p/pkg%04d/pkg%04d_%s_amd64.deb", i, i, ver)
		return &poolEntry{Path: p, Stanza: []byte(fmt.Sprintf("Package: pkg%04d\nVersion: %s\nFilename: %s\n", i, ver, p))}
	}
	var base []*poolEntry
	for i := 0; i < 400; i += 2 {
		base = append(base, entry(i, "1.0"))
	}
	edits := []struct {
		name     string
		edit     func([]*poolEntry) []*poolEntry
		resumed  bool // some segments at the start are not hashed again
		wantNone bool // nothing is hashed again
	}{
		{"unchanged", func(l []*poolEntry) []*poolEntry { return l }, true, true},
		{"add at the end", func(l []*poolEntry) []*poolEntry { return append(l, entry(999, "1.0")) }, true, false},
		{"add in the middle", func(l []*poolEntry) []*poolEntry { return slices.Insert(l, 100, entry(201, "1.0")) }, true, false},
		{"add at the start", func(l []*poolEntry) []*poolEntry { return slices.Insert(l, 0, entry(1, "1.0")) }, false, false},
		{"replace one", func(l []*poolEntry) []*poolEntry { l[150] = entry(300, "2.0"); return l }, true, false},
		{"remove the last", func(l []*poolEntry) []*poolEntry { return l[:len(l)-1] }, true, false},
		{"remove half", func(l []*poolEntry) []*poolEntry { return l[:len(l)/2] }, true, false},
	}
	for _, tc := range edits {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cache")
			check := func(l []*poolEntry) *indexFiles {
				t.Helper()
				pk, ends := packagesSegments(l)
				c := loadGzCache(path)
				f, err := c.build(pk, ends)
				if err != nil {
					t.Fatal(err)
				}
				c.save()
				if f.pkSum != sums(pk) || f.gzSum != sums(f.gz) {
					t.Fatalf("sums %+v %+v, want %+v %+v", f.pkSum, f.gzSum, sums(pk), sums(f.gz))
				}
				zr, err := gzip.NewReader(bytes.NewReader(f.gz))
				if err != nil {
					t.Fatal(err)
				}
				if text, err := io.ReadAll(zr); err != nil || !bytes.Equal(text, pk) {
					t.Fatalf("Packages.gz does not hold Packages (%v)", err)
				}
				return f
			}
			if f := check(base); f.hashedFrom != 0 {
				t.Fatalf("first build resumed from segment %d", f.hashedFrom)
			}
			f := check(tc.edit(slices.Clone(base)))
			if tc.resumed != (f.hashedFrom > 0) {
				t.Errorf("hashed from segment %d", f.hashedFrom)
			}
			if _, ends := packagesSegments(tc.edit(slices.Clone(base))); tc.wantNone != (f.hashedFrom == len(ends)) {
				t.Errorf("hashed from segment %d of %d", f.hashedFrom, len(ends))
			}
			// A cache whose states do not restore (another Go, say) is not used for them.
			c := loadGzCache(path)
			c.members = c.prev
			for i := range c.members {
				c.members[i].states[pkSHA256] = []byte("garbage")
			}
			c.save()
			check(tc.edit(slices.Clone(base)))
		})
	}
}
