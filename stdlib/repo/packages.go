package repo

// The index stage of a publish: Packages, Packages.gz and the per-architecture Release of
// every binary-ARCH directory, each reachable by hash before it goes live.

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upds/upds/interp/parallel"
	"github.com/upds/upds/interp/storage"
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
	buf := make([]byte, 0, 64<<10)
	for _, e := range l {
		buf = append(append(append(append(buf, e.Path...), 0), e.SHA256...), '\n')
		if len(buf) >= 60<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
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

// builtIndex is one binary-ARCH directory's new index files, not yet written.
type builtIndex struct {
	dir    string // relative to the published tree: dists/SUITE/main/binary-amd64
	state  *indexState
	files  []storage.Object // Packages, Packages.gz, Release
	byHash []storage.Object // by-hash/SHA256/<sum> of Packages and Packages.gz
}

// writeIndexes writes Packages, Packages.gz and Release of every binary-ARCH directory
// whose content changed, each through by-hash first: all the by-hash files (each index's
// as soon as it is built), then all the indexes. It returns the by-hash files that no kept
// generation names, to be deleted once the new Release is live.
// gzDir is the repository directory, whose private/packages-gz keeps the compressed
// segments of Packages.gz for the next publish (see gzindex.go).
func writeIndexes(ctx context.Context, pub storage.Store, gzDir string, cfg Config, live []*poolEntry, st *state, now time.Time, opt PublishOptions) ([]string, error) {
	dirs, lists := indexDirs(cfg, live)
	pol := newByHashPolicy(opt)
	built, err := parallel.Map(ctx, len(dirs), 0, func(ctx context.Context, i int) (*builtIndex, error) {
		d, l := dirs[i], lists[i]
		key := listKey(l)
		prev := st.Indexes[d]
		if prev != nil && prev.Key == key && indexIntact(ctx, pub, "dists/"+cfg.Suite+"/"+d, prev) {
			return &builtIndex{state: prev}, nil
		}
		zc := loadGzCache(gzCachePath(gzDir, d))
		b, err := buildIndex("dists/"+cfg.Suite+"/"+d, cfg, l, key, prev, now, pol, zc)
		if err != nil {
			return nil, err
		}
		// The by-hash files are written (each on its own, the 9 MB Packages beside the
		// rest) while the cache of gzip members is saved.
		var wg sync.WaitGroup
		wg.Go(zc.save)
		defer wg.Wait()
		err = parallel.ForEach(ctx, len(b.byHash), 0, func(ctx context.Context, j int) error {
			return pub.Put(ctx, b.byHash[j])
		})
		if err != nil {
			return nil, fmt.Errorf("by-hash: %w", err)
		}
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	var files []storage.Object
	for _, b := range built {
		files = append(files, b.files...)
	}
	if err := pub.Put(ctx, files...); err != nil {
		return nil, err
	}
	var old []string
	k := 0
	for i, b := range built {
		if b.files != nil {
			b.state.Stamp = files[k].Stamp // Packages, as written
			k += len(b.files)
			stale, err := staleByHash(ctx, pub, b.dir, b.state)
			if err != nil {
				return nil, err
			}
			old = append(old, stale...)
		}
		st.Indexes[dirs[i]] = b.state
	}
	// Forget architectures no longer configured.
	for d := range st.Indexes {
		if !slices.Contains(dirs, d) {
			delete(st.Indexes, d)
		}
	}
	return old, nil
}

func indexIntact(ctx context.Context, pub storage.Store, dir string, s *indexState) bool {
	info, err := pub.Stat(ctx, dir+"/Packages")
	return err == nil && info.Size == s.Files["Packages"].Size && info.Stamp == s.Stamp
}

// buildIndex makes the index files of dir listing l: Packages, its gzip and the
// per-architecture Release, with their sums, by-hash copies and generations.
// Compressing and hashing run at the same time, hashing from the first segment that
// changed (see gzindex.go).
func buildIndex(dir string, cfg Config, l []*poolEntry, key string, prev *indexState, now time.Time, pol byHashPolicy, zc *gzCache) (*builtIndex, error) {
	arch := strings.TrimPrefix(path.Base(dir), "binary-")
	rel := []byte(fmt.Sprintf("Archive: %s\nOrigin: %s\nLabel: %s\nComponent: %s\nArchitecture: %s\n",
		cfg.Suite, cfg.Origin, cfg.Label, cfg.Component, arch))
	pk, ends := packagesSegments(l)
	f, err := zc.build(pk, ends)
	if err != nil {
		return nil, err
	}
	gz := f.gz
	ns := &indexState{Key: key, Files: map[string]fileSum{
		"Packages":    f.pkSum,
		"Packages.gz": f.gzSum,
		"Release":     sums(rel),
	}}
	ns.Generations = keptGenerations(ns, prev, now, pol)
	b := &builtIndex{dir: dir, state: ns}
	for _, f := range []struct {
		name string
		data []byte
	}{{"Packages", pk}, {"Packages.gz", gz}, {"Release", rel}} {
		o := storage.Object{Name: dir + "/" + f.name, Data: f.data, CacheControl: "no-cache"}
		if f.name != "Release" {
			// The by-hash copy is written first; the index is a link of it where the store can.
			o.LinkFrom = dir + "/by-hash/SHA256/" + ns.Files[f.name].SHA256
			b.byHash = append(b.byHash, storage.Object{Name: o.LinkFrom, Data: f.data, CacheControl: storage.ImmutableCache})
		}
		b.files = append(b.files, o)
	}
	return b, nil
}

// keptGenerations returns the by-hash generations to keep, the new one (ns's) first: the
// last pol.keepGens and any that stopped being current less than pol.grace ago.
func keptGenerations(ns, prev *indexState, now time.Time, pol byHashPolicy) []generation {
	cur := generation{Hashes: []string{ns.Files["Packages"].SHA256, ns.Files["Packages.gz"].SHA256}}
	var gens []generation
	if prev != nil {
		gens = slices.Clone(prev.Generations)
	}
	if len(gens) > 0 && gens[0].Until == 0 {
		gens[0].Until = now.Unix()
	}
	gens = append([]generation{cur}, gens...)
	var kept []generation
	for i, g := range gens {
		if i < pol.keepGens || now.Unix()-g.Until < int64(pol.grace/time.Second) {
			kept = append(kept, g)
		}
	}
	return kept
}

// staleByHash lists the by-hash files of dir that no generation of s keeps.
func staleByHash(ctx context.Context, pub storage.Store, dir string, s *indexState) ([]string, error) {
	keep := map[string]bool{}
	for _, g := range s.Generations {
		for _, h := range g.Hashes {
			keep[h] = true
		}
	}
	var stale []string
	err := pub.List(ctx, dir+"/by-hash/SHA256/", func(i storage.Info) error {
		if !keep[path.Base(i.Name)] {
			stale = append(stale, i.Name)
		}
		return nil
	})
	return stale, err
}
