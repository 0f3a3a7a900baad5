package repo

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
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
