package version

// Compare returns -1, 0 or +1 as a sorts before, equal to or after b by dpkg's rules
// (dpkg_version_compare): epochs numerically, then the upstream versions, then the revisions,
// each with verrevcmp: alternating runs of non-digits, compared character by character with
// '~' before everything (even the end of the string), the end next, then ASCII letters,
// then all other characters; and runs of digits, compared numerically (leading zeros ignored).
// So 1.0~rc1 < 1.0 < 1.0a < 1.0+b < 1.0.1 and 1.0 = 1.00 = 1.0-0 = 0:1.0.
func Compare(a, b Version) int {
	switch {
	case a.Epoch > b.Epoch:
		return 1
	case a.Epoch < b.Epoch:
		return -1
	}
	if c := verrevcmp(a.Upstream, b.Upstream); c != 0 {
		return c
	}
	return verrevcmp(a.Revision, b.Revision)
}

// CompareStrings parses both versions the way `dpkg --compare-versions` does (ParseLenient:
// what dpkg only warns about is accepted) and compares them. Unlike dpkg, an empty string is an
// error rather than the "blank" version.
func CompareStrings(a, b string) (int, error) {
	va, err := ParseLenient(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseLenient(b)
	if err != nil {
		return 0, err
	}
	return Compare(va, vb), nil
}

// Satisfies reports whether v satisfies the relation "op ref" of a Debian dependency, e.g.
// Satisfies(v, ">=", MustParse("1.2")). op is one of the relation operators "<<", "<=", "=",
// ">=", ">>"; dpkg's obsolete "<" and ">" (meaning "<=" and ">=") and the words of
// `dpkg --compare-versions` ("lt", "le", "eq", "ne", "ge", "gt") are accepted too.
// An unknown op is satisfied by nothing.
func Satisfies(v Version, op string, ref Version) bool {
	c := Compare(v, ref)
	switch op {
	case "<<", "lt":
		return c < 0
	case "<=", "<", "le":
		return c <= 0
	case "=", "eq":
		return c == 0
	case "ne":
		return c != 0
	case ">=", ">", "ge":
		return c >= 0
	case ">>", "gt":
		return c > 0
	}
	return false
}

// order is dpkg's order(): the weight of one character in a non-digit run. c < 0 is the end of
// the string (C's '\0'). Bytes >= 0x80 are weighed as C's signed char is on amd64, which is what
// dpkg does with versions that only ParseLenient accepts.
func order(c int) int {
	switch {
	case c < 0:
		return 0
	case c >= '0' && c <= '9':
		return 0
	case isAlpha(byte(c)):
		return c
	case c == '~':
		return -1
	case c >= 0x80:
		return int(int8(byte(c))) + 256
	}
	return c + 256
}

// verrevcmp is dpkg's verrevcmp() over Go strings; the result is normalised to -1, 0, +1.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		firstDiff := 0
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			if i < len(a) && j < len(b) && a[i] == b[j] { // same character, same weight
				i++
				j++
				continue
			}
			ac, bc := order(charAt(a, i)), order(charAt(b, j))
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		for i < len(a) && j < len(b) && isDigit(a[i]) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return sign(firstDiff)
		}
	}
	return 0
}

// charAt is s[k], or -1 (C's terminating NUL) past the end.
func charAt(s string, k int) int {
	if k < len(s) {
		return int(s[k])
	}
	return -1
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}
