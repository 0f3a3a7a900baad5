package deb

// Hard links: the names of one regular file. dpkg-deb (GNU tar) writes the first name in the
// archive as the file and every later one as a tar hard link to it; so does Write. The records
// stay as the entries gave them (the cache key is theirs); a side table says, for the names of
// a file that has hard links, which record holds the file and which name comes first.

import (
	"bytes"
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
