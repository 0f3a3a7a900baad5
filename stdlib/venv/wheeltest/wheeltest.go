// Package wheeltest writes small, valid pure-Python wheels (py3-none-any) so that tests can
// install packages with pip offline: pip install --no-index --find-links DIR.
package wheeltest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Wheel describes one distribution.
type Wheel struct {
	Name    string // distribution name, e.g. "hello-lib"
	Version string // e.g. "1.0"
	// Files maps a path inside the wheel (relative to site-packages, e.g. "hello/__init__.py")
	// to its content.
	Files map[string]string
	// EntryPoints maps a console script name to its "module:function" target.
	EntryPoints map[string]string
	// Requires lists Requires-Dist requirements, e.g. "hello-lib>=1.0".
	Requires []string
	// Summary is the one-line description; optional.
	Summary string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
var versionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.+!-]*$`)
var sepRE = regexp.MustCompile(`[-_.]+`)

// FileName is the wheel's file name: NAME-VERSION-py3-none-any.whl with the name escaped as the
// wheel specification asks (runs of "-", "_", "." become "_").
func (w Wheel) FileName() string {
	return fmt.Sprintf("%s-%s-py3-none-any.whl", w.escapedName(), w.Version)
}

func (w Wheel) escapedName() string { return sepRE.ReplaceAllString(w.Name, "_") }

// fixed zip timestamp: the wheel is byte-identical for identical input.
var epoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Write creates the wheel in dir and returns its path.
func Write(dir string, w Wheel) (string, error) {
	if !nameRE.MatchString(w.Name) {
		return "", fmt.Errorf("wheeltest: invalid name %q", w.Name)
	}
	if !versionRE.MatchString(w.Version) {
		return "", fmt.Errorf("wheeltest %s: invalid version %q", w.Name, w.Version)
	}
	distInfo := fmt.Sprintf("%s-%s.dist-info", w.escapedName(), w.Version)

	type entry struct{ name, data string }
	var entries []entry
	paths := make([]string, 0, len(w.Files))
	for p := range w.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		clean := filepath.ToSlash(filepath.Clean(p))
		if clean != p || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") || p == ".." ||
			strings.HasPrefix(p, distInfo+"/") {
			return "", fmt.Errorf("wheeltest %s: invalid file path %q", w.Name, p)
		}
		entries = append(entries, entry{p, w.Files[p]})
	}

	var meta strings.Builder
	meta.WriteString("Metadata-Version: 2.1\n")
	fmt.Fprintf(&meta, "Name: %s\nVersion: %s\n", w.Name, w.Version)
	if w.Summary != "" {
		fmt.Fprintf(&meta, "Summary: %s\n", w.Summary)
	}
	for _, r := range w.Requires {
		fmt.Fprintf(&meta, "Requires-Dist: %s\n", r)
	}
	entries = append(entries,
		entry{distInfo + "/METADATA", meta.String()},
		entry{distInfo + "/WHEEL", "Wheel-Version: 1.0\nGenerator: upds-wheeltest\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	)
	if len(w.EntryPoints) > 0 {
		names := make([]string, 0, len(w.EntryPoints))
		for n := range w.EntryPoints {
			names = append(names, n)
		}
		sort.Strings(names)
		var ep strings.Builder
		ep.WriteString("[console_scripts]\n")
		for _, n := range names {
			fmt.Fprintf(&ep, "%s = %s\n", n, w.EntryPoints[n])
		}
		entries = append(entries, entry{distInfo + "/entry_points.txt", ep.String()})
	}
	var record strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&record, "%s,%s,%d\n", csvField(e.name), RecordHash([]byte(e.data)), len(e.data))
	}
	fmt.Fprintf(&record, "%s,,\n", distInfo+"/RECORD")
	entries = append(entries, entry{distInfo + "/RECORD", record.String()})

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: epoch}
		h.SetMode(0o644)
		f, err := zw.CreateHeader(h)
		if err != nil {
			return "", fmt.Errorf("wheeltest %s: %w", w.Name, err)
		}
		if _, err := io.WriteString(f, e.data); err != nil {
			return "", fmt.Errorf("wheeltest %s: %w", w.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("wheeltest %s: %w", w.Name, err)
	}
	path := filepath.Join(dir, w.FileName())
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("wheeltest %s: %w", w.Name, err)
	}
	return path, nil
}

// RecordHash is the hash of data in the form RECORD files use: sha256=URLSAFE_BASE64_NO_PADDING.
func RecordHash(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// PipHash is the hash of the file at path in the form pip's --hash option and
// --require-hashes mode expect: sha256:HEX.
func PipHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}
