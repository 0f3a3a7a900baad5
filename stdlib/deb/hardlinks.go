package deb

// Hard links: the names of one regular file. dpkg-deb (GNU tar) writes the first name in the
// archive as the file and every later one as a tar hard link to it; so does Write. The records
// stay as the entries gave them (the cache key is theirs); a side table says, for the names of
// a file that has hard links, which record holds the file and which name comes first.

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
)

// linkGroup places a name of a file with hard links: file is the record of the regular file,
// first the record of its first name in the archive.
type linkGroup struct{ file, first uint32 }

// resolveHardlinks checks every hard link of the sorted records and groups the names of each
// file: the first name in order is written as the file (with its content, mode, owner and
// mtime), the others as hard links to it, with the same mode, owner and mtime. A conffile
// cannot have hard links (dpkg replaces a conffile by renaming a new copy over it, which would
// split the group).
func (pl *Plan) resolveHardlinks() error {
	fileOf := map[uint32]uint32{} // hard link -> its regular file
	for _, i := range pl.order {
		r := pl.recs.at(i)
		if r.typ != TypeHardlink {
			continue
		}
		j := i
		for hops := 0; pl.recs.at(j).typ == TypeHardlink; hops++ {
			target := pl.arena.bytes(pl.recs.at(j).aux, pl.recs.at(j).auxLen)
			k, ok := pl.indexOf(target)
			if !ok {
				return fmt.Errorf("entry %s: hard link to %s, which is not in the package", pl.pathBytes(i), target)
			}
			if hops > len(pl.order) || k == i {
				return fmt.Errorf("entry %s: hard links that lead back to themselves", pl.pathBytes(i))
			}
			j = k
		}
		if f := pl.recs.at(j); f.typ != TypeFile {
			return fmt.Errorf("entry %s: hard link to %s, which is a %s: only regular files have hard links", pl.pathBytes(i), pl.pathBytes(j), f.typ)
		}
		fileOf[i] = j
	}
	if len(fileOf) == 0 {
		return nil
	}
	groups := map[uint32][]uint32{} // file -> all its names
	for l, f := range fileOf {
		groups[f] = append(groups[f], l)
	}
	conf := map[string]bool{}
	for _, c := range pl.pkg.Conffiles {
		conf[c] = true
	}
	pl.links = map[uint32]linkGroup{}
	for f, names := range groups {
		names = append(names, f)
		for _, n := range names {
			if p := pl.pathBytes(n); conf[string(p)] {
				return fmt.Errorf("conffile %s: has hard links (dpkg cannot keep a conffile's links)", p)
			}
		}
		first := slices.MinFunc(names, func(a, b uint32) int { return bytes.Compare(pl.pathBytes(a), pl.pathBytes(b)) })
		for _, n := range names {
			pl.links[n] = linkGroup{file: f, first: first}
		}
	}
	return nil
}

// indexOf is the record of path p.
func (pl *Plan) indexOf(p []byte) (uint32, bool) {
	k, ok := pl.position(p)
	if !ok {
		return 0, false
	}
	return pl.order[k], true
}

// written is what record i is written as: the record whose type, size, mode, owner, mtime
// and content it has (the file, for the names of a file with hard links), and for a hard link
// (every name of such a file but the first) the path it links to.
func (pl *Plan) written(i uint32) (r *rec, typ Type, linkTo []byte) {
	r = pl.recs.at(i)
	g, ok := pl.links[i]
	switch {
	case !ok:
		return r, r.typ, nil
	case g.first == i:
		return pl.recs.at(g.file), TypeFile, nil
	}
	return pl.recs.at(g.file), TypeHardlink, pl.pathBytes(g.first)
}

// inode is a regular file of the contents with more than one link: which file on disk, the
// content it comes from (its index in the Spec) and its record.
type inode struct {
	dev, ino uint64
	content  int
	rec      uint32
}

// linkInodes makes every later name of a file with several links (the same device and inode,
// in a tree() or a built tree) a hard link to its first, when they have the same mode and
// owner in the package (else each keeps its own copy). The first is the first in the order
// the contents are walked: by content, then depth first with the names of a directory in
// order (as afero.Walk and filepath.WalkDir go), whatever order the walk reported them in.
func (pl *Plan) linkInodes(inodes []inode) {
	slices.SortFunc(inodes, func(a, b inode) int {
		return cmp.Or(cmp.Compare(a.dev, b.dev), cmp.Compare(a.ino, b.ino), cmp.Compare(a.content, b.content),
			walkOrder(pl.pathBytes(a.rec), pl.pathBytes(b.rec)))
	})
	for i := 0; i < len(inodes); {
		j := i + 1
		for j < len(inodes) && inodes[j].dev == inodes[i].dev && inodes[j].ino == inodes[i].ino {
			j++
		}
		f := pl.recs.at(inodes[i].rec)
		for _, n := range inodes[i+1 : j] {
			e := pl.recs.at(n.rec)
			if e.mode != f.mode || e.owner != f.owner {
				continue
			}
			e.typ, e.aux, e.auxLen, e.size, e.content = TypeHardlink, f.path, f.pathLen, 0, 0
			e.flags &^= flagEntry | flagOpen | flagSrc | flagMD5
		}
		i = j
	}
}

// walkOrder compares two paths in the order of a depth-first walk that takes the names of a
// directory in order: as bytes, but with '/' before every other byte.
func walkOrder(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			x, y := int(a[i]), int(b[i])
			if x == '/' {
				x = -1
			}
			if y == '/' {
				y = -1
			}
			return x - y
		}
	}
	return len(a) - len(b)
}
