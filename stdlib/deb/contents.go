package deb

// A Spec's contents as package entries: trees and files of the project, directories, links,
// and built trees on disk (a venv).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
)

// builtContents is what the built targets and the snippets among the contents add to the
// package.
type builtContents struct {
	depends, preDepends []string
	snippets            map[string][]string // maintainer script snippets, by script
	archSpecific        bool
}

// fileID is a regular file on disk as a walk found it: the names of a file with several
// links in the contents become hard links to its first (linkInodes).
type fileID struct{ dev, ino, nlink uint64 }

// adder takes an entry of the contents.
type adder func(e Entry, id fileID) error

// expandContents puts the contents' entries into pl, notes what seen needs of them, and
// returns what the built ones and the snippets add to the package. Snippets run in the order
// of the contents in preinst and postinst, in the reverse order in prerm and postrm, as
// debhelper orders its autoscripts: what is set up last is torn down first. Mistakes in the
// Spec are specErrors, entries pl refuses entryErrors; failures to read a built tree are
// returned as they are.
func (s *Spec) expandContents(in Inputs, pl *Plan, seen *contentFacts) (*builtContents, error) {
	built := &builtContents{snippets: map[string][]string{}}
	var inodes []inode
	content := 0
	add := func(e Entry, id fileID) error {
		if err := pl.add(&e, -1); err != nil {
			return &entryError{err}
		}
		rec := uint32(pl.recs.n - 1)
		seen.note(&e, rec)
		if e.Type == TypeFile && id.nlink > 1 {
			inodes = append(inodes, inode{id.dev, id.ino, content, rec})
		}
		return nil
	}
	for i := range s.Contents {
		c := &s.Contents[i]
		content = i
		switch c.Kind {
		case ContentSnippet:
			built.add(c.Snippet)
			continue
		case ContentBuilt:
		default:
			if err := s.expand(in, c, add); err != nil {
				return nil, err
			}
			continue
		}
		cs, err := c.Built.Contents()
		if err != nil {
			return nil, err
		}
		if err := s.expandDir(cs.Dir, cs.Into, add); err != nil {
			return nil, err
		}
		built.depends = append(built.depends, cs.Depends...)
		for n, sc := range cs.Scripts {
			built.snippets[n] = append(built.snippets[n], string(sc))
		}
		built.archSpecific = built.archSpecific || cs.ArchSpecific
	}
	slices.Reverse(built.snippets["prerm"])
	slices.Reverse(built.snippets["postrm"])
	pl.linkInodes(inodes)
	seen.dropLinked(pl)
	return built, nil
}

// entryError is a package entry that cannot be added (Plan.add's error): a mistake in the
// Spec, but not one expand reports in its own words.
type entryError struct{ err error }

func (e *entryError) Error() string { return e.err.Error() }
func (e *entryError) Unwrap() error { return e.err }

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

// expand gives the entries of a tree(), file(), directory() or link() to add; its own errors
// are specErrors.
func (s *Spec) expand(in Inputs, c *Content, add adder) error {
	err := s.expandContent(in, c, add)
	if ee := (*entryError)(nil); err == nil || errors.As(err, &ee) {
		return err
	}
	return s.errorf("%v", err)
}

func (s *Spec) expandContent(in Inputs, c *Content, add adder) error {
	owner, group, uid, gid := s.owners(c)
	base := Entry{Owner: owner, Group: group, UID: uid, GID: gid}
	switch c.Kind {
	case ContentDirectory:
		e := base
		e.Path, e.Type, e.Mode = c.Dest, TypeDir, 0o755
		if c.Mode != nil {
			e.Mode = *c.Mode
		}
		return add(e, fileID{})
	case ContentLink:
		return add(Entry{Path: c.Dest, Type: TypeSymlink, Target: c.Target, Owner: "root", Group: "root"}, fileID{})
	case ContentHardlink:
		return add(Entry{Path: c.Dest, Type: TypeHardlink, Target: c.Target, Owner: "root", Group: "root"}, fileID{})
	case ContentFile:
		fi, err := in.FS.Stat(c.Src)
		if err != nil {
			return fmt.Errorf("file %q: %v", c.Src, notFound(err))
		}
		return add(projectFile(in, base, c, c.Src, c.Dest, fi.Size(), fi.Mode(), fi.ModTime()), idOf(fi))
	}
	if in.Root != "" {
		return expandTreeOS(in, base, c, add)
	}
	return expandTree(in, base, c, add)
}

// treeEntry is the entry of what a tree() holds at rel ("" for the tree itself), whose name
// in the project is src; ok is false when the tree leaves it out.
func treeEntry(in Inputs, base Entry, c *Content, rel, src string, d *dirent) (e Entry, ok bool, err error) {
	e = base
	e.Path = c.Dest
	if rel != "" {
		if isBytecode(rel) || matchAny(c.Exclude, rel) {
			return e, false, nil
		}
		e.Path += "/" + rel
	}
	switch d.typ {
	case TypeSymlink:
		e.Type, e.Target = TypeSymlink, d.target
	case TypeDir:
		e.Type, e.Mode = TypeDir, 0o755
	case TypeFile:
		e = projectFile(in, base, c, src, e.Path, d.size, d.mode, d.mtime)
		if d.src != "" {
			e.Src = d.src // src on disk, as walkTree found it
		}
	default:
		return e, false, fmt.Errorf("tree %q: %s is not a file, directory or symlink", c.Src, rel)
	}
	return e, true, nil
}

// expandTreeOS walks a tree() of a project on the operating system's file system.
func expandTreeOS(in Inputs, base Entry, c *Content, add adder) error {
	root := filepath.Join(in.Root, filepath.FromSlash(c.Src))
	fi, err := os.Lstat(root)
	if err != nil {
		return err
	}
	d := &dirent{typ: TypeDir}
	if fi.Mode()&fs.ModeSymlink != 0 { // as afero.Walk reports it: the link, not what it points to
		if d.target, err = os.Readlink(root); err != nil {
			return err
		}
		d.typ = TypeSymlink
	}
	e, _, err := treeEntry(in, base, c, "", c.Src, d)
	if err == nil {
		err = add(e, fileID{})
	}
	if err != nil || d.typ != TypeDir {
		return err
	}
	return walkTree(root, func(d *dirent) error {
		e, ok, err := treeEntry(in, base, c, d.rel, "", d)
		switch {
		case err != nil:
			return err
		case !ok && d.typ == TypeDir:
			return fs.SkipDir
		case !ok:
			return nil
		}
		return add(e, d.id)
	})
}

// expandTree walks a tree() in the project's afero file system (in memory, in tests).
func expandTree(in Inputs, base Entry, c *Content, add adder) error {
	rl, _ := in.FS.(afero.LinkReader)
	return afero.Walk(in.FS, c.Src, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(filepath.ToSlash(p), c.Src), "/")
		// afero.Walk reports entries with Lstat where the filesystem can: symlinks stay links.
		d := &dirent{rel: rel, size: fi.Size(), mode: fi.Mode(), mtime: fi.ModTime()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if rl == nil {
				return fmt.Errorf("tree %q: %s is a symlink and this filesystem cannot read links", c.Src, rel)
			}
			if d.target, err = rl.ReadlinkIfPossible(p); err != nil {
				return err
			}
			d.typ = TypeSymlink
		case fi.IsDir():
			d.typ = TypeDir
		case fi.Mode().IsRegular():
			d.typ = TypeFile
		}
		e, ok, err := treeEntry(in, base, c, rel, p, d)
		switch {
		case err != nil:
			return err
		case !ok && fi.IsDir():
			return filepath.SkipDir
		case !ok:
			return nil
		}
		return add(e, idOf(fi))
	})
}

func matchAny(patterns []string, rel string) bool {
	for _, p := range patterns {
		if interp.MatchPath(p, rel) {
			return true
		}
	}
	return false
}

// projectFile is a regular file of the project, from a file() or a tree(), at src in the
// project: read by name (Src) when the project is on the operating system's file system (a
// caller that has the name already gives src ""and sets Src), else through the project's
// file system.
func projectFile(in Inputs, base Entry, c *Content, src, dest string, size int64, mode fs.FileMode, mtime time.Time) Entry {
	e := base
	e.Path, e.Type, e.Size, e.MTime = dest, TypeFile, size, mtime
	switch {
	case c.Mode != nil:
		e.Mode = *c.Mode
	case mode&0o111 != 0:
		e.Mode = 0o755
	default:
		e.Mode = 0o644
	}
	if in.Root != "" {
		if src != "" {
			e.Src = filepath.Join(in.Root, filepath.FromSlash(src))
		}
		return e
	}
	fsys := in.FS
	e.Open = func() (io.ReadCloser, error) { return fsys.Open(src) }
	return e
}

// expandDir gives the entries of a built directory on the real filesystem (a venv), placed at
// into, to add.
func (s *Spec) expandDir(dir, into string, add adder) error {
	owner, group, uid, gid := s.owners(nil)
	base := Entry{Owner: owner, Group: group, UID: uid, GID: gid}
	e := base
	e.Path, e.Type, e.Mode = into, TypeDir, 0o755
	if err := add(e, fileID{}); err != nil {
		return err
	}
	return walkTree(dir, func(d *dirent) error {
		e, err := d.entry(into + "/" + d.rel)
		if err != nil {
			return err
		}
		e.Owner, e.Group, e.UID, e.GID = base.Owner, base.Group, base.UID, base.GID
		return add(e, d.id)
	})
}

// memFile is a regular file with in-memory content (the documentation upds writes).
func memFile(p string, data []byte) Entry {
	return Entry{Path: p, Type: TypeFile, Mode: 0o644, Size: int64(len(data)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// idOf is the fileID of what a walk of the project found.
func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(st.Dev), st.Ino, uint64(st.Nlink)}
	}
	return fileID{}
}
