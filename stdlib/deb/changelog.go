package deb

// The changelog in /usr/share/doc/NAME: the file the project keeps, in Debian's format
// (checked as dpkg-parsechangelog reads it) or a NEWS-style list that upds converts, with an
// entry for the version being built; a one-entry placeholder when the project keeps none.

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/upds/upds/stdlib/version"
)

// clEntry is one entry of a changelog.
type clEntry struct {
	version string
	date    time.Time
	dated   bool     // the file gives the date (a NEWS heading may not)
	lines   []string // the change lines, as written in Debian's format
	line    int      // where it starts in the file
	source  string   // Debian's format: the header's package name and distributions
	dists   string
}

// changelog is the changelog text for version ver of the package.
func (s *Spec) changelog(fsys afero.Fs, ver, maint string, mtime time.Time) ([]byte, error) {
	if s.Changelog == "" {
		e := clEntry{version: ver, date: mtime, lines: []string{"  * Built with upds."}}
		return e.text(s.Name, "unstable", maint), nil
	}
	data, err := afero.ReadFile(fsys, s.Changelog)
	if err == nil {
		data, err = convertChangelog(data, s.Name, ver, maint, path.Base(s.Changelog), mtime)
	}
	if err != nil {
		return nil, s.errorf("changelog: %s: %v", s.Changelog, err)
	}
	return data, nil
}

// convertChangelog returns the changelog for ver from the file data (named file): Debian's
// format as it is, a NEWS list converted; either from the entry of ver on, after one made up and
// dated mtime when it has none (see currentEntry).
func convertChangelog(data []byte, name, ver, maint, file string, mtime time.Time) ([]byte, error) {
	debian := clHeader.Match(bytes.TrimLeft(firstLine(data), "\n"))
	var entries []clEntry
	var err error
	if debian {
		entries, err = parseDebianChangelog(data)
	} else {
		entries, err = parseNews(data)
	}
	if err != nil {
		return nil, err
	}
	cur, older, err := currentEntry(entries, ver, debian)
	if err != nil {
		return nil, err
	}
	made := clEntry{version: ver, date: mtime, lines: []string{fmt.Sprintf("  * Built with upds: %s has no entry for this version.", file)}}
	var out bytes.Buffer
	if debian {
		from := len(entries)
		if cur >= 0 {
			from = cur
		} else {
			out.Write(made.text(entries[0].source, strings.Fields(entries[0].dists)[0], maint))
			from = older
		}
		if from < len(entries) {
			if cur < 0 {
				out.WriteString("\n")
			}
			lines := strings.SplitAfter(string(data), "\n")
			out.WriteString(strings.Join(lines[entries[from].line-1:], ""))
		}
		return out.Bytes(), nil
	}
	if cur >= 0 {
		made = entries[cur]
		made.version = ver
		if !made.dated {
			made.date = mtime
		}
	}
	out.Write(made.text(name, "unstable", maint))
	for _, e := range entries[older:] {
		if !e.dated {
			return nil, fmt.Errorf("line %d: %s has no date: write it after the version, e.g. \"## %s (2024-05-01)\" (only the entry of the version being built may go without)", e.line, e.version, e.version)
		}
		out.WriteString("\n")
		out.Write(e.text(name, "unstable", maint))
	}
	return out.Bytes(), nil
}

func firstLine(data []byte) []byte {
	data = bytes.TrimLeft(data, " \t\r\n")
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[:i]
	}
	return data
}

// currentEntry finds the entry of ver among entries (newest first): cur is its index, or -1
// when the file has none (then one is made), and older the index of the first entry older than
// ver. Entries newer than ver are left out: the package of an older version (a virtualenv
// package that keeps its version while only the code changes) has the history up to its own.
// In a NEWS list, an "Unreleased" entry at the top is ver's when ver has none of its own and no
// entry is newer, and a heading without a Debian revision stands for every revision of its
// version.
func currentEntry(entries []clEntry, ver string, debian bool) (cur, older int, err error) {
	want, err := version.Parse(ver)
	if err != nil {
		return 0, 0, err
	}
	unreleased, newer := -1, false
	for i, e := range entries {
		if e.version == "" {
			unreleased = i // checkNews allows it at the top only
			continue
		}
		v, _ := version.Parse(e.version) // the parsers checked it
		cmpTo := want
		if !debian && v.Revision == "" {
			cmpTo = version.Version{Epoch: v.Epoch, Upstream: want.Upstream}
		}
		switch c := version.Compare(v, cmpTo); {
		case c > 0:
			newer = true
		case c == 0:
			return i, i + 1, nil
		default:
			if newer {
				unreleased = -1
			}
			return unreleased, i, nil
		}
	}
	if newer {
		unreleased = -1
	}
	return unreleased, len(entries), nil
}

// text is the entry in Debian's format.
func (e *clEntry) text(source, dist, maint string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) %s; urgency=medium\n\n", source, e.version, dist)
	for _, l := range e.lines {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "\n -- %s  %s\n", maint, e.date.UTC().Format(changelogDate))
	return []byte(b.String())
}

const changelogDate = "Mon, 02 Jan 2006 15:04:05 -0700"

var (
	// Dpkg::Changelog::Debian's regular expressions.
	clHeader  = regexp.MustCompile(`^(\w[-+0-9a-z.]*) \(([^() \t]+)\)((?:\s+[-+0-9a-z.]+)+);(.*)$`)
	clTrailer = regexp.MustCompile(`^ -- (.*) <(.*)>(  ?)((?:\w+,\s*)?\d{1,2}\s+\w+\s+\d{4}\s+\d{1,2}:\d\d:\d\d\s+[-+]\d{4})\s*$`)
	clFooter  = regexp.MustCompile(`(?i)^(local variables:|old changelog:)`)
)

// parseDebianChangelog checks a changelog in Debian's format (deb-changelog(5)) and returns its
// entries.
func parseDebianChangelog(data []byte) ([]clEntry, error) {
	var entries []clEntry
	var cur *clEntry
	for i, l := range strings.Split(string(data), "\n") {
		n := i + 1
		blank := strings.TrimSpace(l) == ""
		switch {
		case cur == nil && blank:
		case cur == nil && clFooter.MatchString(l):
			return finish(entries, nil)
		case cur == nil:
			m := clHeader.FindStringSubmatch(l)
			if m == nil {
				return nil, fmt.Errorf("line %d: %q: want the first line of an entry, \"NAME (VERSION) DISTRIBUTION; urgency=medium\"", n, l)
			}
			if _, err := version.Parse(m[2]); err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
			if !strings.Contains(m[4], "urgency=") {
				return nil, fmt.Errorf("line %d: no urgency (\"; urgency=medium\")", n)
			}
			cur = &clEntry{source: m[1], version: m[2], dists: strings.TrimSpace(m[3]), line: n, dated: true}
		case strings.HasPrefix(l, " -- "):
			if err := cur.trailer(l, n); err != nil {
				return nil, err
			}
			entries, cur = append(entries, *cur), nil
		case blank:
		case l[0] == ' ' || l[0] == '\t':
			cur.lines = append(cur.lines, l)
		default:
			return nil, fmt.Errorf("line %d: %q: inside an entry, a line starts with two spaces (a change) or \" -- \" (the last line)", n, l)
		}
	}
	return finish(entries, cur)
}

// trailer reads the last line of an entry, " -- NAME <EMAIL>  DATE".
func (e *clEntry) trailer(l string, n int) error {
	m := clTrailer.FindStringSubmatch(l)
	if m == nil {
		return fmt.Errorf("line %d: %q: want \" -- NAME <EMAIL>  Mon, 01 Jan 2024 12:00:00 +0000\"", n, l)
	}
	if len(e.lines) == 0 {
		return fmt.Errorf("line %d: the entry of %s lists no change", n, e.version)
	}
	date, err := parseChangelogDate(m[4])
	if err != nil {
		return fmt.Errorf("line %d: %v", n, err)
	}
	e.date = date
	return nil
}

func finish(entries []clEntry, open *clEntry) ([]clEntry, error) {
	if open != nil {
		return nil, fmt.Errorf("line %d: the entry of %s has no last line \" -- NAME <EMAIL>  DATE\"", open.line, open.version)
	}
	if len(entries) == 0 {
		return nil, errors.New("no entries")
	}
	return entries, nil
}

// parseChangelogDate reads an RFC 2822 date, and checks its day of the week.
func parseChangelogDate(s string) (time.Time, error) {
	s = strings.Join(strings.Fields(s), " ")
	day, rest, hasDay := strings.Cut(s, ", ")
	if !hasDay {
		rest = s
	}
	t, err := time.Parse("2 Jan 2006 15:04:05 -0700", rest)
	if err != nil {
		return t, fmt.Errorf("date %q: want \"Mon, 01 Jan 2024 12:00:00 +0000\"", s)
	}
	if hasDay && day != t.Weekday().String()[:3] {
		return t, fmt.Errorf("date %q: %s is a %s", s, t.Format("2 Jan 2006"), t.Weekday())
	}
	return t, nil
}
