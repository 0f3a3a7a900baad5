package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/upds/upds/interp/storage"
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
// DIR/rejected (with FILE.reason), and rewrites setup.sh and the signed indexes
// atomically: pool files first, by-hash index files next, InRelease last; old by-hash
// generations and pruned pool files are deleted only after that. It reads DIR/repo.conf
// once (without one: ErrNotRepository) and prints nothing: what it did, unreadable pool
// files included, is in the report. The published tree is DIR/public, or the S3 prefix
// of repo.conf's Storage (see store.go).
//
// Publishes of the same repository are serialised with a lock: a flock on disk, a lease
// object in the bucket on S3, so that machines publishing to one bucket take turns and
// each sees the packages the others added. As a fence behind the lease, the publish state
// is written with a conditional request before Release: a publisher whose lease was taken
// over (storage.ErrLockLost, or a state written by another meanwhile) stops before its
// Release and InRelease can replace the other's; what it put into the pool is indexed by
// the next publish.
//
// When ctx ends before the new indexes are written, Publish stops and returns ctx's
// error: the published indexes stay as they were and the uploads stay in incoming/. Once
// the indexes are being written, the publish completes (or stops at the fence).
func Publish(ctx context.Context, dir string, opt PublishOptions) (*PublishReport, error) {
	start := time.Now()
	p, err := newPublisher(ctx, dir, opt)
	if err != nil {
		return nil, err
	}
	held, unlock, err := p.st.meta.Lock(ctx, "publish.lock")
	if err != nil {
		return nil, fmt.Errorf("publish: lock repository: %w", err)
	}
	defer unlock()
	if err := removeTemps(dir); err != nil {
		return nil, fmt.Errorf("publish: remove what a killed publish left: %w", err)
	}
	if err := p.prepare(held); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	// The point of no return: from here on the publish runs to its end.
	if err := held.Err(); err != nil {
		return nil, fmt.Errorf("publish: %w", context.Cause(held))
	}
	live, drop := p.retain()
	if err := p.commit(held, live); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if err := p.prune(drop); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	p.cleanIncoming()
	p.rep.Duration = time.Since(start)
	return p.rep, nil
}

// publisher is one publish under way: what it read, what it changed, what it reports.
type publisher struct {
	dir   string // the repository
	st    *stores
	cfg   Config
	opt   PublishOptions
	now   time.Time         // Release Date: opt.Now or the time, UTC, whole seconds
	extra map[string][]byte // public/ path -> content: setup.sh and opt.ExtraFiles
	sig   *signer
	rep   *PublishReport

	state   *state                // the publish state as loaded (meta store)
	stamp   string                // of state.json as loaded; "" for none
	cache   *indexCache           // the index cache as loaded
	entries map[string]*poolEntry // pool path -> entry: what the pool holds
	broken  map[string]bool       // pool paths that could not be read
	dirty   dirtyMarker
	fetched map[string]string // uploads copied from an S3 incoming prefix: name -> stamp
}

func newPublisher(ctx context.Context, dir string, opt PublishOptions) (*publisher, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	for name := range opt.ExtraFiles {
		clean := path.Clean(name)
		if !fs.ValidPath(clean) || clean == "." || clean == "dists" || clean == "pool" ||
			strings.HasPrefix(clean, "dists/") || strings.HasPrefix(clean, "pool/") || strings.HasPrefix(clean, metaDir) {
			return nil, fmt.Errorf("publish: extra file %q must be a relative path outside dists/ and pool/", name)
		}
	}
	st, err := openStores(ctx, dir, cfg)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if cfg.URL == "" {
		cfg.URL = st.httpURL()
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	return &publisher{
		dir: dir, st: st, cfg: cfg, opt: opt,
		now:   now.UTC().Truncate(time.Second),
		rep:   &PublishReport{Added: []string{}, Unchanged: []string{}, Rejected: []Rejection{}, Removed: []string{}},
		dirty: dirtyMarker{meta: st.meta},
	}, nil
}

// prepare does what comes before the point of no return: the signing key and setup.sh,
// the pool as it is, and the uploads.
func (p *publisher) prepare(ctx context.Context) error {
	if err := p.loadKey(ctx); err != nil {
		return err
	}
	var err error
	if p.state, p.stamp, err = loadState(ctx, p.st.meta); err != nil {
		return err
	}
	if err := p.loadPool(ctx); err != nil {
		return err
	}
	if err := p.fetchUploads(ctx); err != nil {
		return err
	}
	return p.incoming(ctx)
}

// loadKey loads the signing key, and makes setup.sh with the public key of the
// published tree.
func (p *publisher) loadKey(ctx context.Context) error {
	keyData, err := os.ReadFile(filepath.Join(p.dir, KeyFile))
	if err != nil {
		return err
	}
	if p.sig, err = loadSigner(keyData); err != nil {
		return err
	}
	pub, _, err := storage.ReadFile(ctx, p.st.pub, "key.asc")
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	script, err := setupScript(pub, p.cfg)
	if err != nil {
		return err
	}
	p.extra = map[string][]byte{SetupScriptFile: script}
	maps.Copy(p.extra, p.opt.ExtraFiles)
	return nil
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

// commit makes live the published state: by-hash files, indexes, extra files, Release
// and Release.gpg; then the state, written only if no other publisher wrote one since it
// was loaded; then InRelease, only while the lock is held; then it deletes the by-hash files
// no generation keeps and saves the index cache of this machine.
func (p *publisher) commit(held context.Context, live []*poolEntry) error {
	ctx := context.WithoutCancel(held)
	old, err := writeIndexes(ctx, p.st.pub, p.dir, p.cfg, live, p.state, p.now, p.opt)
	if err != nil {
		return err
	}
	p.state.ID = newID()
	fence := func() error {
		err := saveState(ctx, p.st.meta, p.state, p.stamp)
		if errors.Is(err, storage.ErrPrecondition) {
			return fmt.Errorf("InRelease not written: another publisher wrote %s/state.json meanwhile (this one's lock was taken over); publish again", p.st.meta)
		}
		if err != nil {
			return fmt.Errorf("save state: %w", err)
		}
		if err := held.Err(); err != nil {
			return fmt.Errorf("InRelease not written: %w", context.Cause(held))
		}
		return nil
	}
	if err := writeRelease(ctx, p.st.pub, p.cfg, p.state, p.sig, p.now, p.extra, fence); err != nil {
		return err
	}
	if err := p.st.pub.Delete(ctx, old...); err != nil {
		return fmt.Errorf("delete old by-hash files: %w", err)
	}
	if err := saveCache(p.dir, p.cache, live, p.state.ID); err != nil {
		return fmt.Errorf("save cache: %w", err)
	}
	return nil
}

// newID names a publish: the index cache of a machine is current while the state in the
// store names the publish it saved.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// prune deletes the pool files the new index no longer lists.
func (p *publisher) prune(drop []*poolEntry) error {
	ctx := context.Background()
	if len(drop) > 0 {
		if err := p.dirty.mark(ctx); err != nil {
			return err
		}
		names := make([]string, len(drop))
		for i, e := range drop {
			names[i] = e.Path
		}
		if err := p.st.pub.Delete(ctx, names...); err != nil {
			return fmt.Errorf("remove old versions: %w", err)
		}
		p.rep.Removed = append(p.rep.Removed, names...)
	}
	return p.dirty.clear(ctx)
}

// dirtyMarker is pool.dirty in the meta store: it exists while a publish may have changed
// the pool but not yet the state, and makes the next publish (of any machine) walk the
// pool.
type dirtyMarker struct {
	meta storage.Store
	set  bool // the object exists
}

func (m *dirtyMarker) load(ctx context.Context) {
	_, err := m.meta.Stat(ctx, "pool.dirty")
	m.set = err == nil
}

// mark creates the marker before the first change to the pool.
func (m *dirtyMarker) mark(ctx context.Context) error {
	if m.set {
		return nil
	}
	m.set = true
	return m.meta.Put(ctx, storage.Object{Name: "pool.dirty", Data: []byte{}})
}

// clear removes the marker once the index cache and the state describe the pool.
func (m *dirtyMarker) clear(ctx context.Context) error {
	if !m.set {
		return nil
	}
	m.set = false
	return m.meta.Delete(ctx, "pool.dirty")
}
