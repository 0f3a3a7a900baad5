package deb

// The tar header of an entry, in the GNU format dpkg-deb writes, byte for byte what
// archive/tar writes for the header tarHeader makes, but written into the stream's block
// without allocating: the header of a package of a hundred thousand entries would otherwise
// be most of the garbage the writer makes. Numbers that do not fit in octal fields go through
// archive/tar itself (TestHeaderLikeArchiveTar holds the two together).

import (
	"io/fs"
	"strconv"
)

const (
	nameField = 100
	longLink  = "././@LongLink"
)

// gnuHeader is one 512-byte header block under construction.
type gnuHeader [512]byte

// str writes s at off into a field of n bytes, as archive/tar's formatString does: as much as
// fits, NUL-terminated when shorter; a name cut short keeps no trailing slash.
func (b *gnuHeader) str(off, n int, parts ...[]byte) {
	f := b[off : off+n]
	size := 0
	for _, p := range parts {
		if size < n {
			copy(f[size:], p)
		}
		size += len(p)
	}
	if size < n {
		f[size] = 0
	}
	if size > n && f[n-1] == '/' {
		k := n - 1
		for k > 0 && f[k-1] == '/' {
			k--
		}
		f[k] = 0
	}
}

// octal writes x at off into a field of n bytes: n-1 zero-padded octal digits and a NUL.
func (b *gnuHeader) octal(off, n int, x int64) {
	var digits [24]byte
	s := strconv.AppendInt(digits[:0], x, 8)
	f := b[off : off+n-1]
	for i := range f {
		f[i] = '0'
	}
	copy(f[len(f)-len(s):], s)
	b[off+n-1] = 0
}

// fitsOctal reports whether x fits in an octal field of n bytes.
func fitsOctal(n int, x int64) bool { return x >= 0 && x < 1<<(3*(n-1)) }

// finish sets the GNU magic and the checksum.
func (b *gnuHeader) finish() {
	copy(b[257:], "ustar  \x00")
	sum := int64(0)
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	b.octal(148, 7, sum)
	b[155] = ' '
}

// appendLongLink appends the ././@LongLink record that carries a name (flag 'L') or a link
// name ('K') longer than a header field, and its padded data.
func appendLongLink(dst []byte, flag byte, parts ...[]byte) []byte {
	var b gnuHeader
	size := 1 // the NUL
	for _, p := range parts {
		size += len(p)
	}
	b.str(0, nameField, []byte(longLink))
	b.octal(100, 8, 0)
	b.octal(108, 8, 0)
	b.octal(116, 8, 0)
	b.octal(124, 12, int64(size))
	b.octal(136, 12, 0)
	b[156] = flag
	b.finish()
	dst = append(dst, b[:]...)
	for _, p := range parts {
		dst = append(dst, p...)
	}
	dst = append(dst, 0)
	return append(dst, zeroBlocks[:(512-size%512)%512]...)
}

// header is what a record's tar header says.
type header struct {
	r    *rec // of its mode, owner, mtime, size (a file's, for the names of a file with hard links)
	typ  Type
	path []byte
	link [2][]byte // a symlink's target, or "." and the path a hard link links to
}

// header is record i's header.
func (pl *Plan) header(i uint32) header {
	r, typ, linkTo := pl.written(i)
	h := header{r: r, typ: typ, path: pl.pathBytes(i)}
	switch typ {
	case TypeSymlink:
		h.link[0] = pl.arena.bytes(r.aux, r.auxLen)
	case TypeHardlink:
		h.link = [2][]byte{[]byte("."), linkTo}
	}
	return h
}

// appendHeader appends h (and the records of long names before it), or returns false when a
// number does not fit in octal: the caller then uses archive/tar.
func (pl *Plan) appendHeader(dst []byte, h *header) ([]byte, bool) {
	r := h.r
	o := &pl.owners[r.owner]
	mode := tarMode(fs.FileMode(r.mode), h.typ)
	mtime := pl.tarMTime(r).Unix()
	size := int64(0)
	if h.typ == TypeFile {
		size = r.size
	}
	if !fitsOctal(12, size) || !fitsOctal(12, mtime) || !fitsOctal(8, mode) || !fitsOctal(8, int64(o.ruid)) || !fitsOctal(8, int64(o.rgid)) {
		return dst, false
	}
	name := [3][]byte{[]byte("."), h.path, nil}
	var flag byte
	switch h.typ {
	case TypeDir:
		flag = '5'
		if len(h.path) > 1 {
			name[2] = []byte("/")
		}
	case TypeSymlink:
		flag = '2'
	case TypeHardlink:
		flag = '1'
	case TypeFile:
		flag = '0'
	}
	if n := 1 + len(name[1]) + len(name[2]); n > nameField {
		dst = appendLongLink(dst, 'L', name[:]...)
	}
	if len(h.link[0])+len(h.link[1]) > nameField {
		dst = appendLongLink(dst, 'K', h.link[:]...)
	}
	var b gnuHeader
	b.str(0, nameField, name[:]...)
	b.octal(100, 8, mode)
	b.octal(108, 8, int64(o.ruid))
	b.octal(116, 8, int64(o.rgid))
	b.octal(124, 12, size)
	b.octal(136, 12, mtime)
	b[156] = flag
	b.str(157, nameField, h.link[:]...)
	b.str(265, 32, []byte(o.uname))
	b.str(297, 32, []byte(o.gname))
	b.octal(329, 8, 0)
	b.octal(337, 8, 0)
	b.finish()
	return append(dst, b[:]...), true
}
