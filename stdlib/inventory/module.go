package inventory

// The Starlark binding of the inventory: server() and fleet().

import (
	"errors"
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/setup"
	"github.com/upds/upds/stdlib/sshconn"
)

// Builtins are the names this module gives BUILD.star.
func Builtins() starlark.StringDict {
	return starlark.StringDict{
		"server": starlark.NewBuiltin("server", builtinServer),
		"fleet":  starlark.NewBuiltin("fleet", builtinFleet),
	}
}

// requireEval refuses a call from a run function: the inventory is declared.
func requireEval(thread *starlark.Thread, fn string) error {
	if interp.PhaseOf(thread) != interp.PhaseEval {
		return fmt.Errorf("%s: servers are declared while BUILD.star is evaluated, not inside a run function", fn)
	}
	return nil
}

// server(name, ssh = name, packages = [], groups = []): a server of the inventory. It
// returns struct(name, ssh, packages, groups).
func builtinServer(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var ssh starlark.String
	var packages, groups interp.StringList
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "ssh?", &ssh, "packages?", &packages, "groups?", &groups); err != nil {
		return nil, err
	}
	if err := requireEval(thread, "server"); err != nil {
		return nil, err
	}
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("server: name %q: use lower-case letters, digits, '.' and '-' (a host name)", name)
	}
	s := Server{Name: name, SSH: string(ssh), Packages: append([]string{}, packages...), Groups: append([]string{}, groups...),
		Pos: posString(interp.CallerPos(thread))}
	if s.SSH == "" {
		s.SSH = name
	}
	if _, err := sshconn.ParseTarget(s.SSH); err != nil {
		return nil, fmt.Errorf("server %s: ssh: %v (want [user@]host[:port] or a Host of ~/.ssh/config)", name, err)
	}
	for _, p := range s.Packages {
		if err := setup.ValidRole(p); err != nil {
			return nil, fmt.Errorf("server %s: packages: %v", name, err)
		}
	}
	for _, g := range s.Groups {
		if !nameRE.MatchString(g) || g == name {
			return nil, fmt.Errorf("server %s: group %q: use lower-case letters, digits, '.' and '-', not the server's name", name, g)
		}
	}
	if err := interp.HostOf(thread).Declare(interp.Declaration{Kind: kindServer, Name: name, Pos: interp.CallerPos(thread), Value: s}); err != nil {
		return nil, fmt.Errorf("server: %v", err)
	}
	return starlarkstruct.FromStringDict(starlark.String("server"), starlark.StringDict{
		"name": starlark.String(s.Name), "ssh": starlark.String(s.SSH),
		"packages": stringTuple(s.Packages), "groups": stringTuple(s.Groups),
	}), nil
}

func stringTuple(ss []string) starlark.Tuple {
	t := make(starlark.Tuple, len(ss))
	for i, s := range ss {
		t[i] = starlark.String(s)
	}
	return t
}

// fleet(repo, key, suite = "stable"): the repository the servers get their packages from
// (its URL and its public key file), for upds deploy and upds audit without --repo.
func builtinFleet(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r := Repository{Suite: "stable"}
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "repo", &r.URL, "key", &r.Key, "suite?", &r.Suite); err != nil {
		return nil, err
	}
	if err := requireEval(thread, "fleet"); err != nil {
		return nil, err
	}
	if err := setup.ValidURL(r.URL); err != nil {
		return nil, fmt.Errorf("fleet: repo: %v", err)
	}
	if r.Key == "" {
		return nil, fmt.Errorf("fleet: key: the repository's public key file (its public/key.asc)")
	}
	if r.Suite == "" {
		return nil, fmt.Errorf("fleet: suite: empty")
	}
	pos := interp.CallerPos(thread)
	r.Pos = posString(pos)
	if err := interp.HostOf(thread).Declare(interp.Declaration{Kind: kindFleet, Name: "fleet", Pos: pos, Value: r}); err != nil {
		if de := (*interp.DeclaredError)(nil); errors.As(err, &de) {
			return nil, fmt.Errorf("fleet: called twice (first at %s)", de.Prev.Pos)
		}
		return nil, fmt.Errorf("fleet: %v", err)
	}
	return starlark.None, nil
}
