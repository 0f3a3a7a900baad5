// Package cache is the action cache of upds: a content-addressed store under .upds/ that maps
// the hash of an action's inputs to its output, and a stat cache that spares re-reading
// unchanged input files. It is an optimisation only: removing .upds/ changes no output.
package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
)

// Cache is one project's cache. The zero value is not usable; call Open.
type Cache struct {
	dir      string
	disabled bool

	mu    sync.Mutex
	stats map[uint64]statEntry // by statName of the key
	dirty bool

	remote *Remote // the shared cache, or nil (remote.go)
}

// Open returns the cache kept in dir (created on first write). A disabled cache stores nothing
// and never hits: every action runs (upds --no-cache).
func Open(dir string, disabled bool) *Cache {
	c := &Cache{dir: dir, disabled: disabled, stats: map[uint64]statEntry{}}
	if !disabled {
		c.loadStats()
	}
	return c
}

// Disabled reports whether the cache is bypassed.
func (c *Cache) Disabled() bool { return c.disabled }

// Dir is the cache directory.
func (c *Cache) Dir() string { return c.dir }

// Key builds an action key: a hash over typed, length-prefixed parts, so that no two different
// input lists give the same key.
type Key struct {
	h   hash.Hash
	buf []byte
}

// NewKey starts a key for an action kind ("deb", "venv", ...) and tool version.
func NewKey(kind, toolVersion string) *Key {
	k := &Key{h: sha256.New()}
	k.String(kind)
	k.String(toolVersion)
	return k
}

// String adds a string part.
func (k *Key) String(s string) *Key {
	k.buf = append(k.buf[:0], 's')
	k.buf = strconv.AppendInt(k.buf, int64(len(s)), 10)
	k.buf = append(k.buf, ':')
	k.buf = append(k.buf, s...)
	k.h.Write(k.buf)
	return k
}

// Bytes adds a string part held in b: the same part as String(string(b)).
func (k *Key) Bytes(b []byte) *Key {
	k.buf = append(k.buf[:0], 's')
	k.buf = strconv.AppendInt(k.buf, int64(len(b)), 10)
	k.buf = append(k.buf, ':')
	k.h.Write(k.buf)
	k.h.Write(b)
	return k
}

// Strings adds a list of strings (order matters).
func (k *Key) Strings(ss []string) *Key {
	fmt.Fprintf(k.h, "l%d:", len(ss))
	for _, s := range ss {
		k.String(s)
	}
	return k
}

// Map adds a string map (order does not matter).
func (k *Key) Map(m map[string]string) *Key {
	keys := make([]string, 0, len(m))
	for n := range m {
		keys = append(keys, n)
	}
	sort.Strings(keys)
	fmt.Fprintf(k.h, "m%d:", len(m))
	for _, n := range keys {
		k.String(n).String(m[n])
	}
	return k
}

// Int adds a number.
func (k *Key) Int(n int64) *Key {
	k.buf = append(k.buf[:0], 'i')
	k.buf = strconv.AppendInt(k.buf, n, 10)
	k.buf = append(k.buf, ';')
	k.h.Write(k.buf)
	return k
}

// Sum adds a content hash.
func (k *Key) Sum(sum [32]byte) *Key {
	k.h.Write([]byte{'h'})
	k.h.Write(sum[:])
	return k
}

// Hex returns the key.
func (k *Key) Hex() string { return hex.EncodeToString(k.h.Sum(nil)) }

// Path is where the object of an action kind and key is kept.
func (c *Cache) Path(kind, key string) string {
	return filepath.Join(c.dir, "objects", kind, key[:2], key)
}

// Lookup returns the object stored on this machine for kind and key, if there is one. It
// reads nothing from the shared cache (Build does).
func (c *Cache) Lookup(kind, key string) (string, bool) {
	if c.disabled {
		return "", false
	}
	p := c.Path(kind, key)
	if _, err := os.Lstat(p); err != nil {
		return "", false
	}
	return p, true
}

// Has reports whether Build of kind and key would take its output from a cache: this
// machine's, or the shared cache's record of it (looked at, not downloaded). It writes
// nothing, for upds run --dry-run.
func (c *Cache) Has(kind, key string) bool {
	if _, ok := c.Lookup(kind, key); ok {
		return true
	}
	return c.remote != nil && !c.disabled && c.remote.has(kind, key)
}

// Build makes dst hold the output of one cached step, the action of kind and key, and reports
// whether it came from the cache. On a hit the stored object is linked out to dst (see
// LinkOut). On a miss build writes the output, a file or a directory, at tmp, a new name in
// Dir()/tmp (nothing is there yet, and build may stage beside it); it is stored under kind and key, then linked out. An
// empty dst links nothing out: the output is used where it is stored, at Path(kind, key).
// With the cache disabled nothing is looked up or stored: the output replaces dst (which
// must be set).
func (c *Cache) Build(kind, key, dst string, build func(tmp string) error) (hit bool, err error) {
	if obj, ok := c.Lookup(kind, key); ok {
		return true, linkOut(obj, dst)
	}
	if c.remote != nil && !c.disabled {
		if obj, ok := c.fetchRemote(kind, key); ok {
			return true, linkOut(obj, dst)
		}
	}
	if c.disabled && dst == "" {
		return false, fmt.Errorf("cache: %s %s: the cache is disabled and the output has nowhere to go", kind, key)
	}
	tmpDir := filepath.Join(c.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return false, err
	}
	tmp := filepath.Join(tmpDir, fmt.Sprintf("%s-%s-%016x", kind, key, rand.Uint64()))
	defer os.RemoveAll(tmp) // gone once stored or replaced; after an error, what build left
	if err := build(tmp); err != nil {
		return false, err
	}
	if c.disabled {
		return false, replace(tmp, dst)
	}
	obj, err := c.Put(kind, key, tmp)
	if err != nil {
		return false, err
	}
	return false, linkOut(obj, dst)
}

// linkOut is LinkOut when there is somewhere to link to.
func linkOut(obj, dst string) error {
	if dst == "" {
		return nil
	}
	return LinkOut(obj, dst)
}

// replace puts the output of an uncached step at dst: a file as LinkOut does (dst is always
// whole), a directory in place of what dst held.
func replace(tmp, dst string) error {
	fi, err := os.Lstat(tmp)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return LinkOut(tmp, dst)
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// Put renames src (a file or a directory on the cache's filesystem: callers stage their output
// in Dir()/tmp) into the store under kind and key, atomically, and returns the stored path.
// With the cache disabled it returns src unchanged.
func (c *Cache) Put(kind, key, src string) (string, error) {
	if c.disabled {
		return src, nil
	}
	dst, err := c.put(kind, key, src)
	if err == nil && c.remote != nil && dst != "" {
		c.uploadRemote(kind, key, dst)
	}
	return dst, err
}

// put is Put without sharing the object.
func (c *Cache) put(kind, key, src string) (string, error) {
	dst := c.Path(kind, key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if _, err := os.Lstat(dst); err == nil {
		// Same key, same content: keep the stored one.
		os.RemoveAll(src)
		return dst, nil
	}
	if err := os.Rename(src, dst); err != nil {
		return "", fmt.Errorf("cache: store %s: %w", src, err)
	}
	return dst, nil
}

// LinkOut makes dst have the content of the stored object obj: nothing to do when dst already
// is that object (same inode), otherwise a hard link (or a copy across filesystems) to a
// temporary name beside dst, then a rename, so dst is always whole.
func LinkOut(obj, dst string) error {
	if a, err := os.Stat(obj); err == nil {
		if b, err := os.Stat(dst); err == nil && os.SameFile(a, b) {
			return nil
		}
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+filepath.Base(dst)+".tmp-link")
	os.Remove(tmp)
	if err := os.Link(obj, tmp); err != nil {
		if err := copyFile(obj, tmp); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
