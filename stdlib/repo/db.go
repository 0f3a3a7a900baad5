package repo

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/upds/upds/stdlib/version"
)

// poolEntry is what the index knows about one pool file.
type poolEntry struct {
	Path    string // relative to public/: pool/main/h/hello/hello_1.0_amd64.deb
	Size    int64
	Mtime   int64 // UnixNano; with Size, tells whether the cached data is current
	Name    string
	Version string
	Arch    string
	SHA256  string // hex
	Stanza  []byte // the Packages stanza, ending in "\n", without the blank separator line

	ver version.Version // parsed Version, for ordering
}

// parseVersion fills e.ver; versions already in the pool are parsed leniently.
func (e *poolEntry) parseVersion() {
	e.ver, _ = version.ParseLenient(e.Version)
}

const (
	cacheFile  = "private/index.cache"
	stateFile  = "private/state.json"
	cacheMagic = "upds-index-cache 1\n"
)

// loadCache reads the index cache. A missing or unreadable cache is empty: the pool
// is then read again (slower, same result).
func loadCache(dir string) map[string]*poolEntry {
	data, err := os.ReadFile(filepath.Join(dir, cacheFile))
	m := map[string]*poolEntry{}
	if err != nil || !bytes.HasPrefix(data, []byte(cacheMagic)) {
		return m
	}
	b := data[len(cacheMagic):]
	bad := false
	str := func() []byte {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			bad = true
			return nil
		}
		s := b[k : k+int(n)]
		b = b[k+int(n):]
		return s
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
		e := &poolEntry{}
		e.Path = string(str())
		e.Size = num()
		e.Mtime = num()
		e.Name = string(str())
		e.Version = string(str())
		e.Arch = string(str())
		e.SHA256 = string(str())
		e.Stanza = str()
		if bad {
			break
		}
		e.parseVersion()
		m[e.Path] = e
	}
	if bad {
		return map[string]*poolEntry{}
	}
	return m
}

func saveCache(dir string, entries []*poolEntry) error {
	var b bytes.Buffer
	b.Grow(len(entries) * 700)
	b.WriteString(cacheMagic)
	var tmp [binary.MaxVarintLen64]byte
	str := func(s []byte) {
		b.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(s)))])
		b.Write(s)
	}
	num := func(v int64) { b.Write(tmp[:binary.PutVarint(tmp[:], v)]) }
	for _, e := range entries {
		str([]byte(e.Path))
		num(e.Size)
		num(e.Mtime)
		str([]byte(e.Name))
		str([]byte(e.Version))
		str([]byte(e.Arch))
		str([]byte(e.SHA256))
		str(e.Stanza)
	}
	return WriteFileAtomic(filepath.Join(dir, cacheFile), b.Bytes(), 0o600)
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
	// Mtime of the Packages file as written, to notice files changed behind our back.
	Mtime       int64        `json:"mtime"`
	Generations []generation `json:"generations"`
}

// state is kept between publishes in private/state.json.
type state struct {
	Indexes map[string]*indexState `json:"indexes"` // key: "main/binary-amd64"
}

func loadState(dir string) *state {
	s := &state{Indexes: map[string]*indexState{}}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return s
	}
	if err := json.Unmarshal(data, s); err != nil || s.Indexes == nil {
		return &state{Indexes: map[string]*indexState{}}
	}
	return s
}

func saveState(dir string, s *state) error {
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, stateFile), data, 0o600)
}
