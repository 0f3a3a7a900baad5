// Package atomicfile writes files that readers see whole: the old content or the new, never a
// mix, and never a half-written file after a crash. A file is written to a temporary name in
// the target's directory, synced, renamed over the target, and the directory is synced.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/afero"
)

// File is a file being written; it replaces its target only on Commit.
type File struct {
	afero.File
	fsys   afero.Fs
	path   string
	perm   fs.FileMode
	closed bool
}

// TempPrefix is how the temporary files beside path begin: ".NAME.tmp-". RemoveStale matches it.
func TempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// Create starts writing path on fsys (nil means the operating system's file system): the file
// is a new temporary one beside path until Commit. Missing parent directories are created.
func Create(fsys afero.Fs, path string, perm fs.FileMode) (*File, error) {
	if fsys == nil {
		fsys = afero.NewOsFs()
	}
	dir := filepath.Dir(path)
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := afero.TempFile(fsys, dir, TempPrefix(path)+"*")
	if err != nil {
		return nil, err
	}
	return &File{File: f, fsys: fsys, path: path, perm: perm}, nil
}

// Path is the file's final name.
func (f *File) Path() string { return f.path }

// Commit makes the written content the file at Path: sync, mode, rename, directory sync. After
// a failed Commit the temporary file is gone and the target is as it was.
func (f *File) Commit() error {
	if err := f.finish(); err != nil {
		return err
	}
	if err := f.install(); err != nil {
		return err
	}
	if err := syncDir(f.fsys, filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// CommitAll commits files that belong together (an index and the signed list of its
// hashes): all are synced first, then renamed in order, one right after the other, then
// each of their directories is synced once. If a file cannot be synced, none is renamed;
// if a rename fails, the files after it are discarded, those before it stay (their
// directories are still synced).
func CommitAll(files ...*File) error {
	for i, f := range files {
		if err := f.finish(); err != nil {
			for _, g := range files[:i] {
				g.discard()
			}
			for _, g := range files[i+1:] {
				g.Abort()
			}
			return err
		}
	}
	var dirs []*File // the first file of each directory
	seen := map[string]bool{}
	var err error
	for i, f := range files {
		if err = f.install(); err != nil {
			for _, g := range files[i+1:] {
				g.discard()
			}
			break
		}
		if d := filepath.Dir(f.path); !seen[d] {
			seen[d] = true
			dirs = append(dirs, f)
		}
	}
	for _, f := range dirs {
		if serr := syncDir(f.fsys, filepath.Dir(f.path)); serr != nil && err == nil {
			err = fmt.Errorf("write %s: %w", f.path, serr)
		}
	}
	return err
}

// finish syncs and closes the temporary file; then it is installed or discarded.
func (f *File) finish() error {
	if f.closed {
		return fmt.Errorf("write %s: already committed or aborted", f.path)
	}
	f.closed = true
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		f.discard()
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// install gives a finished temporary file its mode and renames it over the target.
func (f *File) install() error {
	tmp := f.File.Name()
	err := f.fsys.Chmod(tmp, f.perm)
	if err == nil {
		err = f.fsys.Rename(tmp, f.path)
	}
	if err != nil {
		f.discard()
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// discard removes a finished temporary file.
func (f *File) discard() { f.fsys.Remove(f.File.Name()) }

// Abort discards the temporary file; the target is untouched. It does nothing after Commit,
// so `defer f.Abort()` is the way to clean up on every error path.
func (f *File) Abort() {
	if f.closed {
		return
	}
	f.closed = true
	f.File.Close()
	f.fsys.Remove(f.File.Name())
}

// WriteFile replaces path on fsys (nil: the operating system's) with data, atomically.
func WriteFile(fsys afero.Fs, path string, data []byte, perm fs.FileMode) error {
	f, err := Create(fsys, path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// RemoveStale deletes temporary files that writers of path left when they died before Commit.
// Call it only where no other writer of path can be running (under the writers' lock).
func RemoveStale(fsys afero.Fs, path string) error {
	if fsys == nil {
		fsys = afero.NewOsFs()
	}
	ents, err := afero.ReadDir(fsys, filepath.Dir(path))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	prefix := TempPrefix(path)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := fsys.Remove(filepath.Join(filepath.Dir(path), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// SyncDir makes renames and creations in dir (on the operating system's file system) durable.
func SyncDir(dir string) error { return syncDir(afero.NewOsFs(), dir) }

func syncDir(fsys afero.Fs, dir string) error {
	d, err := fsys.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
