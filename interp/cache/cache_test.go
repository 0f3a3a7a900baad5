package cache

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"
)

func TestFileSumUsesStatCacheAndContentIsTruth(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "proj")
	os.MkdirAll(root, 0o755)
	fsys := afero.NewBasePathFs(afero.NewOsFs(), root)
	p := filepath.Join(root, "a.txt")
	os.WriteFile(p, []byte("one"), 0o644)

	c := Open(filepath.Join(root, ".upds"), false)
	s1, err := c.FileSum(fsys, "a.txt", p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	// A new process: the stat cache is reloaded and used.
	c2 := Open(filepath.Join(root, ".upds"), false)
	if _, ok := c2.stats[statName(p)]; !ok {
		t.Fatal("stat cache not reloaded")
	}
	s2, _ := c2.FileSum(fsys, "a.txt", p)
	if s1 != s2 {
		t.Fatal("sum changed without a change")
	}
	// touch: stat differs, content same -> same sum.
	future := time.Now().Add(time.Hour)
	os.Chtimes(p, future, future)
	s3, _ := c2.FileSum(fsys, "a.txt", p)
	if s3 != s1 {
		t.Fatal("touch changed the content sum")
	}
	// Same size, new content, mtime restored: ctime still changes, so it is re-read.
	os.WriteFile(p, []byte("two"), 0o644)
	os.Chtimes(p, future, future)
	s4, _ := c2.FileSum(fsys, "a.txt", p)
	if s4 == s1 {
		t.Fatal("changed content not detected")
	}
}

func TestKeyIsUnambiguous(t *testing.T) {
	a := NewKey("deb", "1").String("ab").String("c").Hex()
	b := NewKey("deb", "1").String("a").String("bc").Hex()
	if a == b {
		t.Fatal("length prefixing missing")
	}
	m1 := NewKey("x", "1").Map(map[string]string{"a": "1", "b": "2"}).Hex()
	m2 := NewKey("x", "1").Map(map[string]string{"b": "2", "a": "1"}).Hex()
	if m1 != m2 {
		t.Fatal("map order matters")
	}
	if NewKey("x", "1").Hex() == NewKey("x", "2").Hex() {
		t.Fatal("tool version not in key")
	}
}

func TestPutLookupLinkOut(t *testing.T) {
	dir := t.TempDir()
	c := Open(filepath.Join(dir, ".upds"), false)
	key := NewKey("deb", "1").String("x").Hex()
	if _, ok := c.Lookup("deb", key); ok {
		t.Fatal("hit in an empty cache")
	}
	src := filepath.Join(dir, "out.tmp")
	os.WriteFile(src, []byte("package"), 0o644)
	obj, err := c.Put("deb", key, src)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := c.Lookup("deb", key)
	if !ok || got != obj {
		t.Fatalf("lookup = %q %v", got, ok)
	}
	dst := filepath.Join(dir, "dist", "x.deb")
	if err := LinkOut(obj, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "package" {
		t.Fatalf("dist content %q", b)
	}
	if err := LinkOut(obj, dst); err != nil { // already the same file: no-op
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "dist"))
	if len(entries) != 1 {
		t.Fatalf("dist has %d entries (temp files left?)", len(entries))
	}
	// Disabled: never hits, Put hands back the source.
	d := Open(filepath.Join(dir, ".nocache"), true)
	if _, ok := d.Lookup("deb", key); ok {
		t.Fatal("disabled cache hit")
	}
}

func TestBuildStep(t *testing.T) {
	dir := t.TempDir()
	c := Open(filepath.Join(dir, ".upds"), false)
	key := NewKey("deb", "1").String("x").Hex()
	dst := filepath.Join(dir, "dist", "x.deb")
	runs := 0
	writeFile := func(tmp string) error {
		runs++
		return os.WriteFile(tmp, []byte("package"), 0o644)
	}
	for i, wantHit := range []bool{false, true} {
		hit, err := c.Build("deb", key, dst, writeFile)
		if err != nil || hit != wantHit {
			t.Fatalf("build %d: hit %v, %v", i, hit, err)
		}
		if b, _ := os.ReadFile(dst); string(b) != "package" {
			t.Fatalf("build %d: dst holds %q", i, b)
		}
	}
	if runs != 1 {
		t.Fatalf("built %d times", runs)
	}
	// A directory kept in the store, used there.
	dkey := NewKey("venv", "1").Hex()
	if _, err := c.Build("venv", dkey, "", func(tmp string) error {
		if err := os.Mkdir(tmp, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, "result.json"), []byte("{}"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.Path("venv", dkey), "result.json")); err != nil {
		t.Fatal(err)
	}
	// A failed build leaves nothing behind.
	boom := errors.New("boom")
	if _, err := c.Build("deb", NewKey("deb", "2").Hex(), dst, func(tmp string) error {
		os.WriteFile(tmp, []byte("half"), 0o644)
		return boom
	}); err != boom {
		t.Fatalf("error %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, ".upds", "tmp")); len(ents) != 0 {
		t.Fatalf("tmp holds %d entries", len(ents))
	}
}

func TestBuildStepDisabled(t *testing.T) {
	dir := t.TempDir()
	c := Open(filepath.Join(dir, ".upds"), true)
	dst := filepath.Join(dir, "dist", "x.deb")
	for i := range 2 {
		hit, err := c.Build("deb", "k", dst, func(tmp string) error { return os.WriteFile(tmp, []byte{byte('0' + i)}, 0o644) })
		if err != nil || hit {
			t.Fatalf("build %d: hit %v, %v", i, hit, err)
		}
		if b, _ := os.ReadFile(dst); string(b) != string(rune('0'+i)) {
			t.Fatalf("build %d: dst holds %q", i, b)
		}
	}
	// A directory replaces the one at dst.
	vdst := filepath.Join(dir, ".upds", "tmp", "nocache-venv-x")
	for _, f := range []string{"a", "b"} {
		if _, err := c.Build("venv", "k", vdst, func(tmp string) error {
			os.Mkdir(tmp, 0o755)
			return os.WriteFile(filepath.Join(tmp, f), nil, 0o644)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(vdst); len(ents) != 1 || ents[0].Name() != "b" {
		t.Fatalf("dst holds %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, ".upds", "tmp")); len(ents) != 1 {
		t.Fatalf("tmp holds %v", ents)
	}
	if _, err := c.Build("venv", "k", "", func(string) error { return nil }); err == nil {
		t.Fatal("no destination, disabled: accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, ".upds", "objects")); err == nil {
		t.Fatal("a disabled cache stored objects")
	}
}

func TestKeyBytesIsString(t *testing.T) {
	if NewKey("x", "1").Bytes([]byte("abc")).Int(1).Hex() != NewKey("x", "1").String("abc").Int(1).Hex() {
		t.Fatal("Bytes and String differ")
	}
}
