// Package deb writes and reads Debian binary packages (.deb) exactly as dpkg expects them:
// streaming with bounded memory, reproducible byte for byte, validated before anything is written.
package deb

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/upds/upds/stdlib/deb/control"
)

// Type is the kind of a package entry.
type Type uint8

// Entry types. A TypeHardlink entry is another name of the regular file at its Target: it is
// written as a tar hard link, as dpkg-deb writes the names of a file with several links.
const (
	TypeFile Type = iota + 1
	TypeDir
	TypeSymlink
	TypeHardlink
)

var typeNames = [...]string{TypeFile: "file", TypeDir: "dir", TypeSymlink: "symlink", TypeHardlink: "hardlink"}

// String returns "file", "dir", "symlink" or "hardlink".
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// MarshalText makes Type a string in JSON.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText parses the names String returns.
func (t *Type) UnmarshalText(b []byte) error {
	for i, n := range typeNames {
		if n != "" && n == string(b) {
			*t = Type(i)
			return nil
		}
	}
	return fmt.Errorf("unknown entry type %q", b)
}

// modeBits are the bits of an fs.FileMode a package entry keeps: the permissions, setuid,
// setgid and sticky.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// fileMode is the Unix mode of a tar header (0o4755) as an fs.FileMode, through archive/tar.
func fileMode(unix int64) fs.FileMode {
	return (&tar.Header{Mode: unix}).FileInfo().Mode() & modeBits
}

// unixMode is the inverse of fileMode (tar.FileInfoHeader's conversion).
func unixMode(m fs.FileMode) int64 {
	h, _ := tar.FileInfoHeader(modeInfo(m&modeBits), "") // never fails for a regular file
	return h.Mode
}

// modeInfo is a regular file of that mode, for tar.FileInfoHeader.
type modeInfo fs.FileMode

func (m modeInfo) Name() string       { return "" }
func (m modeInfo) Size() int64        { return 0 }
func (m modeInfo) Mode() fs.FileMode  { return fs.FileMode(m) }
func (m modeInfo) ModTime() time.Time { return time.Time{} }
func (m modeInfo) IsDir() bool        { return false }
func (m modeInfo) Sys() any           { return nil }

// Entry is one file system object in the package's data.tar.
type Entry struct {
	// Path is absolute and clean: "/srv/python/hello/app.py". It may not be "/" (the root
	// directory is always present, root:root 0755).
	Path string
	Type Type
	// Mode holds the permission bits plus fs.ModeSetuid, fs.ModeSetgid and fs.ModeSticky; other
	// bits (the type bits of an fs.FileInfo) are ignored. Zero means the default: 0644 for files,
	// 0755 for directories. Symlinks are always written 0777.
	Mode fs.FileMode
	// Owner and Group are user and group names; "" means root.
	Owner, Group string
	// UID and GID are the numeric ids written with the names. -1, or 0 with a name other than
	// root, means the well-known static id of the name in Debian's base-passwd (www-data 33,
	// nobody 65534, ...); a name outside that table then needs an explicit id.
	UID, GID int
	// Target is a symlink's target, written as given; or a hard link's: the absolute path of a
	// regular file of the package (or of another hard link to one). All the names of a file
	// share its content, mode and owner: the first in the archive's (sorted) order is written
	// as the regular file, the others as tar hard links to it, and md5sums lists every name.
	Target string
	// Size is a regular file's size in bytes; Open must deliver exactly that many.
	Size int64
	// Open returns a regular file's content. It is called once, while the package is written,
	// and the reader is closed after Size bytes have been copied.
	Open func() (io.ReadCloser, error)
	// Src, when Open is nil, is the file on the operating system's file system that holds a
	// regular file's content. The writer opens it by name, so a Plan keeps no function per
	// file: large packages give Src rather than Open.
	Src string
	// MTime, when set, is the entry's modification time; it is clamped to Package.MTime (an
	// entry newer than that gets Package.MTime). Zero means Package.MTime.
	MTime time.Time
}

// Package is everything a .deb holds.
type Package struct {
	// Control holds the control fields: Package, Version, Architecture, Maintainer and
	// Description are required; Depends and the other relation fields are checked and written
	// in canonical form; Installed-Size is computed as dpkg-gencontrol does, unless it is given
	// (a number of KiB, written as it is). Fields are written in dpkg-gencontrol's order,
	// unknown fields after the known ones.
	Control control.Paragraph
	// Entries in any order: they are sorted, and missing parent directories are added
	// (root:root 0755).
	Entries []Entry
	// Walk, when set, gives more entries after Entries: it calls add for each, in any order,
	// and returns add's first error. Prepare calls it once and keeps each entry in a compact
	// record (about 64 bytes and its path), never the Entry, so a package built from Walk
	// with Src files costs memory for its entries but not for their strings and closures.
	Walk func(add func(Entry) error) error
	// Conffiles are absolute paths of regular files in Entries.
	Conffiles []string
	// Scripts maps "preinst", "postinst", "prerm", "postrm" and "config" to their content,
	// which must start with "#!"; they are written 0755.
	Scripts map[string][]byte
	// Triggers is the optional triggers control file.
	Triggers []byte
	// Templates is the debconf templates file (its "config" script goes in Scripts); Shlibs
	// and Symbols are the shared library control files dpkg-shlibdeps reads. Each is optional.
	Templates, Shlibs, Symbols []byte
	// Compression of both tar members: "gzip" (the default when empty), "xz", "zstd" or
	// "none" (control.tar and data.tar uncompressed, as dpkg-deb -Znone writes them).
	Compression string
	// Level is the compression level; 0 means the default (gzip DefaultGzipLevel, zstd 3, xz 6).
	Level int
	// MTime is the modification time of every member and tar entry (entries with an earlier
	// MTime of their own keep it). It is the clamp from SOURCE_DATE_EPOCH, or a fixed date the
	// caller chooses; Write never reads the clock. Zero means DefaultMTime.
	MTime time.Time
	// TempDir is where the compressed data.tar is staged while the package is written. Empty
	// means the output file's directory for WriteFile and os.TempDir() for Write.
	TempDir string
}

// DefaultMTime is the modification time used when Package.MTime is zero: 2020-01-01 UTC.
func DefaultMTime() time.Time { return time.Unix(1577836800, 0).UTC() }

// Result describes a written package.
type Result struct {
	// Path is the file WriteFile wrote; empty for Write.
	Path string `json:"path,omitempty"`
	// Size is the size of the whole .deb file in bytes. (Its hashes cost a second read of the
	// output; Read with Hash computes them where they are needed, as the repository does.)
	Size int64 `json:"size"`
	// InstalledSize is the Installed-Size field, in KiB.
	InstalledSize int64 `json:"installed_size"`
	// Control is the control file as written into the package.
	Control control.Paragraph `json:"control"`
	// Files counts the data.tar entries (the root directory included).
	Files int `json:"files"`
}

// Filename returns the Debian file name of the package whose control fields are c:
// FileName of its Package, Version and Architecture.
func Filename(c control.Paragraph) string {
	return FileName(c.Get("Package"), c.Get("Version"), c.Get("Architecture"))
}

// FileName is the Debian file name of a package, the one name dist/ and a repository's pool
// give it: NAME_VERSION_ARCH.deb, the version without its epoch.
func FileName(name, version, arch string) string {
	if i := strings.IndexByte(version, ':'); i >= 0 {
		version = version[i+1:]
	}
	return name + "_" + version + "_" + arch + ".deb"
}

// Script names a package may carry.
var scriptNames = []string{"preinst", "postinst", "prerm", "postrm", "config"}

func isScript(name string) bool {
	for _, s := range scriptNames {
		if s == name {
			return true
		}
	}
	return false
}
