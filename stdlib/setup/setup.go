// Package setup points a Debian/Ubuntu machine at an upds apt repository and installs
// server roles from it, through one POSIX sh script that runs locally, over SSH, or as
// the repository's public/setup.sh.
package setup

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/upds/upds/stdlib/deb/control"
)

// Paths on the server.
const (
	KeyringDir = "/etc/apt/keyrings"
	SourcesDir = "/etc/apt/sources.list.d"
)

// Source is the apt source a machine is set up with.
type Source struct {
	// Name names the files: /etc/apt/keyrings/NAME.asc and
	// /etc/apt/sources.list.d/NAME.sources (default: DefaultName(URL, Origin)).
	Name string
	// URL is the repository (the directory that holds dists/). It may be empty in a
	// script, which then needs --repo URL when it runs.
	URL string
	// Origin is the repository's name, the Origin field of its Release file (repo.conf):
	// it names the files when the URL's host is an IP address.
	Origin string
	// Suite defaults to "stable".
	Suite string
	// Components default to ["main"].
	Components []string
	// Key is the repository's armored OpenPGP public key.
	Key []byte
}

// DefaultName derives the file names of a repository's key and source from its URL: the
// host name and the path ("apt.example.com"; "apt.example.com-hello" for
// https://apt.example.com/hello/), or, when the host is an IP address or localhost, the
// repository's origin (the Origin of its Release file) and the path
// (http://10.0.0.5:8080/ of origin "upds": "upds"). Lower case letters, digits, '.' and
// '-' only; "upds" when nothing is left. setup.sh derives the same name from --repo URL.
func DefaultName(repoURL, origin string) string {
	rest := repoURL
	if _, r, ok := strings.Cut(rest, "://"); ok {
		rest = r
	}
	host, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	if strings.HasPrefix(host, "[") {
		host = ":" // an IPv6 address
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if host == "" || strings.Contains(host, ":") || host == "localhost" || strings.Trim(host, "0123456789.") == "" {
		host = nameWord(origin)
	}
	if n := nameWord(host + path); n != "" {
		return n
	}
	return "upds"
}

// nameWord lowers s to letters, digits, '.' and '-': every other byte becomes '-', runs of
// '-' one, and no '.' or '-' at either end (setup.sh's default_name does the same).
func nameWord(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			c = '-'
		}
		if c == '-' && len(b) > 0 && b[len(b)-1] == '-' {
			continue
		}
		b = append(b, c)
	}
	return strings.Trim(string(b), ".-")
}

// originWord is the origin as the script carries it.
func originWord(origin string) string { return nameWord(origin) }

// withDefaults fills in the defaults and validates every field that ends up in a file
// or in the script.
func (s Source) withDefaults() (Source, error) {
	if s.Name == "" {
		s.Name = DefaultName(s.URL, s.Origin)
	}
	if s.Suite == "" {
		s.Suite = "stable"
	}
	if len(s.Components) == 0 {
		s.Components = []string{"main"}
	}
	if err := ValidName(s.Name); err != nil {
		return s, err
	}
	if s.URL != "" {
		if err := ValidURL(s.URL); err != nil {
			return s, err
		}
	}
	for _, w := range append([]string{s.Suite}, s.Components...) {
		if !safeWord(w) {
			return s, fmt.Errorf("setup: suite or component %q: use letters, digits and . _ - only", w)
		}
	}
	if _, err := Fingerprint(s.Key); err != nil {
		return s, err
	}
	return s, nil
}

// ValidName checks a source name: it becomes a file name that apt reads
// (letters, digits, '.', '_', '-'; apt ignores other names in sources.list.d).
func ValidName(name string) error {
	if name == "" || len(name) > 100 || name[0] == '.' || name[0] == '-' || !safeWord(name) {
		return fmt.Errorf("setup: name %q: use letters, digits and . _ - (not first), at most 100", name)
	}
	return nil
}

func safeWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidURL checks a repository URL: http or https, a host, and no characters that
// would need quoting in a sources file or a shell script.
func ValidURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("setup: repository URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("setup: repository URL %q: want http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("setup: repository URL %q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("setup: repository URL %q: no query, fragment or user info allowed", s)
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("'\"`$\\;&|<>(){}*?!#", c) {
			return fmt.Errorf("setup: repository URL %q: character %q not allowed", s, c)
		}
	}
	return nil
}

// ValidRole checks a role (package) name given on a command line.
func ValidRole(name string) error {
	if err := control.ValidPackageName(name); err != nil {
		return fmt.Errorf("setup: role %q: %w", name, err)
	}
	return nil
}

// Fingerprint returns the fingerprint (40 upper-case hex digits) of the one public key
// in an armored OpenPGP public key block. Private keys and several keys are refused.
func Fingerprint(key []byte) (string, error) {
	if len(bytes.TrimSpace(key)) == 0 {
		return "", errors.New("setup: no repository key")
	}
	blk, err := armor.Decode(bytes.NewReader(key))
	if err != nil {
		return "", fmt.Errorf("setup: repository key: not an armored OpenPGP key: %w", err)
	}
	if blk.Type != openpgp.PublicKeyType {
		return "", fmt.Errorf("setup: repository key: %s, want %s (the repository's public/key.asc)", blk.Type, openpgp.PublicKeyType)
	}
	ents, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(key))
	if err != nil {
		return "", fmt.Errorf("setup: repository key: %w", err)
	}
	if len(ents) != 1 {
		return "", fmt.Errorf("setup: repository key: %d keys, want one", len(ents))
	}
	if !bytes.HasPrefix(bytes.TrimSpace(key), []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		return "", errors.New("setup: repository key: text before the armor header")
	}
	return fmt.Sprintf("%X", ents[0].PrimaryKey.Fingerprint), nil
}

// KeyPath and SourcesPath are where the key and the source go on the server.
func (s Source) KeyPath() string     { return KeyringDir + "/" + s.Name + ".asc" }
func (s Source) SourcesPath() string { return SourcesDir + "/" + s.Name + ".sources" }

// SourcesFile returns the deb822 .sources file for the source.
func (s Source) SourcesFile() ([]byte, error) {
	s, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	if s.URL == "" {
		return nil, errors.New("setup: no repository URL")
	}
	return []byte(sourcesText(s, s.URL)), nil
}

func sourcesText(s Source, u string) string {
	return "# written by upds setup\nTypes: deb\nURIs: " + u + "\nSuites: " + s.Suite +
		"\nComponents: " + strings.Join(s.Components, " ") + "\nSigned-By: " + s.KeyPath() + "\n"
}
