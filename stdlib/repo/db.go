package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/upds/upds/interp/atomicfile"
	"github.com/upds/upds/interp/storage"
	"github.com/upds/upds/stdlib/version"
)

// poolEntry is what the index knows about one pool file.
type poolEntry struct {
	Path    string // relative to public/: pool/main/h/hello/hello_1.0_amd64.deb
	Size    int64
	Stamp   string // the pool object's storage.Info.Stamp; with Size, tells whether the cached data is current
	Name    string
	Version string
	Arch    string
	SHA256  string // hex
	Stanza  []byte // the Packages stanza, ending in "\n", without the blank separator line

	ver    version.Version // parsed Version, for ordering; see parsed
	parsed bool
}

// parsedVersion returns the parsed Version, parsing it (leniently: it is already in
// the pool) on first use; most entries are never compared by version.
func (e *poolEntry) parsedVersion() version.Version {
	if !e.parsed {
		e.ver, _ = version.ParseLenient(e.Version)
		e.parsed = true
	}
	return e.ver
}

const (
	cacheFile  = "private/index.cache"
	stateFile  = "private/state.json" // on disk; see loadState
	dirtyFile  = "private/pool.dirty" // on disk; see dirtyMarker
	cacheMagic = "upds-index-cache 3\n"
)

// cacheOp is what a record of the index cache does: its first byte.
type cacheOp byte

const (
	opAdd    cacheOp = 'A' // add (or replace) the entry of a pool path
	opDelete cacheOp = 'D' // delete the entry of a pool path
	opState  cacheOp = 'S' // the entries so far are the pool of the publish state with this ID
)

// indexCache is the index cache as loaded: an append-only log of records, each
// adding (or replacing) the entry of a pool path or deleting one.
type indexCache struct {
	entries map[string]*poolEntry
	order   []*poolEntry // every entry added, in file order (see sortedLive)
	records int          // records in the file
	ok      bool         // the file was present and read to its end
	id      string       // the state (publish) the entries describe: the last opState record
}

// loadCache reads the index cache. When it is missing or damaged (a publish was
// interrupted while appending), ok is false and the pool is walked again, reusing the
// entries read so far when their size and mtime still match: slower, same result.
func loadCache(dir string) *indexCache {
	c := &indexCache{entries: map[string]*poolEntry{}}
	data, err := os.ReadFile(filepath.Join(dir, cacheFile))
	if err != nil || !bytes.HasPrefix(data, []byte(cacheMagic)) {
		return c
	}
	b := data[len(cacheMagic):]
	// Strings are cut out of the file's bytes (never changed afterwards) rather than
	// allocated one by one.
	all := unsafe.String(unsafe.SliceData(b), len(b))
	c.entries = make(map[string]*poolEntry, len(b)/512)
	c.order = make([]*poolEntry, 0, len(b)/512)
	bad := false
	pos := func() int { return len(all) - len(b) }
	span := func() (int, int) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			bad = true
			return 0, 0
		}
		start := pos() + k
		b = b[k+int(n):]
		return start, start + int(n)
	}
	str := func() string {
		i, j := span()
		return all[i:j]
	}
	raw := func() []byte {
		i, j := span()
		return data[len(cacheMagic)+i : len(cacheMagic)+j : len(cacheMagic)+j]
	}
	num := func() int64 {
		v, k := binary.Varint(b)
		if k <= 0 {
			bad = true
			return 0
		}
		b = b[k:]
		return v
	}
	for len(b) > 0 && !bad {
		op := cacheOp(b[0])
		b = b[1:]
		switch op {
		case opDelete:
			p := str()
			if !bad {
				delete(c.entries, p)
			}
		case opState:
			c.id = str()
		case opAdd:
			e := &poolEntry{}
			e.Path = str()
			e.Size = num()
			e.Stamp = str()
			e.Name = str()
			e.Version = str()
			e.Arch = str()
			e.SHA256 = str()
			e.Stanza = raw()
			if bad {
				break
			}
			c.entries[e.Path] = e
			c.order = append(c.order, e)
		default:
			bad = true
		}
		if !bad {
			c.records++
		}
	}
	c.ok = !bad
	return c
}

func appendEntry(b *bytes.Buffer, e *poolEntry) {
	var tmp [binary.MaxVarintLen64]byte
	str := func(s []byte) {
		b.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(s)))])
		b.Write(s)
	}
	num := func(v int64) { b.Write(tmp[:binary.PutVarint(tmp[:], v)]) }
	b.WriteByte(byte(opAdd))
	str([]byte(e.Path))
	num(e.Size)
	str([]byte(e.Stamp))
	str([]byte(e.Name))
	str([]byte(e.Version))
	str([]byte(e.Arch))
	str([]byte(e.SHA256))
	str(e.Stanza)
}

// saveCache records live, the entries of the published index, as the pool of the publish
// id. It appends the difference from old (the cache as loaded) and fsyncs, or rewrites the
// whole file atomically when old was not usable or the log has grown past twice the live
// size.
func saveCache(dir string, old *indexCache, live []*poolEntry, id string) error {
	var b bytes.Buffer
	n := 0
	inLive := make(map[string]bool, len(live))
	for _, e := range live {
		inLive[e.Path] = true
		if old.entries[e.Path] != e {
			appendEntry(&b, e)
			n++
		}
	}
	var tmp [binary.MaxVarintLen64]byte
	for p := range old.entries {
		if !inLive[p] {
			b.WriteByte(byte(opDelete))
			b.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(p)))])
			b.WriteString(p)
			n++
		}
	}
	writeState := func(b *bytes.Buffer) {
		b.WriteByte(byte(opState))
		b.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(id)))])
		b.WriteString(id)
	}
	writeState(&b)
	n++
	path := filepath.Join(dir, cacheFile)
	if old.ok && old.records+n <= 2*len(live)+1024 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err == nil {
			_, err = f.Write(b.Bytes())
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				return nil
			}
		}
		// Could not append: rewrite below.
	}
	b.Reset()
	b.Grow(len(live)*600 + len(cacheMagic))
	b.WriteString(cacheMagic)
	for _, e := range live {
		appendEntry(&b, e)
	}
	writeState(&b)
	return atomicfile.WriteFile(nil, path, b.Bytes(), 0o600)
}

// fileSum is the size and hashes of one index file, as listed in Release.
type fileSum struct {
	Size   int64  `json:"size"`
	MD5    string `json:"md5"`
	SHA256 string `json:"sha256"`
}

// generation is the set of by-hash files that one publish made current.
type generation struct {
	Hashes []string `json:"hashes"`
	// Until is when the generation stopped being current (Unix seconds; 0: current).
	Until int64 `json:"until,omitempty"`
}

// indexState remembers one binary-ARCH directory's published indexes.
type indexState struct {
	// Key identifies the set of packages the index was made from.
	Key string `json:"key"`
	// Files: Packages, Packages.gz, Release.
	Files map[string]fileSum `json:"files"`
	// Stamp of the Packages object as written, to notice files changed behind our back.
	Stamp       string       `json:"stamp"`
	Generations []generation `json:"generations"`
}

// state is kept between publishes in state.json of the meta store (DIR/private, or
// .upds/ in the bucket).
type state struct {
	// ID names the publish that wrote the state (see newID).
	ID      string                 `json:"id"`
	Indexes map[string]*indexState `json:"indexes"` // key: "main/binary-amd64"
}

// loadState reads the state and its stamp ("" when there is none); a missing or damaged
// one is empty (the next publish then rewrites every index and walks the pool: slower, same
// result).
func loadState(ctx context.Context, meta storage.Store) (*state, string, error) {
	s := &state{Indexes: map[string]*indexState{}}
	data, info, err := storage.ReadFile(ctx, meta, "state.json")
	if errors.Is(err, storage.ErrNotExist) {
		return s, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("publish state: %w", err)
	}
	if json.Unmarshal(data, s) != nil || s.Indexes == nil {
		s = &state{Indexes: map[string]*indexState{}}
	}
	return s, info.Stamp, nil
}

// saveState writes the state if the object is still the one loadState read (stamp; ""
// for none): a publisher whose lock was taken over finds it changed and stops before its
// InRelease can replace the other's (ErrPrecondition).
func saveState(ctx context.Context, meta storage.Store, s *state, stamp string) error {
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	o := storage.Object{Name: "state.json", Data: data, CacheControl: "no-cache", IfMatch: stamp, IfAbsent: stamp == ""}
	return meta.Put(ctx, o)
}
