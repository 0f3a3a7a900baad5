package repo

// The text of a Packages file, its segments (see gzindex.go) and its digests.

import (
	"crypto/md5"
	"crypto/sha256"
	"hash"
	"sync"
)

// packagesSegments returns the Packages file listing l and where its segments end in it.
// A segment's text depends only on its entries (and whether it is the first): the blank line
// between two entries starts the next segment.
func packagesSegments(l []*poolEntry) (pk []byte, ends []int) {
	size := 0
	for _, e := range l {
		size += len(e.Stanza) + 1
	}
	pk = make([]byte, 0, size)
	n := uint32(0)
	for i, e := range l {
		if i > 0 {
			if n >= segmentMax || pathHash(e.Path)%segmentEvery == 0 {
				ends = append(ends, len(pk))
				n = 0
			}
			pk = append(pk, '\n')
		}
		pk = append(pk, e.Stanza...)
		n++
	}
	return pk, append(ends, len(pk))
}

// pathHash is the 32-bit FNV-1a hash of p, its bits mixed by murmur3's finalizer: FNV's low
// bits alone hardly vary between paths that differ in a few digits.
func pathHash(p string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(p); i++ {
		h = (h ^ uint32(p[i])) * 16777619
	}
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	return h ^ h>>16
}

// digests is the MD5 and SHA-256 of a Packages file.
type digests struct {
	md5    [md5.Size]byte
	sha256 [sha256.Size]byte
}

// hashStanzas starts hashing the Packages file listing l (MD5 and SHA-256, each on its own
// goroutine, straight from the stanzas: MD5 is the longest part of writing a big index, and
// this way it need not wait for the text to be built) and returns a function that waits for
// the result.
func hashStanzas(l []*poolEntry) func() digests {
	var d digests
	var wg sync.WaitGroup
	run := func(h hash.Hash, out []byte) {
		for i, e := range l {
			if i > 0 {
				h.Write([]byte{'\n'})
			}
			h.Write(e.Stanza)
		}
		h.Sum(out[:0])
	}
	wg.Go(func() { run(md5.New(), d.md5[:]) })
	wg.Go(func() { run(sha256.New(), d.sha256[:]) })
	return func() digests {
		wg.Wait()
		return d
	}
}
