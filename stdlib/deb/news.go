package deb

// NEWS-style changelogs: the CHANGELOG.md or NEWS file many projects keep ("## 1.2.0
// (2024-05-01)" or "## [1.2.0] - 2024-05-01" headings, "- change" items), converted into
// Debian's format.

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/upds/upds/stdlib/version"
)

var (
	newsVersion    = regexp.MustCompile(`^(?:#{1,6}\s*)?\[?v?(\d[0-9A-Za-z.+~:-]*?)\]?(?:\s*(?:[-–—:]\s*)?\(?(\d{4}-\d{2}-\d{2})\)?)?$`)
	newsUnreleased = regexp.MustCompile(`(?i)^(?:#{1,6}\s*)?\[?unreleased\]?$`)
	newsSubheading = regexp.MustCompile(`^#{1,6}\s+(.*)$`)
	newsItem       = regexp.MustCompile(`^(\s*)[-*+]\s+(.*)$`)
	newsSkip       = regexp.MustCompile(`^(=+|-+|\[[^\]]+\]:\s.*)$`) // setext underlines, link references
)

// newsPara is one change being read: an item and its continuation lines, or a paragraph.
type newsPara struct {
	nested bool // an item inside an item
	words  []string
}

// lines wraps the change at 80 columns as a Debian changelog writes it: "  * " then
// "    ", or "    - " then "      " for a nested item.
func (p *newsPara) lines() []string {
	prefix, next := "  * ", "    "
	if p.nested {
		prefix, next = "    - ", "      "
	}
	var out []string
	line := ""
	for _, w := range p.words {
		if line != "" && len(prefix)+len(line)+1+len(w) > 80 {
			out = append(out, prefix+line)
			prefix, line = next, ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(out, prefix+line)
}

// parseNews reads a NEWS-style list into changelog entries, newest first.
func parseNews(data []byte) ([]clEntry, error) {
	var entries []clEntry
	var cur *clEntry
	var para *newsPara
	flush := func() {
		if para != nil {
			cur.lines = append(cur.lines, para.lines()...)
			para = nil
		}
	}
	for i, raw := range strings.Split(string(data), "\n") {
		l := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(l)
		if e, ok := newsHeading(trimmed, i+1); ok {
			if cur != nil {
				flush()
				entries = append(entries, *cur)
			}
			cur = e
			continue
		}
		if cur == nil {
			continue // a title, prose before the first version
		}
		switch m := newsItem.FindStringSubmatch(l); {
		case trimmed == "" || newsSkip.MatchString(trimmed):
			flush()
		case newsSubheading.MatchString(trimmed):
			flush()
			if len(cur.lines) > 0 {
				cur.lines = append(cur.lines, "")
			}
			cur.lines = append(cur.lines, "  [ "+strings.TrimSpace(newsSubheading.FindStringSubmatch(trimmed)[1])+" ]")
		case m != nil:
			flush()
			para = &newsPara{nested: len(strings.ReplaceAll(m[1], "\t", "  ")) >= 2, words: strings.Fields(m[2])}
		case para != nil:
			para.words = append(para.words, strings.Fields(trimmed)...)
		default:
			para = &newsPara{words: strings.Fields(trimmed)}
		}
	}
	if cur != nil {
		flush()
		entries = append(entries, *cur)
	}
	return entries, checkNews(entries)
}

// newsHeading reads a version heading ("## 1.2.0 (2024-05-01)", "## [1.2.0] - 2024-05-01",
// "1.2.0", "## Unreleased") at line n.
func newsHeading(l string, n int) (*clEntry, bool) {
	if newsUnreleased.MatchString(l) {
		return &clEntry{line: n}, true
	}
	m := newsVersion.FindStringSubmatch(l)
	if m == nil {
		return nil, false
	}
	if _, err := version.Parse(m[1]); err != nil {
		return nil, false
	}
	e := &clEntry{version: m[1], line: n}
	if m[2] != "" {
		d, err := time.Parse("2006-01-02", m[2])
		if err != nil {
			return nil, false
		}
		e.date, e.dated = d, true
	}
	return e, true
}

// checkNews checks that a NEWS list has versions, newest first, an "Unreleased" section only
// at the top, and gives every entry at least one line.
func checkNews(entries []clEntry) error {
	if len(entries) == 0 {
		return errors.New(`no version headings such as "## 1.2.0 (2024-05-01)"; and its first line is not Debian's "NAME (VERSION) DISTRIBUTION; urgency=medium"`)
	}
	var prev *clEntry
	for i := range entries {
		e := &entries[i]
		if len(e.lines) == 0 {
			e.lines = []string{"  * No changes listed."}
		}
		if e.version == "" {
			if i > 0 {
				return fmt.Errorf("line %d: \"Unreleased\" goes above every version", e.line)
			}
			continue
		}
		if prev != nil {
			if c, _ := version.CompareStrings(e.version, prev.version); c >= 0 {
				return fmt.Errorf("line %d: %s comes after %s: entries go newest first", e.line, e.version, prev.version)
			}
		}
		prev = e
	}
	return nil
}
