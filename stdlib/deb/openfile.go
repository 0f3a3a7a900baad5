package deb

import (
	"bytes"
	"io"
	"io/fs"
	"syscall"
	"unsafe"

	"github.com/upds/upds/interp/cache"
	"golang.org/x/sys/unix"
)

// srcOpener opens Src files without the *os.File around the descriptor (no poller
// registration, no finalizer, no allocation: open, read and close are the only system calls of
// a small file), and relative to their directory, kept open while the files that follow (in
// sorted order, its files) are in it, so that the kernel does not look up the whole path of
// each.
type srcOpener struct {
	dir  []byte // the directory dirFD is open on
	fd   int    // -1: none
	name []byte // scratch: a NUL-terminated name
}

func newSrcOpener() *srcOpener { return &srcOpener{fd: -1} }

// open opens the file name (not NUL-terminated) for reading.
func (o *srcOpener) open(name []byte) (io.ReadCloser, error) {
	i := bytes.LastIndexByte(name, '/')
	if i < 0 {
		return o.openat(atFDCWD, name, name)
	}
	dir := name[:max(i, 1)]
	if o.fd < 0 || !bytes.Equal(dir, o.dir) {
		o.close()
		fd, err := o.syscallOpen(atFDCWD, dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
		if err != nil {
			return o.openat(atFDCWD, name, name) // its error names the file
		}
		o.fd, o.dir = fd, append(o.dir[:0], dir...)
	}
	return o.openat(o.fd, name[i+1:], name)
}

// openPath opens the file name for reading, as srcOpener does but by its whole name.
func openPath(name []byte) (io.ReadCloser, error) {
	o := srcOpener{fd: -1}
	return o.openat(atFDCWD, name, name)
}

func (o *srcOpener) openat(dirfd int, rel, name []byte) (io.ReadCloser, error) {
	fd, err := o.syscallOpen(dirfd, rel, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOCTTY)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: string(name), Err: err}
	}
	return fdFile(fd), nil
}

func (o *srcOpener) syscallOpen(dirfd int, rel []byte, flags int) (int, error) {
	o.name = append(append(o.name[:0], rel...), 0)
	for {
		fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&o.name[0])),
			uintptr(flags), 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(fd), nil
	}
}

// close closes the directory kept open.
func (o *srcOpener) close() {
	if o.fd >= 0 {
		syscall.Close(o.fd)
		o.fd = -1
	}
}

var atFDCWD = -100 // AT_FDCWD

// fdFile is an open regular file.
type fdFile int

func (f fdFile) exactReads() {}

func (f fdFile) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(f), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f fdFile) Close() error { return syscall.Close(int(f)) }

// fingerprintOf is the stat fingerprint (cache.Fingerprint) of an open Src file.
func fingerprintOf(f io.Reader) (uint64, bool) {
	fd, ok := f.(fdFile)
	var st syscall.Stat_t
	if !ok || syscall.Fstat(int(fd), &st) != nil {
		return 0, false
	}
	return cache.Fingerprint(&st), true
}

// unchanged reports whether the open Src file f has the stat fingerprint fp.
func unchanged(f io.Reader, fp uint64) bool {
	got, ok := fingerprintOf(f)
	return ok && got == fp
}
