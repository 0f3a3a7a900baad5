package deb

// Building a deb() target: the package assembled from its Spec, its action key computed, then
// written, or taken from the cache.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/interp/cache"
	"github.com/upds/upds/interp/parallel"
)

var _ interp.CacheChecker = (*Target)(nil)

// Build writes the package (or takes it from the cache) into the output directory.
func (t *Target) Build(a *interp.Action) error {
	h := a.Host
	asm, key, err := t.prepare(a.Ctx, h, false)
	if err != nil {
		return err
	}
	if err := t.checkProject(asm.in, asm, a.Log); err != nil {
		return t.usageError(err)
	}
	dst := filepath.Join(h.OutDir(), Filename(asm.pkg.Control))
	a.Cached, err = h.Cache.Build("deb", key, dst, func(tmp string) error {
		_, err := asm.plan.WriteFile(a.Ctx, tmp) // data.tar is staged beside tmp, in the cache
		return err
	})
	if err != nil {
		return err
	}
	t.built = dst
	return nil
}

// Cached reports whether Build would take the package from the cache. It assembles the
// package and computes its key as Build does, hashing the files the stat list does not know,
// and writes nothing.
func (t *Target) Cached(a *interp.Action) (bool, error) {
	_, key, err := t.prepare(a.Ctx, a.Host, true)
	if err != nil {
		return false, err
	}
	_, ok := a.Host.Cache.Lookup("deb", key)
	return ok, nil
}

// prepare assembles the package, computes its key and puts it in the X-Upds-Source field. A
// dry run writes nothing (not even the stat list).
func (t *Target) prepare(ctx context.Context, h *interp.Host, dryRun bool) (*assembly, string, error) {
	mtime, err := clampTime(h)
	if err != nil {
		return nil, "", t.usageError(t.spec.errorf("%v", err))
	}
	in := Inputs{Project: h.Project, FS: h.FS, Root: h.Root, MTime: mtime}
	asm, err := t.spec.assemble(in)
	if err != nil {
		return nil, "", t.usageError(err)
	}
	asm.in, asm.dryRun = in, dryRun
	key, err := asm.key(ctx, h)
	if err != nil {
		return nil, "", err
	}
	asm.pkg.Control.Set("X-Upds-Source", key)
	if asm.plan.control, err = prepareControl(asm.pkg.Control, asm.plan.installed); err != nil {
		return nil, "", t.usageError(t.spec.errorf("%v", err))
	}
	return asm, key, nil
}

// usageError reports a mistake in the package description found while building at the deb()
// line, with exit code 2; nothing is written. Other errors (a built target's tree cannot be
// read) are returned as they are.
func (t *Target) usageError(err error) error {
	var se *specError
	if !errors.As(err, &se) {
		return err
	}
	return &interp.Error{Pos: t.pos, Msg: se.msg, Usage: true, Cause: err}
}

// key is the action key of the package: everything that goes into it, control, scripts,
// conffiles, options and each entry with its content hash (from the stat cache when the file
// is unchanged, which gives its md5 too).
func (a *assembly) key(ctx context.Context, h *interp.Host) (string, error) {
	pkg, pl := a.pkg, a.plan
	key := cache.NewKey("deb/1", h.ToolVersion)
	ctl, err := pkg.Control.Bytes()
	if err != nil {
		return "", err
	}
	key.String(string(ctl))
	for _, n := range []string{"preinst", "postinst", "prerm", "postrm"} {
		key.String(n).String(string(pkg.Scripts[n]))
	}
	key.String(string(pkg.Triggers)).Strings(pkg.Conffiles).String(pkg.Compression).Int(pkg.MTime.Unix())
	if c, ok := compressionNamed(pkg.Compression); ok && c.encoder != nil {
		key.String(c.encoder()) // libzstd's output changes with its version
	}
	n := 0
	for _, i := range pl.order {
		if pl.recs.at(i).flags&flagImplicit == 0 {
			n++
		}
	}
	key.Int(int64(n))
	list := h.Cache.StatList("deb-"+pkg.Control.Get("Package"), !a.dryRun)
	defer list.Close()
	err = pl.contentSums(ctx, list, func(r *rec, sum *[32]byte) {
		o := &pl.owners[r.owner]
		key.Bytes(pl.arena.bytes(r.path, r.pathLen)).Int(int64(r.typ)).Int(int64(r.mode)).String(o.name).
			String(o.group).Int(int64(o.uid)).Int(int64(o.gid))
		if r.typ == TypeSymlink {
			key.Bytes(pl.arena.bytes(r.aux, r.auxLen))
		} else {
			key.String("")
		}
		key.Int(r.size)
		if r.flags&flagMTime != 0 {
			key.Int(r.mtime)
		}
		if r.typ == TypeFile {
			key.Sum(*sum)
		}
	})
	if err == nil {
		err = list.Close()
	}
	if err != nil {
		return "", err
	}
	return key.Hex(), nil
}

// contentSums calls fn for every entry of pl (not the directories it added) in order, with
// the sha256 of a regular file's content. A file by Src is looked up in the stat list, which
// gives its md5 too (the writer then need not compute it); others are read. Files are stat'ed
// and hashed on every core, a window at a time, and the list is read and written in order.
func (pl *Plan) contentSums(ctx context.Context, list *cache.StatList, fn func(r *rec, sum *[32]byte)) error {
	w := &sumWindow{pl: pl}
	for start := 0; start < len(pl.order); start += len(w.sums) {
		w.idx = pl.order[start:min(start+len(w.sums), len(pl.order))]
		w.names = w.names[:0]
		for k, i := range w.idx {
			w.fps[k], w.hits[k] = 0, false
			if r := pl.recs.at(i); r.flags&flagSrc != 0 {
				w.nameAt[k] = len(w.names)
				w.names = append(pl.srcName(w.names, r), 0)
			}
		}
		if err := w.each(ctx, w.stat); err != nil {
			return err
		}
		for k, i := range w.idx {
			if r := pl.recs.at(i); w.fps[k] != 0 {
				w.sums[k], w.hits[k] = list.Lookup(pl.arena.bytes(r.path, r.pathLen), w.name(k), w.fps[k])
			}
		}
		if err := w.each(ctx, w.hash); err != nil {
			return err
		}
		for k, i := range w.idx {
			r := pl.recs.at(i)
			if w.fps[k] != 0 {
				list.Record(pl.arena.bytes(r.path, r.pathLen), w.name(k), w.fps[k], w.sums[k], w.hits[k])
				r.md5, r.stat = w.sums[k].MD5, w.fps[k]
				r.flags |= flagMD5
			}
			if r.flags&flagImplicit == 0 {
				fn(r, &w.sums[k].SHA256)
			}
		}
	}
	return nil
}

const sumBatch = 64 // files per call: most are small, and the stat list answers many

// sumWindow is a window of contentSums: the files of a few thousand entries.
type sumWindow struct {
	pl    *Plan
	idx   []uint32
	names []byte // the Src names, NUL-terminated, at nameAt
	// by position in idx:
	nameAt [64 * sumBatch]int
	fps    [64 * sumBatch]uint64 // a Src file's stat fingerprint; 0 for others
	sums   [64 * sumBatch]cache.Sums
	hits   [64 * sumBatch]bool
}

func (w *sumWindow) name(k int) []byte {
	b := w.names[w.nameAt[k]:]
	return b[:bytes.IndexByte(b, 0)]
}

// each calls do for the regular files of the window, on every core.
func (w *sumWindow) each(ctx context.Context, do func(k int, r *rec, h *cache.Hasher) error) error {
	return parallel.ForEach(ctx, (len(w.idx)+sumBatch-1)/sumBatch, 0, func(ctx context.Context, b int) error {
		var h *cache.Hasher
		for k := b * sumBatch; k < min((b+1)*sumBatch, len(w.idx)); k++ {
			r := w.pl.recs.at(w.idx[k])
			if r.typ != TypeFile || r.flags&flagImplicit != 0 {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if h == nil {
				h = cache.NewHasher()
			}
			if err := do(k, r, h); err != nil {
				return fmt.Errorf("hash %s: %w", w.pl.arena.bytes(r.path, r.pathLen), err)
			}
		}
		return nil
	})
}

// stat notes the stat fingerprint of a Src file.
func (w *sumWindow) stat(k int, r *rec, _ *cache.Hasher) error {
	if r.flags&flagSrc == 0 {
		return nil
	}
	name := w.name(k)
	var st syscall.Stat_t
	if err := syscall.Stat(string(name), &st); err != nil {
		return &fs.PathError{Op: "stat", Path: string(name), Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fmt.Errorf("%s: not a regular file", name)
	}
	w.fps[k] = cache.Fingerprint(&st)
	return nil
}

// hash hashes a file the stat list does not know: its sha256, and for a Src file its md5.
func (w *sumWindow) hash(k int, r *rec, h *cache.Hasher) (err error) {
	if w.hits[k] {
		return nil
	}
	var f io.ReadCloser
	switch {
	case r.flags&flagSrc != 0:
		f, err = openPath(w.name(k))
	case r.flags&flagEntry != 0:
		f, err = w.pl.pkg.Entries[r.content].Open()
	default:
		f, err = w.pl.opens[r.content]()
	}
	if err != nil {
		return err
	}
	defer f.Close()
	w.sums[k], err = h.Sums(f, r.flags&flagSrc != 0)
	return err
}

// clampTime is the mtime clamp: SOURCE_DATE_EPOCH when set, otherwise DefaultMTime.
func clampTime(h *interp.Host) (time.Time, error) {
	if v, ok := h.Getenv("SOURCE_DATE_EPOCH"); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return DefaultMTime(), nil
}
