package repo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blakesmith/ar"
)

// tarGz is a gzip-compressed tar of files (name -> content) in the order given.
func tarGz(t testing.TB, names []string, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return b.Bytes()
}

// writeAr writes a .deb of the given members (name, content) to path.
func writeAr(t testing.TB, path string, members ...[2]any) {
	t.Helper()
	var b bytes.Buffer
	w := ar.NewWriter(&b)
	w.WriteGlobalHeader()
	for _, m := range members {
		data := m[1].([]byte)
		w.WriteHeader(&ar.Header{Name: m[0].(string), Size: int64(len(data)), Mode: 0o644, ModTime: time.Unix(0, 0)})
		w.Write(data)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// badDebs writes into dir packages whose control data is right and whose data.tar is not,
// and returns, for each file, what --verify=full says about it.
func badDebs(t testing.TB, dir string) map[string]string {
	t.Helper()
	ctl := func(name string, md5sums string) []byte {
		files := map[string][]byte{"./control": []byte("Package: " + name + "\nVersion: 1.0\nArchitecture: amd64\nMaintainer: x <x@x>\nDescription: x\n x\n")}
		names := []string{"./", "./control"}
		if md5sums != "" {
			files["./md5sums"] = []byte(md5sums)
			names = append(names, "./md5sums")
		}
		return tarGz(t, names, files)
	}
	deb := func(name, md5sums string, data []byte) {
		writeAr(t, filepath.Join(dir, name+"_1.0_amd64.deb"),
			[2]any{"debian-binary", []byte("2.0\n")}, [2]any{"control.tar.gz", ctl(name, md5sums)}, [2]any{"data.tar.gz", data})
	}
	dirs := []string{"./", "./usr/", "./usr/share/"}
	// ".." in the third entry, after the start of data.tar that the basic check looks at.
	deb("escape", "", tarGz(t, append(dirs, "./usr/../../etc/cron.d/evil"), map[string][]byte{"./usr/../../etc/cron.d/evil": []byte("* * * * * root true\n")}))
	deb("absolute", "", tarGz(t, []string{"/etc/passwd"}, map[string][]byte{"/etc/passwd": []byte("x\n")}))
	// A file whose content does not match md5sums.
	deb("mismatch", fmt.Sprintf("%x  usr/share/x\n", md5.Sum([]byte("other\n"))),
		tarGz(t, append(dirs, "./usr/share/x"), map[string][]byte{"./usr/share/x": []byte("x\n")}))
	// A data.tar whose deflate stream is damaged halfway through.
	rnd := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = "abcdefgh"[rnd.IntN(8)]
	}
	data := tarGz(t, append(dirs, "./usr/share/big"), map[string][]byte{"./usr/share/big": big})
	for i := len(data) / 2; i < len(data)/2+64; i++ {
		data[i] ^= 0x5a
	}
	deb("corrupt", "", data)
	// A file written through the package's own symbolic link, out of the root.
	craftDeb(t, filepath.Join(dir, "link_1.0_amd64.deb"), "Package: link\nVersion: 1.0\nArchitecture: amd64\nMaintainer: x <x@x>\nDescription: x\n x\n",
		[]string{"./", "./usr/", "./usr/up -> ../../escaped", "./usr/up/evil"})
	return map[string]string{
		"link_1.0_amd64.deb":     "goes through the symbolic link /usr/up",
		"escape_1.0_amd64.deb":   "escapes the package root",
		"absolute_1.0_amd64.deb": "absolute path",
		"mismatch_1.0_amd64.deb": "does not match md5sums",
		"corrupt_1.0_amd64.deb":  "data.tar.gz",
	}
}

// TestVerifyLevels: by default an upload's data.tar is not decompressed, so damage inside it
// is published (apt then installs exactly the bytes that were uploaded, and dpkg refuses
// them); --verify=full (PublishOptions, or Verify in repo.conf) refuses it. What is not a
// package at all is refused either way.
func TestVerifyLevels(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64"}}})
	inc := filepath.Join(dir, IncomingDir)
	full := badDebs(t, inc)
	rejected := func(rep *PublishReport) map[string]string {
		m := map[string]string{}
		for _, r := range rep.Rejected {
			m[r.File] = r.Reason
		}
		return m
	}

	rep, err := Publish(t.Context(), dir, PublishOptions{Verify: VerifyFull})
	if err != nil {
		t.Fatal(err)
	}
	got := rejected(rep)
	for f, want := range full {
		if !strings.Contains(got[f], want) {
			t.Errorf("--verify=full: %s rejected with %q, want a reason containing %q", f, got[f], want)
		}
	}
	if len(rep.Added) != 0 || len(rep.Rejected) != len(full) {
		t.Errorf("--verify=full: %+v", rep)
	}

	// The same files again, by default.
	for f := range full {
		os.Rename(filepath.Join(dir, RejectedDir, f), filepath.Join(inc, f))
	}
	// Broken in ways the basic check finds: the file ends inside data.tar; a data.tar.xz
	// member that holds gzip data.
	good := buildDeb(t, t.TempDir(), "cut", "1.0", "amd64")
	b := mustRead(t, good)
	os.WriteFile(filepath.Join(inc, "cut_1.0_amd64.deb"), b[:len(b)-10], 0o644)
	b = bytes.Replace(mustRead(t, buildDeb(t, t.TempDir(), "xz", "1.0", "amd64")), []byte("data.tar.gz"), []byte("data.tar.xz"), 1)
	os.WriteFile(filepath.Join(inc, "xz_1.0_amd64.deb"), b, 0o644)

	rep, err = Publish(t.Context(), dir, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got = rejected(rep)
	if !strings.Contains(got["cut_1.0_amd64.deb"], "truncated") || !strings.Contains(got["xz_1.0_amd64.deb"], "magic number") ||
		len(got) != 2 || len(rep.Added) != len(full) {
		t.Errorf("basic: added %v, rejected %v", rep.Added, got)
	}

	// Verify: full in repo.conf; PublishOptions overrides it.
	conf := filepath.Join(dir, ConfigFile)
	os.WriteFile(conf, append(mustRead(t, conf), "Verify: full\n"...), 0o644)
	if cfg, err := ReadConfig(dir); err != nil || cfg.Verify != VerifyFull {
		t.Fatalf("repo.conf Verify: %+v %v", cfg, err)
	}
	badDebs(t, inc) // the same bytes as the published ones, but read to the end now
	rep, err = Publish(t.Context(), dir, PublishOptions{})
	if err != nil || len(rep.Rejected) != len(full) || !strings.Contains(rejected(rep)["escape_1.0_amd64.deb"], "escapes") {
		t.Errorf("Verify: full in repo.conf: %+v %v", rep, err)
	}
	badDebs(t, inc)
	rep, err = Publish(t.Context(), dir, PublishOptions{Verify: VerifyBasic})
	if err != nil || len(rep.Unchanged) != len(full) {
		t.Errorf("PublishOptions.Verify over repo.conf: %+v %v", rep, err)
	}

	os.WriteFile(conf, bytes.Replace(mustRead(t, conf), []byte("Verify: full"), []byte("Verify: most"), 1), 0o644)
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err == nil || !strings.Contains(err.Error(), `verify "most": want basic or full`) {
		t.Errorf("bad Verify in repo.conf: %v", err)
	}
}
