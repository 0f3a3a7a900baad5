package deb

// Walking a tree on the operating system's file system: several goroutines read directories at
// once, each file is looked up in its open directory (fstatat) rather than by its whole path,
// and directories are not stat'ed at all.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// dirent is what walkTree reports of a file system object.
type dirent struct {
	rel    string      // relative to the walked directory, '/'-separated
	typ    Type        // TypeDir, TypeFile, TypeSymlink, or 0 for anything else
	mode   fs.FileMode // a regular file's permission bits, setuid, setgid and sticky
	size   int64       // a regular file's size
	mtime  time.Time   // a regular file's modification time
	target string      // a symlink's target
	src    string      // a regular file's name (dir joined with rel)
	id     fileID      // a regular file's device, inode and number of links
}

// walkTree calls fn for everything under dir (not dir itself), in no particular order but
// a directory's entries together and sorted by name; fn is called by one goroutine at a time.
// fn returning fs.SkipDir for a directory leaves out what it holds; any other error stops the
// walk and is returned, as are errors reading the tree.
func walkTree(dir string, fn func(*dirent) error) error {
	w := &walker{root: dir, fn: fn}
	w.cond = sync.NewCond(&w.mu)
	w.queue = []string{""}
	n := min(max(runtime.GOMAXPROCS(0), 1), 8)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work()
		}()
	}
	wg.Wait()
	return w.err
}

type walker struct {
	root string
	fn   func(*dirent) error

	mu     sync.Mutex // guards what follows, and calls of fn
	cond   *sync.Cond
	queue  []string // directories to read
	active int      // directories being read
	err    error
}

// work reads directories from the queue until there are none left or the walk failed.
func (w *walker) work() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		for len(w.queue) == 0 && w.active > 0 && w.err == nil {
			w.cond.Wait()
		}
		if len(w.queue) == 0 || w.err != nil {
			w.cond.Broadcast()
			return
		}
		rel := w.queue[len(w.queue)-1]
		w.queue = w.queue[:len(w.queue)-1]
		w.active++
		w.mu.Unlock()
		ents, err := w.read(rel)
		w.mu.Lock()
		w.active--
		if err == nil && w.err == nil {
			err = w.report(ents)
		}
		if err != nil && w.err == nil {
			w.err = err
		}
		w.cond.Broadcast()
	}
}

// report calls fn for the entries of one directory and queues its subdirectories.
func (w *walker) report(ents []dirent) error {
	for i := range ents {
		err := w.fn(&ents[i])
		if ents[i].typ == TypeDir && err == nil {
			w.queue = append(w.queue, ents[i].rel)
		}
		if err != nil && !(errors.Is(err, fs.SkipDir) && ents[i].typ == TypeDir) {
			return err
		}
	}
	return nil
}

// read lists the directory rel, with the stat of its regular files and its symlinks' targets.
func (w *walker) read(rel string) ([]dirent, error) {
	name := w.root
	if rel != "" {
		name += "/" + rel
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	des, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(des, func(a, b fs.DirEntry) int {
		if a.Name() < b.Name() {
			return -1
		}
		return 1
	})
	fd := int(f.Fd())
	ents := make([]dirent, len(des))
	for i, de := range des {
		e := &ents[i]
		e.rel = de.Name()
		if rel != "" {
			e.rel = rel + "/" + e.rel
		}
		switch t := de.Type(); {
		case t.IsDir():
			e.typ = TypeDir
		case t&fs.ModeSymlink != 0:
			e.typ = TypeSymlink
			if e.target, err = readlinkat(fd, de.Name()); err != nil {
				return nil, &fs.PathError{Op: "readlink", Path: name + "/" + de.Name(), Err: err}
			}
		default:
			e.src = name + "/" + de.Name()
		case t.IsRegular():
			var st unix.Stat_t
			if err := unix.Fstatat(fd, de.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return nil, &fs.PathError{Op: "lstat", Path: name + "/" + de.Name(), Err: err}
			}
			if st.Mode&unix.S_IFMT != unix.S_IFREG { // replaced since the directory was read
				return nil, &fs.PathError{Op: "lstat", Path: name + "/" + de.Name(), Err: errors.New("no longer a regular file")}
			}
			e.typ, e.size, e.src = TypeFile, st.Size, name+"/"+de.Name()
			e.mode = fileMode(int64(st.Mode & 0o7777))
			e.mtime = time.Unix(st.Mtim.Unix())
			e.id = fileID{uint64(st.Dev), st.Ino, uint64(st.Nlink)}
		}
	}
	return ents, nil
}

func readlinkat(fd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(fd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// Tree returns a Package.Walk that packages the tree under dir, on the operating system's
// file system, at into (an absolute path, or "/"), as tree() in BUILD.star does: directories
// 0755 (into itself too, unless it is "/"), regular files 0755 when executable and 0644
// otherwise, given by Src and with their modification times, and symlinks, all owned by
// root; anything else (a socket, a device) is an error.
func Tree(dir, into string) func(add func(Entry) error) error {
	return func(add func(Entry) error) error {
		if into != "/" {
			if err := add(Entry{Path: into, Type: TypeDir, Mode: 0o755}); err != nil {
				return err
			}
		}
		prefix := strings.TrimSuffix(into, "/") + "/"
		return walkTree(dir, func(d *dirent) error {
			e, err := d.entry(prefix + d.rel)
			if err != nil {
				return err
			}
			return add(e)
		})
	}
}

// entry is the Entry of d at p, as tree() makes it.
func (d *dirent) entry(p string) (Entry, error) {
	e := Entry{Path: p, Type: d.typ}
	switch d.typ {
	case TypeDir:
		e.Mode = 0o755
	case TypeSymlink:
		e.Target = d.target
	case TypeFile:
		e.Size, e.Src, e.MTime, e.Mode = d.size, d.src, d.mtime, 0o644
		if d.mode&0o111 != 0 {
			e.Mode = 0o755
		}
	default:
		return e, fmt.Errorf("%s: not a file, directory or symlink", d.src)
	}
	return e, nil
}
