package repo

// Packages.gz as a series of gzip members, one per segment of the index (RFC 1952 allows
// any number; zlib's gzread, which apt uses, Go's and Python's readers and zcat read them
// as one stream). Segments end before entries whose pool path hashes to 0 modulo
// segmentEvery, so adding or removing a package changes one segment, and a publish
// compresses only the segments it has not compressed before: private/packages-gz/ keeps
// the members of the last publish of each index, keyed by the SHA-256 of their text.
//
// The cache also keeps, at the end of each segment, the state of the MD5 and SHA-256 of
// Packages and of Packages.gz up to there: a publish hashes both files only from the
// first segment that changed (adding a package near the end of a 9 MB index hashes a few
// hundred KB instead of 10 MB).

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/upds/upds/interp/atomicfile"
	"github.com/upds/upds/interp/parallel"
)

// segmentEvery is the mean number of entries of a segment: about 200 KB of text, compressed
// in 1–2 ms; all of them compress to 0.6% more than one stream would (256: 1.7%, 1024: 0.2%,
// on bench/repo's packages). A segment ends after segmentMax entries at the latest.
// Variables for tests.
var segmentEvery, segmentMax uint32 = 512, 8192

const gzCacheMagic = "upds-packages-gz 2\n"

// The running digests of an index, each with its own hash state in a segment.
const (
	pkMD5 = iota // of Packages
	pkSHA256
	gzMD5 // of Packages.gz
	gzSHA256
	nDigests
)

func newDigest(i int) hash.Hash {
	if i == pkMD5 || i == gzMD5 {
		return md5.New()
	}
	return sha256.New()
}

// gzMember is one segment compressed.
type gzMember struct {
	sum    [sha256.Size]byte // of the segment's text
	data   []byte            // a whole gzip member
	states [nDigests][]byte  // the digests' states after this segment (MarshalBinary)
}

// gzCache is the cache file of one index's members.
type gzCache struct {
	path    string
	old     map[[sha256.Size]byte][]byte // as loaded
	prev    []gzMember                   // as loaded, in index order
	members []gzMember                   // of the Packages.gz made last
}

// loadGzCache reads the members cached at path; a missing or damaged file (its last 32
// bytes are the SHA-256 of the rest) is an empty cache.
func loadGzCache(path string) *gzCache {
	c := &gzCache{path: path, old: map[[sha256.Size]byte][]byte{}}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < len(gzCacheMagic)+sha256.Size || !bytes.HasPrefix(b, []byte(gzCacheMagic)) {
		return c
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if sha256.Sum256(body) != [sha256.Size]byte(sum) {
		return c
	}
	body = body[len(gzCacheMagic):]
	bad := false
	field := func() []byte {
		n, k := binary.Uvarint(body)
		if k <= 0 || uint64(len(body)-k) < n {
			bad = true
			return nil
		}
		f := body[k : k+int(n) : k+int(n)]
		body = body[k+int(n):]
		return f
	}
	var prev []gzMember
	for len(body) > 0 && !bad {
		if len(body) < sha256.Size {
			return c
		}
		m := gzMember{sum: [sha256.Size]byte(body[:sha256.Size])}
		body = body[sha256.Size:]
		for i := range m.states {
			m.states[i] = field()
		}
		m.data = field()
		prev = append(prev, m)
	}
	if bad {
		return c
	}
	for _, m := range prev {
		c.old[m.sum] = m.data
	}
	c.prev = prev
	return c
}

// indexFiles is Packages.gz and the sums of both files.
type indexFiles struct {
	gz         []byte
	pkSum      fileSum // of Packages
	gzSum      fileSum // of Packages.gz
	hashedFrom int     // the first segment hashed: those before it were resumed from the cache
}

// build returns Packages.gz for pk, whose segments end at ends, and the sums of both: the
// cached member of each segment seen before, the others compressed (in parallel); the
// digests resumed after the last segment of the unchanged start of the index.
func (c *gzCache) build(pk []byte, ends []int) (*indexFiles, error) {
	c.members = make([]gzMember, len(ends))
	seg := func(i int) []byte {
		if i == 0 {
			return pk[:ends[0]]
		}
		return pk[ends[i-1]:ends[i]]
	}
	// Past the point of no return: not cancelled.
	ctx := context.Background()
	parallel.ForEach(ctx, len(ends), 0, func(_ context.Context, i int) error {
		c.members[i].sum = sha256.Sum256(seg(i))
		return nil
	})
	var todo []int
	from := 0 // the digests resume after segment from-1
	for i := range c.members {
		m := &c.members[i]
		if from == i && i < len(c.prev) && c.prev[i].sum == m.sum {
			from++
			m.data = c.prev[i].data // the bytes the resumed digests saw
		} else if m.data = c.old[m.sum]; m.data == nil {
			todo = append(todo, i)
		}
	}
	digests, err := resumeDigests(c.prev, from)
	if err != nil {
		from, digests = 0, freshDigests()
	}
	// Packages is hashed while the new segments are compressed.
	var wg sync.WaitGroup
	for _, d := range []int{pkMD5, pkSHA256} {
		wg.Go(func() {
			h := digests[d]
			for i := from; i < len(ends); i++ {
				h.Write(seg(i))
				c.members[i].states[d] = marshal(h)
			}
		})
	}
	err = parallel.ForEach(ctx, len(todo), 0, func(_ context.Context, j int) error {
		i := todo[j]
		var err error
		c.members[i].data, err = gzipMember(seg(i))
		return err
	})
	wg.Wait()
	if err != nil {
		return nil, err
	}
	size := 0
	for _, m := range c.members {
		size += len(m.data)
	}
	gz := make([]byte, 0, size)
	for i := range c.members {
		m := &c.members[i]
		gz = append(gz, m.data...)
		if i >= from {
			for _, d := range []int{gzMD5, gzSHA256} {
				digests[d].Write(m.data)
				m.states[d] = marshal(digests[d])
			}
		}
	}
	for i := range from {
		c.members[i].states = c.prev[i].states
	}
	return &indexFiles{
		gz:         gz,
		pkSum:      fileSum{Size: int64(len(pk)), MD5: hexSum(digests[pkMD5]), SHA256: hexSum(digests[pkSHA256])},
		gzSum:      fileSum{Size: int64(len(gz)), MD5: hexSum(digests[gzMD5]), SHA256: hexSum(digests[gzSHA256])},
		hashedFrom: from,
	}, nil
}

func freshDigests() [nDigests]hash.Hash {
	var ds [nDigests]hash.Hash
	for i := range ds {
		ds[i] = newDigest(i)
	}
	return ds
}

// resumeDigests returns the digests as they were after segment from-1 of the last
// publish (fresh ones for from 0).
func resumeDigests(prev []gzMember, from int) ([nDigests]hash.Hash, error) {
	ds := freshDigests()
	if from == 0 {
		return ds, nil
	}
	for i, h := range ds {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(prev[from-1].states[i]); err != nil {
			return ds, err
		}
	}
	return ds, nil
}

func marshal(h hash.Hash) []byte {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err) // MD5 and SHA-256 states always marshal
	}
	return b
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// gzipMember compresses data as one gzip member (no name, no time: the same text gives the
// same bytes).
func gzipMember(data []byte) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(data)/6 + 64)
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

// save writes the members of the last build, for the next publish. It is only a cache: a
// damaged file is not used, and a failure to write it is ignored.
func (c *gzCache) save() {
	if c.members == nil {
		return
	}
	size := len(gzCacheMagic) + sha256.Size
	for _, m := range c.members {
		size += sha256.Size + (nDigests+1)*binary.MaxVarintLen64 + len(m.data)
		for _, s := range m.states {
			size += len(s)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, gzCacheMagic...)
	for _, m := range c.members {
		b = append(b, m.sum[:]...)
		for _, s := range m.states {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		b = binary.AppendUvarint(b, uint64(len(m.data)))
		b = append(b, m.data...)
	}
	sum := sha256.Sum256(b)
	b = append(b, sum[:]...)
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return
	}
	if err := atomicfile.WriteFile(nil, c.path, b, 0o600); err != nil {
		os.Remove(c.path)
	}
}

// gzCachePath is the cache file of the index in d (relative to dists/SUITE, e.g.
// "main/binary-amd64") of the repository in dir.
func gzCachePath(dir, d string) string {
	return filepath.Join(dir, PrivateDir, "packages-gz", strings.ReplaceAll(d, "/", "_"))
}
