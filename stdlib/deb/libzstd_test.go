package deb

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bigPackage has 12 MB of compressible, not repetitive content: several of libzstd's 2 MiB
// jobs, so its threads each compress a part of the one frame.
func bigPackage() *Package {
	rng := rand.New(rand.NewPCG(3, 4))
	words := strings.Fields("def class return import self value none true false for in if else " +
		"while with as try except raise yield lambda from print len range")
	p := &Package{Control: testControl("upds-test-libzstd"), Compression: "zstd", MTime: DefaultMTime()}
	for i := 0; i < 48; i++ {
		var b strings.Builder
		for b.Len() < 256<<10 {
			fmt.Fprintf(&b, "%s %s_%d\n", words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(1000))
		}
		p.Entries = append(p.Entries, fileEntry(fmt.Sprintf("/usr/share/upds-test-libzstd/m%02d.py", i), b.String(), 0o644))
	}
	return p
}

// TestLibzstd checks the zstd encoders against dpkg-deb: on Debian (dpkg Pre-Depends on
// libzstd1) the multi-threaded libzstd is used; its one frame holds the whole data.tar (dpkg
// 1.21 would silently stop at the end of a first frame); UPDS_ZSTD=go switches to the pure-Go
// encoder, whose bytes differ but whose data.tar is the same.
func TestLibzstd(t *testing.T) {
	need(t, "dpkg-deb")
	if _, err := exec.LookPath("dpkg"); err == nil {
		if _, err := zstdLibrary(); err != nil {
			t.Fatalf("dpkg is installed, so is libzstd1 (its Pre-Depends), but: %v", err)
		}
	}
	if enc := ZstdEncoder(); !strings.HasPrefix(enc, "libzstd 1.") {
		t.Fatalf("ZstdEncoder() = %q, want libzstd", enc)
	}
	dir := t.TempDir()
	build := func(name string) (deb, tarball string) {
		deb = filepath.Join(dir, name+".deb")
		if _, err := WriteFile(deb, bigPackage()); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
		if err != nil {
			t.Fatalf("dpkg-deb --fsys-tarfile %s: %v", name, err)
		}
		info, err := Read(bytes.NewReader(mustRead(t, deb)), ReadOptions{Files: true, Verify: true})
		if err != nil {
			t.Fatalf("Read %s: %v", name, err)
		}
		if info.DataCompression != "zstd" || len(info.Files) != 48+4 {
			t.Fatalf("%s: %s, %d entries", name, info.DataCompression, len(info.Files))
		}
		return deb, string(out)
	}
	cDeb, cTar := build("libzstd")
	t.Setenv("UPDS_ZSTD", "go")
	if enc := ZstdEncoder(); enc != "klauspost/compress" {
		t.Fatalf("with UPDS_ZSTD=go, ZstdEncoder() = %q", enc)
	}
	goDeb, goTar := build("go")
	if len(cTar) < 12<<20 || cTar != goTar {
		t.Fatalf("data.tar: %d bytes from libzstd's package, %d from the Go encoder's; want the same, > 12 MiB", len(cTar), len(goTar))
	}
	if bytes.Equal(mustRead(t, cDeb), mustRead(t, goDeb)) {
		t.Fatal("UPDS_ZSTD=go gave libzstd's bytes: the switch did nothing")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
