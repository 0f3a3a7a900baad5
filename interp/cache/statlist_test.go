package cache

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func fingerprintOf(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return Fingerprint(&st)
}

// TestStatList: a list remembers the sums of the files of one action in key order, answers
// for the unchanged ones, is saved only when something changed, never by a dry run, and not
// at all with the cache disabled.
func TestStatList(t *testing.T) {
	dir := t.TempDir()
	c := Open(filepath.Join(dir, ".upds"), false)
	var names [][]byte
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		os.WriteFile(p, []byte{byte(i)}, 0o644)
		names = append(names, []byte(p))
	}
	// pass records every file, as contentSums does, and returns the keys that hit.
	pass := func(c *Cache, write bool, keys ...string) (hits []string) {
		l := c.StatList("deb-x", write)
		for _, k := range keys {
			name := names[k[0]-'a']
			fp := fingerprintOf(t, string(name))
			sums, hit := l.Lookup([]byte(k), name, fp)
			if !hit {
				sums.SHA256[0] = k[0]
			} else {
				hits = append(hits, k)
			}
			l.Record([]byte(k), name, fp, sums, hit)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return hits
	}
	list := filepath.Join(dir, ".upds", "stats", "deb-x")
	if hits := pass(c, false, "a", "b"); len(hits) != 0 {
		t.Errorf("empty list: hits %v", hits)
	}
	if _, err := os.Stat(list); err == nil {
		t.Fatal("a dry run wrote the list")
	}
	pass(c, true, "a", "b", "c")
	if hits := pass(c, true, "a", "b", "c"); len(hits) != 3 {
		t.Errorf("unchanged: hits %v", hits)
	}
	fi, _ := os.Stat(list)
	pass(c, true, "a", "b", "c")
	if fi2, _ := os.Stat(list); !os.SameFile(fi, fi2) {
		t.Error("an unchanged list was written again")
	}
	later := time.Now().Add(time.Hour)
	os.Chtimes(string(names[1]), later, later)
	if hits := pass(c, true, "a", "b", "c"); len(hits) != 2 || hits[1] != "c" {
		t.Errorf("b touched: hits %v", hits)
	}
	if hits := pass(c, true, "a", "c"); len(hits) != 2 {
		t.Errorf("b gone: hits %v", hits)
	}
	if hits := pass(c, true, "a", "b", "c"); len(hits) != 2 {
		t.Errorf("b back: hits %v (the list forgot it)", hits)
	}
	d := Open(filepath.Join(dir, ".nocache"), true)
	if hits := pass(d, true, "a", "b"); len(hits) != 0 {
		t.Errorf("disabled: hits %v", hits)
	}
	if _, err := os.Stat(filepath.Join(dir, ".nocache")); err == nil {
		t.Error("a disabled cache wrote a list")
	}
}

// TestOldStatCacheIgnored: a stat cache in an older format (gob) is started over, not misread.
func TestOldStatCacheIgnored(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, statFile), []byte("\x0f\xff\x81\x04\x01\x02\xff\x82\x00\x01\x0c\x01\xff\x84\x00"), 0o644)
	if c := Open(dir, false); len(c.stats) != 0 {
		t.Errorf("%d entries from a gob file", len(c.stats))
	}
}
