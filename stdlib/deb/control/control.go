// Package control reads and writes Debian control data (deb822 paragraphs) and parses the
// relation fields (Depends, Pre-Depends, Recommends, ...) of binary packages.
package control

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Field is one field of a paragraph. Value is the logical value: a multi-line value holds its
// continuation lines separated by "\n", each without the one leading space that folds it in the
// file, and an empty line for a " ." line. A value whose first line is empty (like Conffiles or
// Files in other control files) starts with "\n".
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Paragraph is an ordered list of fields. Field names are matched case-insensitively.
type Paragraph struct {
	Fields []Field
}

func (p *Paragraph) index(name string) int {
	for i, f := range p.Fields {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}

// Get returns the value of the named field, or "" when the paragraph has no such field.
func (p Paragraph) Get(name string) string {
	if i := p.index(name); i >= 0 {
		return p.Fields[i].Value
	}
	return ""
}

// Has reports whether the paragraph has the named field.
func (p Paragraph) Has(name string) bool { return p.index(name) >= 0 }

// Set replaces the value of the named field in place, or appends the field when it is missing.
func (p *Paragraph) Set(name, value string) {
	if i := p.index(name); i >= 0 {
		p.Fields[i].Value = value
		return
	}
	p.Fields = append(p.Fields, Field{Name: name, Value: value})
}

// Delete removes the named field if present.
func (p *Paragraph) Delete(name string) {
	if i := p.index(name); i >= 0 {
		p.Fields = append(p.Fields[:i:i], p.Fields[i+1:]...)
	}
}

// Clone returns a deep copy of the paragraph.
func (p Paragraph) Clone() Paragraph {
	return Paragraph{Fields: append([]Field(nil), p.Fields...)}
}

// maxLine bounds one line of input so that hostile input cannot make Parse allocate without limit.
const maxLine = 16 << 20

// Parse reads deb822 paragraphs: "Name: value" fields, continuation lines starting with a space or
// a tab (" ." stands for an empty line), lines starting with "#" ignored, paragraphs separated by
// blank lines. Trailing whitespace on every line and leading whitespace of the first value line
// are dropped, and so are empty lines at the end of a value. PGP-signed input is refused: verify and strip the signature first.
// Errors name the line number.
func Parse(r io.Reader) ([]Paragraph, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var (
		out  []Paragraph
		cur  Paragraph
		last = -1 // index of the field that continuation lines extend
		n    int
	)
	flush := func() {
		if len(cur.Fields) > 0 {
			for i := range cur.Fields {
				cur.Fields[i].Value = strings.TrimRight(cur.Fields[i].Value, "\n")
			}
			out = append(out, cur)
		}
		cur, last = Paragraph{}, -1
	}
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case line == "":
			flush()
		case line[0] == '#':
			// comment
		case line[0] == ' ' || line[0] == '\t':
			if last < 0 {
				return nil, fmt.Errorf("line %d: continuation line outside a field", n)
			}
			cont := line[1:]
			if cont == "." {
				cont = ""
			}
			cur.Fields[last].Value += "\n" + cont
		default:
			if strings.HasPrefix(line, "-----BEGIN PGP") {
				return nil, fmt.Errorf("line %d: PGP-signed input: verify and strip the signature first", n)
			}
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("line %d: expected \"Name: value\", got %q", n, clip(line))
			}
			if err := checkName(name); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			if cur.index(name) >= 0 {
				return nil, fmt.Errorf("line %d: duplicate field %q", n, name)
			}
			cur.Fields = append(cur.Fields, Field{Name: name, Value: strings.TrimLeft(value, " \t\r")})
			last = len(cur.Fields) - 1
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", n+1, maxLine)
		}
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	flush()
	return out, nil
}

// ParseOne reads exactly one paragraph (blank lines and comments around it are allowed), as in a
// binary package's control file.
func ParseOne(r io.Reader) (Paragraph, error) {
	ps, err := Parse(r)
	if err != nil {
		return Paragraph{}, err
	}
	switch len(ps) {
	case 0:
		return Paragraph{}, errors.New("no paragraph")
	case 1:
		return ps[0], nil
	default:
		return Paragraph{}, fmt.Errorf("%d paragraphs, want one", len(ps))
	}
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// checkName validates a field name as deb822 defines it: printable US-ASCII except ":" and
// space, not starting with "#" or "-".
func checkName(name string) error {
	if name == "" {
		return errors.New("empty field name")
	}
	if name[0] == '#' || name[0] == '-' {
		return fmt.Errorf("field name %q starts with %q", clip(name), name[0])
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == ':' {
			return fmt.Errorf("field name %q has invalid character %q", clip(name), c)
		}
	}
	return nil
}

// WriteTo writes the paragraph in deb822 form, without a trailing blank line: "Name: value", a
// multi-line value folded into continuation lines that start with a space, empty lines as " .".
// Fields whose value is empty (or only whitespace) are left out. Leading whitespace of the first
// value line and trailing whitespace of every line are dropped, as Parse would drop them.
// It fails on an invalid field name or on a value line that is exactly "." (which deb822 cannot
// represent).
func (p Paragraph) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	if err := p.appendTo(&b); err != nil {
		return 0, err
	}
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// Bytes returns the paragraph as WriteTo writes it.
func (p Paragraph) Bytes() ([]byte, error) {
	var b bytes.Buffer
	err := p.appendTo(&b)
	return b.Bytes(), err
}

func (p Paragraph) appendTo(b *bytes.Buffer) error {
	seen := make(map[string]bool, len(p.Fields))
	for _, f := range p.Fields {
		if err := checkName(f.Name); err != nil {
			return err
		}
		key := strings.ToLower(f.Name)
		if seen[key] {
			return fmt.Errorf("duplicate field %q", f.Name)
		}
		seen[key] = true
		if strings.TrimSpace(f.Value) == "" {
			continue
		}
		lines := strings.Split(f.Value, "\n")
		// Trailing empty lines would be written as " ." lines; they carry nothing, drop them.
		for len(lines) > 1 && strings.TrimRight(lines[len(lines)-1], " \t\r") == "" {
			lines = lines[:len(lines)-1]
		}
		b.WriteString(f.Name)
		b.WriteByte(':')
		if first := strings.Trim(lines[0], " \t\r"); first != "" {
			b.WriteByte(' ')
			b.WriteString(first)
		}
		b.WriteByte('\n')
		for _, l := range lines[1:] {
			l = strings.TrimRight(l, " \t\r")
			switch {
			case l == "":
				b.WriteString(" .\n")
			case l == ".":
				return fmt.Errorf("field %s: a continuation line cannot be exactly \".\"", f.Name)
			default:
				b.WriteByte(' ')
				b.WriteString(l)
				b.WriteByte('\n')
			}
		}
	}
	return nil
}

// Write writes paragraphs separated by blank lines, as in a Packages or status file.
func Write(w io.Writer, ps []Paragraph) error {
	var b bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		if err := p.appendTo(&b); err != nil {
			return err
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}
