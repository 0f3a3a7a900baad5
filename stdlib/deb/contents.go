package deb

// A Spec's contents as package entries: trees and files of the project, directories, links,
// and built trees on disk (a venv).

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
)

// sourced is an entry with what its cache key needs: where its content comes from.
type sourced struct {
	Entry
	fsys    afero.Fs
	name    string // path in fsys
	statKey string // absolute path for the stat cache ("" for in-memory content)
	fi      fs.FileInfo
	data    []byte // in-memory content
}

// builtContents is what the built targets and the snippets among the contents add to the
// package.
type builtContents struct {
	depends, preDepends []string
	snippets            map[string][]string // maintainer script snippets, by script
	archSpecific        bool
}

// expandContents turns the contents into entries, in order, the names of one file (in the
// project or a built tree) into hard links. Snippets run in the order of the contents in
// preinst and postinst, in the reverse order in prerm and postrm, as debhelper orders its
// autoscripts: what is set up last is torn down first.
func (s *Spec) expandContents(in Inputs) ([]sourced, *builtContents, error) {
	var entries []sourced
	built := &builtContents{snippets: map[string][]string{}}
	for i := range s.Contents {
		c := &s.Contents[i]
		if c.Kind == ContentSnippet {
			built.add(c.Snippet)
			continue
		}
		if c.Kind != ContentBuilt {
			es, err := s.expand(in, c)
			if err != nil {
				return nil, nil, s.errorf("%v", err)
			}
			entries = append(entries, es...)
			continue
		}
		cs, err := c.Built.Contents()
		if err != nil {
			return nil, nil, err
		}
		es, err := s.expandDir(cs.Dir, cs.Into)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, es...)
		built.depends = append(built.depends, cs.Depends...)
		for n, sc := range cs.Scripts {
			built.snippets[n] = append(built.snippets[n], string(sc))
		}
		built.archSpecific = built.archSpecific || cs.ArchSpecific
	}
	slices.Reverse(built.snippets["prerm"])
	slices.Reverse(built.snippets["postrm"])
	linkHardlinks(entries)
	return entries, built, nil
}

// linkHardlinks turns every later name of a file with several links (the same device and
// inode, in a tree() or a built tree) into a hard link to its first, when they have the same
// mode and owner in the package (else each keeps its own copy).
func linkHardlinks(entries []sourced) {
	type inode struct{ dev, ino uint64 }
	first := map[inode]int{}
	for i := range entries {
		e := &entries[i]
		st, ok := statOf(e.fi)
		if e.Type != TypeFile || !ok || st.Nlink < 2 {
			continue
		}
		k := inode{uint64(st.Dev), st.Ino}
		j, seen := first[k]
		if !seen {
			first[k] = i
			continue
		}
		f := &entries[j]
		if f.Mode != e.Mode || f.Owner != e.Owner || f.Group != e.Group || f.UID != e.UID || f.GID != e.GID {
			continue
		}
		e.Type, e.Target, e.Size, e.Open, e.fsys, e.name, e.statKey, e.fi = TypeHardlink, f.Path, 0, nil, nil, "", "", nil
	}
}

// statOf is the stat of a file on the real filesystem.
func statOf(fi fs.FileInfo) (*syscall.Stat_t, bool) {
	if fi == nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// owners returns the owner and group of c's entries (c nil: of a built tree's).
func (s *Spec) owners(c *Content) (owner, group string, uid, gid int) {
	o, g := s.Owner, s.Group
	if c != nil && c.Owner != nil {
		o = c.Owner
	}
	if c != nil && c.Group != nil {
		g = c.Group
	}
	users, groups := s.accounts()
	owner, uid = "root", 0
	if o != nil {
		owner, uid = o.Name, accountID(o, false, users)
	}
	group, gid = "root", 0
	switch {
	case g != nil:
		group, gid = g.Name, accountID(g, true, groups)
	case o != nil && o.ID < 0:
		// owner = "www-data" means www-data:www-data when such a group exists, and a
		// system user's group when the package creates it with its user.
		if id, ok := WellKnownGID(o.Name); ok {
			group, gid = o.Name, id
		} else if groups[o.Name] {
			group, gid = o.Name, placeholderID
		}
	}
	return
}

// isBytecode reports a __pycache__ directory or a .pyc file: they stay out of packages, as
// Python writes them on the server.
func isBytecode(rel string) bool {
	base := path.Base(rel)
	return base == "__pycache__" || strings.HasSuffix(base, ".pyc")
}

// expand turns a tree(), file(), directory() or link() into entries.
func (s *Spec) expand(in Inputs, c *Content) ([]sourced, error) {
	owner, group, uid, gid := s.owners(c)
	base := Entry{Owner: owner, Group: group, UID: uid, GID: gid}
	switch c.Kind {
	case ContentDirectory:
		e := base
		e.Path, e.Type, e.Mode = c.Dest, TypeDir, 0o755
		if c.Mode != nil {
			e.Mode = *c.Mode
		}
		return []sourced{{Entry: e}}, nil
	case ContentLink:
		e := Entry{Path: c.Dest, Type: TypeSymlink, Target: c.Target, Owner: "root", Group: "root"}
		return []sourced{{Entry: e}}, nil
	case ContentHardlink:
		e := Entry{Path: c.Dest, Type: TypeHardlink, Target: c.Target, Owner: "root", Group: "root"}
		return []sourced{{Entry: e}}, nil
	case ContentFile:
		fi, err := in.FS.Stat(c.Src)
		if err != nil {
			return nil, fmt.Errorf("file %q: %v", c.Src, notFound(err))
		}
		return []sourced{projectFile(in, base, c, c.Src, c.Dest, fi)}, nil
	}
	return expandTree(in, base, c)
}

// expandTree walks a tree() in the project.
func expandTree(in Inputs, base Entry, c *Content) ([]sourced, error) {
	var out []sourced
	rl, _ := in.FS.(afero.LinkReader)
	err := afero.Walk(in.FS, c.Src, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(filepath.ToSlash(p), c.Src), "/")
		if rel != "" && (isBytecode(rel) || matchAny(c.Exclude, rel)) {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dest := c.Dest
		if rel != "" {
			dest = c.Dest + "/" + rel
		}
		// afero.Walk reports entries with Lstat where the filesystem can: symlinks stay links.
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if rl == nil {
				return fmt.Errorf("tree %q: %s is a symlink and this filesystem cannot read links", c.Src, rel)
			}
			target, err := rl.ReadlinkIfPossible(p)
			if err != nil {
				return err
			}
			e := base
			e.Path, e.Type, e.Target = dest, TypeSymlink, target
			out = append(out, sourced{Entry: e})
		case fi.IsDir():
			e := base
			e.Path, e.Type, e.Mode = dest, TypeDir, 0o755
			out = append(out, sourced{Entry: e})
		case fi.Mode().IsRegular():
			out = append(out, projectFile(in, base, c, p, dest, fi))
		default:
			return fmt.Errorf("tree %q: %s is not a file, directory or symlink", c.Src, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func matchAny(patterns []string, rel string) bool {
	for _, p := range patterns {
		if interp.MatchPath(p, rel) {
			return true
		}
	}
	return false
}

// projectFile is a regular file of the project, from a file() or a tree().
func projectFile(in Inputs, base Entry, c *Content, src, dest string, fi fs.FileInfo) sourced {
	e := base
	e.Path, e.Type, e.Size, e.MTime = dest, TypeFile, fi.Size(), fi.ModTime()
	switch {
	case c.Mode != nil:
		e.Mode = *c.Mode
	case fi.Mode()&0o111 != 0:
		e.Mode = 0o755
	default:
		e.Mode = 0o644
	}
	fsys := in.FS
	e.Open = func() (io.ReadCloser, error) { return fsys.Open(src) }
	statKey := ""
	if in.Root != "" {
		statKey = filepath.Join(in.Root, filepath.FromSlash(src))
	}
	return sourced{Entry: e, fsys: fsys, name: src, statKey: statKey, fi: fi}
}

// expandDir packages a built directory on the real filesystem (a venv) at into.
func (s *Spec) expandDir(dir, into string) ([]sourced, error) {
	owner, group, uid, gid := s.owners(nil)
	base := Entry{Owner: owner, Group: group, UID: uid, GID: gid}
	osfs := afero.NewOsFs()
	var out []sourced
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		dest := into
		if rel != "." {
			dest = into + "/" + filepath.ToSlash(rel)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := base
		e.Path = dest
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Type, e.Target = TypeSymlink, target
			out = append(out, sourced{Entry: e})
		case d.IsDir():
			e.Type, e.Mode = TypeDir, 0o755
			out = append(out, sourced{Entry: e})
		case d.Type().IsRegular():
			e.Type, e.Size, e.MTime = TypeFile, fi.Size(), fi.ModTime()
			e.Mode = 0o644
			if fi.Mode()&0o111 != 0 {
				e.Mode = 0o755
			}
			name := p
			e.Open = func() (io.ReadCloser, error) { return os.Open(name) }
			out = append(out, sourced{Entry: e, fsys: osfs, name: p, statKey: p, fi: fi})
		default:
			return fmt.Errorf("%s: not a file, directory or symlink", p)
		}
		return nil
	})
	return out, err
}

// memFile is a regular file with in-memory content (the documentation upds writes).
func memFile(p string, data []byte) sourced {
	return sourced{Entry: Entry{Path: p, Type: TypeFile, Mode: 0o644, Size: int64(len(data)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}, data: data}
}
