package cache

// The stat cache: for each input file hashed before, a fingerprint of its stat (size, mtime,
// ctime, inode, device) and the SHA-256 of its content, so that an unchanged file is not read
// again. A file is known by a 64-bit hash of its name and an entry is 40 bytes without
// pointers, so the cache costs little memory and nothing for the garbage collector to scan.
// A hit needs the same name hash and the same stat fingerprint: two 64-bit hashes colliding at
// once, for a file whose stat changed, is what it would take to miss a change.
// (The files of a package are many: they have a stat list each, statlist.go.)

import (
	"bufio"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp/atomicfile"
)

// statEntry is what the stat cache knows of a file: the fingerprint of its stat (Fingerprint)
// and the SHA-256 of its content.
type statEntry struct {
	Stat uint64
	Sum  [32]byte
}

const (
	statFile   = "stat-cache"
	statMagic  = "upds stat cache 2\n"
	statRecord = 8 + 8 + 32 // name hash, stat fingerprint, sum
)

func statName(key string) uint64 { return nameHash([]byte(key)) }

// nameHash is FNV-1a of a file name.
func nameHash(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

func (c *Cache) loadStats() {
	f, err := os.Open(filepath.Join(c.dir, statFile))
	if err != nil {
		return
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head := make([]byte, len(statMagic)+8)
	if _, err := io.ReadFull(br, head); err != nil || string(head[:len(statMagic)]) != statMagic {
		return // none, or the gob file of an older upds: started over
	}
	n := binary.LittleEndian.Uint64(head[len(statMagic):])
	m := make(map[uint64]statEntry, min(n, 1<<20))
	var rec [statRecord]byte
	for range n {
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			return
		}
		e := statEntry{Stat: binary.LittleEndian.Uint64(rec[8:])}
		copy(e.Sum[:], rec[16:])
		m[binary.LittleEndian.Uint64(rec[0:])] = e
	}
	c.stats = m
}

// Flush saves the stat cache. It is cheap when nothing changed.
func (c *Cache) Flush() error {
	if c.disabled {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	f, err := atomicfile.Create(nil, filepath.Join(c.dir, statFile), 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()
	bw := bufio.NewWriterSize(f, 64<<10)
	bw.Write(binary.LittleEndian.AppendUint64([]byte(statMagic), uint64(len(c.stats))))
	var rec [statRecord]byte
	for k, e := range c.stats {
		binary.LittleEndian.PutUint64(rec[0:], k)
		binary.LittleEndian.PutUint64(rec[8:], e.Stat)
		copy(rec[16:], e.Sum[:])
		bw.Write(rec[:])
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

// FileSum returns the SHA-256 of a file's content. With statKey set (the file's absolute path on
// the real filesystem), an unchanged stat (size, mtime, ctime, inode) returns the remembered
// sum without reading the file; a changed stat re-reads it, so content stays the truth.
func (c *Cache) FileSum(fsys afero.Fs, name, statKey string) ([32]byte, error) {
	fi, err := fsys.Stat(name)
	if err != nil {
		return [32]byte{}, err
	}
	return c.FileSumInfo(fsys, name, statKey, fi)
}

// FileSumInfo is FileSum for a file whose FileInfo the caller already has (from a walk).
func (c *Cache) FileSumInfo(fsys afero.Fs, name, statKey string, fi os.FileInfo) ([32]byte, error) {
	fp, ok := StatFingerprint(fi)
	ok = ok && statKey != "" && !c.disabled
	var key uint64
	if ok {
		key = statName(statKey)
		c.mu.Lock()
		e, hit := c.stats[key]
		c.mu.Unlock()
		if hit && e.Stat == fp {
			return e.Sum, nil
		}
	}
	f, err := fsys.Open(name)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	sum, err := SumReader(f)
	if err != nil {
		return sum, err
	}
	if ok {
		c.mu.Lock()
		c.stats[key] = statEntry{Stat: fp, Sum: sum}
		c.dirty = true
		c.mu.Unlock()
	}
	return sum, nil
}

// SumReader is the SHA-256 of what r holds, as FileSum gives it for files.
func SumReader(r io.Reader) ([32]byte, error) {
	s, err := NewHasher().Sums(r, false)
	return s.SHA256, err
}

// Sums are the hashes of a file's content.
type Sums struct {
	SHA256 [32]byte
	MD5    [16]byte
}

// Hasher computes the sums of what readers hold, reusing its state from one to the next.
type Hasher struct {
	sha, md5 hash.Hash
	buf      []byte
	sum      [sha256.Size]byte // what Sum appends to (a local array would escape)
}

// NewHasher returns a Hasher.
func NewHasher() *Hasher {
	return &Hasher{sha: sha256.New(), md5: md5.New(), buf: make([]byte, 64<<10)}
}

// Sums reads r to its end and returns its SHA-256, and its MD5 too withMD5: one read for both,
// as a package needs the MD5 for md5sums and the SHA-256 for its cache key.
func (h *Hasher) Sums(r io.Reader, withMD5 bool) (Sums, error) {
	h.sha.Reset()
	h.md5.Reset()
	for {
		n, err := r.Read(h.buf)
		h.sha.Write(h.buf[:n])
		if withMD5 {
			h.md5.Write(h.buf[:n])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return Sums{}, err
		}
	}
	var sums Sums
	copy(sums.SHA256[:], h.sha.Sum(h.sum[:0]))
	if withMD5 {
		copy(sums.MD5[:], h.md5.Sum(h.sum[:0]))
	}
	return sums, nil
}

// StatFingerprint sums up what changes when a file's content does: its size, mtime, ctime,
// inode and device. ok is false when fi does not come from the operating system.
func StatFingerprint(fi os.FileInfo) (fp uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return Fingerprint(st), true
}

// Fingerprint is StatFingerprint of a stat: FNV-1a of its size, mtime, ctime, inode and device.
func Fingerprint(st *syscall.Stat_t) uint64 {
	var b [40]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(st.Size))
	binary.LittleEndian.PutUint64(b[8:], uint64(st.Mtim.Nano()))
	binary.LittleEndian.PutUint64(b[16:], uint64(st.Ctim.Nano()))
	binary.LittleEndian.PutUint64(b[24:], st.Ino)
	binary.LittleEndian.PutUint64(b[32:], uint64(st.Dev))
	return nameHash(b[:])
}
