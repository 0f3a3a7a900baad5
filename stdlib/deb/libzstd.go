package deb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"unsafe"
)

// zstd through the system's libzstd.
//
// dpkg Pre-Depends on libzstd1, so libzstd.so.1 is on every Debian and Ubuntu system whose
// dpkg reads zstd packages. Its multi-threaded mode compresses one frame on every core
// (dpkg 1.21 decodes only the first frame of a member, so independent frames are not an
// option), and C at level 3 costs less CPU than the pure-Go encoder: on the 230 MB corpus
// 1.0 s of CPU against 1.45 s, spread over the cores instead of one. The library is loaded
// with purego (no cgo: the binary still builds without a C compiler; libzstd_dlopen.go
// lists the Linux architectures purego supports); when it is missing, elsewhere, or with
// UPDS_ZSTD=go, the pure-Go encoder (klauspost/compress) is used instead.
//
// The output of the multi-threaded mode does not depend on the number of threads (for
// nbWorkers >= 1 and a fixed job size: 1, 2 and 4 threads give the same bytes, and
// TestOutputIndependentOfCPUs checks it), so it is the same on every machine with the same
// libzstd version; ZstdEncoder names that version, and the package cache keys include it.

// zstd.h's parameter numbers and end directives (stable since zstd 1.4.0).
const (
	zstdCompressionLevel = 100
	zstdWindowLog        = 101
	zstdChecksumFlag     = 201
	zstdNbWorkers        = 400
	zstdJobSize          = 401

	zstdContinue = 0
	zstdEnd      = 2
)

// zstdJob is the size of the input each thread compresses at once. It fixes the output (so
// it must not depend on the machine) and bounds the memory. zstd's default for level 3 is
// 8 MiB (four windows). Measured on the 230 MB corpus with two threads (peak RSS of the whole
// build, output size): 4 MiB 69 MiB, 60.28 MB; 2 MiB 57 MiB, 60.83 MB; 1 MiB 52 MiB,
// 61.55 MB and slower. 2 MiB keeps the build under 64 MiB for 0.9% more bytes.
const zstdJob = 2 << 20

type zstdBuffer struct {
	ptr  unsafe.Pointer
	size uintptr
	pos  uintptr
}

type libzstd struct {
	version        uint32
	createCCtx     func() uintptr
	freeCCtx       func(uintptr) uintptr
	setParameter   func(uintptr, int32, int32) uintptr
	compressStream func(uintptr, *zstdBuffer, *zstdBuffer, int32) uintptr
	isError        func(uintptr) uint32
	errorName      func(uintptr) string
}

// zstdLibrary returns libzstd, or why the pure-Go encoder is used instead.
func zstdLibrary() (*libzstd, error) {
	if os.Getenv("UPDS_ZSTD") == "go" {
		return nil, errors.New("UPDS_ZSTD=go")
	}
	return loadLibzstd()
}

func zstdVersionString(v uint32) string {
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

// ZstdEncoder names the zstd encoder packages are compressed with here: "libzstd 1.5.4" or
// "klauspost/compress" (the pure-Go fallback). Builds with different encoders give
// different (equally valid) bytes.
func ZstdEncoder() string {
	if z, err := zstdLibrary(); err == nil {
		return "libzstd " + zstdVersionString(z.version)
	}
	return "klauspost/compress"
}

// cZstd is a streaming libzstd compressor writing one frame to w.
type cZstd struct {
	z    *libzstd
	w    io.Writer
	cctx uintptr
	out  []byte
	pin  runtime.Pinner
	err  error
}

// newLibzstdWriter returns a buffered writer compressing into w at level with the
// multi-threaded encoder, or an error when libzstd cannot be used.
func newLibzstdWriter(w io.Writer, level int) (io.WriteCloser, error) {
	z, err := zstdLibrary()
	if err != nil {
		return nil, err
	}
	c := &cZstd{z: z, w: w, cctx: z.createCCtx(), out: make([]byte, 256<<10)}
	if c.cctx == 0 {
		return nil, errors.New("zstd: cannot allocate a compression context")
	}
	params := [][2]int32{
		{zstdCompressionLevel, int32(level)},
		{zstdChecksumFlag, 1},
		{zstdNbWorkers, int32(min(max(runtime.GOMAXPROCS(0), 1), 4))}, // ~4 MiB each
		{zstdJobSize, zstdJob},
	}
	if level > 16 { // levels 17 to 22 would use 8 to 128 MiB windows: decoders need that much
		params = append(params, [2]int32{zstdWindowLog, 22})
	}
	for _, p := range params {
		if r := z.setParameter(c.cctx, p[0], p[1]); z.isError(r) != 0 {
			z.freeCCtx(c.cctx)
			return nil, fmt.Errorf("zstd: parameter %d = %d: %s", p[0], p[1], z.errorName(r))
		}
	}
	// Writes reach the library 1 MiB at a time: every call has a fixed cost (the threads
	// are synchronised), and the tar writer writes 512-byte headers.
	return &bufferedCloser{Writer: bufio.NewWriterSize(c, 1<<20), c: c}, nil
}

// stream hands p to the library with the directive end and writes what comes out.
func (c *cZstd) stream(p []byte, end int32) error {
	if c.err != nil {
		return c.err
	}
	in := zstdBuffer{size: uintptr(len(p))}
	if len(p) > 0 {
		in.ptr = unsafe.Pointer(unsafe.SliceData(p))
		c.pin.Pin(in.ptr)
	}
	c.pin.Pin(unsafe.SliceData(c.out))
	defer c.pin.Unpin()
	for {
		out := zstdBuffer{ptr: unsafe.Pointer(unsafe.SliceData(c.out)), size: uintptr(len(c.out))}
		r := c.z.compressStream(c.cctx, &out, &in, end)
		if c.z.isError(r) != 0 {
			c.err = fmt.Errorf("zstd: %s", c.z.errorName(r))
			return c.err
		}
		if out.pos > 0 {
			if _, err := c.w.Write(c.out[:out.pos]); err != nil {
				c.err = err
				return err
			}
		}
		// A call may take only part of the input (it hands out what the threads finished,
		// and waits for one when its buffers are full): go on until all of p is taken; with
		// zstdEnd, r is what is still to be flushed.
		if (end == zstdContinue && in.pos == in.size) || (end == zstdEnd && r == 0) {
			return nil
		}
	}
}

func (c *cZstd) Write(p []byte) (int, error) {
	if err := c.stream(p, zstdContinue); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends the frame and frees the context (and its threads).
func (c *cZstd) Close() error {
	err := c.stream(nil, zstdEnd)
	c.z.freeCCtx(c.cctx)
	c.cctx = 0
	c.err = errors.New("zstd: closed")
	return err
}

// bufferedCloser flushes its buffer into c before closing c.
type bufferedCloser struct {
	*bufio.Writer
	c io.Closer
}

func (b *bufferedCloser) Close() error {
	err := b.Flush()
	if cerr := b.c.Close(); err == nil {
		err = cerr
	}
	return err
}
