package control

import (
	"errors"
	"fmt"
	"strings"

	"github.com/upds/upds/stdlib/version"
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

// ValidVersion checks a Debian version string ([epoch:]upstream[-revision]) by dpkg's rules
// (what `dpkg --validate-version` accepts), using stdlib/version.
func ValidVersion(s string) error {
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("version %q: surrounding whitespace", s)
	}
	_, err := version.Parse(s)
	return err
}
