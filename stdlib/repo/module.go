package repo

// The Starlark binding of the repo package: publish().

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/send"
)

// Builtins are the names this module gives BUILD.star.
func Builtins() starlark.StringDict {
	return starlark.StringDict{"publish": starlark.NewBuiltin("publish", builtinPublish)}
}

// publish(packages, repo, keep = 0): put packages into a local repository (made with
// `upds repo init DIR`) and publish it: the upload goes through DIR/incoming exactly as a
// send() would (CheckUploads first: a package the repository holds with other content fails
// the publish before anything changes; one it holds as it is is not copied again), then the
// indexes are rebuilt and signed. Fails when an upload is rejected.
func builtinPublish(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pkgs starlark.Value
	var dir string
	var keep int
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "packages", &pkgs, "repo", &dir, "keep?", &keep); err != nil {
		return nil, err
	}
	if err := interp.RequireRun(thread, "publish"); err != nil {
		return nil, err
	}
	files, err := send.Paths(thread, pkgs, "publish")
	if err != nil {
		return nil, err
	}
	h, run := interp.HostOf(thread), interp.RunOf(thread)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(h.Root, dir) // relative to the project; may lie outside it
	}
	if _, err := ReadConfig(dir); err != nil {
		return nil, fmt.Errorf("publish: %v (create it with: upds repo init %s)", err, dir)
	}
	held := 0 // packages the repository has as they are: not copied
	check := func(ctx context.Context, d send.Remote, files []string) ([]string, error) {
		up, notes, err := CheckUploads(ctx, d, files)
		held = len(notes)
		return up, err
	}
	if err := send.Send(run.Ctx, files, filepath.Join(dir, IncomingDir), send.Options{Check: check}); err != nil {
		return nil, fmt.Errorf("publish: %v", err)
	}
	rep, err := Publish(run.Ctx, dir, PublishOptions{KeepVersions: keep})
	if err != nil {
		return nil, fmt.Errorf("publish: %v", err)
	}
	for _, b := range rep.Broken {
		fmt.Fprintf(run.Stderr, "upds repo: skipping pool file %s: %s\n", b.Path, b.Reason)
	}
	if len(rep.Rejected) > 0 {
		var reasons []string
		for _, r := range rep.Rejected {
			reasons = append(reasons, r.File+": "+r.Reason)
		}
		return nil, fmt.Errorf("publish: rejected: %s", strings.Join(reasons, "; "))
	}
	fmt.Fprintf(run.Stdout, "published %d new, %d unchanged to %s (%d packages)\n", len(rep.Added), len(rep.Unchanged)+held, dir, rep.Packages)
	return starlark.None, nil
}
