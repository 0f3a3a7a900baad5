package cache

// A stat list is the stat cache of one action whose input files come in a fixed, sorted order
// (the entries of a package): a file of records in that order, read alongside the inputs and
// written anew beside it, so that its memory does not grow with the number of files.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/upds/upds/interp/atomicfile"
)

// StatList is the stat list of one action: Lookup and Record take the action's input files in
// the order of their keys, each once.
type StatList struct {
	path    string
	old     *bufio.Reader
	oldFile *os.File
	cur     listRecord // the next record of the old list, if any
	curOK   bool
	out     *atomicfile.File
	w       *bufio.Writer
	changed bool
	err     error
	buf     [2 + 8 + 8 + 32 + 16]byte // a record's fixed part (a field: a local array escapes)
}

type listRecord struct {
	key  []byte
	name uint64 // statName of the file's name
	stat uint64 // StatFingerprint
	sums Sums
}

const listMagic = "upds stat list 1\n"

// StatList opens the stat list called name (an action kind and target, such as "deb-hello").
// With write false (a dry run) the list is only read. With the cache disabled it knows nothing
// and keeps nothing.
func (c *Cache) StatList(name string, write bool) *StatList {
	l := &StatList{path: filepath.Join(c.dir, "stats", name)}
	if c.disabled {
		return l
	}
	if f, err := os.Open(l.path); err == nil {
		br := bufio.NewReaderSize(f, 64<<10)
		head := make([]byte, len(listMagic))
		if _, err := io.ReadFull(br, head); err == nil && string(head) == listMagic {
			l.old, l.oldFile = br, f
			l.next()
		} else {
			f.Close()
		}
	}
	if write {
		if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
			l.err = err
			return l
		}
		l.out, l.err = atomicfile.Create(nil, l.path, 0o644)
		if l.err == nil {
			l.w = bufio.NewWriterSize(l.out, 64<<10)
			l.w.WriteString(listMagic)
		}
	}
	return l
}

// Known reports whether there was a list to read: a list that is not known holds nothing, as
// for an action never run with this cache.
func (l *StatList) Known() bool { return l.old != nil }

// next reads the next record of the old list.
func (l *StatList) next() {
	l.curOK = false
	if l.old == nil {
		return
	}
	n := l.buf[:2]
	if _, err := io.ReadFull(l.old, n); err != nil {
		return
	}
	r := &l.cur
	k := int(binary.LittleEndian.Uint16(n))
	r.key = slices.Grow(r.key[:0], k)[:k]
	fixed := l.buf[2:]
	if _, err := io.ReadFull(l.old, r.key); err != nil {
		return
	}
	if _, err := io.ReadFull(l.old, fixed); err != nil {
		return
	}
	r.name = binary.LittleEndian.Uint64(fixed[0:])
	r.stat = binary.LittleEndian.Uint64(fixed[8:])
	copy(r.sums.SHA256[:], fixed[16:48])
	copy(r.sums.MD5[:], fixed[48:64])
	l.curOK = true
}

// Lookup returns the sums the list holds for the input with key, if they are of the file
// called name with the stat fingerprint fp (see Fingerprint). Keys must increase from call to
// call.
func (l *StatList) Lookup(key, name []byte, fp uint64) (Sums, bool) {
	for l.curOK && bytes.Compare(l.cur.key, key) < 0 {
		l.changed = true // an input that is gone
		l.next()
	}
	if !l.curOK || !bytes.Equal(l.cur.key, key) {
		return Sums{}, false
	}
	sums, hit := l.cur.sums, l.cur.name == nameHash(name) && l.cur.stat == fp
	l.next()
	return sums, hit
}

// Record keeps the sums of the input with key, the file called name with the stat
// fingerprint fp, in the new list. Keys must increase from call to call; every input is
// recorded, hit or not.
func (l *StatList) Record(key, name []byte, fp uint64, sums Sums, hit bool) {
	if !hit {
		l.changed = true
	}
	if l.w == nil || l.err != nil {
		return
	}
	if len(key) > 1<<16-1 {
		l.err = fmt.Errorf("stat list: key longer than %d bytes", 1<<16-1)
		return
	}
	b := l.buf[:]
	binary.LittleEndian.PutUint16(b[0:], uint16(len(key)))
	l.w.Write(b[:2])
	l.w.Write(key)
	binary.LittleEndian.PutUint64(b[2:], nameHash(name))
	binary.LittleEndian.PutUint64(b[10:], fp)
	copy(b[18:50], sums.SHA256[:])
	copy(b[50:66], sums.MD5[:])
	l.w.Write(b[2:])
}

// Abort releases the lists without saving the new one (after an error: what was recorded is
// right, but what was not would be lost). After Close it does nothing.
func (l *StatList) Abort() {
	l.err = errors.New("stat list: aborted")
	l.Close()
}

// Close saves the new list when it differs from the old one, and releases both. Later calls
// do nothing.
func (l *StatList) Close() error {
	if l.oldFile != nil {
		if l.curOK {
			l.changed = true // inputs that are gone
		}
		l.oldFile.Close()
		l.oldFile, l.old, l.curOK = nil, nil, false
	}
	out := l.out
	if out == nil {
		return l.err
	}
	l.out = nil
	defer out.Abort()
	if l.err != nil || !l.changed {
		return l.err
	}
	if err := l.w.Flush(); err != nil {
		return err
	}
	return out.Commit()
}
