package deb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"hash/crc64"
	"io"
	"runtime"

	"github.com/ulikunitz/xz/lzma"
)

// xzWriter writes a single xz stream (the only kind dpkg decodes: it stops at the end of the
// first stream) whose blocks are compressed independently and in parallel, as liblzma's
// multi-threaded encoder does. Each block holds two dictionaries of input, so the output
// depends only on the input and the dictionary size, never on the number of workers.
type xzWriter struct {
	w       io.Writer
	dictCap int
	block   []byte        // the block being filled
	pending chan *xzJob   // started jobs, in order
	slots   chan struct{} // bounds the jobs compressing at once
	records []xzRecord
	free    chan []byte // recycled input blocks
	err     error
	closed  bool
}

type xzJob struct {
	in   []byte
	out  bytes.Buffer
	crc  uint64
	err  error
	done chan struct{}
}

type xzRecord struct{ unpadded, uncompressed uint64 }

var crc64Table = crc64.MakeTable(crc64.ECMA)

// newXZWriter returns a parallel xz writer with at most 4 workers (GOMAXPROCS). Memory is
// about workers × (ulikunitz/xz's encoder, 9.5 × dictCap, plus 2.5 × dictCap of buffers).
func newXZWriter(w io.Writer, dictCap int) (*xzWriter, error) {
	workers := min(max(runtime.GOMAXPROCS(0), 1), 4)
	x := &xzWriter{
		w:       w,
		dictCap: dictCap,
		pending: make(chan *xzJob, workers),
		slots:   make(chan struct{}, workers),
		free:    make(chan []byte, 1),
	}
	// Stream header: magic, flags (check type CRC64), CRC32 of the flags.
	hdr := []byte{0xFD, '7', 'z', 'X', 'Z', 0x00, 0x00, 0x04, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(hdr[8:], crc32.ChecksumIEEE(hdr[6:8]))
	if _, err := w.Write(hdr); err != nil {
		return nil, err
	}
	return x, nil
}

func (x *xzWriter) blockSize() int { return 2 * x.dictCap }

func (x *xzWriter) Write(p []byte) (int, error) {
	if x.err != nil {
		return 0, x.err
	}
	if x.closed {
		return 0, errors.New("xz: write after close")
	}
	n := 0
	for len(p) > 0 {
		if x.block == nil {
			select {
			case b := <-x.free:
				x.block = b[:0]
			default:
				x.block = make([]byte, 0, x.blockSize())
			}
		}
		m := min(len(p), x.blockSize()-len(x.block))
		x.block = append(x.block, p[:m]...)
		p, n = p[m:], n+m
		if len(x.block) == x.blockSize() {
			if err := x.startBlock(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// startBlock hands the filled block to a worker, first writing out the oldest finished block
// when as many are pending as there are workers.
func (x *xzWriter) startBlock() error {
	job := &xzJob{in: x.block, done: make(chan struct{})}
	x.block = nil
	if len(x.pending) == cap(x.pending) {
		if err := x.writeOldest(); err != nil {
			return err
		}
	}
	x.slots <- struct{}{}
	go func() {
		defer func() { <-x.slots; close(job.done) }()
		job.crc = crc64.Checksum(job.in, crc64Table)
		job.out.Grow(len(job.in) / 4)
		cfg := lzma.Writer2Config{DictCap: x.dictCap}
		lw, err := cfg.NewWriter2(&job.out)
		if err == nil {
			_, err = lw.Write(job.in)
		}
		if err == nil {
			err = lw.Close()
		}
		job.err = err
	}()
	x.pending <- job
	return nil
}

func (x *xzWriter) writeOldest() error {
	job := <-x.pending
	<-job.done
	if job.err != nil {
		x.err = job.err
		return x.err
	}
	if err := x.writeBlock(job); err != nil {
		x.err = err
		return err
	}
	select {
	case x.free <- job.in:
	default:
	}
	job.in = nil
	// Each block's encoder (about 10 dictionaries of tables) is garbage now; collecting it
	// here keeps the heap near what is live instead of letting it double between cycles.
	runtime.GC()
	return nil
}

func putUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (x *xzWriter) writeBlock(job *xzJob) error {
	comp := uint64(job.out.Len())
	// Block header: size byte, flags (1 filter, both sizes present), sizes, the LZMA2 filter
	// with its dictionary size, padding, CRC32.
	h := []byte{0, 0x40 | 0x80}
	h = putUvarint(h, comp)
	h = putUvarint(h, uint64(len(job.in)))
	h = append(h, 0x21, 1, lzma.EncodeDictCap(int64(x.dictCap)))
	for (len(h)+4)%4 != 0 { // the header, CRC32 included, is a multiple of 4 bytes
		h = append(h, 0)
	}
	h[0] = byte((len(h)+4)/4 - 1)
	h = binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(h))
	if _, err := x.w.Write(h); err != nil {
		return err
	}
	if _, err := x.w.Write(job.out.Bytes()); err != nil {
		return err
	}
	var tail []byte
	for i := comp; i%4 != 0; i++ {
		tail = append(tail, 0)
	}
	tail = binary.LittleEndian.AppendUint64(tail, job.crc)
	if _, err := x.w.Write(tail); err != nil {
		return err
	}
	x.records = append(x.records, xzRecord{unpadded: uint64(len(h)) + comp + 8, uncompressed: uint64(len(job.in))})
	return nil
}

// Close compresses the last block, writes every pending one, the index and the footer.
func (x *xzWriter) Close() error {
	if x.closed {
		return x.err
	}
	x.closed = true
	if x.err == nil && len(x.block) > 0 {
		x.startBlock()
	}
	for len(x.pending) > 0 {
		if x.err != nil {
			job := <-x.pending
			<-job.done
			continue
		}
		x.writeOldest()
	}
	if x.err != nil {
		return x.err
	}
	idx := []byte{0}
	idx = putUvarint(idx, uint64(len(x.records)))
	for _, r := range x.records {
		idx = putUvarint(idx, r.unpadded)
		idx = putUvarint(idx, r.uncompressed)
	}
	idx = pad4(idx)
	idx = binary.LittleEndian.AppendUint32(idx, crc32.ChecksumIEEE(idx))
	foot := make([]byte, 4, 12)
	foot = binary.LittleEndian.AppendUint32(foot, uint32(len(idx)/4-1))
	foot = append(foot, 0x00, 0x04, 'Y', 'Z')
	binary.LittleEndian.PutUint32(foot[0:4], crc32.ChecksumIEEE(foot[4:10]))
	if _, err := x.w.Write(idx); err != nil {
		return err
	}
	_, err := x.w.Write(foot)
	return err
}
