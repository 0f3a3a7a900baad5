package version

import (
	"fmt"
	"strings"
)

// Part names the component of a version that Bump increments. Its values are the constants
// below (ParsePart reads one from a command line); untyped string constants such as "minor"
// can be passed where a Part is wanted.
type Part string

// The parts Bump accepts.
const (
	Major    Part = "major"
	Minor    Part = "minor"
	Patch    Part = "patch"
	Revision Part = "revision"
)

// parts is the one table of Parts, in order, with what each increments: the component at
// index of the leading dotted numbers of the upstream version, or (index -1) the revision.
var parts = []struct {
	part  Part
	index int
}{{Major, 0}, {Minor, 1}, {Patch, 2}, {Revision, -1}}

// Parts returns the parts Bump accepts, in order.
func Parts() []Part {
	out := make([]Part, len(parts))
	for i, p := range parts {
		out[i] = p.part
	}
	return out
}

// ParsePart returns the Part named s, or an error that lists the parts.
func ParsePart(s string) (Part, error) {
	if _, ok := Part(s).index(); !ok {
		return "", fmt.Errorf("unknown part %q (want %s)", s, partList())
	}
	return Part(s), nil
}

// index is where the table says p is, and whether p is a Part at all.
func (p Part) index() (int, bool) {
	for _, e := range parts {
		if e.part == p {
			return e.index, true
		}
	}
	return 0, false
}

// partList is "major, minor, patch or revision".
func partList() string {
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = string(p.part)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Bump returns v with one part incremented. The result always sorts after v (Compare > 0);
// when that cannot be achieved Bump returns an error instead.
//
// major, minor and patch work on the leading dotted numbers of the upstream version
// (1.9 in 1.9, 2024.01 in 2024.01~rc1): the chosen component is incremented, the ones after it
// are set to zero, missing components up to the chosen one are added (1 minor → 1.1,
// 1.9 patch → 1.9.1), and the number of components is otherwise kept (1.9 major → 2.0).
// Zero-padded components keep their width (2024.01.05 minor → 2024.02.00; 1.10.3 major → 2.0.0). Anything after the leading dotted
// numbers (~rc1, +git, a letter) and the Debian revision are dropped, the epoch is kept.
// An upstream version that does not start with a digit cannot be bumped.
//
// revision adds -1 when there is no revision, otherwise increments the last run of digits in
// it (1 → 2, 0ubuntu1 → 0ubuntu2, 1~bpo12+1 → 1~bpo12+2), or appends 1 when it has no digits
// (a → a1); the epoch and upstream version are kept.
func Bump(v Version, part Part) (Version, error) {
	idx, ok := part.index()
	if !ok {
		return Version{}, fmt.Errorf("bump %s: unknown part %q (want %s)", v, part, partList())
	}
	var next Version
	if idx < 0 {
		next = Version{Epoch: v.Epoch, Upstream: v.Upstream, Revision: bumpRevision(v.Revision)}
	} else {
		up, err := bumpUpstream(v.Upstream, idx)
		if err != nil {
			return Version{}, fmt.Errorf("bump %s of %s: %w", part, v, err)
		}
		next = Version{Epoch: v.Epoch, Upstream: up}
	}
	if Compare(next, v) <= 0 {
		return Version{}, fmt.Errorf("bump %s of %s: the result %s would not sort after it; edit the version by hand", part, v, next)
	}
	return next, nil
}

// bumpUpstream increments component idx (0-based) of the leading dotted numbers of up.
func bumpUpstream(up string, idx int) (string, error) {
	// The leading dotted numbers: digits ( '.' digits )*.
	var comps []string
	i := 0
	for {
		j := i
		for j < len(up) && isDigit(up[j]) {
			j++
		}
		if j == i {
			break
		}
		comps = append(comps, up[i:j])
		if j+1 < len(up) && up[j] == '.' && isDigit(up[j+1]) {
			i = j + 1
			continue
		}
		break
	}
	if len(comps) == 0 {
		return "", fmt.Errorf("upstream version %q does not start with a number", up)
	}
	for len(comps) <= idx {
		comps = append(comps, "0")
	}
	comps[idx] = increment(comps[idx])
	for k := idx + 1; k < len(comps); k++ {
		if len(comps[k]) > 1 && comps[k][0] == '0' { // zero-padded (2024.01.05): keep the width
			comps[k] = strings.Repeat("0", len(comps[k]))
		} else {
			comps[k] = "0"
		}
	}
	return strings.Join(comps, "."), nil
}

// bumpRevision increments the last run of digits in rev, appends 1 when there is none, and
// turns an empty revision into 1.
func bumpRevision(rev string) string {
	end := len(rev)
	for end > 0 && !isDigit(rev[end-1]) {
		end--
	}
	if end == 0 {
		return rev + "1"
	}
	start := end
	for start > 0 && isDigit(rev[start-1]) {
		start--
	}
	return rev[:start] + increment(rev[start:end]) + rev[end:]
}

// increment adds one to a decimal number of any length, keeping its width unless it grows
// (009 → 010, 99 → 100).
func increment(num string) string {
	b := []byte(num)
	for k := len(b) - 1; k >= 0; k-- {
		if b[k] < '9' {
			b[k]++
			return string(b)
		}
		b[k] = '0'
	}
	return "1" + string(b)
}
