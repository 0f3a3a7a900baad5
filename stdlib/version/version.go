// Package version parses, orders and bumps Debian package versions exactly as dpkg does,
// and reads and atomically rewrites a project's VERSION file.
package version

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Version is a Debian version: [epoch:]upstream[-revision].
type Version struct {
	Epoch    uint
	Upstream string
	Revision string
}

// SyntaxError describes why a string is not a valid Debian version. Its messages are dpkg's.
type SyntaxError struct {
	Input string
	Msg   string // dpkg's wording, e.g. "revision number is empty"
	// Warning is true for the problems dpkg only warns about (an upstream version that does not
	// start with a digit, a character outside dpkg's allowed set): `dpkg --compare-versions`
	// accepts such versions, `dpkg --validate-version` and Parse reject them, ParseLenient accepts them.
	Warning bool
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("version %q has bad syntax: %s", e.Input, e.Msg)
}

// Parse parses a Debian version with dpkg's rules and rejects everything that
// `dpkg --validate-version` rejects. Leading and trailing blanks (spaces, tabs) are ignored.
// The upstream part ends at the last hyphen; everything after it is the revision.
// The upstream part must start with a digit and contain only ASCII letters, digits and . + ~ - :
// (a hyphen only when there is a revision); the revision only letters, digits and . + ~.
// The error is a *SyntaxError.
func Parse(s string) (Version, error) {
	v, err := parse(s)
	if err != nil {
		return Version{}, err
	}
	return v, nil
}

// ParseLenient parses like `dpkg --compare-versions` does: the problems dpkg only warns about
// (an upstream version not starting with a digit, invalid characters) are accepted. Use it for
// versions read from systems you do not control (a dpkg status file); use Parse for versions
// you are about to write into a package.
func ParseLenient(s string) (Version, error) {
	v, err := parse(s)
	var se *SyntaxError
	if err != nil && !(errors.As(err, &se) && se.Warning) {
		return Version{}, err
	}
	return v, nil
}

// MustParse is like Parse but panics on an invalid version. For constants in code and tests.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the canonical form: the epoch only when it is not zero (or when the version
// contains a colon, so that 0:1:2 stays 0:1:2), the revision only when it is not empty.
// Parse(v.String()) == v for every v returned by Parse.
func (v Version) String() string {
	var b strings.Builder
	if v.Epoch > 0 || strings.IndexByte(v.Upstream, ':') >= 0 || strings.IndexByte(v.Revision, ':') >= 0 {
		fmt.Fprintf(&b, "%d:", v.Epoch)
	}
	b.WriteString(v.Upstream)
	if v.Revision != "" {
		b.WriteByte('-')
		b.WriteString(v.Revision)
	}
	return b.String()
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// isCSpace is C's isspace in the C locale, which strtol skips before the epoch.
func isCSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// parse mirrors parseversion() in dpkg's lib/dpkg/parsehelp.c (dpkg 1.21), check for check and in
// the same order, so that the first problem reported is the one dpkg reports. On a warning it
// returns the parsed version together with the error.
func parse(input string) (Version, error) {
	fail := func(msg string) (Version, error) {
		return Version{}, &SyntaxError{Input: input, Msg: msg}
	}
	if strings.IndexByte(input, 0) >= 0 {
		return fail("version string contains a NUL byte")
	}
	s := input
	for s != "" && isBlank(s[0]) {
		s = s[1:]
	}
	if s == "" {
		return fail("version string is empty")
	}
	end := 0
	for end < len(s) && !isBlank(s[end]) {
		end++
	}
	for i := end; i < len(s); i++ {
		if !isBlank(s[i]) {
			return fail("version string has embedded spaces")
		}
	}
	s = s[:end]

	var v Version
	if colon := strings.IndexByte(s, ':'); colon >= 0 {
		// strtol(s, &end, 10): optional C white space, an optional sign, decimal digits.
		i := 0
		for i < len(s) && isCSpace(s[i]) {
			i++
		}
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		digits := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == digits {
			return fail("epoch in version is empty")
		}
		if i != colon {
			return fail("epoch in version is not number")
		}
		num := strings.TrimLeft(s[digits:i], "0")
		if neg && num != "" {
			return fail("epoch in version is negative")
		}
		if len(num) > 10 || (len(num) == 10 && num > fmt.Sprint(math.MaxInt32)) {
			return fail("epoch in version is too big")
		}
		var epoch uint
		for j := 0; j < len(num); j++ {
			epoch = epoch*10 + uint(num[j]-'0')
		}
		if colon+1 == len(s) {
			return fail("nothing after colon in version number")
		}
		v.Epoch = epoch
		s = s[colon+1:]
	}
	v.Upstream = s
	if h := strings.LastIndexByte(s, '-'); h >= 0 {
		v.Upstream, v.Revision = s[:h], s[h+1:]
		if v.Revision == "" {
			return fail("revision number is empty")
		}
	}
	if v.Upstream == "" {
		return fail("version number is empty")
	}
	warn := func(msg string) (Version, error) {
		return v, &SyntaxError{Input: input, Msg: msg, Warning: true}
	}
	if !isDigit(v.Upstream[0]) {
		return warn("version number does not start with digit")
	}
	for i := 1; i < len(v.Upstream); i++ {
		if c := v.Upstream[i]; !isDigit(c) && !isAlpha(c) && !strings.ContainsRune(".-+~:", rune(c)) {
			return warn("invalid character in version number")
		}
	}
	for i := 0; i < len(v.Revision); i++ {
		if c := v.Revision[i]; !isDigit(c) && !isAlpha(c) && !strings.ContainsRune(".+~", rune(c)) {
			return warn("invalid character in revision number")
		}
	}
	return v, nil
}
