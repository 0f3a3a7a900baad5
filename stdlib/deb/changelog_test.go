package deb

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
)

const testNews = `# Changelog

All notable changes are listed here.

## [Unreleased]
- Something upcoming.

## [1.2.0] - 2024-05-01
### Added
- A login page that remembers the last user name, so that people who log in every day do not have to type it again.
- Health check at /healthz.
  It answers 200 when the database is reachable.
    - a nested detail

### Fixed
* Crash on empty input.

## 1.1.0 (2024-03-10)
First public release.

[1.2.0]: https://example.com/compare/1.1.0...1.2.0
`

const testDebianChangelog = `hello (1.2.0-1) bookworm; urgency=low

  * Login page.
    - remembers the user.

 -- Ops Team <ops@example.com>  Wed, 01 May 2024 10:00:00 +0200

hello (1.1.0-1) unstable; urgency=medium

  * First release.

 -- Ops Team <ops@example.com>  Sun, 10 Mar 2024 09:30:00 +0000
`

var testBuilt = time.Date(2024, 6, 2, 12, 0, 0, 0, time.UTC) // SOURCE_DATE_EPOCH

// parsechangelog checks text with dpkg-parsechangelog (which must not warn) and returns the
// versions of its entries.
func parsechangelog(t *testing.T, text []byte) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "changelog")
	must(t, os.WriteFile(f, text, 0o644))
	var stderr bytes.Buffer
	cmd := exec.Command("dpkg-parsechangelog", "-l", f, "--all", "-S", "Version")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("dpkg-parsechangelog: %v\n%s\n%s", err, stderr.String(), text)
	}
	var versions []string
	cmd = exec.Command("dpkg-parsechangelog", "-l", f, "--all", "--format", "rfc822")
	out, err = cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			versions = append(versions, v)
		}
	}
	return versions
}

func TestChangelogNews(t *testing.T) {
	need(t, "dpkg-parsechangelog")
	for _, tc := range []struct {
		ver      string
		versions string
		first    []string // lines the text has
	}{
		{"1.2.0", "1.2.0 1.1.0", []string{"hello (1.2.0) unstable; urgency=medium", "  [ Added ]",
			"  * A login page that remembers the last user name, so that people who log in",
			"    every day do not have to type it again.",
			"  * Health check at /healthz. It answers 200 when the database is reachable.",
			"    - a nested detail", "\n\n  [ Fixed ]\n  * Crash on empty input.\n",
			" -- Ops <ops@example.com>  Wed, 01 May 2024 00:00:00 +0000", "  * First public release."}},
		{"1.2.0-1", "1.2.0-1 1.1.0", []string{"hello (1.2.0-1) unstable"}},
		// A version the list does not have yet: its Unreleased entry, dated SOURCE_DATE_EPOCH.
		{"1.3.0", "1.3.0 1.2.0 1.1.0", []string{"hello (1.3.0) unstable; urgency=medium\n\n  * Something upcoming.\n\n -- Ops <ops@example.com>  Sun, 02 Jun 2024 12:00:00 +0000\n"}},
	} {
		out, err := convertChangelog([]byte(testNews), "hello", tc.ver, "Ops <ops@example.com>", "CHANGELOG.md", testBuilt)
		if err != nil {
			t.Fatalf("%s: %v", tc.ver, err)
		}
		if got := strings.Join(parsechangelog(t, out), " "); got != tc.versions {
			t.Errorf("%s: versions %s, want %s:\n%s", tc.ver, got, tc.versions, out)
		}
		for _, l := range tc.first {
			if !strings.Contains(string(out), l) {
				t.Errorf("%s: no %q in\n%s", tc.ver, l, out)
			}
		}
	}
	// Without an Unreleased entry, a version the list does not have gets one made up.
	noUnreleased := strings.Replace(testNews, "## [Unreleased]\n- Something upcoming.\n", "", 1)
	out, err := convertChangelog([]byte(noUnreleased), "hello", "1.3.0", "Ops <ops@example.com>", "CHANGELOG.md", testBuilt)
	if err != nil || !strings.HasPrefix(string(out), "hello (1.3.0) unstable; urgency=medium\n\n  * Built with upds: CHANGELOG.md has no entry for this version.\n\n -- Ops <ops@example.com>  Sun, 02 Jun 2024 12:00:00 +0000\n\nhello (1.2.0)") {
		t.Errorf("made-up entry: %v\n%s", err, out)
	}
	parsechangelog(t, out)
}

func TestChangelogDebian(t *testing.T) {
	need(t, "dpkg-parsechangelog")
	out, err := convertChangelog([]byte(testDebianChangelog), "hello", "1.2.0-1", "X <x@example.com>", "changelog", testBuilt)
	if err != nil || string(out) != testDebianChangelog {
		t.Errorf("same version: %v\n%s", err, out)
	}
	out, err = convertChangelog([]byte(testDebianChangelog), "hello", "1.2.1-1", "X <x@example.com>", "changelog", testBuilt)
	want := "hello (1.2.1-1) bookworm; urgency=medium\n\n  * Built with upds: changelog has no entry for this version.\n\n -- X <x@example.com>  Sun, 02 Jun 2024 12:00:00 +0000\n\n" + testDebianChangelog
	if err != nil || string(out) != want {
		t.Errorf("newer version: %v\n%s", err, out)
	}
	if got := strings.Join(parsechangelog(t, out), " "); got != "1.2.1-1 1.2.0-1 1.1.0-1" {
		t.Errorf("versions %s", got)
	}
	// An older version (a package that keeps its version): the entries newer than it are left out.
	for ver, want := range map[string]string{"1.1.0-1": "1.1.0-1", "1.0-1": "1.0-1"} {
		out, err := convertChangelog([]byte(testDebianChangelog), "hello", ver, "X <x@example.com>", "changelog", testBuilt)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(parsechangelog(t, out), " "); got != want {
			t.Errorf("%s: versions %s, want %s:\n%s", ver, got, want, out)
		}
	}
}

// TestChangelogOlderVersion: a NEWS list for an older version has the entries up to it; its
// Unreleased section belongs to the newest version.
func TestChangelogOlderVersion(t *testing.T) {
	need(t, "dpkg-parsechangelog")
	for ver, want := range map[string]string{"1.1.0": "1.1.0", "1.1.5": "1.1.5 1.1.0", "0.9": "0.9"} {
		out, err := convertChangelog([]byte(testNews), "hello", ver, "Ops <ops@example.com>", "CHANGELOG.md", testBuilt)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(parsechangelog(t, out), " "); got != want || strings.Contains(string(out), "upcoming") {
			t.Errorf("%s: versions %s, want %s:\n%s", ver, got, want, out)
		}
	}
}

func TestChangelogErrors(t *testing.T) {
	deb := testDebianChangelog
	for _, tc := range []struct{ name, ver, text, want string }{
		{"bad header", "1.2.0-1", strings.Replace(deb, "hello (1.1.0-1) unstable;", "hello 1.1.0-1 unstable;", 1), `line 8: "hello 1.1.0-1 unstable; urgency=medium": want the first line of an entry`},
		{"bad version", "1.2.0-1", strings.Replace(deb, "(1.1.0-1)", "(1.1.0-)", 1), `line 8: version "1.1.0-" has bad syntax`},
		{"no urgency", "1.2.0-1", strings.Replace(deb, "bookworm; urgency=low", "bookworm; x=y", 1), "line 1: no urgency"},
		{"bad trailer", "1.2.0-1", strings.Replace(deb, " -- Ops Team <ops@example.com>  Wed", " -- Ops Team  Wed", 1), `line 6: " -- Ops Team  Wed, 01 May 2024 10:00:00 +0200": want " -- NAME <EMAIL>  Mon, 01 Jan 2024 12:00:00 +0000"`},
		{"wrong weekday", "1.2.0-1", strings.Replace(deb, "Wed, 01 May", "Thu, 01 May", 1), `line 6: date "Thu, 01 May 2024 10:00:00 +0200": 1 May 2024 is a Wednesday`},
		{"no trailer", "1.2.0-1", strings.TrimSuffix(deb, " -- Ops Team <ops@example.com>  Sun, 10 Mar 2024 09:30:00 +0000\n"), "line 8: the entry of 1.1.0-1 has no last line"},
		{"no change", "1.2.0-1", strings.Replace(deb, "  * First release.\n", "", 1), "line 11: the entry of 1.1.0-1 lists no change"},
		{"text in entry", "1.2.0-1", strings.Replace(deb, "  * First release.", "First release.", 1), `line 10: "First release.": inside an entry`},
		{"no news versions", "1.0", "# Changelog\n\n- a change\n", `no version headings such as "## 1.2.0 (2024-05-01)"`},
		{"news order", "1.0", "## 1.0 (2024-01-01)\n- a\n## 1.1 (2024-02-01)\n- b\n", "line 3: 1.1 comes after 1.0: entries go newest first"},
		{"news undated", "1.1", "## 1.1\n- b\n## 1.0\n- a\n", `line 3: 1.0 has no date: write it after the version, e.g. "## 1.0 (2024-05-01)"`},
		{"news unreleased below", "1.1", "## 1.1 (2024-02-01)\n- b\n## Unreleased\n- a\n", `line 3: "Unreleased" goes above every version`},
	} {
		_, err := convertChangelog([]byte(tc.text), "hello", tc.ver, "X <x@example.com>", "changelog", testBuilt)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestChangelogInPackage: deb(changelog = ...) ships the converted changelog, and the
// placeholder without one.
func TestChangelogInPackage(t *testing.T) {
	fsys := specProject(t)
	must(t, afero.WriteFile(fsys, "CHANGELOG.md", []byte(testNews), 0o644))
	for _, tc := range []struct{ changelog, ver, path, want string }{
		{"CHANGELOG.md", "1.2.0", "/usr/share/doc/app/changelog.gz", "app (1.2.0) unstable; urgency=medium\n\n  [ Added ]\n"},
		{"", "1.0-1", "/usr/share/doc/app/changelog.Debian.gz", "app (1.0-1) unstable; urgency=medium\n\n  * Built with upds.\n\n -- Ops <ops@example.com>  Tue, 14 Nov 2023 22:13:20 +0000\n"},
	} {
		s := Spec{Name: "app", Version: tc.ver, Compression: "gzip", Docs: true, Changelog: tc.changelog}
		pl, err := s.Plan(specInputs(fsys))
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, it := range pl.testItems() {
			if it.Path == tc.path {
				rc, _ := it.Open()
				zr, err := gzip.NewReader(rc)
				must(t, err)
				b, _ := io.ReadAll(zr)
				got = string(b)
			}
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want %q...", tc.path, got, tc.want)
		}
	}
	s := Spec{Name: "app", Version: "1.2.0", Compression: "gzip", Docs: true, Changelog: "CHANGELOG.md"}
	must(t, afero.WriteFile(fsys, "CHANGELOG.md", []byte("## 1.2.0 (2024-05-01)\n- a\n## 1.1.0\n- b\n"), 0o644))
	if _, err := s.Plan(specInputs(fsys)); err == nil || !strings.HasPrefix(err.Error(), "deb app: changelog: CHANGELOG.md: line 3: 1.1.0 has no date") {
		t.Errorf("undated older entry: %v", err)
	}
}
