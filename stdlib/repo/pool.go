package repo

// The pool stage of a publish: what the pool holds (read from .deb files or the index
// cache), in dpkg order, and which old versions retention drops.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/upds/upds/interp/parallel"
	"github.com/upds/upds/interp/storage"
	"github.com/upds/upds/stdlib/deb"
	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/version"
)

// stanzaFirst lists the Packages fields in the order apt-ftparchive writes them; others follow.
var stanzaFirst = []string{"Package", "Source", "Version", "Architecture", "Maintainer", "Installed-Size"}

// readDeb reads the .deb at abs (an upload; see readDebFrom). Symbolic links are not
// followed.
func readDeb(abs string, verify bool, bufs *sync.Pool) (*deb.Info, error) {
	f, err := os.OpenFile(abs, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, errors.New("not a regular file (symbolic link)")
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return readDebFrom(f, fi.Size(), verify, bufs)
}

// readDebFrom reads a .deb of size bytes: control data, the start of data.tar and whole-file
// hashes, and with verify all of data.tar: every path (none may escape the package root)
// and the md5sums.
// Buffers come from bufs (a pool of *bufio.Reader), as allocating one per file costs more
// than reading a tiny package.
func readDebFrom(r io.Reader, size int64, verify bool, bufs *sync.Pool) (*deb.Info, error) {
	br, _ := bufs.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(r, 64<<10)
	} else {
		br.Reset(r)
	}
	defer bufs.Put(br)
	info, err := deb.Read(br, deb.ReadOptions{Hash: true, Verify: verify, DataHead: true})
	if err != nil {
		return nil, err
	}
	if info.Size != size {
		return nil, errors.New("file changed while being read")
	}
	return info, nil
}

// makeEntry builds the index entry of a .deb for pool path rel; stamp is the pool
// object's (Info.Stamp), or "" until it is stored.
func makeEntry(rel string, info *deb.Info, stamp string) (*poolEntry, error) {
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
		Path: rel, Size: size, Stamp: stamp,
		Name: p.Get("Package"), Version: p.Get("Version"), Arch: p.Get("Architecture"),
		SHA256: shahex, Stanza: st,
	}
	return e, nil
}

// loadPool learns what the pool holds from the index cache, which only Publish changes
// (under the lock). The pool is listed instead (cached entries reused when size and stamp
// match) when asked to, when the cache is missing, when a publish was interrupted between
// changing the pool and saving the state (the dirty marker), or when the state in the
// store is not the one this machine's cache describes (another machine published to the
// same bucket since).
func (p *publisher) loadPool(ctx context.Context) error {
	p.cache = loadCache(p.dir)
	p.dirty.load(ctx)
	if p.opt.Rescan || !p.cache.ok || p.dirty.set || p.cache.id != p.state.ID {
		var err error
		if p.entries, p.rep.Broken, err = scanPool(ctx, p.st.pub, p.cache.entries); err != nil {
			return err
		}
		p.broken = make(map[string]bool, len(p.rep.Broken))
		for _, b := range p.rep.Broken {
			p.broken[b.Path] = true
		}
		return nil
	}
	p.entries, p.broken = maps.Clone(p.cache.entries), map[string]bool{}
	return nil
}

// scanPool lists the .deb files under pool/, reusing cached entries whose size and stamp
// still match and reading the others. Unreadable pool files are left out of the index and
// returned in broken, in pool order.
func scanPool(ctx context.Context, pub storage.Store, cache map[string]*poolEntry) (entries map[string]*poolEntry, broken []BrokenFile, err error) {
	entries, todo, err := listPool(ctx, pub, cache)
	if err != nil {
		return nil, nil, fmt.Errorf("scan pool: %w", err)
	}
	type scanned struct {
		e   *poolEntry
		err error
	}
	var bufs sync.Pool
	workers := 0 // a directory: one reader a core
	if _, ok := pub.(*storage.Dir); !ok {
		workers = 16 // GETs wait on the network more than they compute
	}
	results, err := parallel.Map(ctx, len(todo), workers, func(ctx context.Context, i int) (scanned, error) {
		e, err := readPoolFile(ctx, pub, todo[i], &bufs)
		return scanned{e, err}, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scan pool: %w", err)
	}
	for i, r := range results {
		if r.err != nil {
			broken = append(broken, BrokenFile{Path: todo[i].Name, Reason: r.err.Error()})
			continue
		}
		entries[todo[i].Name] = r.e
	}
	sort.Slice(broken, func(i, j int) bool { return broken[i].Path < broken[j].Path })
	return entries, broken, nil
}

// readPoolFile reads a pool object and makes its entry.
func readPoolFile(ctx context.Context, pub storage.Store, obj storage.Info, bufs *sync.Pool) (*poolEntry, error) {
	r, info, err := pub.Open(ctx, obj.Name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	d, err := readDebFrom(r, info.Size, false, bufs)
	if err != nil {
		return nil, err
	}
	return makeEntry(obj.Name, d, info.Stamp)
}

// listPool returns the cached entries of the .deb files under pool/ whose size and stamp
// still match, and the other pool objects, to be read.
func listPool(ctx context.Context, pub storage.Store, cache map[string]*poolEntry) (entries map[string]*poolEntry, todo []storage.Info, err error) {
	entries = make(map[string]*poolEntry, len(cache))
	err = pub.List(ctx, "pool/", func(i storage.Info) error {
		if !strings.HasSuffix(i.Name, ".deb") {
			return nil
		}
		if c, ok := cache[i.Name]; ok && c.Size == i.Size && c.Stamp == i.Stamp {
			entries[i.Name] = c
			return nil
		}
		todo = append(todo, i)
		return nil
	})
	sort.Slice(todo, func(i, j int) bool { return todo[i].Name < todo[j].Name })
	return entries, todo, err
}

func sortEntries(es []*poolEntry) {
	sort.Slice(es, func(i, j int) bool { return entryLess(es[i], es[j]) })
}

// entryLess is the index order: by name, version (dpkg's ordering), architecture, path.
func entryLess(a, b *poolEntry) bool {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c < 0
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
