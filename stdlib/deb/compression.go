package deb

// The compressions of a package's tar members: one table that the writer, Validate, Read,
// deb() and the cache key all look up.

import (
	"bufio"
	"compress/bzip2"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"
)

// compression is one way of compressing control.tar and data.tar.
type compression struct {
	name   string // as Package.Compression, deb() and Info spell it
	suffix string // of the ar member: "data.tar" + suffix
	// maxLevel is the highest level; defaultLevel is used for level 0.
	maxLevel, defaultLevel int
	// newWriter compresses into w; nil for a compression dpkg reads but upds does not write.
	// Every setting that changes the output is fixed here (not taken from the machine), so
	// the same input gives the same bytes everywhere (for zstd: with the same encoder).
	newWriter func(w io.Writer, level int) (io.WriteCloser, error)
	// newReader decompresses r; close releases what it holds.
	newReader func(r io.Reader) (rd io.Reader, close func(), err error)
	// encoder, when set, names the encoder whose version changes the output (the cache key
	// holds it).
	encoder func() string
	// dataOnly: dpkg accepts it for data.tar only.
	dataOnly bool
}

// compressions are the compressions dpkg reads; the first is the default, and all but bzip2
// can be written.
var compressions = []*compression{
	{name: "gzip", suffix: ".gz", maxLevel: 9, defaultLevel: DefaultGzipLevel, newWriter: gzipWriter, newReader: gzipReader},
	{name: "xz", suffix: ".xz", maxLevel: 9, defaultLevel: 6, newWriter: xzCompressor, newReader: xzReader},
	{name: "zstd", suffix: ".zst", maxLevel: 22, defaultLevel: 3, newWriter: zstdWriter, newReader: zstdReader, encoder: ZstdEncoder},
	{name: "none", newWriter: func(w io.Writer, _ int) (io.WriteCloser, error) { return nopCloser{w}, nil }, newReader: plainReader},
	{name: "bzip2", suffix: ".bz2", newReader: bzip2Reader, dataOnly: true},
}

// compressionNamed returns the compression Package.Compression names ("" is gzip), if upds
// writes it.
func compressionNamed(name string) (*compression, bool) {
	if name == "" {
		return compressions[0], true
	}
	for _, c := range compressions {
		if c.name == name && c.newWriter != nil {
			return c, true
		}
	}
	return nil, false
}

// writableNames lists the compressions upds writes, joined by sep and, before the last, by
// last: "gzip, xz, zstd or none".
func writableNames(sep, last string) string {
	var names []string
	for _, c := range compressions {
		if c.newWriter != nil {
			names = append(names, c.name)
		}
	}
	return strings.Join(names[:len(names)-1], sep) + last + names[len(names)-1]
}

// memberCompression returns the compression of the ar member name, which is base ("data.tar"
// or "control.tar") and a suffix.
func memberCompression(name, base string) (*compression, error) {
	suffix := strings.TrimPrefix(name, base)
	for _, c := range compressions {
		if c.suffix == suffix && (base == "data.tar" || !c.dataOnly) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("ar member %q: unsupported compression", name)
}

// level checks a Package.Level for c and returns the level to use (0: c's default).
func (c *compression) level(level int) (int, error) {
	if level < 0 || level > c.maxLevel {
		return 0, fmt.Errorf("compression %s: level %d out of range 0..%d", c.name, level, c.maxLevel)
	}
	if level == 0 {
		level = c.defaultLevel
	}
	return level, nil
}

func gzipWriter(w io.Writer, level int) (io.WriteCloser, error) {
	z, err := pgzip.NewWriterLevel(w, level)
	if err != nil {
		return nil, err
	}
	// 1 MiB blocks (each seeded with the previous 32 KiB, so the ratio stays that of gzip);
	// the block size fixes the output, the number in flight (2 to 4, about 3 MiB each) only
	// the speed and the memory.
	if err := z.SetConcurrency(1<<20, min(max(runtime.GOMAXPROCS(0), 2), 4)); err != nil {
		return nil, err
	}
	return z, nil
}

// zstdWindow is the zstd window of the pure-Go encoder; decoders need that much memory.
const zstdWindow = 4 << 20

func zstdWriter(w io.Writer, level int) (io.WriteCloser, error) {
	if _, err := zstdLibrary(); err == nil {
		return newLibzstdWriter(w, level)
	}
	return zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(2),
		zstd.WithWindowSize(zstdWindow),
		// A history buffer of two windows: with the low-memory one (window + one block) the
		// encoder moved the whole 4 MiB window down after every 128 KiB block, 0.3 s of
		// memmove on a 230 MB tree; the output is the same either way.
		zstd.WithLowerEncoderMem(false),
		zstd.WithEncoderCRC(true))
}

// xzDictCap is xz's preset dictionary size for each level.
var xzDictCap = [...]int{0: 256 << 10, 1: 512 << 10, 2: 512 << 10, 3: 1 << 20, 4: 1 << 20, 5: 1 << 20, 6: 1 << 20, 7: 2 << 20, 8: 2 << 20, 9: 4 << 20}

func xzCompressor(w io.Writer, level int) (io.WriteCloser, error) {
	return newXZWriter(w, xzDictCap[level])
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func plainReader(r io.Reader) (io.Reader, func(), error) { return r, func() {}, nil }

// gzipReaders is a pool of gzip readers, reset for each member: a gzip reader holds large
// tables, and a repository publish reads thousands of packages.
var gzipReaders sync.Pool

func gzipReader(r io.Reader) (io.Reader, func(), error) {
	z, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if z == nil {
		z, err = gzip.NewReader(r)
	} else {
		err = z.Reset(r)
	}
	if err != nil {
		if z != nil {
			gzipReaders.Put(z)
		}
		return nil, nil, err
	}
	return z, func() { z.Close(); gzipReaders.Put(z) }, nil
}

func bzip2Reader(r io.Reader) (io.Reader, func(), error) { return bzip2.NewReader(r), func() {}, nil }

func zstdReader(r io.Reader) (io.Reader, func(), error) {
	z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow),
		zstd.WithDecoderMaxMemory(maxZstdWindow))
	if err != nil {
		return nil, nil, err
	}
	return z, z.Close, nil
}

func xzReader(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 4096)
	if err := checkXZDict(br); err != nil {
		return nil, nil, err
	}
	z, err := xz.ReaderConfig{SingleStream: false}.NewReader(br)
	if err != nil {
		return nil, nil, err
	}
	return z, func() {}, nil
}
