package repo

// The index stage of a publish: Packages, Packages.gz and the per-architecture Release of
// every binary-ARCH directory, each reachable by hash before it goes live.

import (
	"bytes"
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

	"github.com/klauspost/compress/gzip"
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
	// Past the point of no return: not cancelled.
	res, err := parallel.Map(context.Background(), len(dirs), 0, func(_ context.Context, i int) (*indexState, error) {
		d, l := dirs[i], lists[i]
		abs := filepath.Join(dists, filepath.FromSlash(d))
		key := listKey(l)
		prev := st.Indexes[d]
		if prev != nil && prev.Key == key && indexIntact(abs, prev) {
			return prev, nil
		}
		return writeIndex(abs, d, cfg, l, key, prev, now, keepGens, grace)
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
