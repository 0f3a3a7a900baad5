package deb

// data.tar as a pipeline: one goroutine lays the tar stream out in blocks, reading each file
// straight into the block that holds it; the caller's goroutine hands the blocks to the
// compressor (which has threads of its own); a few goroutines compute the md5 of the files in
// them, each file on one of them. A free list of blocks bounds the memory in between.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/upds/upds/interp/cache"
)

const (
	blockSize = 256 << 10
	blocks    = 16 // in flight: 4 MiB
)

// block is a piece of the tar stream, shared by the compressor and the hashers that have
// parts in it; the last to let go of it puts it back on the free list.
type block struct {
	buf   []byte
	parts [][]part // by hasher
	refs  atomic.Int32
}

// part is a run of a regular file's content in a block.
type part struct {
	rec    uint32
	off, n int32
	last   bool // the file's end: its md5 is done
}

// tarStream is the state of the goroutine that lays out the tar stream.
type tarStream struct {
	pl      *Plan
	ctx     context.Context
	free    chan *block
	out     chan *block   // to the compressor
	hashers []chan *block // to the hashers
	cur     *block
	files   int    // regular files whose md5 is computed so far: file k goes to hasher k mod len
	hdr     []byte // a tar header
	opener  *srcOpener
	name    []byte // the name of a Src file
	probe   [1]byte
}

// writeData writes data.tar through the compressor to w and computes the md5 of every regular
// file whose md5 is not known yet.
func (pl *Plan) writeData(ctx context.Context, w io.Writer) error {
	zw, err := pl.comp.newWriter(w, pl.level)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ts := &tarStream{pl: pl, ctx: ctx, free: make(chan *block, blocks), out: make(chan *block, blocks),
		hashers: make([]chan *block, min(max(runtime.GOMAXPROCS(0)/2, 1), 4))}
	for range blocks {
		ts.free <- &block{buf: make([]byte, 0, blockSize), parts: make([][]part, len(ts.hashers))}
	}
	var wg sync.WaitGroup
	for h := range ts.hashers {
		ts.hashers[h] = make(chan *block, blocks)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts.hash(h)
		}()
	}
	var terr error
	go func() {
		terr = ts.run()
		close(ts.out)
		for _, c := range ts.hashers {
			close(c)
		}
	}()
	var werr error
	for b := range ts.out {
		if werr == nil {
			if _, werr = zw.Write(b.buf); werr != nil {
				cancel()
			}
		}
		ts.release(b)
	}
	wg.Wait()
	if werr != nil {
		zw.Close()
		return fmt.Errorf("data.tar: %w", werr)
	}
	if terr != nil {
		zw.Close()
		return terr
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("data.tar: %w", err)
	}
	return nil
}

func (ts *tarStream) release(b *block) {
	if b.refs.Add(-1) == 0 {
		b.buf = b.buf[:0]
		for h := range b.parts {
			b.parts[h] = b.parts[h][:0]
		}
		ts.free <- b
	}
}

// hash computes the md5 of the files given to hasher h, in the order of their parts, and
// their sha256 too for the plan's fileSums.
func (ts *tarStream) hash(h int) {
	d, s := md5.New(), sha256.New()
	sink := ts.pl.fileSums
	var sums cache.Sums
	for b := range ts.hashers[h] {
		for _, p := range b.parts[h] {
			d.Write(b.buf[p.off : p.off+p.n])
			if sink != nil {
				s.Write(b.buf[p.off : p.off+p.n])
			}
			if p.last {
				r := ts.pl.recs.at(p.rec)
				d.Sum(r.md5[:0])
				d.Reset()
				if sink != nil {
					s.Sum(sums.SHA256[:0])
					s.Reset()
					sums.MD5 = r.md5
					sink(p.rec, sums)
				}
			}
		}
		ts.release(b)
	}
}

// ship sends the current block on, to the compressor and to the hashers that have parts in it.
func (ts *tarStream) ship() error {
	b := ts.cur
	ts.cur = nil
	if b == nil {
		return nil
	}
	refs := int32(1)
	for _, ps := range b.parts {
		if len(ps) > 0 {
			refs++
		}
	}
	b.refs.Store(refs)
	for h, ps := range b.parts {
		if len(ps) > 0 {
			ts.hashers[h] <- b // never blocks: a channel holds every block
		}
	}
	select {
	case ts.out <- b:
		return nil
	case <-ts.ctx.Done():
		return ts.ctx.Err()
	}
}

// space returns the free part of the current block, shipping a full one and taking a new one.
func (ts *tarStream) space() ([]byte, error) {
	if ts.cur != nil && len(ts.cur.buf) == cap(ts.cur.buf) {
		if err := ts.ship(); err != nil {
			return nil, err
		}
	}
	if ts.cur == nil {
		select {
		case ts.cur = <-ts.free:
		case <-ts.ctx.Done():
			return nil, ts.ctx.Err()
		}
	}
	return ts.cur.buf[len(ts.cur.buf):cap(ts.cur.buf)], nil
}

// emit appends p to the stream.
func (ts *tarStream) emit(p []byte) error {
	for len(p) > 0 {
		s, err := ts.space()
		if err != nil {
			return err
		}
		n := copy(s, p)
		ts.cur.buf = ts.cur.buf[:len(ts.cur.buf)+n]
		p = p[n:]
	}
	return nil
}

var zeroBlocks [1024]byte

// run lays out the tar stream: every record's header and content, then the two zero blocks
// that end a tar archive (archive/tar's output, byte for byte).
func (ts *tarStream) run() error {
	ts.opener = newSrcOpener()
	defer ts.opener.close()
	for _, i := range ts.pl.order {
		if err := ts.ctx.Err(); err != nil {
			return err
		}
		if err := ts.entry(i); err != nil {
			return fmt.Errorf("data.tar: %s: %w", ts.pl.pathBytes(i), err)
		}
	}
	if err := ts.emit(zeroBlocks[:]); err != nil {
		return err
	}
	return ts.ship()
}

// entry writes record i: its header, and a regular file's content padded to 512 bytes.
func (ts *tarStream) entry(i uint32) error {
	pl := ts.pl
	h := pl.header(i)
	hdr, ok := pl.appendHeader(ts.hdr[:0], &h)
	if !ok {
		var b bytes.Buffer
		if err := tar.NewWriter(&b).WriteHeader(pl.tarHeader(&h)); err != nil {
			return err
		}
		hdr = b.Bytes()
	}
	ts.hdr = hdr[:0]
	if err := ts.emit(hdr); err != nil {
		return err
	}
	if h.typ != TypeFile {
		return nil
	}
	if g, ok := pl.links[i]; ok {
		i = g.file // the first name of a file with hard links: its content
	}
	if err := ts.content(i, h.r); err != nil {
		return err
	}
	return ts.emit(zeroBlocks[:(512-h.r.size%512)%512])
}

// content copies a regular file's content into the stream, and its parts to a hasher unless
// its md5 is known, of the file as it is now.
func (ts *tarStream) content(i uint32, r *rec) error {
	f, err := ts.open(r)
	if err != nil {
		return err
	}
	hashed := true
	switch {
	case ts.pl.fileSums != nil:
		r.stat, _ = fingerprintOf(f) // of the file about to be read, for the stat list
	case r.flags&flagMD5 != 0:
		hashed = !unchanged(f, r.stat)
	}
	h := -1
	if hashed {
		h = ts.files % len(ts.hashers)
		ts.files++
	}
	err = ts.copyContent(i, r, h, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (ts *tarStream) copyContent(i uint32, r *rec, h int, f io.Reader) error {
	_, exact := f.(exactReader)
	probed := false
	for left := r.size; ; {
		s, err := ts.space()
		if err != nil {
			return err
		}
		n := int(min(int64(len(s)), left))
		want := n
		if exact && int64(n) == left && len(s) > n {
			want, probed = n+1, true
		}
		got, err := fill(f, s[:want], n)
		if got > n {
			return fmt.Errorf("file is longer than %d bytes: it changed while the package was written", r.size)
		}
		if err == io.ErrUnexpectedEOF {
			return fmt.Errorf("file has %d bytes, want %d: it changed while the package was written", r.size-left+int64(got), r.size)
		}
		if err != nil {
			return err
		}
		if h >= 0 {
			ts.cur.parts[h] = append(ts.cur.parts[h], part{rec: i, off: int32(len(ts.cur.buf)), n: int32(n), last: int64(n) == left})
		}
		ts.cur.buf = ts.cur.buf[:len(ts.cur.buf)+n]
		if left -= int64(n); left == 0 {
			break
		}
	}
	if probed {
		return nil
	}
	if m, _ := f.Read(ts.probe[:]); m > 0 {
		return fmt.Errorf("file is longer than %d bytes: it changed while the package was written", r.size)
	}
	return nil
}

// fill reads n bytes into p, or returns io.ErrUnexpectedEOF. With a probe (len(p) > n, for an
// exactReader) it asks for one more byte in the same reads: a read of a regular file that
// returns less than asked has reached the end, so more than n bytes mean the file is longer.
func fill(f io.Reader, p []byte, n int) (int, error) {
	got := 0
	for {
		m, err := f.Read(p[got:])
		asked := len(p) - got
		got += m
		switch {
		case got > n:
			return got, nil
		case err == io.EOF && got == n:
			return got, nil
		case err == io.EOF:
			return got, io.ErrUnexpectedEOF
		case err != nil:
			return got, err
		case got == n && (len(p) == n || m < asked):
			return got, nil
		}
	}
}

// exactReader marks a reader of a regular file whose short reads are its end (fdFile).
type exactReader interface{ exactReads() }

// open opens a regular file's content.
func (ts *tarStream) open(r *rec) (io.ReadCloser, error) {
	pl := ts.pl
	switch {
	case r.flags&flagEntry != 0:
		return pl.pkg.Entries[r.content].Open()
	case r.flags&flagOpen != 0:
		return pl.opens[r.content]()
	}
	ts.name = pl.srcName(ts.name[:0], r)
	return ts.opener.open(ts.name)
}

// srcName appends the name of r's Src file to b.
func (pl *Plan) srcName(b []byte, r *rec) []byte {
	b = append(b, pl.srcs.prefixes[r.content]...)
	return append(b, pl.arena.bytes(r.path+uint32(r.pathLen-r.auxLen), r.auxLen)...)
}
