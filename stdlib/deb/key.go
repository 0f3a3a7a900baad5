package deb

// The action key of a deb() package: control, scripts, conffiles, options and every entry with
// the sha256 of its content. Either computed before writing, from the stat list (contentSums),
// or while writing, from the files as they are read (keyer).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"syscall"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/interp/cache"
	"github.com/upds/upds/interp/parallel"
)

// statListName is the name of a package's stat list in the cache.
func statListName(pkg *Package) string { return "deb-" + pkg.Control.Get("Package") }

// key is the action key of the package, its files hashed through its stat list (not written
// back by a dry run).
func (a *assembly) key(ctx context.Context, h *interp.Host) (string, error) {
	list := h.Cache.StatList(statListName(a.pkg), !a.dryRun)
	defer list.Abort()
	key, err := a.keyWith(ctx, h, list)
	if err == nil {
		err = list.Close()
	}
	return key, err
}

// keyWith is key with the stat list open: an unchanged file's sums come from it (its md5 goes
// into the record, for the writer), the others are read.
func (a *assembly) keyWith(ctx context.Context, h *interp.Host, list *cache.StatList) (string, error) {
	key, err := a.keyHeader(h)
	if err != nil {
		return "", err
	}
	err = a.plan.contentSums(ctx, list, func(r *rec, sum *[32]byte) { a.keyEntry(key, r, sum) })
	if err != nil {
		return "", err
	}
	return key.Hex(), nil
}

// keyHeader starts the key: everything but the entries' own parts.
func (a *assembly) keyHeader(h *interp.Host) (*cache.Key, error) {
	pkg, pl := a.pkg, a.plan
	key := cache.NewKey("deb/1", h.ToolVersion)
	ctl, err := pkg.Control.Bytes()
	if err != nil {
		return nil, err
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
	return key.Int(int64(n)), nil
}

// keyEntry adds an entry to the key: its fields as the Entry gave them, and a regular file's
// sha256.
func (a *assembly) keyEntry(key *cache.Key, r *rec, sum *[32]byte) {
	pl := a.plan
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
}

// keyer computes the key while the package is written: the writer's hashers hand it each
// file's sums as they finish it, and it feeds the entries to the key, and the files to the
// stat list, in order, holding only the files finished ahead of their turn.
type keyer struct {
	a     *assembly
	key   *cache.Key
	list  *cache.StatList
	mu    sync.Mutex
	next  int                   // the position in the plan's order to feed next
	ready map[uint32]cache.Sums // files finished, not fed yet
	name  []byte
}

func (a *assembly) newKeyer(h *interp.Host, list *cache.StatList) (*keyer, error) {
	key, err := a.keyHeader(h)
	if err != nil {
		return nil, err
	}
	return &keyer{a: a, key: key, list: list, ready: map[uint32]cache.Sums{}}, nil
}

// file takes the sums of the regular file of record i.
func (k *keyer) file(i uint32, sums cache.Sums) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ready[i] = sums
	k.feed()
}

// feed feeds the entries whose turn it is, up to a file not finished yet.
func (k *keyer) feed() {
	pl := k.a.plan
	for ; k.next < len(pl.order); k.next++ {
		i := pl.order[k.next]
		r := pl.recs.at(i)
		if r.flags&flagImplicit != 0 {
			continue
		}
		var sums cache.Sums
		if r.typ == TypeFile {
			s, ok := k.ready[i]
			if !ok {
				return
			}
			delete(k.ready, i)
			sums = s
			if r.flags&flagSrc != 0 {
				k.name = pl.srcName(k.name[:0], r)
				k.list.Record(pl.arena.bytes(r.path, r.pathLen), k.name, r.stat, sums, false)
			}
		}
		k.a.keyEntry(k.key, r, &sums.SHA256)
	}
}

// finish returns the key, once every file has been hashed.
func (k *keyer) finish() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.feed()
	if k.next < len(k.a.plan.order) {
		return "", fmt.Errorf("deb: key: %s was not hashed", k.a.plan.pathBytes(k.a.plan.order[k.next]))
	}
	return k.key.Hex(), nil
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
