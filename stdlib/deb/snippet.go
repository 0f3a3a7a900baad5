package deb

// Snippets: parts of maintainer scripts that rules add to a package with snippet() (a service,
// a system user), and the system users and groups they create, which owner = may name.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/upds/upds/stdlib/deb/control"
)

// placeholderID is the id written for a system user or group that a snippet's preinst
// creates: dpkg gives a file the id of its owner's name when the name exists at unpack time
// (it does, the preinst made it), so this id is only what a system without the name would
// see: nobody's, never root's.
const placeholderID = 65534

// snippetScripts are the scripts a snippet may add to.
var snippetScripts = []string{"preinst", "postinst", "prerm", "postrm"}

// systemName is adduser's rule for system user and group names (NAME_REGEX_SYSTEM).
var systemName = regexp.MustCompile(`^[a-z_][-a-z0-9_]{0,31}$`)

// check reports the first mistake in a snippet: an unknown script, a relation that does not
// parse, an invalid user or group name.
func (sn *Snippet) check() error {
	for name := range sn.Scripts {
		if !slices.Contains(snippetScripts, name) {
			return fmt.Errorf("snippet: %s: want one of %s", name, strings.Join(snippetScripts, ", "))
		}
	}
	for _, f := range []struct {
		param string
		list  []string
	}{{"depends", sn.Depends}, {"pre_depends", sn.PreDepends}} {
		for i, r := range f.list {
			rs, err := control.ParseRelations(r)
			if err == nil {
				err = rs.CheckBinary()
			}
			if err != nil {
				return fmt.Errorf("snippet: %s[%d]: %v", f.param, i, err)
			}
		}
	}
	for _, f := range []struct {
		param string
		list  []string
	}{{"users", sn.Users}, {"groups", sn.Groups}} {
		for i, n := range f.list {
			if !systemName.MatchString(n) {
				return fmt.Errorf("snippet: %s[%d]: %q is not a system account name (a-z, 0-9, _ and -, at most 32, not starting with a digit or -)", f.param, i, n)
			}
		}
	}
	return nil
}

// accounts are the system users and groups the package's snippets create.
func (s *Spec) accounts() (users, groups map[string]bool) {
	users, groups = map[string]bool{}, map[string]bool{}
	for _, c := range s.Contents {
		if c.Kind != ContentSnippet {
			continue
		}
		for _, u := range c.Snippet.Users {
			users[u] = true
		}
		for _, g := range c.Snippet.Groups {
			groups[g] = true
		}
	}
	return users, groups
}

// checkOwners reports an owner or group name that has neither an id, nor a static Debian id,
// nor a snippet of the package that creates it.
func (s *Spec) checkOwners() error {
	users, groups := s.accounts()
	check := func(o *Owner, group bool, what string) error {
		if o == nil || o.ID >= 0 || users[o.Name] && !group || groups[o.Name] && group {
			return nil
		}
		if err := checkStatic(o.Name, group); err != nil {
			return s.errorf("%s: %v", what, err)
		}
		return nil
	}
	if err := check(s.Owner, false, "owner"); err != nil {
		return err
	}
	if err := check(s.Group, true, "group"); err != nil {
		return err
	}
	for i, c := range s.Contents {
		what := fmt.Sprintf("contents[%d]: %s: ", i, contentKinds[c.Kind].fn)
		if err := check(c.Owner, false, what+"owner"); err != nil {
			return err
		}
		if err := check(c.Group, true, what+"group"); err != nil {
			return err
		}
	}
	return nil
}

// accountID is the id written for o: its own, the static one (-1: resolved when the package
// is written), or placeholderID for an account a snippet creates.
func accountID(o *Owner, group bool, created map[string]bool) int {
	if o.ID >= 0 {
		return o.ID
	}
	static := checkStatic(o.Name, group) == nil
	if !static && created[o.Name] {
		return placeholderID
	}
	return -1
}

// add puts a snippet's scripts and relations into what the contents add to the package.
func (b *builtContents) add(sn *Snippet) {
	for _, name := range snippetScripts {
		if text := sn.Scripts[name]; text != "" {
			b.snippets[name] = append(b.snippets[name], text)
		}
	}
	b.depends = append(b.depends, sn.Depends...)
	b.preDepends = append(b.preDepends, sn.PreDepends...)
}
