package repo

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
		if err != nil || !bytes.Equal(text, mustRead(t, filepath.Join(idx, "Packages"))) || sums(text).SHA256 != packagesSHA(t, dir) {
			t.Fatalf("Packages.gz does not hold Packages (%v)", err)
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

// packagesSHA is the SHA256 that Release lists for main/binary-amd64/Packages.
func packagesSHA(t *testing.T, dir string) string {
	t.Helper()
	rel := string(mustRead(t, filepath.Join(dir, "public/dists/stable/Release")))
	_, sha, _ := strings.Cut(rel, "SHA256:\n")
	for _, l := range strings.Split(sha, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[2] == "main/binary-amd64/Packages" {
			return f[0]
		}
	}
	t.Fatalf("Release lists no main/binary-amd64/Packages:\n%s", rel)
	return ""
}
