package send

// The Starlark binding of the send package: send().

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/sshconn"
)

// Builtins are the names this module gives BUILD.star. check, when not nil, is asked before
// send() uploads anything (cmd/upds passes repo.CheckUploads, which looks at a repository's
// index when the destination is its incoming/ folder).
func Builtins(check UploadCheck) starlark.StringDict {
	return starlark.StringDict{"send": starlark.NewBuiltin("send", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return builtinSend(thread, b, args, kwargs, check)
	})}
}

// UploadCheck is a Check that also says why it left files out: one line each, which send()
// prints.
type UploadCheck func(ctx context.Context, dest Remote, files []string) (upload, notes []string, err error)

// Paths turns send()'s packages argument into files: deb targets (their built .deb), strings
// (paths relative to the project, or absolute), or lists of those (e.g. ctx.outputs).
func Paths(thread *starlark.Thread, v starlark.Value, fn string) ([]string, error) {
	h := interp.HostOf(thread)
	var out []string
	var add func(v starlark.Value) error
	add = func(v starlark.Value) error {
		switch x := v.(type) {
		case starlark.String:
			p := string(x)
			if !filepath.IsAbs(p) {
				c, err := interp.ProjectPath(p)
				if err != nil {
					return err
				}
				p = filepath.Join(h.Root, c)
			}
			out = append(out, p)
		case interp.Target:
			outs := x.Outputs()
			if len(outs) == 0 {
				return fmt.Errorf("%s is not built: list it in the task's deps", x.ID())
			}
			out = append(out, outs...)
		case starlark.Iterable:
			it := x.Iterate()
			defer it.Done()
			var e starlark.Value
			for it.Next(&e) {
				if err := add(e); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("want packages (deb targets or paths), got %s", v.Type())
		}
		return nil
	}
	if err := add(v); err != nil {
		return nil, fmt.Errorf("%s: %v", fn, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no packages", fn)
	}
	return out, nil
}

// send(packages, to, identity = None, known_hosts = None): upload while a task runs.
func builtinSend(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, check UploadCheck) (starlark.Value, error) {
	var pkgs starlark.Value
	var to string
	var identity, knownHosts starlark.Value = starlark.None, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "packages", &pkgs, "to", &to, "identity?", &identity, "known_hosts?", &knownHosts); err != nil {
		return nil, err
	}
	if err := interp.RequireRun(thread, "send"); err != nil {
		return nil, err
	}
	files, err := Paths(thread, pkgs, "send")
	if err != nil {
		return nil, err
	}
	h, run := interp.HostOf(thread), interp.RunOf(thread)
	opt := Options{}
	for _, s := range []struct {
		v   starlark.Value
		dst *[]string
		n   string
	}{{identity, &opt.SSH.Identity, "identity"}, {knownHosts, &opt.SSH.KnownHosts, "known_hosts"}} {
		if s.v == starlark.None {
			continue
		}
		str, ok := starlark.AsString(s.v)
		if !ok {
			return nil, fmt.Errorf("send: %s: want a file path", s.n)
		}
		*s.dst = []string{expandHome(str, h)}
	}
	target, err := ParseTarget(to)
	if err != nil {
		return nil, fmt.Errorf("send: %v", err)
	}
	if target.Local {
		// A run function acts: a relative destination is relative to the project, and may
		// lie outside it (../repo/incoming). A missing local folder is created.
		if !filepath.IsAbs(target.Dir) {
			to = filepath.Join(h.Root, target.Dir)
		} else {
			to = target.Dir
		}
		if err := os.MkdirAll(to, 0o755); err != nil {
			return nil, fmt.Errorf("send: %v", err)
		}
	}
	sent, notes := files, []string(nil)
	if check != nil {
		opt.Check = func(ctx context.Context, d Remote, files []string) ([]string, error) {
			var err error
			sent, notes, err = check(ctx, d, files)
			return sent, err
		}
	}
	if err := Send(run.Ctx, files, to, opt); err != nil {
		return nil, fmt.Errorf("send: %v", err)
	}
	for _, n := range notes {
		fmt.Fprintln(run.Stdout, n)
	}
	if len(sent) == 0 {
		fmt.Fprintf(run.Stdout, "nothing to send to %s\n", target)
		return starlark.None, nil
	}
	names := make([]string, len(sent))
	for i, f := range sent {
		names[i] = filepath.Base(f)
	}
	fmt.Fprintf(run.Stdout, "sent %s to %s\n", strings.Join(names, ", "), target)
	return starlark.None, nil
}

// expandHome expands "~/" with the passwd home, as ssh(1) does (not $HOME), and makes
// a relative path relative to the project.
func expandHome(p string, h *interp.Host) string {
	p = sshconn.ExpandHome(p, sshconn.Home())
	if !filepath.IsAbs(p) && h.Root != "" {
		return filepath.Join(h.Root, p)
	}
	return p
}
