package repo

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"

	"github.com/upds/upds/stdlib/deb"
	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/version"
)

// PublishOptions configure Publish.
type PublishOptions struct {
	// KeepVersions, when > 0, keeps only the N newest versions (dpkg ordering) of each
	// package and architecture; older pool files are deleted after the new index is live.
	KeepVersions int
	// ExtraFiles are written atomically into public/ (path relative to public/, e.g.
	// "setup.sh") before the signed indexes are renamed into place.
	ExtraFiles map[string][]byte
	// Rescan walks the whole pool instead of trusting the index cache: use it after
	// changing public/pool by hand. (Publish rescans by itself when the cache is
	// missing or an earlier publish was interrupted.)
	Rescan bool
	// Now is the publish time (Release Date); zero means time.Now().
	Now time.Time
	// ByHashGrace keeps by-hash files of replaced indexes at least this long after they
	// stopped being current (default 10 minutes), in addition to the last
	// KeepGenerations generations (default 3).
	ByHashGrace     time.Duration
	KeepGenerations int
}

// Rejection is an upload that was refused.
type Rejection struct {
	File   string `json:"file"`   // the upload's name, now in rejected/
	Reason string `json:"reason"` // one line, also in rejected/FILE.reason
}

// PublishReport says what a publish did.
type PublishReport struct {
	Added     []string      `json:"added"`       // pool paths (relative to public/) of accepted uploads
	Unchanged []string      `json:"unchanged"`   // uploads identical to a pool file; removed from incoming
	Rejected  []Rejection   `json:"rejected"`    // uploads moved to rejected/
	Removed   []string      `json:"removed"`     // pool paths deleted because of KeepVersions
	Packages  int           `json:"packages"`    // packages in the published index
	Duration  time.Duration `json:"duration_ns"` // wall time of the publish
}

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

// stanzaFirst lists the Packages fields in the order apt-ftparchive writes them; others follow.
var stanzaFirst = []string{"Package", "Source", "Version", "Architecture", "Maintainer", "Installed-Size"}

// readDeb reads the .deb at abs: control data and whole-file hashes, and with verify
// also every data.tar path (none may escape the package root) and the md5sums.
// Buffers come from bufs (a pool of *bufio.Reader), as allocating one per file
// costs more than reading a tiny package. Symbolic links are not followed. The
// returned FileInfo is the file's as read (size and mtime key the index cache).
func readDeb(abs string, verify bool, bufs *sync.Pool) (*deb.Info, os.FileInfo, error) {
	f, err := os.OpenFile(abs, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, nil, errors.New("not a regular file (symbolic link)")
		}
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, errors.New("not a regular file")
	}
	br, _ := bufs.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(f, 64<<10)
	} else {
		br.Reset(f)
	}
	defer bufs.Put(br)
	info, err := deb.Read(br, deb.ReadOptions{Hash: true, Verify: verify})
	if err != nil {
		return nil, nil, err
	}
	if info.Size != fi.Size() {
		return nil, nil, errors.New("file changed while being read")
	}
	return info, fi, nil
}

// makeEntry builds the index entry of a .deb for pool path rel.
func makeEntry(rel string, info *deb.Info, fi os.FileInfo) (*poolEntry, error) {
	p := info.Control
	size, md5hex, shahex := info.Size, info.MD5, info.SHA256
	var out control.Paragraph
	for _, n := range stanzaFirst {
		if v := p.Get(n); v != "" {
			out.Set(n, v)
		}
	}
	desc := p.Get("Description")
	for _, f := range p.Fields {
		switch strings.ToLower(f.Name) {
		case "package", "source", "version", "architecture", "maintainer", "installed-size",
			"description", "filename", "size", "md5sum", "sha1", "sha256", "sha512", "description-md5", "status":
			continue
		}
		out.Fields = append(out.Fields, f)
	}
	out.Set("Filename", rel)
	out.Set("Size", strconv.FormatInt(size, 10))
	out.Set("MD5sum", md5hex)
	out.Set("SHA256", shahex)
	if desc != "" {
		out.Set("Description", desc)
	}
	st, err := out.Bytes()
	if err != nil {
		return nil, err
	}
	e := &poolEntry{
		Path: rel, Size: size, Mtime: fi.ModTime().UnixNano(),
		Name: p.Get("Package"), Version: p.Get("Version"), Arch: p.Get("Architecture"),
		SHA256: shahex, Stanza: st,
	}
	return e, nil
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

// Publish moves valid uploads from DIR/incoming into the pool, moves invalid ones to
// DIR/rejected (with FILE.reason), and rewrites the signed indexes atomically.
// Publishes of the same repository are serialised with a lock.
func Publish(dir string, opt PublishOptions) (*PublishReport, error) {
	start := time.Now()
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	for name := range opt.ExtraFiles {
		clean := path.Clean(name)
		if !fs.ValidPath(clean) || clean == "." || clean == "dists" || clean == "pool" ||
			strings.HasPrefix(clean, "dists/") || strings.HasPrefix(clean, "pool/") {
			return nil, fmt.Errorf("publish: extra file %q must be a relative path outside dists/ and pool/", name)
		}
	}
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	keyData, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	sig, err := loadSigner(keyData)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	pub := filepath.Join(dir, PublicDir)
	rep := &PublishReport{Added: []string{}, Unchanged: []string{}, Rejected: []Rejection{}, Removed: []string{}}

	// 1. What is in the pool: the index cache, which only Publish changes (under the
	// lock). The pool is walked (cached entries reused when size and mtime match)
	// when asked to, when the cache is missing, or when a publish was interrupted
	// between changing the pool and saving the cache (the dirty marker).
	cache := loadCache(dir)
	marker := filepath.Join(dir, dirtyFile)
	_, dirtyErr := os.Lstat(marker)
	var entries map[string]*poolEntry
	broken := map[string]bool{}
	if opt.Rescan || !cache.ok || dirtyErr == nil {
		if entries, broken, err = scanPool(pub, cache.entries); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	} else {
		entries = maps.Clone(cache.entries)
	}
	// The marker is created before the first change to the pool. It needs no fsync of
	// its own: the journal commits it no later than the pool renames that follow it,
	// and those are synced before any index refers to them.
	dirty := dirtyErr == nil
	markDirty := func() error {
		if dirty {
			return nil
		}
		dirty = true
		return os.WriteFile(marker, nil, 0o600)
	}

	// 2. Uploads.
	if err := processIncoming(dir, cfg, entries, broken, rep, markDirty); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	// Make the moved pool files durable before any index refers to them: a few are
	// synced one by one (uploads may not have been), many with one syncfs.
	if n := len(rep.Added); n > 16 {
		if err := syncfs(pub); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	} else if n > 0 {
		dirs := map[string]bool{filepath.Join(dir, IncomingDir): true}
		for _, a := range rep.Added {
			p := filepath.Join(pub, filepath.FromSlash(a))
			if err := syncFile(p); err != nil {
				return nil, fmt.Errorf("publish: %w", err)
			}
			dirs[filepath.Dir(p)] = true
		}
		for d := range dirs {
			if err := syncDir(d); err != nil {
				return nil, fmt.Errorf("publish: %w", err)
			}
		}
	}

	// 3. Retention.
	live := make([]*poolEntry, 0, len(entries))
	for _, e := range entries {
		live = append(live, e)
	}
	sortEntries(live)
	var drop []*poolEntry
	if opt.KeepVersions > 0 {
		live, drop = keepNewest(live, opt.KeepVersions)
	}
	rep.Packages = len(live)

	// 4. Indexes, extra files, Release, signatures (InRelease last).
	st := loadState(dir)
	if err := writeIndexes(pub, cfg, live, st, now, opt); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	for name, data := range opt.ExtraFiles {
		if err := WriteFileAtomic(filepath.Join(pub, filepath.FromSlash(path.Clean(name))), data, 0o644); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	}
	if err := writeRelease(pub, cfg, st, sig, now); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}

	// 5. The new index is live: remember it, then delete what it no longer lists.
	if err := saveCache(dir, cache, live); err != nil {
		return nil, fmt.Errorf("publish: save cache: %w", err)
	}
	if err := saveState(dir, st); err != nil {
		return nil, fmt.Errorf("publish: save state: %w", err)
	}
	if len(drop) > 0 {
		if err := markDirty(); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	}
	for _, e := range drop {
		if err := os.Remove(filepath.Join(pub, filepath.FromSlash(e.Path))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("publish: remove old version: %w", err)
		}
		rep.Removed = append(rep.Removed, e.Path)
		removeEmptyDirs(pub, path.Dir(e.Path))
	}
	if dirty {
		if err := os.Remove(marker); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// scanPool lists the .deb files under public/pool, reusing cached entries whose
// size and mtime still match and reading the others.
// Unreadable pool files are left out of the index and returned in broken.
func scanPool(pub string, cache map[string]*poolEntry) (entries map[string]*poolEntry, broken map[string]bool, err error) {
	entries = make(map[string]*poolEntry, len(cache))
	broken = map[string]bool{}
	var todo []string
	root := filepath.Join(pub, "pool")
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && p == root {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".deb") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, _ := filepath.Rel(pub, p)
		rel = filepath.ToSlash(rel)
		if c, ok := cache[rel]; ok {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Size() == c.Size && fi.ModTime().UnixNano() == c.Mtime {
				entries[rel] = c
				return nil
			}
		}
		todo = append(todo, rel)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scan pool: %w", err)
	}
	var bufs sync.Pool
	results := parallel(len(todo), func(i int) (*poolEntry, error) {
		abs := filepath.Join(pub, filepath.FromSlash(todo[i]))
		info, fi, err := readDeb(abs, false, &bufs)
		if err != nil {
			return nil, fmt.Errorf("pool file %s: %w", todo[i], err)
		}
		return makeEntry(todo[i], info, fi)
	})
	for i, r := range results {
		if r.err != nil {
			// A broken pool file is left out of the index rather than failing every publish.
			fmt.Fprintf(os.Stderr, "upds repo: skipping %s\n", r.err)
			broken[todo[i]] = true
			continue
		}
		entries[todo[i]] = r.v
	}
	return entries, broken, nil
}

type result[T any] struct {
	v   T
	err error
}

// parallel runs f(0..n-1) on GOMAXPROCS workers.
func parallel[T any](n int, f func(i int) (T, error)) []result[T] {
	out := make([]result[T], n)
	workers := min(runtime.GOMAXPROCS(0), n)
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				v, err := f(i)
				out[i] = result[T]{v, err}
			}
		}()
	}
	wg.Wait()
	return out
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

func sortEntries(es []*poolEntry) {
	sort.Slice(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			if c := version.Compare(a.parsedVersion(), b.parsedVersion()); c != 0 {
				return c < 0
			}
		}
		if a.Arch != b.Arch {
			return a.Arch < b.Arch
		}
		return a.Path < b.Path
	})
}

// keepNewest keeps the n newest versions of each (package, architecture); es is sorted.
func keepNewest(es []*poolEntry, n int) (keep, drop []*poolEntry) {
	type key struct{ name, arch string }
	groups := map[key][]*poolEntry{}
	for _, e := range es {
		k := key{e.Name, e.Arch}
		groups[k] = append(groups[k], e)
	}
	dropSet := map[*poolEntry]bool{}
	for _, g := range groups {
		// g is in ascending version order; several files of the same version stay together.
		versions := 0
		for i := len(g) - 1; i >= 0; i-- {
			if i == len(g)-1 || version.Compare(g[i].parsedVersion(), g[i+1].parsedVersion()) != 0 {
				versions++
			}
			if versions > n {
				dropSet[g[i]] = true
			}
		}
	}
	for _, e := range es {
		if dropSet[e] {
			drop = append(drop, e)
		} else {
			keep = append(keep, e)
		}
	}
	return keep, drop
}

func removeEmptyDirs(pub, rel string) {
	for rel != "pool" && rel != "." && strings.HasPrefix(rel, "pool/") {
		if os.Remove(filepath.Join(pub, filepath.FromSlash(rel))) != nil {
			return
		}
		rel = path.Dir(rel)
	}
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// indexDirs returns, for each configured architecture, the directory of its index
// (relative to dists/SUITE) and the entries it lists.
func indexDirs(cfg Config, live []*poolEntry) ([]string, [][]*poolEntry) {
	var dirs []string
	var lists [][]*poolEntry
	for _, a := range cfg.Architectures {
		var l []*poolEntry
		for _, e := range live {
			if e.Arch == a || (e.Arch == "all" && a != "all") {
				l = append(l, e)
			}
		}
		dirs = append(dirs, cfg.Component+"/binary-"+a)
		lists = append(lists, l)
	}
	return dirs, lists
}

// listKey identifies a list of entries (paths and content).
func listKey(l []*poolEntry) string {
	h := sha256.New()
	for _, e := range l {
		io.WriteString(h, e.Path)
		h.Write([]byte{0})
		io.WriteString(h, e.SHA256)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sums(data []byte) fileSum {
	m := md5.Sum(data)
	s := sha256.Sum256(data)
	return fileSum{Size: int64(len(data)), MD5: hex.EncodeToString(m[:]), SHA256: hex.EncodeToString(s[:])}
}

// writeIndexes writes Packages, Packages.gz and Release of every binary-ARCH directory
// whose content changed, each through by-hash first, and prunes old by-hash files.
func writeIndexes(pub string, cfg Config, live []*poolEntry, st *state, now time.Time, opt PublishOptions) error {
	dirs, lists := indexDirs(cfg, live)
	dists := filepath.Join(pub, "dists", cfg.Suite)
	keepGens := opt.KeepGenerations
	if keepGens <= 0 {
		keepGens = 3
	}
	grace := opt.ByHashGrace
	if grace <= 0 {
		grace = 10 * time.Minute
	}
	res := parallel(len(dirs), func(i int) (*indexState, error) {
		d, l := dirs[i], lists[i]
		abs := filepath.Join(dists, filepath.FromSlash(d))
		key := listKey(l)
		prev := st.Indexes[d]
		if prev != nil && prev.Key == key && indexIntact(abs, prev) {
			return prev, nil
		}
		return writeIndex(abs, d, cfg, l, key, prev, now, keepGens, grace)
	})
	for i, r := range res {
		if r.err != nil {
			return r.err
		}
		st.Indexes[dirs[i]] = r.v
	}
	// Forget architectures no longer configured.
	for d := range st.Indexes {
		if !slices.Contains(dirs, d) {
			delete(st.Indexes, d)
		}
	}
	return nil
}

func indexIntact(abs string, s *indexState) bool {
	fi, err := os.Stat(filepath.Join(abs, "Packages"))
	return err == nil && fi.Size() == s.Files["Packages"].Size && fi.ModTime().UnixNano() == s.Mtime
}

func writeIndex(abs, d string, cfg Config, l []*poolEntry, key string, prev *indexState, now time.Time, keepGens int, grace time.Duration) (*indexState, error) {
	size := 0
	for _, e := range l {
		size += len(e.Stanza) + 1
	}
	pk := make([]byte, 0, size)
	for i, e := range l {
		if i > 0 {
			pk = append(pk, '\n')
		}
		pk = append(pk, e.Stanza...)
	}
	arch := strings.TrimPrefix(path.Base(d), "binary-")
	rel := []byte(fmt.Sprintf("Archive: %s\nOrigin: %s\nLabel: %s\nComponent: %s\nArchitecture: %s\n",
		cfg.Suite, cfg.Origin, cfg.Label, cfg.Component, arch))
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	byhash := filepath.Join(abs, "by-hash", "SHA256")
	if err := os.MkdirAll(byhash, 0o755); err != nil {
		return nil, err
	}
	// Temporary files first, linked into by-hash, then renamed into place. Compressing,
	// hashing and writing Packages run at the same time.
	ns := &indexState{Key: key, Files: map[string]fileSum{}}
	tmps := map[string]string{}
	defer func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}()
	var wg sync.WaitGroup
	var gz []byte
	var gzErr error
	wg.Go(func() { gz, gzErr = gzipBytes(pk) })
	var pkMD5 [md5.Size]byte
	var pkSHA [sha256.Size]byte
	wg.Go(func() { pkMD5 = md5.Sum(pk) })
	wg.Go(func() { pkSHA = sha256.Sum256(pk) })
	t, err := writeTemp(abs, "Packages", pk, 0o644)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	tmps["Packages"] = t
	if gzErr != nil {
		return nil, gzErr
	}
	ns.Files["Packages"] = fileSum{Size: int64(len(pk)), MD5: hex.EncodeToString(pkMD5[:]), SHA256: hex.EncodeToString(pkSHA[:])}
	ns.Files["Packages.gz"] = sums(gz)
	ns.Files["Release"] = sums(rel)
	if tmps["Packages.gz"], err = writeTemp(abs, "Packages.gz", gz, 0o644); err != nil {
		return nil, err
	}
	if tmps["Release"], err = writeTemp(abs, "Release", rel, 0o644); err != nil {
		return nil, err
	}
	for _, n := range []string{"Packages", "Packages.gz"} {
		target := filepath.Join(byhash, ns.Files[n].SHA256)
		if err := os.Link(tmps[n], target); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("by-hash: %w", err)
		}
	}
	if err := syncDir(byhash); err != nil {
		return nil, err
	}
	for _, n := range []string{"Packages", "Packages.gz", "Release"} {
		if err := os.Rename(tmps[n], filepath.Join(abs, n)); err != nil {
			return nil, err
		}
		delete(tmps, n)
	}
	if err := syncDir(abs); err != nil {
		return nil, err
	}
	fi, err := os.Stat(filepath.Join(abs, "Packages"))
	if err != nil {
		return nil, err
	}
	ns.Mtime = fi.ModTime().UnixNano()

	// by-hash generations: the new one first; keep the last keepGens and any that
	// stopped being current less than grace ago.
	cur := generation{Hashes: []string{ns.Files["Packages"].SHA256, ns.Files["Packages.gz"].SHA256}}
	var gens []generation
	if prev != nil {
		gens = prev.Generations
	}
	if len(gens) > 0 && gens[0].Until == 0 {
		gens[0].Until = now.Unix()
	}
	gens = append([]generation{cur}, gens...)
	keep := map[string]bool{}
	var kept []generation
	for i, g := range gens {
		if i < keepGens || now.Unix()-g.Until < int64(grace/time.Second) {
			kept = append(kept, g)
			for _, h := range g.Hashes {
				keep[h] = true
			}
		}
	}
	ns.Generations = kept
	if ents, err := os.ReadDir(byhash); err == nil {
		for _, e := range ents {
			if !keep[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
				os.Remove(filepath.Join(byhash, e.Name()))
			}
		}
	}
	return ns, nil
}

func gzipBytes(data []byte) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(data)/8 + 64)
	zw, err := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeRelease writes dists/SUITE/Release, Release.gpg and, last, InRelease.
func writeRelease(pub string, cfg Config, st *state, sig *signer, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Origin: %s\nLabel: %s\nSuite: %s\nCodename: %s\n", cfg.Origin, cfg.Label, cfg.Suite, cfg.Codename)
	fmt.Fprintf(&b, "Date: %s\n", now.UTC().Format(time.RFC1123))
	if cfg.ValidFor > 0 {
		fmt.Fprintf(&b, "Valid-Until: %s\n", now.Add(cfg.ValidFor).UTC().Format(time.RFC1123))
	}
	fmt.Fprintf(&b, "Architectures: %s\nComponents: %s\n", strings.Join(cfg.Architectures, " "), cfg.Component)
	if cfg.Description != "" {
		fmt.Fprintf(&b, "Description: %s\n", cfg.Description)
	}
	b.WriteString("Acquire-By-Hash: yes\n")
	type line struct {
		name string
		s    fileSum
	}
	var lines []line
	for d, s := range st.Indexes {
		for n, fs := range s.Files {
			lines = append(lines, line{d + "/" + n, fs})
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].name < lines[j].name })
	b.WriteString("MD5Sum:\n")
	for _, l := range lines {
		fmt.Fprintf(&b, " %s %8d %s\n", l.s.MD5, l.s.Size, l.name)
	}
	b.WriteString("SHA256:\n")
	for _, l := range lines {
		fmt.Fprintf(&b, " %s %8d %s\n", l.s.SHA256, l.s.Size, l.name)
	}
	text := []byte(b.String())
	inrelease, err := sig.clearsign(text, now)
	if err != nil {
		return err
	}
	detached, err := sig.detach(text, now)
	if err != nil {
		return err
	}
	dists := filepath.Join(pub, "dists", cfg.Suite)
	if err := os.MkdirAll(dists, 0o755); err != nil {
		return err
	}
	// All three synced first, then renamed in order: InRelease last.
	var tmps []string
	defer func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}()
	names := []string{"Release", "Release.gpg", "InRelease"}
	for i, data := range [][]byte{text, detached, inrelease} {
		t, err := writeTemp(dists, names[i], data, 0o644)
		if err != nil {
			return err
		}
		tmps = append(tmps, t)
	}
	for i, n := range names {
		if err := os.Rename(tmps[i], filepath.Join(dists, n)); err != nil {
			return err
		}
		tmps[i] = ""
	}
	tmps = nil
	return syncDir(dists)
}
