package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/blakesmith/ar"
	md5simd "github.com/minio/md5-simd"

	"github.com/upds/upds/interp/atomicfile"
)

// Write validates p and writes it as a .deb to w. The compressed data.tar is staged in a
// temporary file (see Package.TempDir) and streamed into w, so memory stays bounded whatever
// the package size. Nothing is written to w when validation fails.
func Write(w io.Writer, p *Package) (*Result, error) {
	return WriteContext(context.Background(), w, p)
}

// WriteContext is Write that stops, with an error that wraps ctx.Err(), when ctx is done.
func WriteContext(ctx context.Context, w io.Writer, p *Package) (*Result, error) {
	pl, err := prepareNamed(p)
	if err != nil {
		return nil, err
	}
	return pl.Write(ctx, w)
}

// WriteFile writes the package to path atomically: to a temporary name in the same directory,
// synced, then renamed; the file is mode 0644. On error nothing is left at path (an existing
// file there is untouched).
func WriteFile(path string, p *Package) (*Result, error) {
	return WriteFileContext(context.Background(), path, p)
}

// WriteFileContext is WriteFile that stops when ctx is done: it returns an error that wraps
// ctx.Err() and leaves nothing behind, neither at path nor temporary files.
func WriteFileContext(ctx context.Context, path string, p *Package) (*Result, error) {
	pl, err := prepareNamed(p)
	if err != nil {
		return nil, err
	}
	return pl.WriteFile(ctx, path)
}

// prepareNamed is Prepare with the package name in its error, as the writers report it.
func prepareNamed(p *Package) (*Plan, error) {
	if p == nil {
		return nil, errors.New("deb: nil package")
	}
	pl, err := Prepare(p)
	if err != nil {
		return nil, fmt.Errorf("deb %s: %w", p.Control.Get("Package"), err)
	}
	return pl, nil
}

// Write is WriteContext for the validated package.
func (pl *Plan) Write(ctx context.Context, w io.Writer) (*Result, error) {
	dir := pl.pkg.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	res, err := pl.write(ctx, w, dir)
	if err != nil {
		return nil, fmt.Errorf("deb %s: %w", pl.pkg.Control.Get("Package"), err)
	}
	return res, nil
}

// WriteFile is WriteFileContext for the validated package.
func (pl *Plan) WriteFile(ctx context.Context, path string) (*Result, error) {
	res, err := pl.writeFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("deb %s: %w", pl.pkg.Control.Get("Package"), err)
	}
	return res, nil
}

func (pl *Plan) writeFile(ctx context.Context, path string) (*Result, error) {
	f, err := atomicfile.Create(nil, path, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	// The *os.File itself, so that io.Copy of the staged data.tar into it is copy_file_range.
	var w io.Writer = f
	if osf, ok := f.File.(*os.File); ok {
		w = osf
	}
	tmpDir := pl.pkg.TempDir
	if tmpDir == "" {
		tmpDir = filepath.Dir(path)
	}
	res, err := pl.write(ctx, w, tmpDir)
	if err != nil {
		return nil, err
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	res.Path = path
	return res, nil
}

// tarHeader makes the GNU-format header dpkg-deb itself writes.
func tarHeader(it *item) *tar.Header {
	h := &tar.Header{
		Name:    "." + it.Path,
		Mode:    it.mode,
		Uid:     it.uid,
		Gid:     it.gid,
		Uname:   it.uname,
		Gname:   it.gname,
		ModTime: it.mtime,
		Format:  tar.FormatGNU,
	}
	switch it.Type {
	case TypeDir:
		h.Typeflag = tar.TypeDir
		if it.Path != "/" {
			h.Name += "/"
		}
	case TypeSymlink:
		h.Typeflag = tar.TypeSymlink
		h.Linkname = it.Target
	case TypeFile:
		h.Typeflag = tar.TypeReg
		h.Size = it.Size
	case TypeHardlink:
		h.Typeflag = tar.TypeLink
		h.Linkname = "." + it.Target
	}
	return h
}

// chunk is a piece of data.tar's content handed from the reading goroutine to the tar writer
// and to the file's hashing goroutine.
type chunk struct {
	item int     // index into Plan.items
	buf  *buffer // holds data; nil for entries without content
	data []byte
	last bool // the item's final chunk
	err  error
}

// buffer is a read buffer shared by the tar writer and a hasher; the last to let go of it
// returns it to the free list.
type buffer struct {
	b    []byte
	refs atomic.Int32
}

const (
	chunkSize = 64 << 10
	buffers   = 48 // in flight: 3 MiB, and enough small files for every md5 lane
	hashers   = 16 // files hashed at once: the lanes of md5simd's AVX-512 kernel
)

// md5Server hashes up to 16 streams at once with SIMD instructions (8 with AVX2; plain
// crypto/md5 without). One server is shared by every package built in the process.
var md5Server = sync.OnceValue(md5simd.NewServer)

// writeData writes data.tar through the compressor to w and returns the md5sums file.
// One goroutine opens and reads the files in order; the caller's goroutine writes the tar
// stream into the compressor (which has threads of its own) while 16 goroutines hash the
// files, each a different file, so the multi-buffer md5 kernel hashes them side by side.
// A free list of buffers bounds the memory in between.
func (pl *Plan) writeData(ctx context.Context, w io.Writer) ([]byte, error) {
	zw, err := pl.comp.newWriter(w, pl.level)
	if err != nil {
		return nil, err
	}
	free := make(chan *buffer, buffers)
	for i := 0; i < buffers; i++ {
		free <- &buffer{b: make([]byte, chunkSize)}
	}
	release := func(b *buffer) {
		if b.refs.Add(-1) == 0 {
			free <- b
		}
	}
	chunks := make(chan chunk, buffers)
	var lanes [hashers]chan chunk
	sums := make([][md5.Size]byte, len(pl.items))
	var wg sync.WaitGroup
	for j := range lanes {
		lanes[j] = make(chan chunk, 4)
		wg.Add(1)
		go func(in <-chan chunk) {
			defer wg.Done()
			h := md5Server().NewHash()
			defer h.Close()
			for c := range in {
				if c.data != nil {
					h.Write(c.data)
					release(c.buf)
				}
				if c.last {
					h.Sum(sums[c.item][:0])
					h.Reset()
				}
			}
		}(lanes[j])
	}
	done := make(chan struct{})
	go pl.readFiles(ctx, chunks, lanes[:], free, done)
	err = pl.writeTar(zw, chunks, release)
	close(done)
	for range chunks { // let the reader finish; it stops at done
	}
	wg.Wait()
	if err != nil {
		zw.Close()
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("data.tar: %w", err)
	}
	var md5sums bytes.Buffer
	for i := range pl.items {
		if it := &pl.items[i]; it.Type == TypeFile && !pl.isConffile(it.Path) {
			fmt.Fprintf(&md5sums, "%x  %s\n", sums[i], it.Path[1:])
		} else if it.Type == TypeHardlink { // its file comes first
			fmt.Fprintf(&md5sums, "%x  %s\n", sums[index(pl.items, it.Target)], it.Path[1:])
		}
	}
	return md5sums.Bytes(), nil
}

func (pl *Plan) writeTar(zw io.Writer, chunks <-chan chunk, release func(*buffer)) error {
	tw := tar.NewWriter(zw)
	cur := -1
	for c := range chunks {
		if c.err != nil {
			return fmt.Errorf("data.tar: %s: %w", pl.items[c.item].Path, c.err)
		}
		it := &pl.items[c.item]
		if c.item != cur {
			cur = c.item
			if err := tw.WriteHeader(tarHeader(it)); err != nil {
				return fmt.Errorf("data.tar: %s: %w", it.Path, err)
			}
		}
		if c.data != nil {
			_, err := tw.Write(c.data)
			release(c.buf)
			if err != nil {
				return fmt.Errorf("data.tar: %s: %w", it.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("data.tar: %w", err)
	}
	return nil
}

// readFiles sends every item's content in order to chunks, and each file's content to its
// lane (file i to lane i mod hashers); then it closes them all.
func (pl *Plan) readFiles(ctx context.Context, chunks chan<- chunk, lanes []chan chunk, free chan *buffer, done <-chan struct{}) {
	defer func() {
		close(chunks)
		for _, l := range lanes {
			close(l)
		}
	}()
	send := func(c chunk) bool {
		if pl.items[c.item].Type == TypeFile && c.err == nil {
			select {
			case lanes[c.item%len(lanes)] <- c:
			case <-done:
				return false
			}
		}
		select {
		case chunks <- c:
			return true
		case <-done:
			return false
		}
	}
	for i := range pl.items {
		it := &pl.items[i]
		if err := ctx.Err(); err != nil {
			send(chunk{item: i, err: err})
			return
		}
		if it.Type != TypeFile {
			if !send(chunk{item: i, last: true}) {
				return
			}
			continue
		}
		if err := pl.readFile(ctx, i, send, free, done); err != nil {
			send(chunk{item: i, err: err})
			return
		}
	}
}

var errCanceled = errors.New("canceled")

func (pl *Plan) readFile(ctx context.Context, i int, send func(chunk) bool, free chan *buffer, done <-chan struct{}) error {
	it := &pl.items[i]
	rc, err := it.Open()
	if err != nil {
		return err
	}
	err = pl.readContent(ctx, i, rc, send, free, done)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

func (pl *Plan) readContent(ctx context.Context, i int, rc io.Reader, send func(chunk) bool, free chan *buffer, done <-chan struct{}) error {
	it := &pl.items[i]
	if it.Size == 0 && !send(chunk{item: i, last: true}) {
		return errCanceled
	}
	for left := it.Size; left > 0; {
		var buf *buffer
		select {
		case buf = <-free:
		case <-done:
			return errCanceled
		case <-ctx.Done():
			return ctx.Err()
		}
		n, err := io.ReadFull(rc, buf.b[:min(int64(len(buf.b)), left)])
		if n == 0 {
			free <- buf
		} else {
			left -= int64(n)
			buf.refs.Store(2) // the tar writer and the hasher
			if !send(chunk{item: i, buf: buf, data: buf.b[:n], last: left == 0}) {
				return errCanceled
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("file has %d bytes, want %d: it changed while the package was written", it.Size-left, it.Size)
		}
		if err != nil {
			return err
		}
	}
	var probe [1]byte
	if m, _ := rc.Read(probe[:]); m > 0 {
		return fmt.Errorf("file is longer than %d bytes: it changed while the package was written", it.Size)
	}
	return nil
}

// controlTar builds the compressed control.tar in memory (it is small: the control file,
// md5sums, conffiles, scripts, triggers).
func (pl *Plan) controlTar(md5sums []byte) ([]byte, error) {
	ctl, err := pl.control.Bytes()
	if err != nil {
		return nil, err
	}
	type member struct {
		name string
		mode int64
		data []byte
	}
	members := []member{{"control", 0o644, ctl}}
	if len(md5sums) > 0 {
		members = append(members, member{"md5sums", 0o644, md5sums})
	}
	if len(pl.conffiles) > 0 {
		members = append(members, member{"conffiles", 0o644, []byte(strings.Join(pl.conffiles, "\n") + "\n")})
	}
	for name, body := range pl.pkg.Scripts {
		members = append(members, member{name, 0o755, body})
	}
	if len(bytes.TrimSpace(pl.pkg.Triggers)) > 0 {
		members = append(members, member{"triggers", 0o644, pl.pkg.Triggers})
	}
	for name, data := range map[string][]byte{"templates": pl.pkg.Templates, "shlibs": pl.pkg.Shlibs, "symbols": pl.pkg.Symbols} {
		if len(data) > 0 {
			members = append(members, member{name, 0o644, data})
		}
	}
	sort.Slice(members, func(i, j int) bool { return members[i].name < members[j].name })

	var out bytes.Buffer
	zw, err := pl.comp.newWriter(&out, pl.level)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	hdr := func(name string, typ byte, mode, size int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, Uname: "root", Gname: "root",
			ModTime: pl.mtime, Format: tar.FormatGNU}
	}
	if err := tw.WriteHeader(hdr("./", tar.TypeDir, 0o755, 0)); err != nil {
		return nil, err
	}
	for _, m := range members {
		if err := tw.WriteHeader(hdr("./"+m.name, tar.TypeReg, m.mode, int64(len(m.data)))); err != nil {
			return nil, err
		}
		if _, err := tw.Write(m.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (pl *Plan) write(ctx context.Context, w io.Writer, tmpDir string) (*Result, error) {
	tmp, err := os.CreateTemp(tmpDir, ".upds-data-*.tar")
	if err != nil {
		return nil, fmt.Errorf("stage data.tar: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	bw := bufio.NewWriterSize(tmp, 256<<10)
	md5sums, err := pl.writeData(ctx, bw)
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("stage data.tar: %w", err)
	}
	dataSize, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	ctl, err := pl.controlTar(md5sums)
	if err != nil {
		return nil, fmt.Errorf("control.tar: %w", err)
	}

	// debian-binary and control.tar go through a small buffer; data.tar, the last member, is
	// copied from the staging file straight into w (copy_file_range when w is a file).
	cw := bufio.NewWriter(w)
	aw := ar.NewWriter(cw)
	if err := aw.WriteGlobalHeader(); err != nil {
		return nil, err
	}
	suffix := pl.comp.suffix
	header := func(name string, size int64) error {
		return aw.WriteHeader(&ar.Header{Name: name, ModTime: pl.mtime, Mode: 0o644, Size: size})
	}
	for _, m := range []struct {
		name string
		data []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar" + suffix, ctl}} {
		if err := header(m.name, int64(len(m.data))); err != nil {
			return nil, err
		}
		if _, err := cw.Write(m.data); err != nil {
			return nil, err
		}
		if len(m.data)%2 == 1 {
			cw.WriteByte('\n')
		}
	}
	if err := header("data.tar"+suffix, dataSize); err != nil {
		return nil, err
	}
	if err := cw.Flush(); err != nil {
		return nil, err
	}
	if n, err := io.Copy(w, tmp); err != nil {
		return nil, fmt.Errorf("data.tar%s: %w", suffix, err)
	} else if n != dataSize {
		return nil, fmt.Errorf("data.tar%s: copied %d bytes, want %d", suffix, n, dataSize)
	}
	size := int64(len(ar.GLOBAL_HEADER)) + 3*60 + 4 + int64(len(ctl)+len(ctl)%2) + dataSize
	if dataSize%2 == 1 {
		if _, err := w.Write([]byte{'\n'}); err != nil {
			return nil, err
		}
		size++
	}
	return &Result{
		Size:          size,
		InstalledSize: pl.installed,
		Control:       pl.control.Clone(),
		Files:         len(pl.items),
	}, nil
}
