package control

import (
	"errors"
	"fmt"
	"strings"
)

// ValidPackageName checks a package name against Debian policy 5.6.1: lower case letters, digits,
// "+", "-" and ".", at least two characters, starting with a letter or digit.
func ValidPackageName(s string) error {
	if len(s) < 2 {
		return fmt.Errorf("package name %q: must be at least 2 characters", s)
	}
	if !isLowerAlnum(s[0]) {
		return fmt.Errorf("package name %q: must start with a lower case letter or digit", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLowerAlnum(c) && c != '+' && c != '-' && c != '.' {
			return fmt.Errorf("package name %q: invalid character %q (allowed: a-z 0-9 + - .)", s, c)
		}
	}
	return nil
}

// ValidArchitecture checks an architecture name ("amd64", "all", "any", "linux-any"): lower case
// letters, digits and "-".
func ValidArchitecture(s string) error {
	if s == "" {
		return errors.New("empty architecture")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLowerAlnum(c) && c != '-' {
			return fmt.Errorf("architecture %q: invalid character %q", s, c)
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || c >= 'A' && c <= 'Z' }

// ValidVersion checks a Debian version string ([epoch:]upstream[-revision]) by dpkg's rules.
func ValidVersion(s string) error {
	// TODO(version): switch to `_, err := version.Parse(s); return err` once stdlib/version lands.
	return checkVersion(s)
}

// checkVersion is the stand-in for version.Parse: dpkg's parseversion() syntax rules.
func checkVersion(s string) error {
	if s == "" {
		return errors.New("empty version")
	}
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\n") {
		return fmt.Errorf("version %q: contains whitespace", s)
	}
	rest := s
	if e, r, ok := strings.Cut(s, ":"); ok {
		if e == "" {
			return fmt.Errorf("version %q: empty epoch", s)
		}
		for i := 0; i < len(e); i++ {
			if e[i] < '0' || e[i] > '9' {
				return fmt.Errorf("version %q: epoch is not a number", s)
			}
		}
		if len(e) > 9 {
			return fmt.Errorf("version %q: epoch too big", s)
		}
		rest = r
	}
	up, rev := rest, ""
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		up, rev = rest[:i], rest[i+1:]
		if rev == "" {
			return fmt.Errorf("version %q: empty revision", s)
		}
	}
	if up == "" {
		return fmt.Errorf("version %q: empty upstream version", s)
	}
	if up[0] < '0' || up[0] > '9' {
		return fmt.Errorf("version %q: upstream version must start with a digit", s)
	}
	for i := 0; i < len(up); i++ {
		if c := up[i]; !isAlnum(c) && !strings.ContainsRune(".-+~:", rune(c)) {
			return fmt.Errorf("version %q: invalid character %q in upstream version", s, c)
		}
	}
	for i := 0; i < len(rev); i++ {
		if c := rev[i]; !isAlnum(c) && !strings.ContainsRune(".+~", rune(c)) {
			return fmt.Errorf("version %q: invalid character %q in revision", s, c)
		}
	}
	return nil
}
