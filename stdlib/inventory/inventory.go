// Package inventory is the fleet a project deploys to, declared in BUILD.star: its servers
// (server()), their packages and groups, and the repository they get their packages from
// (fleet()). upds servers lists it; upds deploy and upds audit act on it.
package inventory

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.starlark.net/syntax"

	"github.com/upds/upds/interp"
)

// Kinds of the declarations this package keeps on the interp.Host.
const (
	kindServer = "server"
	kindFleet  = "fleet"
)

// Server is one server of the inventory.
type Server struct {
	Name     string   `json:"name"`     // "web1": upds deploy web1
	SSH      string   `json:"ssh"`      // [user@]host[:port], or a Host of ~/.ssh/config (default: Name)
	Packages []string `json:"packages"` // installed and kept at the repository's newest version
	Groups   []string `json:"groups"`   // "web", "production": upds deploy production
	Pos      string   `json:"position"` // where BUILD.star declared it
}

// Repository is the apt repository the servers get their packages from.
type Repository struct {
	URL   string `json:"url"`
	Key   string `json:"key"` // its public key file: absolute, or relative to the project
	Suite string `json:"suite"`
	Pos   string `json:"position"`
}

// Inventory is what BUILD.star declared: the servers in the order declared, and the
// repository (nil when fleet() was not called).
type Inventory struct {
	Servers []Server    `json:"servers"`
	Repo    *Repository `json:"repository,omitempty"`
}

// nameRE is a server or group name: a host name's letters.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,62}[a-z0-9])?$`)

// Of returns the inventory a project declared; root is the project directory (relative key
// files are made absolute with it). A group named like a server is an error.
func Of(h *interp.Host) (*Inventory, error) {
	inv := &Inventory{Servers: []Server{}}
	for _, d := range h.Declarations(kindServer) {
		inv.Servers = append(inv.Servers, d.Value.(Server))
	}
	if ds := h.Declarations(kindFleet); len(ds) > 0 {
		r := ds[0].Value.(Repository)
		if !filepath.IsAbs(r.Key) && h.Root != "" {
			r.Key = filepath.Join(h.Root, r.Key)
		}
		inv.Repo = &r
	}
	for _, s := range inv.Servers {
		for _, g := range s.Groups {
			if o := inv.server(g); o != nil {
				return nil, fmt.Errorf("%s: group %q of server %s is also the name of the server declared at %s", s.Pos, g, s.Name, o.Pos)
			}
		}
	}
	return inv, nil
}

func (inv *Inventory) server(name string) *Server {
	for i := range inv.Servers {
		if inv.Servers[i].Name == name {
			return &inv.Servers[i]
		}
	}
	return nil
}

// Groups returns every group name, sorted.
func (inv *Inventory) Groups() []string {
	var out []string
	for _, s := range inv.Servers {
		out = append(out, s.Groups...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Select returns the servers named, by server or group name, in the order of the
// inventory, each once; every server when names is empty. An unknown name is an error
// that lists the servers and groups there are.
func (inv *Inventory) Select(names []string) ([]Server, error) {
	if len(names) == 0 {
		return inv.Servers, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		found := inv.server(n) != nil || slices.Contains(inv.Groups(), n)
		if !found {
			var all []string
			for _, s := range inv.Servers {
				all = append(all, s.Name)
			}
			msg := fmt.Sprintf("no server or group %q in the inventory", n)
			if len(all) == 0 {
				return nil, fmt.Errorf("%s: BUILD.star declares no server()", msg)
			}
			if g := inv.Groups(); len(g) > 0 {
				msg += "; groups: " + strings.Join(g, ", ")
			}
			return nil, fmt.Errorf("%s; servers: %s", msg, strings.Join(all, ", "))
		}
		want[n] = true
	}
	var out []Server
	for _, s := range inv.Servers {
		if want[s.Name] || slices.ContainsFunc(s.Groups, func(g string) bool { return want[g] }) {
			out = append(out, s)
		}
	}
	return out, nil
}

func posString(p syntax.Position) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
