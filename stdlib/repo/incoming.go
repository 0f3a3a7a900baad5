package repo

// The incoming stage of a publish: validate each upload and move it into the pool or to
// rejected/.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/upds/upds/interp/atomicfile"
	"github.com/upds/upds/interp/parallel"
	"github.com/upds/upds/interp/storage"
	"github.com/upds/upds/stdlib/deb"
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

// fileNameMatches checks an uploaded file name against its control fields: the pool file
// name (deb.Filename: the epoch left out, dpkg's convention), or with the epoch written as
// %3a (apt's) or as ':'.
func fileNameMatches(file string, ctl control.Paragraph) bool {
	if file == deb.Filename(ctl) {
		return true
	}
	version := ctl.Get("Version")
	if !strings.Contains(version, ":") {
		return false
	}
	u, err := url.PathUnescape(file)
	return err == nil && u == ctl.Get("Package")+"_"+version+"_"+ctl.Get("Architecture")+".deb"
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
	err   error  // why it is refused
	entry *poolEntry
}

// verdict is what becomes of an upload.
type verdict int

const (
	accepted  verdict = iota // moved into the pool
	unchanged                // identical to its pool file: removed from incoming/
	rejected                 // moved to rejected/ with FILE.reason
)

// incoming validates uploads and moves them to the pool or to rejected/. Uploads are read
// on every core while this goroutine decides about each one as soon as it is read; the
// accepted ones then go into the pool with one Put (a Dir renames them, an S3 store
// uploads several at once). The dirty marker is set before the first change to the pool.
// When ctx ends, the accepted uploads stay in incoming/.
func (p *publisher) incoming(ctx context.Context) error {
	inc := filepath.Join(p.dir, IncomingDir)
	files, err := uploads(inc)
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	read := make(chan *candidate, 64)
	go func() {
		defer close(read)
		var bufs sync.Pool
		parallel.ForEach(rctx, len(files), 0, func(ctx context.Context, i int) error {
			select {
			case read <- p.inspect(inc, files[i], &bufs):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var moves []storage.Object
	var added []*candidate
	for c := range read {
		if err != nil {
			continue // draining what the readers had ready
		}
		if err = ctx.Err(); err == nil {
			var move bool
			move, err = p.settle(inc, c)
			if move {
				moves = append(moves, storage.Object{Name: c.rel, File: filepath.Join(inc, c.file), Move: true, CacheControl: storage.ImmutableCache})
				added = append(added, c)
			}
		}
		if err != nil {
			stop()
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil && len(moves) > 0 {
		if err = p.st.pub.Put(ctx, moves...); err != nil {
			err = fmt.Errorf("move uploads into the pool: %w", err)
		}
		for i, c := range added {
			c.entry.Stamp = moves[i].Stamp
		}
	}
	sort.Strings(p.rep.Added)
	sort.Strings(p.rep.Unchanged)
	sort.Slice(p.rep.Rejected, func(i, j int) bool { return p.rep.Rejected[i].File < p.rep.Rejected[j].File })
	return err
}

// uploads lists the finished uploads in inc, sorted.
func uploads(inc string) ([]string, error) {
	ents, err := os.ReadDir(inc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", inc, err)
	}
	var files []string
	for _, e := range ents {
		if e.Type().IsRegular() && uploadName(e.Name()) {
			files = append(files, e.Name())
		} else if e.Type()&fs.ModeSymlink != 0 && uploadName(e.Name()) {
			files = append(files, e.Name()) // rejected: uploads must be regular files
		}
	}
	sort.Strings(files)
	return files, nil
}

// inspect reads and validates the upload inc/file; c.err says why it is refused.
func (p *publisher) inspect(inc, file string, bufs *sync.Pool) *candidate {
	c := &candidate{file: file}
	if !strings.HasSuffix(c.file, ".deb") {
		c.err = errors.New("not a .deb file (name must end in .deb)")
		return c
	}
	info, err := readDeb(filepath.Join(inc, c.file), p.verifyFull(), bufs)
	if err != nil {
		c.err = fmt.Errorf("not a valid .deb: %w", err)
		return c
	}
	c.ctl = info.Control
	if c.err = checkControl(c.ctl, p.cfg); c.err != nil {
		return c
	}
	if !fileNameMatches(c.file, c.ctl) {
		c.err = fmt.Errorf("file name does not match its control fields (Package %s, Version %s, Architecture %s): expected %s",
			c.ctl.Get("Package"), c.ctl.Get("Version"), c.ctl.Get("Architecture"), deb.Filename(c.ctl))
		return c
	}
	c.rel = path.Join(poolDir(p.cfg.Component, sourceName(c.ctl)), deb.Filename(c.ctl))
	c.entry, c.err = makeEntry(c.rel, info, "")
	return c
}

// decide says what becomes of an inspected upload and records it: an accepted upload's
// entry is in the pool from now on, so that a second upload of the same pool path is
// compared with it. The dirty marker is set before the first upload is accepted.
func (p *publisher) decide(c *candidate) (verdict, error) {
	if c.err == nil {
		if old, ok := p.entries[c.rel]; ok {
			if old.SHA256 == c.entry.SHA256 {
				p.rep.Unchanged = append(p.rep.Unchanged, c.file)
				return unchanged, nil
			}
			c.err = fmt.Errorf("the pool already has %s with different content (sha256 %s); upload a new version instead",
				c.rel, old.SHA256)
		} else if p.broken[c.rel] {
			c.err = fmt.Errorf("the pool already has an unreadable or unindexed %s; remove it first", c.rel)
		}
	}
	if c.err != nil {
		p.rep.Rejected = append(p.rep.Rejected, Rejection{File: c.file, Reason: reason(c.err)})
		return rejected, nil
	}
	if err := p.dirty.mark(context.Background()); err != nil {
		return 0, err
	}
	p.entries[c.rel] = c.entry
	p.rep.Added = append(p.rep.Added, c.rel)
	return accepted, nil
}

// reason is an error as one line.
func reason(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// settle does what decide says with an inspected upload: removes it (unchanged), moves it
// to rejected/, or reports that it goes into the pool (move).
func (p *publisher) settle(inc string, c *candidate) (move bool, err error) {
	abs := filepath.Join(inc, c.file)
	v, err := p.decide(c)
	if err != nil {
		return false, err
	}
	switch v {
	case unchanged:
		return false, os.Remove(abs)
	case rejected:
		return false, reject(p.dir, c.file, reason(c.err))
	}
	return true, nil
}

// reject moves an upload to rejected/ and writes FILE.reason. A file of that name rejected
// before is kept: the new one is NAME.1.deb (NAME.2.deb, ...) with its own reason.
func reject(dir, file, reason string) error {
	rej := filepath.Join(dir, RejectedDir)
	if err := os.MkdirAll(rej, 0o755); err != nil {
		return err
	}
	name := freeName(rej, file)
	if err := atomicfile.WriteFile(nil, filepath.Join(rej, name+".reason"), []byte(reason+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, IncomingDir, file), filepath.Join(rej, name)); err != nil {
		return fmt.Errorf("move %s to rejected/: %w", file, err)
	}
	return nil
}

// freeName is file, or NAME.N.EXT for the first N from 1 for which neither it nor its reason
// file exists in dir.
func freeName(dir, file string) string {
	taken := func(n string) bool {
		_, err := os.Lstat(filepath.Join(dir, n))
		_, rerr := os.Lstat(filepath.Join(dir, n+".reason"))
		return err == nil || rerr == nil
	}
	ext := filepath.Ext(file)
	name := file
	for n := 1; taken(name); n++ {
		name = fmt.Sprintf("%s.%d%s", strings.TrimSuffix(file, ext), n, ext)
	}
	return name
}
