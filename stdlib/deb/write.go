package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blakesmith/ar"

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
func (pl *Plan) tarHeader(h *header) *tar.Header {
	r := h.r
	o := &pl.owners[r.owner]
	th := &tar.Header{
		Name:    "." + string(h.path),
		Mode:    tarMode(fs.FileMode(r.mode), h.typ),
		Uid:     o.ruid,
		Gid:     o.rgid,
		Uname:   o.uname,
		Gname:   o.gname,
		ModTime: pl.tarMTime(r),
		Format:  tar.FormatGNU,
	}
	switch h.typ {
	case TypeDir:
		th.Typeflag = tar.TypeDir
		if len(h.path) > 1 {
			th.Name += "/"
		}
	case TypeSymlink:
		th.Typeflag = tar.TypeSymlink
		th.Linkname = string(h.link[0])
	case TypeHardlink:
		th.Typeflag = tar.TypeLink
		th.Linkname = string(h.link[0]) + string(h.link[1])
	case TypeFile:
		th.Typeflag = tar.TypeReg
		th.Size = r.size
	}
	return th
}

// md5sums writes the md5sums control file: a line for every name of a regular file but the
// conffiles (as dh_md5sums: dpkg keeps their hashes in its database), in order.
func (pl *Plan) md5sums(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	pl.eachSum(func(r *rec, path []byte) {
		line = hex.AppendEncode(line[:0], r.md5[:])
		line = append(line, "  "...)
		line = append(line, path[1:]...)
		line = append(line, '\n')
		bw.Write(line)
	})
	return bw.Flush()
}

// md5sumsSize is the size of the md5sums file.
func (pl *Plan) md5sumsSize() int64 {
	var n int64
	pl.eachSum(func(_ *rec, path []byte) { n += 2*md5.Size + 2 + int64(len(path)) })
	return n
}

// eachSum calls fn for every line of md5sums: the path and the record of its file.
func (pl *Plan) eachSum(fn func(file *rec, path []byte)) {
	conf := 0 // pl.conffiles is sorted too: the next one that may come
	for _, i := range pl.order {
		r, typ, _ := pl.written(i)
		path := pl.pathBytes(i)
		if typ == TypeFile {
			for conf < len(pl.conffiles) && pl.conffiles[conf] < string(path) {
				conf++
			}
			if conf < len(pl.conffiles) && pl.conffiles[conf] == string(path) {
				continue
			}
		}
		if typ == TypeFile || typ == TypeHardlink {
			fn(r, path)
		}
	}
}

// member is a file of control.tar.
type member struct {
	name string
	mode int64
	data []byte
}

// controlTar writes the compressed control.tar to w: the control file, md5sums (written from
// the records as it goes), conffiles, scripts, triggers.
func (pl *Plan) controlTar(w io.Writer) error {
	ctl, err := pl.control.Bytes()
	if err != nil {
		return err
	}
	members := []member{{"control", 0o644, ctl}}
	if pl.md5sumsSize() > 0 {
		members = append(members, member{"md5sums", 0o644, nil})
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

	zw, err := pl.comp.newWriter(w, pl.level)
	if err != nil {
		return err
	}
	if err := pl.writeMembers(zw, members); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// writeMembers writes control.tar's members into zw.
func (pl *Plan) writeMembers(zw io.Writer, members []member) error {
	tw := tar.NewWriter(zw)
	hdr := func(name string, typ byte, mode, size int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, Uname: "root", Gname: "root",
			ModTime: pl.mtime, Format: tar.FormatGNU}
	}
	if err := tw.WriteHeader(hdr("./", tar.TypeDir, 0o755, 0)); err != nil {
		return err
	}
	for _, m := range members {
		size := int64(len(m.data))
		if m.name == "md5sums" {
			size = pl.md5sumsSize()
		}
		if err := tw.WriteHeader(hdr("./"+m.name, tar.TypeReg, m.mode, size)); err != nil {
			return err
		}
		var err error
		if m.name == "md5sums" {
			err = pl.md5sums(tw)
		} else {
			_, err = tw.Write(m.data)
		}
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// stage writes the compressed data.tar and then control.tar to the temporary file tmp and
// returns their sizes: control.tar follows data.tar, whose md5sums it holds.
func (pl *Plan) stage(ctx context.Context, tmp *os.File) (dataSize, ctlSize int64, err error) {
	bw := bufio.NewWriterSize(tmp, 256<<10)
	if err := pl.writeData(ctx, bw); err != nil {
		return 0, 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, 0, fmt.Errorf("stage data.tar: %w", err)
	}
	if dataSize, err = tmp.Seek(0, io.SeekCurrent); err != nil {
		return 0, 0, err
	}
	if pl.beforeControl != nil {
		if err := pl.beforeControl(); err != nil {
			return 0, 0, err
		}
	}
	if err := pl.controlTar(bw); err != nil {
		return 0, 0, fmt.Errorf("control.tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return 0, 0, fmt.Errorf("stage control.tar: %w", err)
	}
	end, err := tmp.Seek(0, io.SeekCurrent)
	return dataSize, end - dataSize, err
}

// copyRange copies n bytes of f from off to w (copy_file_range when w is a file).
func copyRange(w io.Writer, f *os.File, off, n int64) error {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	m, err := io.Copy(w, io.LimitReader(f, n))
	if err == nil && m != n {
		err = fmt.Errorf("copied %d bytes, want %d", m, n)
	}
	return err
}

func (pl *Plan) write(ctx context.Context, w io.Writer, tmpDir string) (*Result, error) {
	pl.writing.Lock()
	defer pl.writing.Unlock()
	tmp, err := os.CreateTemp(tmpDir, ".upds-data-*.tar")
	if err != nil {
		return nil, fmt.Errorf("stage data.tar: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	dataSize, ctlSize, err := pl.stage(ctx, tmp)
	if err != nil {
		return nil, err
	}

	// The ar headers and debian-binary go through a small buffer; the members are copied from
	// the staging file straight into w.
	cw := bufio.NewWriter(w)
	aw := ar.NewWriter(cw)
	if err := aw.WriteGlobalHeader(); err != nil {
		return nil, err
	}
	suffix := pl.comp.suffix
	size := int64(len(ar.GLOBAL_HEADER))
	for _, m := range []struct {
		name   string
		data   []byte
		off, n int64
	}{{"debian-binary", []byte("2.0\n"), 0, 4}, {"control.tar" + suffix, nil, dataSize, ctlSize}, {"data.tar" + suffix, nil, 0, dataSize}} {
		if err := aw.WriteHeader(&ar.Header{Name: m.name, ModTime: pl.mtime, Mode: 0o644, Size: m.n}); err != nil {
			return nil, err
		}
		if m.data != nil {
			cw.Write(m.data)
		} else if err := cw.Flush(); err != nil {
			return nil, err
		} else if err := copyRange(w, tmp, m.off, m.n); err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		if m.n%2 == 1 {
			cw.WriteByte('\n')
		}
		size += 60 + m.n + m.n%2
	}
	if err := cw.Flush(); err != nil {
		return nil, err
	}
	return &Result{
		Size:          size,
		InstalledSize: pl.installed,
		Control:       pl.control.Clone(),
		Files:         len(pl.order),
	}, nil
}
