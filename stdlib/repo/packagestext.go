package repo

// The text of a Packages file and its segments (see gzindex.go).

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
