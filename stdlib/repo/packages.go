package repo

// The index stage of a publish: Packages, Packages.gz and the per-architecture Release of
// every binary-ARCH directory, each reachable by hash before it goes live.

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upds/upds/interp/atomicfile"
	"github.com/upds/upds/interp/parallel"
)

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

// byHashPolicy says how long by-hash files outlive the index that made them current.
type byHashPolicy struct {
	keepGens int           // the last keepGens generations stay (default 3)
	grace    time.Duration // and any that stopped being current less than grace ago (default 10 minutes)
}

func newByHashPolicy(opt PublishOptions) byHashPolicy {
	p := byHashPolicy{keepGens: opt.KeepGenerations, grace: opt.ByHashGrace}
	if p.keepGens <= 0 {
		p.keepGens = 3
	}
	if p.grace <= 0 {
		p.grace = 10 * time.Minute
	}
	return p
}

// writeIndexes writes Packages, Packages.gz and Release of every binary-ARCH directory
// whose content changed, each through by-hash first, and prunes old by-hash files. ready
// returns once the pool files the indexes list are durable; no index goes live before.
func writeIndexes(pub string, cfg Config, live []*poolEntry, st *state, now time.Time, opt PublishOptions, ready func() error) error {
	dirs, lists := indexDirs(cfg, live)
	dists := filepath.Join(pub, "dists", cfg.Suite)
	pol := newByHashPolicy(opt)
	// Past the point of no return: not cancelled.
	res, err := parallel.Map(context.Background(), len(dirs), 0, func(_ context.Context, i int) (*indexState, error) {
		d, l := dirs[i], lists[i]
		abs := filepath.Join(dists, filepath.FromSlash(d))
		key := listKey(l)
		prev := st.Indexes[d]
		if prev != nil && prev.Key == key && indexIntact(abs, prev) {
			return prev, nil
		}
		return writeIndex(abs, d, cfg, l, key, prev, now, pol, loadGzCache(gzCachePath(pub, d)), ready)
	})
	if err != nil {
		return err
	}
	for i, s := range res {
		st.Indexes[dirs[i]] = s
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

// writeIndex writes the index directory abs (d relative to dists/SUITE) listing l.
func writeIndex(abs, d string, cfg Config, l []*poolEntry, key string, prev *indexState, now time.Time, pol byHashPolicy, zc *gzCache, ready func() error) (*indexState, error) {
	byhash := filepath.Join(abs, "by-hash", "SHA256")
	if err := os.MkdirAll(byhash, 0o755); err != nil {
		return nil, err
	}
	arch := strings.TrimPrefix(path.Base(d), "binary-")
	rel := []byte(fmt.Sprintf("Archive: %s\nOrigin: %s\nLabel: %s\nComponent: %s\nArchitecture: %s\n",
		cfg.Suite, cfg.Origin, cfg.Label, cfg.Component, arch))
	ns := &indexState{Key: key}
	digest := hashStanzas(l)
	pk, ends := packagesSegments(l)
	staged, err := stageIndex(abs, pk, digest, func() ([]byte, error) { return zc.gzip(pk, ends) }, rel, ns)
	for _, f := range staged {
		defer f.Abort()
	}
	if err != nil {
		return nil, err
	}
	if err := ready(); err != nil {
		return nil, err
	}
	if err := installIndex(byhash, staged, ns); err != nil {
		return nil, err
	}
	fi, err := os.Stat(filepath.Join(abs, "Packages"))
	if err != nil {
		return nil, err
	}
	ns.Mtime = fi.ModTime().UnixNano()
	ns.Generations = pruneByHash(byhash, ns, prev, now, pol)
	zc.save()
	return ns, nil
}

// stageIndex writes Packages (pk, whose digests digest returns), Packages.gz (what gzip
// returns) and Release as temporary files in abs (in that order, the order they are renamed
// in), syncs the first two (by-hash links them before they go live) and records their sums in
// ns.Files. Compressing, and writing and syncing Packages run at the same time. The files
// returned, even with an error, must be aborted.
func stageIndex(abs string, pk []byte, digest func() digests, gzip func() ([]byte, error), rel []byte, ns *indexState) ([]*atomicfile.File, error) {
	var wg sync.WaitGroup
	var gz []byte
	var gzErr error
	wg.Go(func() { gz, gzErr = gzip() })
	var staged []*atomicfile.File
	pkf, err := stage(abs, "Packages", pk)
	if err == nil {
		staged = append(staged, pkf)
		err = syncStaged(pkf)
	}
	wg.Wait()
	d := digest()
	if err != nil {
		return staged, err
	}
	if gzErr != nil {
		return staged, gzErr
	}
	ns.Files = map[string]fileSum{
		"Packages":    {Size: int64(len(pk)), MD5: hex.EncodeToString(d.md5[:]), SHA256: hex.EncodeToString(d.sha256[:])},
		"Packages.gz": sums(gz),
		"Release":     sums(rel),
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"Packages.gz", gz}, {"Release", rel}} {
		sf, err := stage(abs, f.name, f.data)
		if err != nil {
			return staged, err
		}
		staged = append(staged, sf)
	}
	return staged, syncStaged(staged[1])
}

// syncStaged syncs a staged file, as it must be before by-hash links it.
func syncStaged(f *atomicfile.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", f.Path(), err)
	}
	return nil
}

// stage writes data to a temporary file, mode 0644, that replaces dir/name on Commit.
func stage(dir, name string, data []byte) (*atomicfile.File, error) {
	f, err := atomicfile.Create(nil, filepath.Join(dir, name), 0o644)
	if err != nil {
		return nil, err
	}
	// The mode is set now, not on Commit: by-hash links share the file before that.
	if _, err = f.Write(data); err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		f.Abort()
		return nil, fmt.Errorf("write %s: %w", f.Path(), err)
	}
	return f, nil
}

// installIndex links the staged (and synced) Packages and Packages.gz into by-hash, then
// renames the staged files into place, in order, and syncs the directory.
func installIndex(byhash string, staged []*atomicfile.File, ns *indexState) error {
	for _, f := range staged[:2] {
		target := filepath.Join(byhash, ns.Files[filepath.Base(f.Path())].SHA256)
		if err := os.Link(f.Name(), target); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("by-hash: %w", err)
		}
	}
	if err := atomicfile.SyncDir(byhash); err != nil {
		return err
	}
	return atomicfile.CommitAll(staged...)
}

// pruneByHash returns the by-hash generations to keep, the new one (ns's) first: the last
// pol.keepGens and any that stopped being current less than pol.grace ago. It deletes the
// other files of byhash.
func pruneByHash(byhash string, ns, prev *indexState, now time.Time, pol byHashPolicy) []generation {
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
		if i < pol.keepGens || now.Unix()-g.Until < int64(pol.grace/time.Second) {
			kept = append(kept, g)
			for _, h := range g.Hashes {
				keep[h] = true
			}
		}
	}
	if ents, err := os.ReadDir(byhash); err == nil {
		for _, e := range ents {
			if !keep[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
				os.Remove(filepath.Join(byhash, e.Name()))
			}
		}
	}
	return kept
}
