package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/upds/upds/stdlib/deb/control"
)

// FileInfo is one entry of a package's data.tar.
type FileInfo struct {
	// Path is absolute: "/" for the root directory, "/usr/bin/x" for "./usr/bin/x".
	Path string `json:"path"`
	Type Type   `json:"type"`
	// Mode holds the permission bits plus fs.ModeSetuid, fs.ModeSetgid and fs.ModeSticky.
	Mode  fs.FileMode `json:"mode"`
	UID   int         `json:"uid"`
	GID   int         `json:"gid"`
	Owner string      `json:"owner"`
	Group string      `json:"group"`
	Size  int64       `json:"size"`
	// Target is a symlink's target as stored, or a hard link's target as an absolute path.
	Target string    `json:"target,omitempty"`
	MTime  time.Time `json:"mtime"`
}

// Info is what Read finds in a .deb.
type Info struct {
	Control control.Paragraph `json:"control"`
	// Conffiles are absolute paths.
	Conffiles []string `json:"conffiles,omitempty"`
	// MD5Sums maps absolute paths ("/usr/bin/x") to the hex md5 from the md5sums file.
	MD5Sums map[string]string `json:"md5sums,omitempty"`
	// Scripts are the maintainer scripts present (preinst, postinst, prerm, postrm, config).
	Scripts  map[string][]byte `json:"scripts,omitempty"`
	Triggers []byte            `json:"triggers,omitempty"`
	// Templates (debconf), Shlibs and Symbols are those control files, when present.
	Templates []byte `json:"templates,omitempty"`
	Shlibs    []byte `json:"shlibs,omitempty"`
	Symbols   []byte `json:"symbols,omitempty"`
	// Files lists data.tar in archive order; only with ReadOptions.Files.
	Files []FileInfo `json:"files,omitempty"`
	// ControlCompression and DataCompression are "gzip", "xz", "zstd", "bzip2" or "none".
	ControlCompression string `json:"control_compression"`
	DataCompression    string `json:"data_compression"`
	// Size, MD5 and SHA256 describe the whole .deb; only with ReadOptions.Hash.
	Size   int64  `json:"size,omitempty"`
	MD5    string `json:"md5,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// ReadOptions chooses how much of the package Read looks at. With none set, Read decompresses
// only control.tar and skips over data.tar, which is what a repository index needs.
type ReadOptions struct {
	// Files lists data.tar's entries into Info.Files.
	Files bool
	// Verify decompresses data.tar to its end, checks every path and compares every regular
	// file with md5sums (a listed file that is missing or differs is an error).
	Verify bool
	// Hash computes the size, MD5 and SHA256 of the whole file.
	Hash bool
	// DataHead, without Files or Verify, decompresses only the start of data.tar and checks
	// its first entry (see checkDataHead): data.tar is otherwise skipped unread.
	DataHead bool
}

// Limits on what Read buffers, so that hostile input cannot make it allocate without bound.
const (
	maxControlTar    = 64 << 20 // decompressed control.tar
	maxControlMember = 32 << 20 // one file in control.tar (md5sums of a big package)
	maxXZDict        = 64 << 20 // xz -9's dictionary
	maxZstdWindow    = 128 << 20
	maxEntries       = 1 << 20 // data.tar entries listed or verified
)

// ReadFile reads the .deb at path; see Read.
func ReadFile(path string, opt ReadOptions) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f // unbuffered: data.tar is skipped with Seek
	if opt.Files || opt.Verify || opt.Hash {
		r = bufio.NewReaderSize(f, 256<<10)
	}
	info, err := Read(r, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// Read reads a .deb in one sequential pass. Anything malformed is an error: a bad ar archive,
// a debian-binary other than 2.x, missing or misplaced members, an unknown compression, a
// control.tar without a valid control file, and (when data.tar is read) a path that escapes
// the package root ("..", absolute paths).
func Read(r io.Reader, opt ReadOptions) (*Info, error) {
	var (
		sha, md hash.Hash
		counter *countReader
	)
	if opt.Hash {
		sha, md = sha256.New(), md5.New()
		counter = &countReader{r: io.TeeReader(r, io.MultiWriter(sha, md))}
		r = counter
	}
	info := &Info{}
	ar, err := newArReader(r)
	if err != nil {
		return nil, err
	}
	state := 0 // 0: want debian-binary, 1: want control, 2: want data, 3: done
	for {
		name, size, err := ar.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		mr := ar.body()
		switch {
		case state == 0:
			if name != "debian-binary" {
				return nil, fmt.Errorf("first ar member is %q, want debian-binary: not a Debian package", name)
			}
			if size > 64 {
				return nil, fmt.Errorf("debian-binary: %d bytes, too large", size)
			}
			b, err := io.ReadAll(mr)
			if err != nil {
				return nil, fmt.Errorf("debian-binary: %w", err)
			}
			if !bytes.HasPrefix(b, []byte("2.")) || !bytes.HasSuffix(b, []byte("\n")) {
				return nil, fmt.Errorf("debian-binary: format %q, want 2.x", strings.TrimSpace(string(b)))
			}
			state = 1
		case strings.HasPrefix(name, "_"):
			// dpkg ignores members whose names start with "_".
		case state == 1 && strings.HasPrefix(name, "control.tar"):
			c, err := memberCompression(name, "control.tar")
			if err != nil {
				return nil, err
			}
			info.ControlCompression = c.name
			if err := info.readControl(mr, c); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			state = 2
		case state == 2 && strings.HasPrefix(name, "data.tar"):
			c, err := memberCompression(name, "data.tar")
			if err != nil {
				return nil, err
			}
			info.DataCompression = c.name
			if opt.Files || opt.Verify {
				if err := info.readData(mr, c, opt); err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
			} else if opt.DataHead {
				if err := checkDataHead(mr, c); err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
			}
			state = 3
		default:
			want := [...]string{"debian-binary", "control.tar", "data.tar", "nothing"}[state]
			return nil, fmt.Errorf("unexpected ar member %q, want %s", name, want)
		}
		if err := ar.skip(); err != nil {
			return nil, err
		}
	}
	if state < 3 {
		want := [...]string{"debian-binary", "control.tar", "data.tar"}[state]
		return nil, fmt.Errorf("truncated package: no %s member", want)
	}
	if opt.Hash {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, err
		}
		info.Size, info.MD5, info.SHA256 = counter.n, hex.EncodeToString(md.Sum(nil)), hex.EncodeToString(sha.Sum(nil))
	}
	return info, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// arReader reads the common ar format strictly (dpkg's subset: no symbol tables, no long names).
type arReader struct {
	r   io.Reader
	pad int64 // 1 when the current member has an odd size
	lr  io.LimitedReader
}

func newArReader(r io.Reader) (*arReader, error) {
	var magic [8]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("not a Debian package: reading ar magic: %w", err)
	}
	if string(magic[:]) != "!<arch>\n" {
		return nil, errors.New("not a Debian package: no ar archive magic")
	}
	return &arReader{r: r}, nil
}

// next reads the next member header; io.EOF at a clean end of the archive.
func (a *arReader) next() (string, int64, error) {
	var h [60]byte
	n, err := io.ReadFull(a.r, h[:])
	if err == io.EOF {
		return "", 0, io.EOF
	}
	if err != nil {
		return "", 0, fmt.Errorf("ar: truncated member header (%d bytes)", n)
	}
	if h[58] != '`' || h[59] != '\n' {
		return "", 0, errors.New("ar: corrupt member header")
	}
	name := strings.TrimRight(string(h[0:16]), " ")
	name = strings.TrimSuffix(name, "/") // GNU ar
	sizeStr := strings.TrimRight(string(h[48:58]), " ")
	size, err := strconv.ParseInt(sizeStr, 10, 64)
	if err != nil || size < 0 || name == "" {
		return "", 0, fmt.Errorf("ar: corrupt member header for %q (size %q)", name, sizeStr)
	}
	a.lr = io.LimitedReader{R: a.r, N: size}
	a.pad = size % 2
	return name, size, nil
}

// body reads the current member's content; a file that ends inside it is an error.
func (a *arReader) body() io.Reader { return memberReader{&a.lr} }

var errTruncated = errors.New("truncated package: the file ends inside an ar member")

type memberReader struct{ lr *io.LimitedReader }

func (m memberReader) Read(p []byte) (int, error) {
	n, err := m.lr.Read(p)
	if err == io.EOF && m.lr.N > 0 {
		err = errTruncated
	}
	return n, err
}

// skip discards what is left of the current member and its padding byte, seeking over it
// when the input is a file.
func (a *arReader) skip() error {
	if s, ok := a.r.(io.Seeker); ok && a.lr.N > 0 {
		cur, err := s.Seek(0, io.SeekCurrent)
		if err == nil {
			var end int64
			if end, err = s.Seek(0, io.SeekEnd); err == nil {
				if cur+a.lr.N > end {
					return errTruncated
				}
				_, err = s.Seek(cur+a.lr.N, io.SeekStart)
			}
		}
		if err != nil {
			return fmt.Errorf("ar: %w", err)
		}
		a.lr.N = 0
	}
	if a.lr.N > 0 {
		if _, err := io.CopyN(io.Discard, a.r, a.lr.N); err != nil {
			return errTruncated
		}
		a.lr.N = 0
	}
	if a.pad == 1 {
		a.pad = 0
		var b [1]byte
		if _, err := io.ReadFull(a.r, b[:]); err != nil && err != io.EOF {
			// A missing final pad byte at the very end is tolerated, as dpkg does.
			return fmt.Errorf("ar: truncated member padding: %w", err)
		}
	}
	return nil
}

// checkXZDict refuses an xz stream whose first block asks for a dictionary larger than
// maxXZDict (the reader would allocate it up front).
func checkXZDict(br *bufio.Reader) error {
	b, _ := br.Peek(12 + 1024)
	if len(b) < 13 {
		return nil // the xz reader reports the truncation
	}
	hdr := b[12:]
	size := (int(hdr[0]) + 1) * 4
	if hdr[0] == 0 || len(hdr) < size {
		return nil
	}
	hdr = hdr[:size]
	flags := hdr[1]
	i := 2
	varint := func() (uint64, bool) {
		var x uint64
		for s := uint(0); i < len(hdr) && s < 63; s += 7 {
			c := hdr[i]
			i++
			x |= uint64(c&0x7f) << s
			if c < 0x80 {
				return x, true
			}
		}
		return 0, false
	}
	if flags&0x40 != 0 {
		if _, ok := varint(); !ok {
			return nil
		}
	}
	if flags&0x80 != 0 {
		if _, ok := varint(); !ok {
			return nil
		}
	}
	for f := 0; f <= int(flags&3); f++ {
		id, ok1 := varint()
		psize, ok2 := varint()
		if !ok1 || !ok2 || i+int(psize) > len(hdr) {
			return nil
		}
		if id == 0x21 && psize == 1 {
			d := hdr[i]
			if d > 40 {
				return fmt.Errorf("xz: invalid dictionary size code %d", d)
			}
			dict := uint64(2|d&1) << (d/2 + 11)
			if dict > maxXZDict {
				return fmt.Errorf("xz: dictionary of %d MiB is larger than the %d MiB allowed", dict>>20, maxXZDict>>20)
			}
		}
		i += int(psize)
	}
	return nil
}

// limitedReader fails once more than n bytes are read.
type limitedReader struct {
	r    io.Reader
	n    int64
	what string
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("%s is larger than %d MiB", l.what, (maxControlTar)>>20)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n <= 0 && err == nil {
		// Probe whether there is more: a member that ends exactly at the limit is fine.
		var one [1]byte
		if m, _ := l.r.Read(one[:]); m > 0 {
			return n, fmt.Errorf("%s is larger than %d MiB", l.what, maxControlTar>>20)
		}
	}
	return n, err
}

// symlinks are the symbolic links of a package's data.tar read so far.
type symlinks map[string]bool

// check refuses a path that goes through one of the package's own symbolic links: written
// through it, its content would land wherever the link points, outside the package root
// perhaps ("./usr/up -> ../../x" then "./usr/up/evil"), which dpkg-deb -x refuses too. That
// the names are clean is not enough: the check is on the links the package ships.
func (l symlinks) check(p string) error {
	if len(l) == 0 {
		return nil
	}
	for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
		if l[dir] {
			return fmt.Errorf("%q: goes through the symbolic link %s of the package", p, dir)
		}
	}
	return nil
}

// cleanMember turns a tar name into an absolute path, refusing names that escape the root.
func cleanMember(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%q: absolute path escapes the package root", name)
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%q: NUL in path", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("%q: \"..\" escapes the package root", name)
		}
	}
	return path.Clean("/" + name), nil
}

func (info *Info) readControl(r io.Reader, c *compression) error {
	dr, closeFn, err := c.newReader(r)
	if err != nil {
		return err
	}
	defer closeFn()
	tr := tar.NewReader(&limitedReader{r: dr, n: maxControlTar, what: "control.tar"})
	var haveControl bool
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		p, err := cleanMember(h.Name)
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		name := strings.TrimPrefix(p, "/")
		if strings.Contains(name, "/") || (h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA) {
			return fmt.Errorf("unexpected entry %q in control.tar", h.Name)
		}
		if h.Size > maxControlMember {
			return fmt.Errorf("%s: %d bytes, larger than the %d MiB allowed", name, h.Size, maxControlMember>>20)
		}
		member := info.member(name)
		if member == nil && name != "control" && name != "md5sums" && name != "conffiles" && !isScript(name) {
			continue // clilibs, isinstallable, ...: not needed
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch {
		case name == "control":
			if info.Control, err = control.ParseOne(bytes.NewReader(b)); err != nil {
				return fmt.Errorf("control: %w", err)
			}
			haveControl = true
		case name == "md5sums":
			if info.MD5Sums, err = parseMD5Sums(b); err != nil {
				return err
			}
		case name == "conffiles":
			for _, l := range strings.Split(string(b), "\n") {
				if l = strings.TrimSpace(l); l != "" {
					// dpkg ≥ 1.20 allows a "remove-on-upgrade " flag before the path.
					info.Conffiles = append(info.Conffiles, l[strings.LastIndexByte(l, ' ')+1:])
				}
			}
		case member != nil:
			*member = b
		default:
			if info.Scripts == nil {
				info.Scripts = map[string][]byte{}
			}
			info.Scripts[name] = b
		}
	}
	if !haveControl {
		return errors.New("no control file")
	}
	for _, f := range []string{"Package", "Version", "Architecture"} {
		if info.Control.Get(f) == "" {
			return fmt.Errorf("control: missing %s field", f)
		}
	}
	if err := control.ValidPackageName(info.Control.Get("Package")); err != nil {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}

// member is where Info keeps the control file name other than control, md5sums, conffiles
// and the scripts; nil for others.
func (info *Info) member(name string) *[]byte {
	return controlMember(name, &info.Triggers, &info.Templates, &info.Shlibs, &info.Symbols)
}

func parseMD5Sums(b []byte) (map[string]string, error) {
	sums := map[string]string{}
	for i, l := range strings.Split(string(b), "\n") {
		if l == "" {
			continue
		}
		sum, name, ok := strings.Cut(l, " ")
		if !ok || len(sum) != 32 || strings.Trim(sum, "0123456789abcdefABCDEF") != "" {
			return nil, fmt.Errorf("md5sums line %d: want \"MD5  PATH\"", i+1)
		}
		name = strings.TrimPrefix(strings.TrimPrefix(name, " "), "*")
		p, err := cleanMember(strings.TrimPrefix(name, "./"))
		if err != nil {
			return nil, fmt.Errorf("md5sums line %d: %w", i+1, err)
		}
		sums[p] = strings.ToLower(sum)
	}
	return sums, nil
}

func (info *Info) readData(r io.Reader, c *compression, opt ReadOptions) error {
	dr, closeFn, err := c.newReader(r)
	if err != nil {
		return err
	}
	defer closeFn()
	tr := tar.NewReader(dr)
	h5 := md5.New()
	seen := map[string]bool{}
	links := symlinks{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		p, err := cleanMember(h.Name)
		if err != nil {
			return err
		}
		if err := links.check(p); err != nil {
			return err
		}
		fi := FileInfo{Path: p, Mode: fileMode(h.Mode), UID: h.Uid, GID: h.Gid, Owner: h.Uname, Group: h.Gname,
			MTime: h.ModTime.UTC()}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			fi.Type, fi.Size = TypeFile, h.Size
			if opt.Verify {
				h5.Reset()
				if _, err := io.Copy(h5, tr); err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				if want, ok := info.MD5Sums[p]; ok && want != hex.EncodeToString(h5.Sum(nil)) {
					return fmt.Errorf("%s: content does not match md5sums", p)
				}
			}
		case tar.TypeDir:
			fi.Type = TypeDir
		case tar.TypeSymlink:
			fi.Type, fi.Target = TypeSymlink, h.Linkname
			links[p] = true
		case tar.TypeLink:
			t, err := cleanMember(h.Linkname)
			if err == nil {
				err = links.check(t)
			}
			if err != nil {
				return fmt.Errorf("hard link %s: %w", p, err)
			}
			fi.Type, fi.Target = TypeHardlink, t
		default:
			return fmt.Errorf("%s: unsupported tar entry type %q", p, h.Typeflag)
		}
		seen[p] = true
		if len(seen) > maxEntries {
			return fmt.Errorf("more than %d entries", maxEntries)
		}
		if opt.Files {
			info.Files = append(info.Files, fi)
		}
	}
	if opt.Verify {
		var missing []string
		for p := range info.MD5Sums {
			if !seen[p] {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return fmt.Errorf("md5sums lists %s, which data.tar does not have", missing[0])
		}
	}
	// Read to the end of the compressed stream so that its checksum is verified.
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return err
	}
	return nil
}
