package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/upds/upds/interp/atomicfile"
	"golang.org/x/sys/unix"
)

// PublishOptions configure Publish.
type PublishOptions struct {
	// KeepVersions, when > 0, keeps only the N newest versions (dpkg ordering) of each
	// package and architecture; older pool files are deleted after the new index is live.
	KeepVersions int
	// ExtraFiles are written atomically into public/ (path relative to public/, e.g.
	// "docs/README.txt") before the signed indexes are renamed into place, like the
	// setup.sh every publish writes; a "setup.sh" here replaces the generated one. A file
	// already there with the same content (mode 0644) is left alone.
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
	// Verify, when set, overrides repo.conf's Verify for this publish.
	Verify Verify
}

// Rejection is an upload that was refused.
type Rejection struct {
	File   string `json:"file"`   // the upload's name, now in rejected/
	Reason string `json:"reason"` // one line, also in rejected/FILE.reason
}

// BrokenFile is a pool file that could not be read. It is left out of the index rather
// than failing every publish; an upload of the same pool path is rejected.
type BrokenFile struct {
	Path   string `json:"path"`   // relative to public/
	Reason string `json:"reason"` // why it could not be read
}

// PublishReport says what a publish did.
type PublishReport struct {
	Added     []string      `json:"added"`            // pool paths (relative to public/) of accepted uploads
	Unchanged []string      `json:"unchanged"`        // uploads identical to a pool file; removed from incoming
	Rejected  []Rejection   `json:"rejected"`         // uploads moved to rejected/
	Removed   []string      `json:"removed"`          // pool paths deleted because of KeepVersions
	Broken    []BrokenFile  `json:"broken,omitempty"` // unreadable pool files found walking the pool
	Packages  int           `json:"packages"`         // packages in the published index
	Duration  time.Duration `json:"duration_ns"`      // wall time of the publish
}

// Publish moves valid uploads from DIR/incoming into the pool, moves invalid ones to
// DIR/rejected (with FILE.reason), and rewrites public/setup.sh and the signed indexes
// atomically. It reads DIR/repo.conf once (without one: ErrNotRepository) and prints
// nothing: what it did, unreadable pool files included, is in the report.
// Publishes of the same repository are serialised with a lock.
//
// When ctx ends before the new indexes are written, Publish stops and returns ctx's
// error: the published indexes stay as they were, uploads already moved into the pool are
// synced (the next publish walks the pool and indexes them) and the others stay in
// incoming/. Once the indexes are being written, the publish completes.
func Publish(ctx context.Context, dir string, opt PublishOptions) (*PublishReport, error) {
	start := time.Now()
	p, err := newPublisher(dir, opt)
	if err != nil {
		return nil, err
	}
	unlock, err := lock(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	defer unlock()
	if err := removeTemps(dir); err != nil {
		return nil, fmt.Errorf("publish: remove what a killed publish left: %w", err)
	}
	if err := p.loadKey(); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if err := p.loadPool(ctx); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if err := p.incoming(ctx); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	defer p.waitAdded() // whatever happens next, the uploads moved are synced under the lock
	// The point of no return: from here on the publish runs to its end.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	live, drop := p.retain()
	if err := p.commit(live); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if err := p.prune(drop); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	p.rep.Duration = time.Since(start)
	return p.rep, nil
}

// publisher is one publish under way: what it read, what it changed, what it reports.
type publisher struct {
	dir, pub string // the repository and its public/
	cfg      Config
	opt      PublishOptions
	now      time.Time         // Release Date: opt.Now or the time, UTC, whole seconds
	extra    map[string][]byte // public/ path -> content: setup.sh and opt.ExtraFiles
	sig      *signer
	rep      *PublishReport

	cache   *indexCache           // the index cache as loaded
	entries map[string]*poolEntry // pool path -> entry: what the pool holds
	broken  map[string]bool       // pool paths that could not be read
	dirty   dirtyMarker
	added   func() error // waits for the sync of accepted uploads (see incoming)
}

func newPublisher(dir string, opt PublishOptions) (*publisher, error) {
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
	script, err := setupScript(dir, cfg)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	extra := map[string][]byte{SetupScriptFile: script}
	maps.Copy(extra, opt.ExtraFiles)
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	return &publisher{
		dir: dir, pub: filepath.Join(dir, PublicDir), cfg: cfg, opt: opt, extra: extra,
		now:   now.UTC().Truncate(time.Second),
		rep:   &PublishReport{Added: []string{}, Unchanged: []string{}, Rejected: []Rejection{}, Removed: []string{}},
		dirty: dirtyMarker{path: filepath.Join(dir, dirtyFile)},
	}, nil
}

// loadKey loads the signing key.
func (p *publisher) loadKey() error {
	keyData, err := os.ReadFile(filepath.Join(p.dir, KeyFile))
	if err != nil {
		return err
	}
	p.sig, err = loadSigner(keyData)
	return err
}

// retain returns the entries the new index lists, in index order, and those that
// KeepVersions drops from the pool.
func (p *publisher) retain() (live, drop []*poolEntry) {
	live = p.sortedLive()
	if p.opt.KeepVersions > 0 {
		live, drop = keepNewest(live, p.opt.KeepVersions)
	}
	p.rep.Packages = len(live)
	return live, drop
}

// commit makes live the published state: indexes, extra files, Release and its
// signatures (InRelease last); then it remembers what it published (index cache, state).
func (p *publisher) commit(live []*poolEntry) error {
	st := loadState(p.dir)
	if err := writeIndexes(p.pub, p.cfg, live, st, p.now, p.opt, p.waitAdded); err != nil {
		return err
	}
	if err := p.waitAdded(); err != nil {
		return err
	}
	// Release and the private files at the same time: their fsyncs are most of their cost.
	// The order of the private ones does not matter: until the dirty marker is cleared, a
	// publish interrupted now walks the pool, and Release is written from the state anew.
	var wg sync.WaitGroup
	var relErr, cacheErr, stateErr error
	wg.Go(func() { relErr = writeRelease(p.pub, p.cfg, st, p.sig, p.now, p.extra) })
	wg.Go(func() { cacheErr = saveCache(p.dir, p.cache, live) })
	wg.Go(func() { stateErr = saveState(p.dir, st) })
	wg.Wait()
	switch {
	case relErr != nil:
		return relErr
	case cacheErr != nil:
		return fmt.Errorf("save cache: %w", cacheErr)
	case stateErr != nil:
		return fmt.Errorf("save state: %w", stateErr)
	}
	return nil
}

// prune deletes the pool files the new index no longer lists.
func (p *publisher) prune(drop []*poolEntry) error {
	if len(drop) > 0 {
		if err := p.dirty.mark(); err != nil {
			return err
		}
	}
	for _, e := range drop {
		if err := os.Remove(filepath.Join(p.pub, filepath.FromSlash(e.Path))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove old version: %w", err)
		}
		p.rep.Removed = append(p.rep.Removed, e.Path)
		removeEmptyDirs(p.pub, path.Dir(e.Path))
	}
	return p.dirty.clear()
}

// dirtyMarker is private/pool.dirty: it exists while a publish may have changed the pool
// but not yet the index cache, and makes the next publish walk the pool.
type dirtyMarker struct {
	path string
	set  bool // the file exists
}

// mark creates the marker before the first change to the pool. It needs no fsync of
// its own: the journal commits it no later than the pool renames that follow it, and
// those are synced before any index refers to them.
func (m *dirtyMarker) mark() error {
	if m.set {
		return nil
	}
	m.set = true
	return os.WriteFile(m.path, nil, 0o600)
}

// clear removes the marker once the index cache describes the pool.
func (m *dirtyMarker) clear() error {
	if !m.set {
		return nil
	}
	m.set = false
	return os.Remove(m.path)
}

// waitAdded waits for the sync of accepted uploads that incoming started, if any.
func (p *publisher) waitAdded() error {
	if p.added == nil {
		return nil
	}
	return p.added()
}

// syncAdded makes the pool files of accepted uploads durable before any index refers
// to them: a few are synced one by one (uploads may not have been), many with one syncfs.
func (p *publisher) syncAdded() error {
	if n := len(p.rep.Added); n > 16 {
		return syncfs(p.pub)
	} else if n == 0 {
		return nil
	}
	dirs := map[string]bool{filepath.Join(p.dir, IncomingDir): true}
	for _, a := range p.rep.Added {
		f := filepath.Join(p.pub, filepath.FromSlash(a))
		if err := syncFile(f); err != nil {
			return err
		}
		dirs[filepath.Dir(f)] = true
	}
	for d := range dirs {
		if err := atomicfile.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
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
