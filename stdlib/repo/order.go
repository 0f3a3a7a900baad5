package repo

// sortedLive returns every entry of p.entries in index order (entryLess). The index cache
// lists most of them in that order already (it is rewritten in index order, and a publish
// appends only what it added), so those are taken in file order and merged with the others
// (added since, or out of order), which alone are sorted.
func (p *publisher) sortedLive() []*poolEntry {
	run := make([]*poolEntry, 0, len(p.entries))
	var rest []*poolEntry
	for _, e := range p.cache.order {
		if p.entries[e.Path] != e {
			continue // replaced or deleted since
		}
		if len(run) > 0 && !entryLess(run[len(run)-1], e) {
			rest = append(rest, e)
			continue
		}
		run = append(run, e)
	}
	if len(run)+len(rest) < len(p.entries) {
		for path, e := range p.entries {
			if p.cache.entries[path] != e {
				rest = append(rest, e)
			}
		}
	}
	if len(rest) == 0 {
		return run
	}
	sortEntries(rest)
	live := make([]*poolEntry, 0, len(run)+len(rest))
	i, j := 0, 0
	for i < len(run) && j < len(rest) {
		if entryLess(rest[j], run[i]) {
			live = append(live, rest[j])
			j++
		} else {
			live = append(live, run[i])
			i++
		}
	}
	live = append(live, run[i:]...)
	return append(live, rest[j:]...)
}
