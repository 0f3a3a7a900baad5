package deb

// The entries of a Plan, kept compactly: what the writer needs of an entry fits in one
// pointer-free record of 64 bytes plus its path in an arena, so a package of any number of
// entries costs little memory and nothing for the garbage collector to scan. The Entry values
// themselves (their strings, their Open closures) need not outlive Prepare: a regular file given
// by Src is opened by name; one given by Open keeps that function (or, in Package.Entries, the
// caller's Entry) until it is written.

import (
	"fmt"
	"strings"
)

// rec is one entry of a Plan (64 bytes).
type rec struct {
	size  int64
	mtime int64    // the entry's own MTime in Unix seconds, when flagMTime
	md5   [16]byte // a regular file's md5: given (flagMD5), or what the last Write computed
	stat  uint64   // with flagMD5: the statFingerprint of the file the md5 is of
	// path and aux are arena references (see arena.add). aux is a symlink's target; for a file
	// with a source, auxLen is the length of the path's suffix that the source shares, after
	// the prefix srcs[content].
	path    uint32
	aux     uint32
	pathLen uint16
	auxLen  uint16
	content uint32 // index into Package.Entries, Plan.opens or Plan.srcs (see flags)
	mode    uint32 // Entry.Mode as given (fs.FileMode)
	owner   uint16 // index into Plan.owners
	typ     Type
	flags   uint8
}

const (
	flagImplicit = 1 << iota // a parent directory Prepare added, or the root
	flagMTime                // the entry has its own MTime, earlier than the package's
	flagMD5                  // md5 is known before writing (the build's stat cache), if the file's stat is still stat
	flagEntry                // content is Package.Entries[content].Open
	flagOpen                 // content is Plan.opens[content]
	flagSrc                  // content is the file srcs[content] + the last auxLen bytes of the path
)

// arena holds the strings of the records in chunks that never move: a reference is the chunk
// number times arenaChunk plus the offset in it.
type arena struct{ chunks [][]byte }

const (
	arenaChunk = 1 << 20
	maxString  = 1<<16 - 1 // a path or a target
)

func (a *arena) add(s string) (uint32, error) {
	if len(s) > maxString {
		return 0, fmt.Errorf("%.40q...: longer than %d bytes", s, maxString)
	}
	n := len(a.chunks)
	if n == 0 || len(a.chunks[n-1])+len(s) > arenaChunk {
		if n == 4096 {
			return 0, fmt.Errorf("more than %d GiB of paths", 4096/1024)
		}
		a.chunks = append(a.chunks, make([]byte, 0, arenaChunk))
		n++
	}
	c := &a.chunks[n-1]
	off := uint32((n-1)*arenaChunk + len(*c))
	*c = append(*c, s...)
	return off, nil
}

// bytes returns the n bytes at ref (valid while the arena lives; do not modify).
func (a *arena) bytes(ref uint32, n uint16) []byte {
	c := a.chunks[ref/arenaChunk]
	off := ref % arenaChunk
	return c[off : off+uint32(n) : off+uint32(n)]
}

// recs holds the records in pages that never move.
type recs struct {
	pages [][]rec
	n     int
}

const recPage = 1024

func (r *recs) add(x rec) uint32 {
	if r.n%recPage == 0 {
		r.pages = append(r.pages, make([]rec, 0, recPage))
	}
	p := &r.pages[len(r.pages)-1]
	*p = append(*p, x)
	r.n++
	return uint32(r.n - 1)
}

func (r *recs) at(i uint32) *rec { return &r.pages[i/recPage][i%recPage] }

// owner is one combination of owner and group as entries give them, and as they are written.
type owner struct {
	name, group  string // as given
	uid, gid     int
	uname, gname string // resolved (resolveID)
	ruid, rgid   int
}

// source is the start of the file names of regular files given by Src: a source is
// srcs[content] followed by the last auxLen bytes of the entry's path. Files of one tree share
// the prefix, so a source costs no more than the record.
type sources struct {
	prefixes []string
	index    map[string]uint32
}

// add returns the reference of src for the entry at path: the prefix index and the length of
// the suffix it shares with path (whole path elements).
func (s *sources) add(src, path string) (uint32, uint16) {
	n := 0
	for n < len(src) && n < len(path) && src[len(src)-1-n] == path[len(path)-1-n] {
		n++
	}
	// Back to a '/' that starts the shared suffix in both, so that prefixes are directories.
	for n > 0 && path[len(path)-n] != '/' {
		n--
	}
	prefix := src[:len(src)-n]
	i, ok := s.index[prefix]
	if !ok {
		if s.index == nil {
			s.index = map[string]uint32{}
		}
		i = uint32(len(s.prefixes))
		s.prefixes = append(s.prefixes, strings.Clone(prefix))
		s.index[s.prefixes[i]] = i
	}
	return i, uint16(n)
}
