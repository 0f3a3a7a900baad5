package deb

// The packages of one project, side by side: two that ship the same path cannot be installed
// together (dpkg refuses to overwrite another package's file), unless one conflicts with or
// replaces the other.

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sort"
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
	return t.checkShared(in, asm.plan)
}

// checkShared reports a path that pl (t's package) and another package of the project both
// ship, other than a directory in both, unless the two exclude each other. The other
// package's project contents are walked and looked up in pl (its sorted records); its built
// contents (a venv) only when they are built and t ships something under them.
func (t *Target) checkShared(in Inputs, pl *Plan) error {
	for _, u := range t.reg.peers(t) {
		if exclusive(&t.spec, &u.spec) {
			continue
		}
		var clash []string
		err := u.shipped(in, pl, func(e Entry, _ fileID) error {
			if r, ok := pl.find(e.Path); ok && r.flags&flagImplicit == 0 && (r.typ != TypeDir || e.Type != TypeDir) {
				clash = append(clash, e.Path)
			}
			return nil
		})
		if err != nil {
			continue // u's own build reports it
		}
		if len(clash) > 0 {
			sort.Strings(clash)
			clash = slices.Compact(clash)
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

// shipped gives add the entries u's contents put into its package: everything from the
// project, and what its built contents hold where pl has something inside them.
func (u *Target) shipped(in Inputs, pl *Plan, add adder) error {
	for i := range u.spec.Contents {
		c := &u.spec.Contents[i]
		var err error
		switch c.Kind {
		case ContentSnippet:
			continue
		case ContentBuilt:
			cs, cerr := c.Built.Contents()
			if cerr != nil || !pl.hasUnder(cs.Into) {
				continue
			}
			err = u.spec.expandDir(cs.Dir, cs.Into, add)
		default:
			err = u.spec.expand(in, c, add)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// hasUnder reports whether the package has an entry at dir or inside it.
func (pl *Plan) hasUnder(dir string) bool {
	k, ok := pl.position([]byte(dir))
	if ok && pl.recs.at(pl.order[k]).flags&flagImplicit == 0 {
		return true
	}
	for ; k < len(pl.order); k++ {
		p := pl.pathBytes(pl.order[k])
		if !bytes.HasPrefix(p, []byte(dir)) {
			return false
		}
		if len(p) > len(dir) && p[len(dir)] == '/' && pl.recs.at(pl.order[k]).flags&flagImplicit == 0 {
			return true
		}
	}
	return false
}
