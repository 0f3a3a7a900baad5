package version

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp/atomicfile"
)

// maxFileSize bounds what ReadFile reads: a VERSION file is one short line.
const maxFileSize = 4096

// ReadFile reads a VERSION file: one version on one line. Surrounding white space (including the
// trailing newline) is ignored; an empty file, a second non-empty line or a version that Parse
// rejects is an error that names the file and quotes its content.
func ReadFile(fsys afero.Fs, path string) (Version, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return Version{}, fmt.Errorf("read version file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return Version{}, fmt.Errorf("read version file %s: %w", path, err)
	}
	return parseFile(path, data)
}

func parseFile(path string, data []byte) (Version, error) {
	if len(data) > maxFileSize {
		return Version{}, fmt.Errorf("%s: not a version file: larger than %d bytes", path, maxFileSize)
	}
	content := strings.TrimSpace(string(data))
	if content == "" {
		return Version{}, fmt.Errorf("%s: empty; want one version on one line, such as 1.0.0", path)
	}
	if strings.ContainsAny(content, "\r\n") {
		return Version{}, fmt.Errorf("%s: %s: want one version on one line", path, quote(content))
	}
	v, err := Parse(content)
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			return Version{}, fmt.Errorf("%s: %s is not a valid Debian version: %s", path, quote(content), se.Msg)
		}
		return Version{}, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// quote quotes s for an error message, shortened when it is long.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// BumpOptions adjusts BumpFileWith.
type BumpOptions struct {
	// Mutex, when not nil, is held for the whole read-bump-write. The file lock that BumpFile
	// takes works only on filesystems backed by the operating system; share one Mutex between
	// the goroutines of a process that bump the same file on another filesystem
	// (afero.MemMapFs in tests).
	Mutex sync.Locker
}

// BumpFile bumps the version in the VERSION file at path (see Bump for part) and returns the
// versions before and after. It is safe against concurrent bumps from other processes and
// goroutines and against crashes:
//
//   - On a filesystem backed by the operating system (afero.OsFs, or an afero.BasePathFs over
//     it) it holds an exclusive flock on a lock file beside VERSION (.VERSION.lock, which is
//     left in place) while it reads, bumps and writes, so no increment is lost. It also removes
//     temporary files that a killed writer left behind.
//   - It writes the new version to a temporary file in the same directory, syncs it, gives it
//     the mode of the old file, renames it over VERSION and syncs the directory: a crash leaves
//     the old version or the new one, never a mix.
//   - A VERSION file that ReadFile rejects is never rewritten.
//
// Other filesystems get no lock; use BumpFileWith and BumpOptions.Mutex when that matters.
func BumpFile(fsys afero.Fs, path string, part Part) (old, new Version, err error) {
	return BumpFileWith(fsys, path, part, BumpOptions{})
}

// BumpFileWith is BumpFile with options.
func BumpFileWith(fsys afero.Fs, path string, part Part, opts BumpOptions) (old, new Version, err error) {
	if opts.Mutex != nil {
		opts.Mutex.Lock()
		defer opts.Mutex.Unlock()
	}
	osBacked, err := isOSBacked(fsys, path)
	if err != nil {
		return Version{}, Version{}, fmt.Errorf("bump %s: %w", path, err)
	}
	if osBacked {
		unlock, err := lockBeside(fsys, path)
		if err != nil {
			return Version{}, Version{}, fmt.Errorf("bump %s: %w", path, err)
		}
		defer unlock()
		atomicfile.RemoveStale(fsys, path) // best effort: a leftover does no harm but clutter
	}
	old, err = ReadFile(fsys, path)
	if err != nil {
		return Version{}, Version{}, err
	}
	new, err = Bump(old, part)
	if err != nil {
		return Version{}, Version{}, fmt.Errorf("%s: %w", path, err)
	}
	mode := fs.FileMode(0o644)
	if fi, err := fsys.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := atomicfile.WriteFile(fsys, path, []byte(new.String()+"\n"), mode); err != nil {
		return Version{}, Version{}, fmt.Errorf("bump %s: %w", path, err)
	}
	return old, new, nil
}

// osFile returns the *os.File behind an afero.File, unwrapping afero.BasePathFs files, or nil.
func osFile(f afero.File) *os.File {
	for {
		switch x := f.(type) {
		case *os.File:
			return x
		case *afero.BasePathFile:
			f = x.File
		default:
			return nil
		}
	}
}

// isOSBacked reports whether path on fsys is a file of the operating system, i.e. whether an
// flock beside it means something.
func isOSBacked(fsys afero.Fs, path string) (bool, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return osFile(f) != nil, nil
}

// lockBeside takes an exclusive flock on .NAME.lock beside path and returns its release.
func lockBeside(fsys afero.Fs, path string) (unlock func(), err error) {
	lockPath := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
	f, err := fsys.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	of := osFile(f)
	if of == nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: not a file of the operating system", lockPath)
	}
	if err := flock(of); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	return func() { f.Close() }, nil // closing the descriptor releases the flock
}

// lockIfOS takes the exclusive flock beside path (see lockBeside) when path's directory is on
// the operating system's file system; elsewhere it does nothing. path need not exist.
func lockIfOS(fsys afero.Fs, path string) (unlock func(), err error) {
	osBacked, err := isOSBacked(fsys, filepath.Dir(path))
	if err != nil || !osBacked {
		return func() {}, err
	}
	return lockBeside(fsys, path)
}
