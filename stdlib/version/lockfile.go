package version

// upds.lock: the memory of the packages whose version follows their content
// (deb(version = "content")). The file is committed with the project, so that a fresh clone or a
// CI machine gives each package the version it had: same content, same version.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp/atomicfile"
)

// LockFile is the name of the lock file at the project root.
const LockFile = "upds.lock"

// lockHeader opens every lock file upds writes.
const lockHeader = `# upds.lock: the version of each package built with deb(version = "content") and its key
# (X-Upds-Source) at that version. upds updates it when such a package's content changes;
# commit it, so that every clone builds the same versions. See docs/versions.md.
`

// LockEntry is one package of the lock file.
type LockEntry struct {
	// Name is the package name.
	Name string
	// Version is the project version at which the package's content last changed (or a
	// version after it: see ContentVersion).
	Version string
	// Key is the package's key at Version (its X-Upds-Source): the hash of everything that
	// goes into it. Built at Version again, the package has this key exactly when its content
	// is the same.
	Key string
}

// Lock is the content of a lock file: an entry per package.
type Lock struct {
	entries map[string]LockEntry
}

// Get returns the entry of the package name.
func (l *Lock) Get(name string) (LockEntry, bool) {
	e, ok := l.entries[name]
	return e, ok
}

// Set adds or replaces the entry of e.Name.
func (l *Lock) Set(e LockEntry) {
	if l.entries == nil {
		l.entries = map[string]LockEntry{}
	}
	l.entries[e.Name] = e
}

// Entries are the entries, sorted by name.
func (l *Lock) Entries() []LockEntry {
	out := make([]LockEntry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Bytes is the lock file: the header, then a line "NAME VERSION KEY" per package, sorted by
// name, so that a change shows in git diff as the one line of the package that changed.
func (l *Lock) Bytes() []byte {
	var b bytes.Buffer
	b.WriteString(lockHeader)
	for _, e := range l.Entries() {
		fmt.Fprintf(&b, "%s %s %s\n", e.Name, e.Version, e.Key)
	}
	return b.Bytes()
}

var lockKey = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseLock reads a lock file; path names it in errors, which say the line.
func ParseLock(path string, data []byte) (*Lock, error) {
	l := &Lock{entries: map[string]LockEntry{}}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(why string) error { return fmt.Errorf("%s:%d: %s", path, i+1, why) }
		if strings.HasPrefix(line, "<<<<<<<") || strings.HasPrefix(line, "=======") || strings.HasPrefix(line, ">>>>>>>") {
			return nil, bad("a merge conflict: keep, for each package, the line with the higher version")
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, bad(fmt.Sprintf("%s: want NAME VERSION KEY", quote(line)))
		}
		if _, err := Parse(f[1]); err != nil {
			return nil, bad(fmt.Sprintf("%s: %v", f[0], err))
		}
		if !lockKey.MatchString(f[2]) {
			return nil, bad(fmt.Sprintf("%s: key %s is not 64 hexadecimal digits", f[0], quote(f[2])))
		}
		if _, dup := l.entries[f[0]]; dup {
			return nil, bad(fmt.Sprintf("%s is listed twice", f[0]))
		}
		l.entries[f[0]] = LockEntry{Name: f[0], Version: f[1], Key: f[2]}
	}
	return l, nil
}

// ReadLock reads the lock file at path on fsys; a missing file is an empty lock.
func ReadLock(fsys afero.Fs, path string) (*Lock, error) {
	data, err := afero.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Lock{entries: map[string]LockEntry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return ParseLock(path, data)
}

// ContentVersion is the version of a package whose version follows its content, given what
// the lock records for it (nil: nothing), the project version and the content key now:
//
//   - the same content keeps the recorded version;
//   - new content takes the project version when it sorts after the recorded one;
//   - otherwise (the content changed but the project version did not) a version that sorts
//     right after the recorded one: 1.4.3 gives 1.4.3+c1, 1.4.3+c1 gives 1.4.3+c2. These sort
//     before the next release (1.4.3 < 1.4.3+c1 < 1.4.4).
//
// Each new version sorts after every version the package had, so two contents never share a
// name and version, and apt upgrades to the newest content.
func ContentVersion(locked *LockEntry, project, key string) (string, error) {
	if _, err := Parse(project); err != nil {
		return "", err
	}
	if locked == nil {
		return project, nil
	}
	if locked.Key == key {
		return locked.Version, nil
	}
	c, err := CompareStrings(project, locked.Version)
	if err != nil {
		return "", err
	}
	if c > 0 {
		return project, nil
	}
	return nextContentVersion(locked.Version)
}

var contentSuffix = regexp.MustCompile(`\+c([0-9]+)$`)

// nextContentVersion is v with its +cN suffix incremented, or with +c1 appended.
func nextContentVersion(v string) (string, error) {
	next := v + "+c1"
	if m := contentSuffix.FindStringSubmatchIndex(v); m != nil {
		n, err := strconv.ParseUint(v[m[2]:m[3]], 10, 63)
		if err != nil {
			return "", fmt.Errorf("%s: %w", v, err)
		}
		next = v[:m[2]] + strconv.FormatUint(n+1, 10)
	}
	if c, err := CompareStrings(next, v); err != nil || c <= 0 {
		return "", fmt.Errorf("no version sorts right after %s (tried %s)", v, next)
	}
	return next, nil
}

// LockOptions adjusts UpdateLock.
type LockOptions struct {
	// Guard is the file beside which the lock of the writers is taken (".NAME.lock"): the
	// VERSION file, so that one lock guards the project's version state. Empty: the lock file.
	Guard string
	// Mutex, when not nil, is held for the whole read-update-write (see BumpOptions.Mutex).
	Mutex sync.Locker
}

// UpdateLock reads the lock file at path, lets update change it and writes it back when it
// changed: under an exclusive lock, so that packages built in parallel (in one process or
// several) lose no entry, and atomically (a temporary file renamed over it). As for BumpFile,
// the lock is an flock on the operating system's file system; elsewhere (in memory), share a
// LockOptions.Mutex.
func UpdateLock(fsys afero.Fs, path string, opts LockOptions, update func(*Lock) error) error {
	if opts.Mutex != nil {
		opts.Mutex.Lock()
		defer opts.Mutex.Unlock()
	}
	guard := opts.Guard
	if guard == "" {
		guard = path
	}
	unlock, err := lockIfOS(fsys, guard)
	if err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	defer unlock()
	l, err := ReadLock(fsys, path)
	if err != nil {
		return err
	}
	old := l.Bytes()
	if err := update(l); err != nil {
		return err
	}
	data := l.Bytes()
	if bytes.Equal(old, data) {
		return nil // unchanged: the file keeps its bytes (and a missing one stays missing)
	}
	if err := atomicfile.WriteFile(fsys, path, data, 0o644); err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	return nil
}
