package deb

// The control members besides control, md5sums, conffiles and the scripts: debconf's templates,
// the shared library files shlibs and symbols; and what all of them add to Installed-Size.

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/upds/upds/stdlib/deb/control"
)

// prepareMembers checks the templates, shlibs and symbols files, and completes Installed-Size:
// dpkg-gencontrol runs (under debhelper) when DEBIAN/ holds the scripts, conffiles, triggers,
// templates, shlibs and symbols but not yet control and md5sums, and counts them with the
// tree: DEBIAN/ 1 KiB, each file its size rounded up to KiB. A given Installed-Size (a whole
// number of KiB) is kept instead.
func (pl *Plan) prepareMembers() error {
	p := pl.pkg
	if err := CheckTemplates(p.Templates); err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	if err := checkShlibs(p.Shlibs); err != nil {
		return fmt.Errorf("shlibs: %w", err)
	}
	if err := checkSymbols(p.Symbols); err != nil {
		return fmt.Errorf("symbols: %w", err)
	}
	kib := func(n int) int64 { return (int64(n) + 1023) / 1024 }
	size := int64(1) // DEBIAN/
	if len(pl.conffiles) > 0 {
		size += kib(len(strings.Join(pl.conffiles, "\n")) + 1)
	}
	for _, s := range p.Scripts {
		size += kib(len(s))
	}
	if len(bytes.TrimSpace(p.Triggers)) > 0 {
		size += kib(len(p.Triggers))
	}
	for _, b := range [][]byte{p.Templates, p.Shlibs, p.Symbols} {
		size += kib(len(b))
	}
	pl.installed += size
	if given := p.Control.Get("Installed-Size"); strings.TrimSpace(given) != "" {
		n, err := parseInstalledSize(given)
		if err != nil {
			return fmt.Errorf("control: %w", err)
		}
		pl.installed = n
	}
	return nil
}

// parseInstalledSize reads a given Installed-Size: a whole number of KiB.
func parseInstalledSize(given string) (int64, error) {
	given = strings.TrimSpace(given)
	n, err := strconv.ParseInt(given, 10, 64)
	if err != nil || n < 0 || strings.HasPrefix(given, "+") {
		return 0, fmt.Errorf("Installed-Size %q: want a whole number of KiB, or no field (upds computes it as dpkg-gencontrol does)", given)
	}
	return n, nil
}

// member is where Package keeps the control file name: triggers, templates, shlibs or
// symbols.
func (p *Package) member(name string) *[]byte {
	return controlMember(name, &p.Triggers, &p.Templates, &p.Shlibs, &p.Symbols)
}

// controlMember picks the optional control file name among the four; nil for other names.
func controlMember(name string, triggers, templates, shlibs, symbols *[]byte) *[]byte {
	switch name {
	case "triggers":
		return triggers
	case "templates":
		return templates
	case "shlibs":
		return shlibs
	case "symbols":
		return symbols
	}
	return nil
}

// templateTypes are the types of debconf questions (debconf-devel(7)).
var templateTypes = []string{"select", "multiselect", "string", "boolean", "note", "text", "password", "title", "error", "entropy"}

// CheckTemplates checks a debconf templates file the way debconf reads it: paragraphs of
// fields, each with a Template name (OWNER/NAME, unique), a known Type and a Description.
// Empty input is fine (no templates).
func CheckTemplates(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	ps, err := control.Parse(bytes.NewReader(b))
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, p := range ps {
		name := p.Get("Template")
		where := fmt.Sprintf("template %d", i+1)
		if name != "" {
			where = fmt.Sprintf("template %q", name)
		}
		switch typ := p.Get("Type"); {
		case name == "":
			return fmt.Errorf("%s: no Template field", where)
		case strings.ContainsAny(name, " \t\n") || !strings.Contains(name, "/"):
			return fmt.Errorf("%s: want OWNER/NAME, such as hello/start", where)
		case seen[name]:
			return fmt.Errorf("%s: defined twice", where)
		case typ == "":
			return fmt.Errorf("%s: no Type field", where)
		case !contains(templateTypes, typ):
			return fmt.Errorf("%s: Type %q is not one of %s", where, typ, strings.Join(templateTypes, ", "))
		case strings.TrimSpace(p.Get("Description")) == "":
			return fmt.Errorf("%s: no Description field", where)
		}
		seen[name] = true
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkShlibs checks the shlibs file (deb-shlibs(5)): lines "[TYPE:] LIBRARY VERSION
// DEPENDENCIES", comments and empty lines.
func checkShlibs(b []byte) error {
	for i, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if strings.HasSuffix(f[0], ":") {
			f = f[1:]
		}
		if len(f) < 3 {
			return fmt.Errorf("line %d: %q: want \"LIBRARY VERSION DEPENDENCIES\"", i+1, l)
		}
	}
	return nil
}

// checkSymbols checks the symbols file (deb-symbols(5)) minimally: a library line
// "SONAME DEPENDENCY..." before the symbol lines, which start with a space.
func checkSymbols(b []byte) error {
	lib := false
	for i, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#"):
		case l[0] == ' ' || l[0] == '\t':
			if !lib {
				return fmt.Errorf("line %d: a symbol before any library line (\"libfoo.so.1 libfoo1 #MINVER#\")", i+1)
			}
		case l[0] == '|' || l[0] == '*':
			if !lib {
				return fmt.Errorf("line %d: %q before any library line", i+1, l)
			}
		default:
			if len(strings.Fields(l)) < 2 {
				return fmt.Errorf("line %d: %q: want \"SONAME DEPENDENCY\"", i+1, l)
			}
			lib = true
		}
	}
	if !lib && len(bytes.TrimSpace(b)) > 0 {
		return errors.New("no library line")
	}
	return nil
}
