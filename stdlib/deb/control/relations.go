package control

import (
	"errors"
	"fmt"
	"strings"
)

// Relation is one package in a relation field: "name[:arch] [(op version)] [[archs]] [<profiles>]".
type Relation struct {
	Name string `json:"name"`
	// ArchQualifier is the part after ":" in "python3:any"; empty when absent.
	ArchQualifier string `json:"arch_qualifier,omitempty"`
	// Op is one of "<<", "<=", "=", ">=", ">>"; empty when the relation has no version.
	Op      string `json:"op,omitempty"`
	Version string `json:"version,omitempty"`
	// Architectures is the restriction list of "[amd64 !i386]" (source packages only).
	Architectures []string `json:"architectures,omitempty"`
	// Profiles are the build profile formulas of "<!nocheck> <stage1 cross>" (source packages only).
	Profiles [][]string `json:"profiles,omitempty"`
}

// Alternatives is a list of relations separated by "|": any one satisfies it.
type Alternatives []Relation

// Relations is a relation field: a comma-separated list of alternatives, all required.
type Relations []Alternatives

// String returns the canonical form: "name:arch (op version) [archs] <profile>".
func (r Relation) String() string {
	var b strings.Builder
	b.WriteString(r.Name)
	if r.ArchQualifier != "" {
		b.WriteByte(':')
		b.WriteString(r.ArchQualifier)
	}
	if r.Op != "" {
		fmt.Fprintf(&b, " (%s %s)", r.Op, r.Version)
	}
	if len(r.Architectures) > 0 {
		fmt.Fprintf(&b, " [%s]", strings.Join(r.Architectures, " "))
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(&b, " <%s>", strings.Join(p, " "))
	}
	return b.String()
}

// String returns the alternatives joined by " | ".
func (a Alternatives) String() string {
	parts := make([]string, len(a))
	for i, r := range a {
		parts[i] = r.String()
	}
	return strings.Join(parts, " | ")
}

// String returns the canonical field value: alternatives joined by ", ".
func (rs Relations) String() string {
	parts := make([]string, len(rs))
	for i, a := range rs {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}

// CheckBinary reports an error when a relation uses syntax that only source packages may use
// (architecture restrictions "[...]" and build profiles "<...>"), as dpkg does for binary packages.
func (rs Relations) CheckBinary() error {
	for _, a := range rs {
		for _, r := range a {
			if len(r.Architectures) > 0 {
				return fmt.Errorf("%q: architecture restrictions [...] are allowed only in source packages", r.String())
			}
			if len(r.Profiles) > 0 {
				return fmt.Errorf("%q: build profiles <...> are allowed only in source packages", r.String())
			}
		}
	}
	return nil
}

// ParseRelations parses a Depends-style field value such as
// "a | b (>= 1.0), c:any [amd64], d <!nocheck>". Versions are checked with ValidVersion, names
// with ValidPackageName. An empty (or all-whitespace) string gives no relations. Obsolete
// operators "<" and ">" are refused.
func ParseRelations(s string) (Relations, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out Relations
	for _, group := range strings.Split(s, ",") {
		if strings.TrimSpace(group) == "" {
			return nil, fmt.Errorf("relations %q: empty entry between commas", clip(s))
		}
		var alts Alternatives
		for _, one := range strings.Split(group, "|") {
			r, err := parseRelation(one)
			if err != nil {
				return nil, fmt.Errorf("relation %q: %w", clip(strings.TrimSpace(one)), err)
			}
			alts = append(alts, r)
		}
		out = append(out, alts)
	}
	return out, nil
}

// ParseRelation parses a single relation without alternatives, such as "python3 (>= 3.11)".
func ParseRelation(s string) (Relation, error) {
	r, err := parseRelation(s)
	if err != nil {
		return Relation{}, fmt.Errorf("relation %q: %w", clip(strings.TrimSpace(s)), err)
	}
	return r, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func parseRelation(s string) (Relation, error) {
	var r Relation
	i := 0
	skip := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	skip()
	start := i
	for i < len(s) && !isSpace(s[i]) && !strings.ContainsRune("(<[:", rune(s[i])) {
		i++
	}
	r.Name = s[start:i]
	if r.Name == "" {
		return r, errors.New("missing package name")
	}
	if strings.Contains(r.Name, "${") {
		return r, fmt.Errorf("unexpanded substitution variable %q", r.Name)
	}
	if err := ValidPackageName(r.Name); err != nil {
		return r, err
	}
	if i < len(s) && s[i] == ':' {
		i++
		start = i
		for i < len(s) && !isSpace(s[i]) && !strings.ContainsRune("(<[", rune(s[i])) {
			i++
		}
		r.ArchQualifier = s[start:i]
		if err := ValidArchitecture(r.ArchQualifier); err != nil {
			return r, fmt.Errorf("architecture qualifier: %w", err)
		}
	}
	skip()
	if i < len(s) && s[i] == '(' {
		end := strings.IndexByte(s[i:], ')')
		if end < 0 {
			return r, errors.New("missing \")\"")
		}
		inner := strings.TrimSpace(s[i+1 : i+end])
		i += end + 1
		j := 0
		for j < len(inner) && strings.ContainsRune("<>=", rune(inner[j])) {
			j++
		}
		r.Op = inner[:j]
		switch r.Op {
		case "<<", "<=", "=", ">=", ">>":
		case "<", ">":
			return r, fmt.Errorf("obsolete operator %q: use %q or %q", r.Op, r.Op+r.Op, r.Op+"=")
		case "":
			return r, errors.New("missing operator in (...): use <<, <=, =, >= or >>")
		default:
			return r, fmt.Errorf("unknown operator %q: use <<, <=, =, >= or >>", r.Op)
		}
		r.Version = strings.TrimSpace(inner[j:])
		if err := ValidVersion(r.Version); err != nil {
			return r, err
		}
		skip()
	}
	if i < len(s) && s[i] == '[' {
		end := strings.IndexByte(s[i:], ']')
		if end < 0 {
			return r, errors.New("missing \"]\"")
		}
		r.Architectures = strings.Fields(s[i+1 : i+end])
		i += end + 1
		if len(r.Architectures) == 0 {
			return r, errors.New("empty architecture list []")
		}
		neg := strings.HasPrefix(r.Architectures[0], "!")
		for _, a := range r.Architectures {
			if strings.HasPrefix(a, "!") != neg {
				return r, errors.New("architecture list mixes negated and plain entries")
			}
			if err := ValidArchitecture(strings.TrimPrefix(a, "!")); err != nil {
				return r, err
			}
		}
		skip()
	}
	for i < len(s) && s[i] == '<' {
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			return r, errors.New("missing \">\"")
		}
		terms := strings.Fields(s[i+1 : i+end])
		i += end + 1
		if len(terms) == 0 {
			return r, errors.New("empty build profile <>")
		}
		for _, t := range terms {
			if err := ValidArchitecture(strings.TrimPrefix(t, "!")); err != nil {
				return r, fmt.Errorf("build profile %q: invalid name", t)
			}
		}
		r.Profiles = append(r.Profiles, terms)
		skip()
	}
	if i < len(s) {
		return r, fmt.Errorf("unexpected %q", clip(s[i:]))
	}
	return r, nil
}
