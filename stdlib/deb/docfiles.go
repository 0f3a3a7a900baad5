package deb

// The files every package built from BUILD.star carries: copyright, changelog, lintian overrides.

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
)

// copyrightFile is /usr/share/doc/NAME/copyright in the machine-readable format.
func copyrightFile(p interp.Project, name, maint string, mtime time.Time) []byte {
	lic := p.License
	if lic == "" {
		lic = "other"
	}
	holder := p.Copyright
	if holder == "" {
		holder = fmt.Sprintf("%d %s", mtime.Year(), maint)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: %s\n", orDefault(p.Name, name))
	if p.Homepage != "" {
		fmt.Fprintf(&b, "Source: %s\n", p.Homepage)
	}
	fmt.Fprintf(&b, "\nFiles: *\nCopyright: %s\nLicense: %s\n", holder, lic)
	if p.License == "" {
		b.WriteString(" No license was declared: see project(license = ...) in BUILD.star.\n")
	}
	return []byte(b.String())
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// changelogGz is /usr/share/doc/NAME/changelog(.Debian).gz: the project's changelog
// (changelog.go) for the version, gzipped reproducibly.
func (s *Spec) changelogGz(fsys afero.Fs, ver, maint string, mtime time.Time) ([]byte, error) {
	text, err := s.changelog(fsys, ver, maint, mtime)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.ModTime = time.Time{}
	zw.Write(text)
	zw.Close()
	return buf.Bytes(), nil
}

// lintianOverrides returns the overrides for the layout a Python deployment uses on purpose:
// code under /srv or /opt, virtualenvs under /var/virtualenvs.
func (s *Spec) lintianOverrides(seen *contentFacts) []byte {
	var lines []string
	has := func(prefix string) bool { return seen.prefixes[prefix] }
	if has("/srv/") {
		lines = append(lines, "dir-or-file-in-srv *")
	}
	if has("/opt/") {
		lines = append(lines, "dir-or-file-in-opt *")
	}
	if has("/var/virtualenvs/") {
		lines = append(lines, "non-standard-dir-in-var *")
	}
	if has("/var/virtualenvs/") || has("/srv/") || has("/opt/") {
		// The venv and the code live outside the FHS on purpose (one self-contained tree).
		lines = append(lines, "file-in-unusual-dir *")
	}
	for _, c := range s.Contents {
		if c.Kind == ContentBuilt {
			// Console scripts run the venv's own interpreter.
			lines = append(lines, "unusual-interpreter *")
			break
		}
	}
	if len(s.Contents) == 0 {
		lines = append(lines, "empty-binary-package")
	}
	lines = append(lines, "unknown-field X-Upds-Source")
	lines = append(lines, s.LintianOverrides...)
	if len(lines) == 0 {
		return nil
	}
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s: %s\n", s.Name, l)
	}
	return []byte(b.String())
}
