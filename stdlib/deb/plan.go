package deb

// Prepare's work on the entries: each checked and kept as a record (records.go) as it comes,
// its missing parents added; then all of them sorted, duplicates and non-directory parents
// found, Installed-Size counted.

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// ownerKey is an owner and group as an entry gives them.
type ownerKey struct {
	name, group string
	uid, gid    int
}

// collector gathers a Plan's records; its map is dropped once the entries are sorted.
type collector struct {
	owners map[ownerKey]uint16
}

// add checks e and keeps it as a record. idx is its index in Package.Entries, or -1 for an
// entry of Package.Walk.
func (pl *Plan) add(e *Entry, idx int) error {
	if err := CheckPath(e.Path); err != nil {
		return fmt.Errorf("entry: %w", err)
	}
	r := rec{typ: e.Type, mode: uint32(e.Mode)}
	var err error
	switch e.Type {
	case TypeFile:
		if err := pl.addContent(&r, e, idx); err != nil {
			return err
		}
	case TypeDir:
	case TypeSymlink:
		if e.Target == "" {
			return fmt.Errorf("entry %s: symlink without target", e.Path)
		}
		if strings.ContainsAny(e.Target, "\n\x00") {
			return fmt.Errorf("entry %s: symlink target contains a newline or NUL", e.Path)
		}
		if r.aux, err = pl.arena.add(e.Target); err != nil {
			return fmt.Errorf("entry %s: target %w", e.Path, err)
		}
		r.auxLen = uint16(len(e.Target))
	case TypeHardlink:
		if err := CheckPath(e.Target); err != nil {
			return fmt.Errorf("entry %s: hard link: %w", e.Path, err)
		}
		if r.aux, err = pl.arena.add(e.Target); err != nil {
			return fmt.Errorf("entry %s: target %w", e.Path, err)
		}
		r.auxLen = uint16(len(e.Target))
	default:
		return fmt.Errorf("entry %s: unsupported type %s (want file, dir, symlink or hardlink)", e.Path, e.Type)
	}
	if r.owner, err = pl.ownerOf(ownerKey{e.Owner, e.Group, e.UID, e.GID}); err != nil {
		return fmt.Errorf("entry %s: %w", e.Path, err)
	}
	if !e.MTime.IsZero() && e.MTime.Before(pl.mtime) {
		r.flags |= flagMTime
		r.mtime = e.MTime.Unix()
	}
	if r.path, err = pl.arena.add(e.Path); err != nil {
		return fmt.Errorf("entry: path %w", err)
	}
	r.pathLen = uint16(len(e.Path))
	pl.recs.add(r)
	return nil
}

// addContent notes where a regular file's content comes from.
func (pl *Plan) addContent(r *rec, e *Entry, idx int) error {
	if e.Size < 0 {
		return fmt.Errorf("entry %s: negative size", e.Path)
	}
	r.size = e.Size
	switch {
	case e.Open != nil && idx >= 0:
		r.flags, r.content = r.flags|flagEntry, uint32(idx)
	case e.Open != nil:
		r.flags, r.content = r.flags|flagOpen, uint32(len(pl.opens))
		pl.opens = append(pl.opens, e.Open)
	case e.Src != "":
		if strings.IndexByte(e.Src, 0) >= 0 {
			return fmt.Errorf("entry %s: Src contains NUL", e.Path)
		}
		r.flags |= flagSrc
		r.content, r.auxLen = pl.srcs.add(e.Src, e.Path)
	default:
		return fmt.Errorf("entry %s: regular file without content (Open is nil and Src empty)", e.Path)
	}
	return nil
}

// ownerOf returns the index of the owner and group k, resolved to the names and ids written.
func (pl *Plan) ownerOf(k ownerKey) (uint16, error) {
	if i, ok := pl.col.owners[k]; ok {
		return i, nil
	}
	o := owner{name: k.name, group: k.group, uid: k.uid, gid: k.gid}
	var err error
	if o.uname, o.ruid, err = resolveID("user", k.name, k.uid, wellKnownUsers); err != nil {
		return 0, err
	}
	if o.gname, o.rgid, err = resolveID("group", k.group, k.gid, wellKnownGroups); err != nil {
		return 0, err
	}
	if len(pl.owners) > 1<<16-1 {
		return 0, fmt.Errorf("more than %d combinations of owner and group", 1<<16-1)
	}
	if pl.col.owners == nil {
		pl.col.owners = map[ownerKey]uint16{}
	}
	i := uint16(len(pl.owners))
	pl.owners = append(pl.owners, o)
	pl.col.owners[k] = i
	return i, nil
}

// sortEntries sorts the records by path, adds the missing parent directories (root:root
// 0755) and the root, reports duplicates and parents that are not directories, and computes
// Installed-Size.
func (pl *Plan) sortEntries() error {
	root, _ := pl.arena.add("/")
	pl.recs.add(rec{typ: TypeDir, flags: flagImplicit, path: root, pathLen: 1})
	pl.order = make([]uint32, pl.recs.n)
	for i := range pl.order {
		pl.order[i] = uint32(i)
	}
	pl.sortOrder()
	for k := 1; k < len(pl.order); k++ {
		if bytes.Equal(pl.pathBytes(pl.order[k-1]), pl.pathBytes(pl.order[k])) {
			return &dupError{string(pl.pathBytes(pl.order[k]))}
		}
	}
	for {
		missing, err := pl.checkParents()
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			break
		}
		for _, dir := range missing {
			ref, err := pl.arena.add(dir)
			if err != nil {
				return err
			}
			pl.order = append(pl.order, pl.recs.add(rec{typ: TypeDir, flags: flagImplicit, path: ref, pathLen: uint16(len(dir))}))
		}
		pl.sortOrder()
	}
	pl.order = slices.Clip(pl.order)
	pl.col = collector{}
	if err := pl.resolveHardlinks(); err != nil {
		return err
	}
	// Installed-Size, dpkg-gencontrol's rule: regular files (and symlinks, whose size is the
	// length of the target) count their size rounded up to KiB; everything else 1 KiB.
	var kib int64
	for _, i := range pl.order {
		switch r := pl.recs.at(i); r.typ {
		case TypeFile:
			kib += (r.size + 1023) / 1024
			pl.files++
		case TypeSymlink:
			kib += (int64(r.auxLen) + 1023) / 1024
		case TypeHardlink: // counted once, with its file
		default:
			kib++
		}
	}
	pl.installed = kib
	return nil
}

func (pl *Plan) sortOrder() {
	slices.SortFunc(pl.order, func(a, b uint32) int { return bytes.Compare(pl.pathBytes(a), pl.pathBytes(b)) })
}

// checkParents checks that the parent of every record is a directory, and returns the
// parents that are missing, each once. The entries of a directory mostly follow each other,
// so its record is looked up once for them.
func (pl *Plan) checkParents() ([]string, error) {
	var missing []string
	var last []byte // a parent found to be a directory
	for _, i := range pl.order {
		p := pl.pathBytes(i)
		dir := p[:max(bytes.LastIndexByte(p, '/'), 1)]
		if len(p) == 1 || bytes.Equal(dir, last) {
			continue
		}
		r, ok := pl.findBytes(dir)
		switch {
		case !ok:
			missing = append(missing, string(dir))
		case r.typ != TypeDir:
			return nil, fmt.Errorf("entry %s: parent %s is a %s, not a directory", p, dir, r.typ)
		default:
			last = dir
		}
	}
	slices.Sort(missing)
	return slices.Compact(missing), nil
}

// pathBytes is the path of record i.
func (pl *Plan) pathBytes(i uint32) []byte {
	r := pl.recs.at(i)
	return pl.arena.bytes(r.path, r.pathLen)
}

// find returns the record of path p, if the package has one.
func (pl *Plan) find(p string) (*rec, bool) { return pl.findBytes([]byte(p)) }

// findBytes is find of a path given as bytes.
func (pl *Plan) findBytes(p []byte) (*rec, bool) {
	k, ok := pl.position(p)
	if !ok {
		return nil, false
	}
	return pl.recs.at(pl.order[k]), true
}

// position is the place of path p in the sorted order.
func (pl *Plan) position(p []byte) (int, bool) {
	k := sort.Search(len(pl.order), func(k int) bool { return bytes.Compare(pl.pathBytes(pl.order[k]), p) >= 0 })
	return k, k < len(pl.order) && bytes.Equal(pl.pathBytes(pl.order[k]), p)
}

// tarMTime is the modification time written for r.
func (pl *Plan) tarMTime(r *rec) time.Time {
	if r.flags&flagMTime != 0 {
		return time.Unix(max(r.mtime, 0), 0)
	}
	return pl.mtime
}

// dupError is two entries of a package at one path.
type dupError struct{ path string }

func (e *dupError) Error() string { return fmt.Sprintf("entry %s: duplicate path", e.path) }
