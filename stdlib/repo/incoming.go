package repo

// The incoming stage of a publish: validate each upload and move it into the pool or to
// rejected/.

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/version"
)

// uploadName reports whether an incoming file name is a finished upload to consider
// (not a temporary or partial name of an upload still in progress).
func uploadName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	for _, suf := range []string{".tmp", ".part", ".partial", ".filepart", ".crdownload", "~"} {
		if strings.HasSuffix(name, suf) {
			return false
		}
	}
	return true
}

// poolDir returns pool/COMPONENT/PREFIX/SOURCE as Debian lays it out.
func poolDir(component, source string) string {
	prefix := source[:1]
	if strings.HasPrefix(source, "lib") && len(source) > 3 {
		prefix = source[:4]
	}
	return path.Join("pool", component, prefix, source)
}

// debFileName is the canonical pool file name: NAME_VERSION_ARCH.deb, version without epoch.
func debFileName(name, version, arch string) string {
	if i := strings.IndexByte(version, ':'); i >= 0 {
		version = version[i+1:]
	}
	return name + "_" + version + "_" + arch + ".deb"
}

// fileNameMatches checks an uploaded file name against its control fields. The epoch
// may be left out (dpkg's convention), written as %3a (apt's), or written as ':'.
func fileNameMatches(file, name, version, arch string) bool {
	if file == debFileName(name, version, arch) {
		return true
	}
	if !strings.Contains(version, ":") {
		return false
	}
	if u, err := url.PathUnescape(file); err == nil && u == name+"_"+version+"_"+arch+".deb" {
		return true
	}
	return false
}

// checkControl validates the fields a repository relies on.
func checkControl(p control.Paragraph, cfg Config) error {
	name, ver, arch := p.Get("Package"), p.Get("Version"), p.Get("Architecture")
	if name == "" || ver == "" || arch == "" {
		return errors.New("control file lacks Package, Version or Architecture")
	}
	if err := control.ValidPackageName(name); err != nil {
		return err
	}
	if _, err := version.Parse(ver); err != nil {
		return err
	}
	if arch != "all" && !slices.Contains(cfg.Architectures, arch) {
		return fmt.Errorf("architecture %q is not one of the repository's (%s)", arch, strings.Join(cfg.Architectures, " "))
	}
	return nil
}

// sourceName returns the pool directory name: the Source field's name, or the package.
func sourceName(p control.Paragraph) string {
	if s := strings.Fields(p.Get("Source")); len(s) > 0 && control.ValidPackageName(s[0]) == nil {
		return s[0]
	}
	return p.Get("Package")
}

// candidate is an upload being validated.
type candidate struct {
	file  string // name in incoming/
	ctl   control.Paragraph
	rel   string // pool path
	err   error
	entry *poolEntry
	mode  os.FileMode
}

// stream runs produce(0..n-1) on GOMAXPROCS workers and hands every result to consume,
// in the calling goroutine, as soon as it is ready. After consume fails, the remaining
// results are dropped and its error returned.
func stream[T any](n int, produce func(i int) T, consume func(T) error) error {
	out := make(chan T, 64)
	idx := make(chan int)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				out <- produce(i)
			}
		}()
	}
	go func() {
		defer close(idx)
		for i := range n {
			select {
			case idx <- i:
			case <-stop:
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()
	var err error
	for v := range out {
		if err == nil {
			if err = consume(v); err != nil {
				close(stop)
			}
		}
	}
	return err
}

// processIncoming validates uploads and moves them to the pool or to rejected/.
// It calls markDirty before the first change to the pool.
func processIncoming(dir string, cfg Config, entries map[string]*poolEntry, broken map[string]bool, rep *PublishReport, markDirty func() error) error {
	inc := filepath.Join(dir, IncomingDir)
	ents, err := os.ReadDir(inc)
	if err != nil {
		return fmt.Errorf("read %s: %w", inc, err)
	}
	var files []string
	for _, e := range ents {
		if e.Type().IsRegular() && uploadName(e.Name()) {
			files = append(files, e.Name())
		} else if e.Type()&fs.ModeSymlink != 0 && uploadName(e.Name()) {
			files = append(files, e.Name()) // rejected below: uploads must be regular files
		}
	}
	sort.Strings(files)
	pub := filepath.Join(dir, PublicDir)
	var bufs sync.Pool
	// Uploads are read on every core while this goroutine moves the finished ones
	// (mkdir and rename cost as much as reading a tiny package).
	err = stream(len(files), func(i int) *candidate {
		c := &candidate{file: files[i]}
		abs := filepath.Join(inc, c.file)
		if !strings.HasSuffix(c.file, ".deb") {
			c.err = errors.New("not a .deb file (name must end in .deb)")
			return c
		}
		info, fi, err := readDeb(abs, true, &bufs)
		if err != nil {
			c.err = fmt.Errorf("not a valid .deb: %w", err)
			return c
		}
		c.mode = fi.Mode()
		c.ctl = info.Control
		if c.err = checkControl(c.ctl, cfg); c.err != nil {
			return c
		}
		name, ver, arch := c.ctl.Get("Package"), c.ctl.Get("Version"), c.ctl.Get("Architecture")
		if !fileNameMatches(c.file, name, ver, arch) {
			c.err = fmt.Errorf("file name does not match its control fields (Package %s, Version %s, Architecture %s): expected %s",
				name, ver, arch, debFileName(name, ver, arch))
			return c
		}
		c.rel = path.Join(poolDir(cfg.Component, sourceName(c.ctl)), debFileName(name, ver, arch))
		c.entry, c.err = makeEntry(c.rel, info, fi)
		return c
	}, func(c *candidate) error {
		abs := filepath.Join(inc, c.file)
		if c.err == nil {
			if old, ok := entries[c.rel]; ok {
				if old.SHA256 == c.entry.SHA256 {
					if err := os.Remove(abs); err != nil {
						return err
					}
					rep.Unchanged = append(rep.Unchanged, c.file)
					return nil
				}
				c.err = fmt.Errorf("the pool already has %s with different content (sha256 %s); upload a new version instead",
					c.rel, old.SHA256)
			} else if broken[c.rel] {
				c.err = fmt.Errorf("the pool already has an unreadable or unindexed %s; remove it first", c.rel)
			}
		}
		if c.err != nil {
			reason := strings.Join(strings.Fields(c.err.Error()), " ")
			if err := reject(dir, c.file, reason); err != nil {
				return err
			}
			rep.Rejected = append(rep.Rejected, Rejection{File: c.file, Reason: reason})
			return nil
		}
		dst := filepath.Join(pub, filepath.FromSlash(c.rel))
		if err := markDirty(); err != nil {
			return err
		}
		if err := mkdirs(filepath.Dir(dst)); err != nil {
			return err
		}
		if c.mode.Perm() != 0o644 {
			if err := os.Chmod(abs, 0o644); err != nil {
				return err
			}
		}
		// rename keeps the mtime that makeEntry recorded.
		if err := os.Rename(abs, dst); err != nil {
			return fmt.Errorf("move %s into the pool: %w", c.file, err)
		}
		entries[c.rel] = c.entry
		rep.Added = append(rep.Added, c.rel)
		return nil
	})
	sort.Strings(rep.Added)
	sort.Strings(rep.Unchanged)
	sort.Slice(rep.Rejected, func(i, j int) bool { return rep.Rejected[i].File < rep.Rejected[j].File })
	return err
}

// mkdirs is os.MkdirAll that tries the common case (only the last element is
// missing) with one system call.
func mkdirs(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if err == nil || errors.Is(err, os.ErrExist) {
		return nil
	}
	return os.MkdirAll(dir, 0o755)
}

// reject moves an upload to rejected/ and writes FILE.reason.
func reject(dir, file, reason string) error {
	rej := filepath.Join(dir, RejectedDir)
	if err := os.MkdirAll(rej, 0o755); err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(rej, file+".reason"), []byte(reason+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, IncomingDir, file), filepath.Join(rej, file)); err != nil {
		return fmt.Errorf("move %s to rejected/: %w", file, err)
	}
	return nil
}
