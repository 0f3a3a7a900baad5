package deb

// The packages of one project, side by side: two that ship the same path cannot be installed
// together (dpkg refuses to overwrite another package's file), unless one conflicts with or
// replaces the other.

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/deb/control"
)

// names are the package names in the relations of lists (every alternative), without
// versions.
func (s *Spec) names(lists ...[]Relation) map[string]bool {
	out := map[string]bool{}
	for _, list := range lists {
		for _, r := range list {
			if r.Package != nil {
				out[r.Package.Name()] = true
				continue
			}
			rs, err := control.ParseRelations(r.Text)
			if err != nil {
				continue // Check reports it
			}
			for _, alt := range rs {
				for _, rel := range alt {
					out[rel.Name] = true
				}
			}
		}
	}
	return out
}

// exclusive reports whether a and b may ship the same path: one conflicts with or replaces
// the other (its name, or a virtual package it provides).
func exclusive(a, b *Spec) bool {
	oneWay := func(a, b *Spec) bool {
		against := a.names(a.Conflicts, a.Replaces)
		if against[b.Name] {
			return true
		}
		for n := range b.names(b.Provides) {
			if against[n] {
				return true
			}
		}
		return false
	}
	return oneWay(a, b) || oneWay(b, a)
}

// registry holds the deb targets of one evaluation of BUILD.star, by host.
type registry struct {
	mu     sync.Mutex
	byHost map[*interp.Host][]*Target
}

func (r *registry) add(t *Target) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byHost == nil {
		r.byHost = map[*interp.Host][]*Target{}
	}
	r.byHost[t.host] = append(r.byHost[t.host], t)
}

// peers are the other deb targets of t's project.
func (r *registry) peers(t *Target) []*Target {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Target
	for _, u := range r.byHost[t.host] {
		if u != t {
			out = append(out, u)
		}
	}
	return out
}

// checkProject writes the warnings of asm, t's package, to log, and reports a path it shares
// with another package of the project (checkShared).
func (t *Target) checkProject(in Inputs, asm *assembly, log io.Writer) error {
	for _, w := range asm.warnings {
		if log != nil {
			fmt.Fprintf(log, "warning: %s\n", w)
		}
	}
	return t.checkShared(in, asm.entries)
}

// checkShared reports a path that entries (t's package) and another package of the project
// both ship, other than a directory in both, unless the two exclude each other. The other
// package's project contents are expanded; its built contents (a venv) only when they are
// built and t ships something under them.
func (t *Target) checkShared(in Inputs, entries []sourced) error {
	mine := make(map[string]Type, len(entries))
	for _, e := range entries {
		mine[e.Path] = e.Type
	}
	for _, u := range t.reg.peers(t) {
		if exclusive(&t.spec, &u.spec) {
			continue
		}
		theirs, err := u.shipped(in, mine)
		if err != nil {
			continue // u's own build reports it
		}
		var clash []string
		for p, typ := range theirs {
			if mt, ok := mine[p]; ok && (mt != TypeDir || typ != TypeDir) {
				clash = append(clash, p)
			}
		}
		if len(clash) > 0 {
			sort.Strings(clash)
			more := ""
			if len(clash) > 1 {
				more = fmt.Sprintf(" (and %d more)", len(clash)-1)
			}
			return t.spec.errorf("%s%s is also in package %s (%s): dpkg would refuse to install both; ship it in one, or let one conflict with or replace the other",
				clash[0], more, u.spec.Name, u.pos)
		}
	}
	return nil
}

// shipped are the paths u's contents put into its package, with their types: everything from
// the project, and what its built contents hold where mine has something inside them.
func (u *Target) shipped(in Inputs, mine map[string]Type) (map[string]Type, error) {
	out := map[string]Type{}
	for i := range u.spec.Contents {
		c := &u.spec.Contents[i]
		var es []sourced
		var err error
		switch c.Kind {
		case ContentSnippet:
			continue
		case ContentBuilt:
			cs, cerr := c.Built.Contents()
			if cerr != nil || !hasUnder(mine, cs.Into) {
				continue
			}
			es, err = u.spec.expandDir(cs.Dir, cs.Into)
		default:
			es, err = u.spec.expand(in, c)
		}
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			out[e.Path] = e.Type
		}
	}
	return out, nil
}

// hasUnder reports whether paths has dir or something inside it.
func hasUnder(paths map[string]Type, dir string) bool {
	for p := range paths {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}
