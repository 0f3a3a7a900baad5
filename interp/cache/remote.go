package cache

// The shared cache: action outputs in a storage.Store (an S3 prefix, or a directory that
// several machines mount), laid out as Bazel's remote cache is:
//
//	ac/KIND/KEY      the action record: which blob holds the output of action KIND/KEY
//	cas/HH/SHA256    a blob, named by the SHA-256 of its bytes: the output file, or a
//	                 directory output as a zstd-compressed tar
//
// A machine that misses locally fetches the record and the blob, checks the blob's size
// and hash against the record (and its name), unpacks it into .upds/tmp and stores it
// locally as if it had built it. Anything that does not check out — a record that does not
// parse or names another action, a blob of the wrong size or hash, a tar entry that
// would leave its directory — is a miss: the action runs, and its output replaces the bad
// one. A new local output is uploaded blob first, record last.

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/upds/upds/interp/storage"
)

// Remote is a shared action cache in a Store.
type Remote struct {
	store storage.Store
	// Logf reports what goes wrong with the shared cache (a corrupt object, a failed
	// upload); such problems never fail a build. Nil: not reported.
	Logf func(format string, args ...any)
	// Timeout bounds one fetch or upload (default 10 minutes).
	Timeout time.Duration

	hits, misses, corrupt, uploads atomic.Int64
}

// RemoteStats counts what a Remote did.
type RemoteStats struct {
	Hits, Misses, Corrupt, Uploads int64
}

// NewRemote returns the shared cache in store.
func NewRemote(store storage.Store) *Remote { return &Remote{store: store} }

// OpenRemote returns the shared cache at location: s3://BUCKET/PREFIX or a directory.
func OpenRemote(ctx context.Context, location string) (*Remote, error) {
	s, err := storage.Open(ctx, location)
	if err != nil {
		return nil, err
	}
	return NewRemote(s), nil
}

// String names the shared cache's store.
func (r *Remote) String() string { return r.store.String() }

// Stats returns the counts so far.
func (r *Remote) Stats() RemoteStats {
	return RemoteStats{r.hits.Load(), r.misses.Load(), r.corrupt.Load(), r.uploads.Load()}
}

func (r *Remote) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

func (r *Remote) ctx() (context.Context, context.CancelFunc) {
	d := r.Timeout
	if d <= 0 {
		d = 10 * time.Minute
	}
	return context.WithTimeout(context.Background(), d)
}

// SetRemote makes c consult r on a local miss and upload what it stores.
func (c *Cache) SetRemote(r *Remote) { c.remote = r }

// errCorrupt marks a blob whose bytes are not the hash it is named by, errBadRecord an
// action record that does not parse or names another action: shared objects that can
// never be right.
var (
	errCorrupt   = errors.New("corrupt")
	errBadRecord = errors.New("bad action record")
)

// sumOf is the blob an action record names, as far as it can be read.
func sumOf(rec []byte) string {
	for _, l := range strings.Split(string(rec), "\n") {
		if s, ok := strings.CutPrefix(l, "sha256 "); ok && len(s) == 64 && strings.Trim(s, "0123456789abcdef") == "" {
			return s
		}
	}
	return strings.Repeat("0", 64)
}

// record is an action record.
type record struct {
	kind, key string
	dir       bool // the blob is a directory's tar.zst
	size      int64
	sum       string // hex SHA-256 of the blob
}

const recordMagic = "upds-cache-record 1"

func (rec record) text() []byte {
	typ := "file"
	if rec.dir {
		typ = "tar.zst"
	}
	return fmt.Appendf(nil, "%s\nkind %s\nkey %s\ntype %s\nsize %d\nsha256 %s\n", recordMagic, rec.kind, rec.key, typ, rec.size, rec.sum)
}

// parseRecord reads an action record, which must be of kind and key.
func parseRecord(data []byte, kind, key string) (record, error) {
	lines := strings.Split(string(data), "\n")
	if len(lines) != 7 || lines[0] != recordMagic || lines[6] != "" {
		return record{}, errors.New("not an action record")
	}
	f := map[string]string{}
	for _, l := range lines[1:6] {
		k, v, ok := strings.Cut(l, " ")
		if !ok {
			return record{}, fmt.Errorf("bad line %q", l)
		}
		f[k] = v
	}
	rec := record{kind: f["kind"], key: f["key"], dir: f["type"] == "tar.zst", sum: f["sha256"]}
	var err error
	rec.size, err = strconv.ParseInt(f["size"], 10, 64)
	switch {
	case err != nil || rec.size < 0:
		return record{}, fmt.Errorf("bad size %q", f["size"])
	case rec.kind != kind || rec.key != key:
		return record{}, fmt.Errorf("the record is of %s %s", rec.kind, rec.key)
	case f["type"] != "file" && f["type"] != "tar.zst":
		return record{}, fmt.Errorf("bad type %q", f["type"])
	case len(rec.sum) != 64 || strings.Trim(rec.sum, "0123456789abcdef") != "":
		return record{}, fmt.Errorf("bad sha256 %q", rec.sum)
	}
	return rec, nil
}

func acName(kind, key string) string { return "ac/" + kind + "/" + key }
func casName(sum string) string      { return "cas/" + sum[:2] + "/" + sum }

// has reports whether the shared cache holds a record for kind and key.
func (r *Remote) has(kind, key string) bool {
	ctx, cancel := r.ctx()
	defer cancel()
	_, err := r.store.Stat(ctx, acName(kind, key))
	return err == nil
}

// fetchRemote looks kind/key up in the shared cache; on a verified hit the output is
// stored locally and its path returned.
func (c *Cache) fetchRemote(kind, key string) (string, bool) {
	r := c.remote
	ctx, cancel := r.ctx()
	defer cancel()
	data, _, err := storage.ReadFile(ctx, r.store, acName(kind, key))
	if err != nil {
		if !errors.Is(err, storage.ErrNotExist) {
			r.logf("shared cache %s: %s %s: %v", r.store, kind, key, err)
		}
		r.misses.Add(1)
		return "", false
	}
	tmp, err := c.fetchBlob(ctx, data, kind, key)
	if err != nil {
		r.corrupt.Add(1)
		r.misses.Add(1)
		r.logf("shared cache %s: %s %s is not used: %v", r.store, kind, key, err)
		// Deleted, so that the output built now replaces it.
		if errors.Is(err, errBadRecord) {
			r.store.Delete(ctx, acName(kind, key))
		} else if errors.Is(err, errCorrupt) {
			r.store.Delete(ctx, acName(kind, key), casName(sumOf(data)))
		}
		return "", false
	}
	obj, err := c.put(kind, key, tmp)
	os.RemoveAll(tmp)
	if err != nil {
		r.misses.Add(1)
		return "", false
	}
	r.hits.Add(1)
	return obj, true
}

// fetchBlob downloads and verifies the blob an action record names into a new name in
// Dir()/tmp: the file, or the unpacked directory.
func (c *Cache) fetchBlob(ctx context.Context, recData []byte, kind, key string) (string, error) {
	rec, err := parseRecord(recData, kind, key)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBadRecord, err)
	}
	tmpDir := filepath.Join(c.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return "", err
	}
	tmp := filepath.Join(tmpDir, fmt.Sprintf("remote-%s-%s-%016x", kind, key, rand.Uint64()))
	blob := tmp + ".blob"
	defer os.Remove(blob)
	if err := c.download(ctx, rec, blob); err != nil {
		return "", err
	}
	if !rec.dir {
		return tmp, os.Rename(blob, tmp)
	}
	if err := untar(blob, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("blob %s: %w", rec.sum, err)
	}
	return tmp, nil
}

// download writes the blob of rec to file, checking its size and SHA-256.
func (c *Cache) download(ctx context.Context, rec record, file string) error {
	in, _, err := c.remote.store.Open(ctx, casName(rec.sum))
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(in, rec.size+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("blob %s: %w", rec.sum, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != rec.size || got != rec.sum {
		return fmt.Errorf("blob %s: %w: %d bytes with sha256 %s (the record says %d bytes)", rec.sum, errCorrupt, n, got, rec.size)
	}
	return nil
}

// uploadRemote shares the stored object obj of kind/key: the blob (unless the store has
// it), then the action record. A failure is reported, not returned.
func (c *Cache) uploadRemote(kind, key, obj string) {
	r := c.remote
	ctx, cancel := r.ctx()
	defer cancel()
	if err := c.upload(ctx, kind, key, obj); err != nil {
		r.logf("shared cache %s: upload %s %s: %v", r.store, kind, key, err)
		return
	}
	r.uploads.Add(1)
}

func (c *Cache) upload(ctx context.Context, kind, key, obj string) error {
	fi, err := os.Lstat(obj)
	if err != nil {
		return err
	}
	rec := record{kind: kind, key: key, dir: fi.IsDir()}
	blob := obj
	if rec.dir {
		blob = filepath.Join(c.dir, "tmp", fmt.Sprintf("upload-%s-%016x.tar.zst", key, rand.Uint64()))
		defer os.Remove(blob)
		if err := writeTar(obj, blob); err != nil {
			return err
		}
	}
	rec.size, rec.sum, err = fileSHA256(blob)
	if err != nil {
		return err
	}
	if info, err := c.remote.store.Stat(ctx, casName(rec.sum)); err != nil || info.Size != rec.size {
		err := c.remote.store.Put(ctx, storage.Object{Name: casName(rec.sum), File: blob, CacheControl: storage.ImmutableCache})
		if err != nil {
			return err
		}
	}
	return c.remote.store.Put(ctx, storage.Object{Name: acName(kind, key), Data: rec.text()})
}

func fileSHA256(file string) (int64, string, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// writeTar writes the tree under dir (directories, regular files, symbolic links; with
// modes and modification times) as a zstd-compressed tar, in name order, to file.
func writeTar(dir, file string) error {
	out, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	bw := bufio.NewWriterSize(out, 1<<20)
	zw, err := zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		return addTarEntry(tw, dir, p, d)
	})
	for _, close := range []func() error{tw.Close, zw.Close, bw.Flush, out.Close} {
		if cerr := close(); err == nil {
			err = cerr
		}
	}
	return err
}

func addTarEntry(tw *tar.Writer, dir, p string, d fs.DirEntry) error {
	fi, err := d.Info()
	if err != nil {
		return err
	}
	rel, _ := filepath.Rel(dir, p)
	h := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
	switch {
	case fi.IsDir():
		h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
	case fi.Mode().IsRegular():
		h.Typeflag, h.Size = tar.TypeReg, fi.Size()
	case fi.Mode()&fs.ModeSymlink != 0:
		h.Typeflag = tar.TypeSymlink
		if h.Linkname, err = os.Readlink(p); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: cannot be shared (not a file, directory or symbolic link)", p)
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// untar unpacks a blob written by writeTar into the new directory dir, through an
// os.Root: no entry can be written outside dir, whatever its name or the symbolic links
// before it.
func untar(blob, dir string) error {
	in, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := zstd.NewReader(bufio.NewReaderSize(in, 1<<20))
	if err != nil {
		return err
	}
	defer zr.Close()
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(zr)
	var dirs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !fs.ValidPath(name) || name == "." {
			return fmt.Errorf("tar entry %q: not a relative path inside the directory", h.Name)
		}
		if err := untarEntry(root, tr, h, name); err != nil {
			return fmt.Errorf("tar entry %q: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeDir {
			h.Name = name
			dirs = append(dirs, h)
		}
	}
	// Directory modes and times last: a read-only directory is filled first, and
	// creating entries changes the time.
	for i := len(dirs) - 1; i >= 0; i-- {
		h := dirs[i]
		if err := root.Chmod(h.Name, fs.FileMode(h.Mode).Perm()); err != nil {
			return err
		}
		if err := root.Chtimes(h.Name, h.ModTime, h.ModTime); err != nil {
			return err
		}
	}
	return nil
}

func untarEntry(root *os.Root, tr *tar.Reader, h *tar.Header, name string) error {
	mode := fs.FileMode(h.Mode).Perm()
	switch h.Typeflag {
	case tar.TypeDir:
		return root.Mkdir(name, 0o700)
	case tar.TypeSymlink:
		return root.Symlink(h.Linkname, name)
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = root.Chmod(name, mode)
		}
		if err == nil {
			err = root.Chtimes(name, h.ModTime, h.ModTime)
		}
		return err
	}
	return fmt.Errorf("type %q is not shared", string(h.Typeflag))
}
