package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/upds/upds/interp/atomicfile"
)

// Dir is a Store in a directory of this machine: an object is a file (mode 0644) written
// to a temporary name beside it, synced and renamed; Lock is a flock.
type Dir struct {
	root string
}

// NewDir returns the store in directory root (created on the first write).
func NewDir(root string) *Dir { return &Dir{root: filepath.Clean(root)} }

// Root is the directory.
func (d *Dir) Root() string { return d.root }

func (d *Dir) String() string { return d.root }

// Path is the file of an object.
func (d *Dir) Path(name string) string { return filepath.Join(d.root, filepath.FromSlash(name)) }

// Put writes each object to a temporary file beside its name, then syncs them all, renames
// them into place and syncs their directories (atomicfile.CommitAll). A moved file is
// renamed into place directly; many moved files are made durable with one syncfs.
func (d *Dir) Put(ctx context.Context, objs ...Object) error {
	var staged []*atomicfile.File
	defer func() {
		for _, f := range staged {
			f.Abort()
		}
	}()
	var moved []string
	for i := range objs {
		o := &objs[i]
		if err := checkName(o.Name); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		abs := d.Path(o.Name)
		switch {
		case o.IfAbsent || o.IfMatch != "":
			if err := d.putIf(*o, abs); err != nil {
				return err
			}
		case o.File != "" && o.Move:
			if err := moveInto(o.File, abs); err != nil {
				return err
			}
			moved = append(moved, abs)
		case o.LinkFrom != "" && checkName(o.LinkFrom) == nil:
			if err := linkInto(d.Path(o.LinkFrom), abs); err != nil {
				return err
			}
			moved = append(moved, abs)
		default:
			f, err := d.stage(*o, abs)
			if err != nil {
				return err
			}
			staged = append(staged, f)
		}
	}
	commit := staged
	staged = nil
	if err := atomicfile.CommitAll(commit...); err != nil {
		return err
	}
	if err := syncMoved(d.root, moved); err != nil {
		return err
	}
	for i := range objs {
		if fi, err := os.Lstat(d.Path(objs[i].Name)); err == nil {
			objs[i].Stamp = info("", fi).Stamp
		}
	}
	return nil
}

// linkInto makes abs a hard link of src (a file of the store, already durable): a link
// beside abs renamed over it. A rename onto another name of the same file does nothing,
// so the link is removed after it either way.
func linkInto(src, abs string) error {
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(abs), atomicfile.TempPrefix(abs)+"link")
	os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		return fmt.Errorf("link %s: %w", abs, err)
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, abs); err != nil {
		return fmt.Errorf("link %s: %w", abs, err)
	}
	return nil
}

// stage writes an object's content to a temporary file beside abs.
func (d *Dir) stage(o Object, abs string) (*atomicfile.File, error) {
	f, err := atomicfile.Create(nil, abs, 0o644)
	if err != nil {
		return nil, err
	}
	if o.File != "" {
		err = copyFrom(f, o.File)
	} else {
		_, err = f.Write(o.Data)
	}
	if err != nil {
		f.Abort()
		return nil, fmt.Errorf("write %s: %w", abs, err)
	}
	return f, nil
}

func copyFrom(w io.Writer, file string) error {
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = io.Copy(w, in)
	return err
}

// putIf writes a conditional object: IfAbsent with a hard link, which fails when the
// name exists; IfMatch by comparing the stamp before the rename (a Dir's writers are
// serialised by its Lock).
func (d *Dir) putIf(o Object, abs string) error {
	if o.IfMatch != "" {
		info, err := d.Stat(context.Background(), o.Name)
		if err != nil || info.Stamp != o.IfMatch {
			return fmt.Errorf("write %s: %w", abs, ErrPrecondition)
		}
		o.IfMatch = ""
		return d.Put(context.Background(), o)
	}
	f, err := d.stage(o, abs)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Link(f.Name(), abs); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("write %s: %w", abs, ErrPrecondition)
		}
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(abs))
}

// moveInto renames file to abs, creating abs's directory, and gives it mode 0644.
func moveInto(file, abs string) error {
	if err := os.Chmod(file, 0o644); err != nil {
		return err
	}
	err := os.Rename(file, abs)
	if errors.Is(err, os.ErrNotExist) {
		// Most often only the last directory is missing: one mkdir.
		if err = os.Mkdir(filepath.Dir(abs), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			err = os.MkdirAll(filepath.Dir(abs), 0o755)
		}
		if err == nil || errors.Is(err, os.ErrExist) {
			err = os.Rename(file, abs)
		}
	}
	if err != nil {
		return fmt.Errorf("move %s to %s: %w", file, abs, err)
	}
	return nil
}

// syncMoved makes moved files durable: a few one by one with their directories, many
// with one syncfs of the file system.
func syncMoved(root string, moved []string) error {
	if len(moved) > 16 {
		f, err := os.Open(root)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := unix.Syncfs(int(f.Fd())); err != nil {
			return fmt.Errorf("syncfs %s: %w", root, err)
		}
		return nil
	}
	dirs := map[string]bool{}
	for _, m := range moved {
		f, err := os.Open(m)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", m, err)
		}
		dirs[filepath.Dir(m)] = true
	}
	for dir := range dirs {
		if err := atomicfile.SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// Open opens an object's file (not following a symbolic link).
func (d *Dir) Open(_ context.Context, name string) (io.ReadCloser, Info, error) {
	if err := checkName(name); err != nil {
		return nil, Info{}, err
	}
	f, err := os.OpenFile(d.Path(name), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, Info{}, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", f.Name())
	}
	if err != nil {
		f.Close()
		return nil, Info{}, err
	}
	return f, info(name, fi), nil
}

// Stat describes an object's file.
func (d *Dir) Stat(_ context.Context, name string) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	fi, err := os.Lstat(d.Path(name))
	if err != nil {
		return Info{}, err
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("%s: not a regular file", d.Path(name))
	}
	return info(name, fi), nil
}

func info(name string, fi fs.FileInfo) Info {
	stamp := strconv.FormatInt(fi.ModTime().UnixNano(), 10)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		stamp += "." + strconv.FormatUint(st.Ino, 10)
	}
	return Info{Name: name, Size: fi.Size(), Stamp: stamp}
}

// List walks the directory under prefix; temporary (hidden) files and anything but
// regular files are left out.
func (d *Dir) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	start := prefix
	if !strings.HasSuffix(start, "/") {
		start = path.Dir(start)
	}
	top := d.Path(start)
	err := filepath.WalkDir(top, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == top {
				return filepath.SkipDir
			}
			return err
		}
		if e.IsDir() {
			return ctx.Err()
		}
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		rel, _ := filepath.Rel(d.root, p)
		rel = filepath.ToSlash(rel)
		if !strings.HasPrefix(rel, prefix) {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted meanwhile
			}
			return err
		}
		return fn(info(rel, fi))
	})
	return err
}

// Delete removes the objects' files and the directories that become empty.
func (d *Dir) Delete(_ context.Context, names ...string) error {
	for _, n := range names {
		if err := checkName(n); err != nil {
			return err
		}
		if err := os.Remove(d.Path(n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for dir := path.Dir(n); dir != "."; dir = path.Dir(dir) {
			if os.Remove(d.Path(dir)) != nil {
				break
			}
		}
	}
	return nil
}

// Lock takes an exclusive flock of the file name in the directory. The lock is never lost
// while the process lives: the context returned is ctx.
func (d *Dir) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	abs := d.Path(name)
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("lock %s: %w", abs, err)
	}
	unlock := func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err == nil {
		return ctx, unlock, nil
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, nil, fmt.Errorf("lock %s: %w", abs, err)
	}
	// Held by another process: wait in a goroutine that, if ctx ends first, takes the
	// lock when it comes free and releases it at once.
	done := make(chan error, 1)
	go func() { done <- flock(f, unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("lock %s: %w", abs, err)
		}
		return ctx, unlock, nil
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				unlock()
			} else {
				f.Close()
			}
		}()
		return nil, nil, fmt.Errorf("lock %s: %w", abs, ctx.Err())
	}
}

// flock is unix.Flock, retried when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
