package deb

// Hard links: the names of one regular file. dpkg-deb (GNU tar) writes the first name in the
// archive as the file and every later one as a tar hard link to it; so does Write.

import (
	"fmt"
	"sort"
)

// index returns the position of the item at path p in items (sorted by path), or -1.
func index(items []item, p string) int {
	i := sort.Search(len(items), func(i int) bool { return items[i].Path >= p })
	if i < len(items) && items[i].Path == p {
		return i
	}
	return -1
}

// resolveHardlinks checks every hard link of items (sorted by path) and rewrites each group of
// names of one file the way tar writes it: the first name in order carries the content, the
// mode, the owner and the mtime of the file; the others are hard links to that name, with the
// same mode, owner and mtime. A conffile cannot have hard links (dpkg replaces a conffile
// by renaming a new copy over it, which would split the group).
func (pl *Plan) resolveHardlinks(items []item) error {
	fileOf := map[int]int{} // hard link -> its regular file
	for i := range items {
		if items[i].Type != TypeHardlink {
			continue
		}
		j := i
		for hops := 0; items[j].Type == TypeHardlink; hops++ {
			k := index(items, items[j].Target)
			if k < 0 {
				return fmt.Errorf("entry %s: hard link to %s, which is not in the package", items[i].Path, items[j].Target)
			}
			if hops > len(items) || k == i {
				return fmt.Errorf("entry %s: hard links that lead back to themselves", items[i].Path)
			}
			j = k
		}
		if items[j].Type != TypeFile {
			return fmt.Errorf("entry %s: hard link to %s, which is a %s: only regular files have hard links", items[i].Path, items[j].Path, items[j].Type)
		}
		fileOf[i] = j
	}
	if len(fileOf) == 0 {
		return nil
	}
	groups := map[int][]int{} // file -> all its names, sorted
	for l, f := range fileOf {
		groups[f] = append(groups[f], l)
	}
	conf := map[string]bool{}
	for _, c := range pl.pkg.Conffiles {
		conf[c] = true
	}
	for f, names := range groups {
		names = append(names, f)
		sort.Ints(names)
		for _, n := range names {
			if conf[items[n].Path] {
				return fmt.Errorf("conffile %s: has hard links (dpkg cannot keep a conffile's links)", items[n].Path)
			}
		}
		first := names[0]
		file := items[f]
		file.Path = items[first].Path
		for _, n := range names[1:] {
			link := file
			link.Path, link.Type, link.Target, link.Size, link.Open = items[n].Path, TypeHardlink, file.Path, 0, nil
			items[n] = link
		}
		items[first] = file
	}
	return nil
}
