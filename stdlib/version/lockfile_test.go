package version

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/afero"
)

func key(c byte) string { return strings.Repeat(string(c), 64) }

// TestLockRoundTrip: the file is sorted by name, one line per package after the header, and
// reads back to the same entries.
func TestLockRoundTrip(t *testing.T) {
	var l Lock
	l.Set(LockEntry{Name: "zz-virtualenv", Version: "1.0", Key: key('a')})
	l.Set(LockEntry{Name: "app-virtualenv", Version: "2:1.4.3+c2", Key: key('b')})
	data := l.Bytes()
	if !strings.HasPrefix(string(data), lockHeader) {
		t.Fatalf("no header:\n%s", data)
	}
	body := strings.TrimPrefix(string(data), lockHeader)
	want := "app-virtualenv 2:1.4.3+c2 " + key('b') + "\nzz-virtualenv 1.0 " + key('a') + "\n"
	if body != want {
		t.Fatalf("body:\n%s\nwant:\n%s", body, want)
	}
	back, err := ParseLock(LockFile, data)
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Bytes()) != string(data) {
		t.Fatalf("round trip:\n%s", back.Bytes())
	}
}

// TestParseLockErrors: every mistake is one line naming the file and the line.
func TestParseLockErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"a 1.0\n", `upds.lock:1: "a 1.0": want NAME VERSION KEY`},
		{"# c\na v1.0 " + key('a') + "\n", `upds.lock:2: a: version "v1.0" has bad syntax`},
		{"a 1.0 abc\n", `upds.lock:1: a: key "abc" is not 64 hexadecimal digits`},
		{"a 1.0 " + key('a') + "\na 1.1 " + key('b') + "\n", "upds.lock:2: a is listed twice"},
		{"<<<<<<< HEAD\na 1.0 " + key('a') + "\n", "upds.lock:1: a merge conflict: keep, for each package, the line with the higher version"},
	} {
		_, err := ParseLock(LockFile, []byte(tc.text))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q:\n got %v\nwant %s", tc.text, err, tc.want)
		}
	}
}

// TestContentVersion is the rule: same content keeps its version, new content takes the
// project version when it is newer, else the next +cN after the recorded version.
func TestContentVersion(t *testing.T) {
	k1, k2 := key('1'), key('2')
	for _, tc := range []struct {
		locked       *LockEntry
		project, key string
		want         string
	}{
		{nil, "1.4.2", k1, "1.4.2"},
		{&LockEntry{"v", "1.4.2", k1}, "1.4.5", k1, "1.4.2"},    // unchanged: keeps its version
		{&LockEntry{"v", "1.4.2", k1}, "1.4.5", k2, "1.4.5"},    // changed: the project version
		{&LockEntry{"v", "1.4.3", k1}, "1.4.3", k2, "1.4.3+c1"}, // changed without a bump
		{&LockEntry{"v", "1.4.3+c1", k1}, "1.4.3", k2, "1.4.3+c2"},
		{&LockEntry{"v", "1.4.3+c9", k1}, "1.4.3", k2, "1.4.3+c10"},
		{&LockEntry{"v", "1.4.3+c2", k1}, "1.4.4", k2, "1.4.4"},
		{&LockEntry{"v", "1.5", k1}, "1.4", k2, "1.5+c1"}, // VERSION lowered by hand: still newer
		{&LockEntry{"v", "2:1.0-3", k1}, "2:1.0-3", k2, "2:1.0-3+c1"},
		{&LockEntry{"v", "1.0~rc1", k1}, "1.0~rc1", k2, "1.0~rc1+c1"},
	} {
		got, err := ContentVersion(tc.locked, tc.project, tc.key)
		if err != nil || got != tc.want {
			t.Errorf("ContentVersion(%v, %s): %s, %v; want %s", tc.locked, tc.project, got, err, tc.want)
		}
	}
	if _, err := ContentVersion(nil, "v1", k1); err == nil {
		t.Error("an invalid project version was accepted")
	}
}

// TestContentVersionOrderDpkg checks with dpkg --compare-versions that the versions the rule
// makes (1.4.3+c1 after 1.4.3, ...) sort after the one before and before the next release.
func TestContentVersionOrderDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Fatal("dpkg is not installed (it is part of every Debian system): ", err)
	}
	for _, chain := range [][]string{
		{"1.4.3", "1.4.3+c1", "1.4.3+c2", "1.4.3+c10", "1.4.4"},
		{"2:1.0-3", "2:1.0-3+c1", "2:1.0-4"},
		{"1.0~rc1", "1.0~rc1+c1", "1.0"},
	} {
		for i := 1; i < len(chain); i++ {
			if out, err := exec.Command("dpkg", "--compare-versions", chain[i-1], "lt", chain[i]).CombinedOutput(); err != nil {
				t.Errorf("dpkg: %s is not less than %s %s", chain[i-1], chain[i], out)
			}
			if c, err := CompareStrings(chain[i-1], chain[i]); err != nil || c >= 0 {
				t.Errorf("Compare(%s, %s) = %d, %v; want -1", chain[i-1], chain[i], c, err)
			}
		}
	}
}

// TestUpdateLock: an unchanged lock is not written (a missing one stays missing); a change is
// written whole, and another entry survives it.
func TestUpdateLock(t *testing.T) {
	fsys := afero.NewMemMapFs()
	noop := func(*Lock) error { return nil }
	if err := UpdateLock(fsys, LockFile, LockOptions{}, noop); err != nil {
		t.Fatal(err)
	}
	if ok, _ := afero.Exists(fsys, LockFile); ok {
		t.Fatal("a lock with no entry was written")
	}
	set := func(name, v string, k byte) func(*Lock) error {
		return func(l *Lock) error { l.Set(LockEntry{name, v, key(k)}); return nil }
	}
	for _, f := range []func(*Lock) error{set("a", "1.0", 'a'), set("b", "1.0", 'b'), set("a", "1.1", 'c')} {
		if err := UpdateLock(fsys, LockFile, LockOptions{}, f); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := afero.ReadFile(fsys, LockFile)
	want := lockHeader + "a 1.1 " + key('c') + "\nb 1.0 " + key('b') + "\n"
	if string(data) != want {
		t.Fatalf("lock:\n%s\nwant:\n%s", data, want)
	}
	afero.WriteFile(fsys, LockFile, []byte("# mine\n"+strings.TrimPrefix(want, lockHeader)), 0o644)
	if err := UpdateLock(fsys, LockFile, LockOptions{}, set("b", "1.0", 'b')); err != nil {
		t.Fatal(err)
	}
	if data, _ := afero.ReadFile(fsys, LockFile); !strings.HasPrefix(string(data), "# mine\n") {
		t.Errorf("an update that changed nothing rewrote the file:\n%s", data)
	}
}

// TestUpdateLockParallel: goroutines that each record their own package, through separate
// opens of the file on disk (so the flock, not a mutex, serialises them), lose no entry.
func TestUpdateLockParallel(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "VERSION"), []byte("1.0\n"), 0o644)
	fsys := afero.NewBasePathFs(afero.NewOsFs(), dir)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			name := fmt.Sprintf("p%02d", i)
			err := UpdateLock(fsys, LockFile, LockOptions{Guard: "VERSION"}, func(l *Lock) error {
				l.Set(LockEntry{name, "1.0", key('f')})
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	l, err := ReadLock(fsys, LockFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.Entries()); n != 40 {
		t.Fatalf("%d entries after 40 parallel updates", n)
	}
	if _, err := os.Stat(filepath.Join(dir, ".VERSION.lock")); err != nil {
		t.Errorf("the writers' lock is not the VERSION file's: %v", err)
	}
}
