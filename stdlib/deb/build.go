package deb

// Building a deb() target: the package assembled from its Spec, its action key computed, then
// written, or taken from the cache.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/interp/cache"
	"go.starlark.net/syntax"
)

var _ interp.CacheChecker = (*Target)(nil)

// Build writes the package (or takes it from the cache) into the output directory. The first
// build of a package in a cache (no stat list yet: nothing is known of its files, so the
// cache cannot hold it either, short of a lost stat list) writes it at once and computes its
// key from the files as they are read, one read of each; later builds compute the key first,
// from the stat list, and write only on a miss. A package with version = "content" always
// computes its key first: its version depends on it.
func (t *Target) Build(a *interp.Action) error {
	h := a.Host
	in, err := t.inputs(h)
	if err != nil {
		return err
	}
	var asm *assembly
	var key string
	write := func(tmp string) error {
		_, err := asm.plan.WriteFile(a.Ctx, tmp) // data.tar is staged beside tmp, in the cache
		return err
	}
	if t.spec.ContentVersion {
		if asm, key, err = t.assembleKeyed(a.Ctx, h, in, true); err != nil {
			return t.usageError(err)
		}
		asm.in = in
		if err := t.checkProject(in, asm, a.Log); err != nil {
			return t.usageError(err)
		}
		if err := t.setSource(asm, key); err != nil {
			return err
		}
	} else {
		if asm, err = t.assembled(in); err != nil {
			return err
		}
		if err := t.checkProject(in, asm, a.Log); err != nil {
			return t.usageError(err)
		}
		var done func()
		if key, write, done, err = t.keyOrWrite(a, asm, write); err != nil {
			return err
		}
		defer done()
	}
	dst := filepath.Join(h.OutDir(), Filename(asm.pkg.Control))
	if a.Cached, err = h.Cache.Build("deb", key, dst, write); err != nil {
		return err
	}
	t.built = dst
	return nil
}

// keyOrWrite computes the package's key from its stat list, when the list knows the package,
// and returns write to write it on a miss; otherwise it writes the package now, computing the
// key as the files are read, and returns a write that moves it into place. done removes what
// is left.
func (t *Target) keyOrWrite(a *interp.Action, asm *assembly, write func(string) error) (key string, _ func(string) error, done func(), err error) {
	list := a.Host.Cache.StatList(statListName(asm.pkg), true)
	defer list.Abort()
	done = func() {}
	if list.Known() {
		if key, err = asm.keyWith(a.Ctx, a.Host, list); err == nil {
			err = t.setSource(asm, key)
		}
	} else {
		var written string
		key, written, err = t.writeKeyed(a, asm, list)
		done = func() { os.Remove(written) }
		write = func(tmp string) error { return os.Rename(written, tmp) }
	}
	if err == nil {
		err = list.Close()
	}
	if err != nil {
		done()
		return "", nil, nil, err
	}
	return key, write, done, nil
}

// writeKeyed writes the package to a new file in the cache's tmp directory, hashing its files
// for the key as they are read, and recording them in list; X-Upds-Source is set once
// data.tar is written, before control.tar.
func (t *Target) writeKeyed(a *interp.Action, asm *assembly, list *cache.StatList) (key, path string, err error) {
	dir := filepath.Join(a.Host.Cache.Dir(), "tmp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, fmt.Sprintf("deb-%s-%016x", asm.pkg.Control.Get("Package"), rand.Uint64()))
	k, err := asm.newKeyer(a.Host, list)
	if err != nil {
		return "", "", err
	}
	pl := asm.plan
	pl.fileSums = k.file
	pl.beforeControl = func() error {
		if key, err = k.finish(); err != nil {
			return err
		}
		return t.setSource(asm, key)
	}
	defer func() { pl.fileSums, pl.beforeControl = nil, nil }()
	if _, err = pl.WriteFile(a.Ctx, path); err != nil {
		os.Remove(path)
		return "", "", err
	}
	return key, path, nil
}

// Cached reports whether Build would take the package from the cache. It assembles the
// package and computes its key as Build does, hashing the files the stat list does not know,
// and writes nothing (not upds.lock either).
func (t *Target) Cached(a *interp.Action) (bool, error) {
	in, err := t.inputs(a.Host)
	if err != nil {
		return false, err
	}
	var key string
	if t.spec.ContentVersion {
		_, key, err = t.assembleKeyed(a.Ctx, a.Host, in, false)
	} else {
		var asm *assembly
		if asm, err = t.assembled(in); err == nil {
			asm.dryRun = true
			key, err = asm.key(a.Ctx, a.Host)
		}
	}
	if err != nil {
		return false, t.usageError(err)
	}
	return a.Host.Cache.Has("deb", key), nil
}

// inputs are what the package is assembled from, with the time clamp of the host.
func (t *Target) inputs(h *interp.Host) (Inputs, error) {
	mtime, err := clampTime(h)
	if err != nil {
		return Inputs{}, t.usageError(t.spec.errorf("%v", err))
	}
	return Inputs{Project: h.Project, FS: h.FS, Root: h.Root, MTime: mtime}, nil
}

// assembled is the package as the Spec describes it now.
func (t *Target) assembled(in Inputs) (*assembly, error) {
	asm, err := t.spec.assemble(in)
	if err != nil {
		return nil, t.usageError(err)
	}
	asm.in = in
	return asm, nil
}

// setSource puts the key in the package's X-Upds-Source field.
func (t *Target) setSource(asm *assembly, key string) error {
	asm.pkg.Control.Set("X-Upds-Source", key)
	var err error
	if asm.plan.control, err = prepareControl(asm.pkg.Control, asm.plan.installed); err != nil {
		return t.usageError(t.spec.errorf("%v", err))
	}
	return nil
}

// usageError reports a mistake in the package description found while building at the deb()
// line, with exit code 2; nothing is written. Other errors (a built target's tree cannot be
// read) are returned as they are.
func (t *Target) usageError(err error) error { return specUsage(err, t.pos, t.contentPos) }

// specUsage is the *interp.Error of the specError that err is or wraps (err itself if none):
// at the line of the contents it is about when that is known (contentPos), else at pos; the
// line of the contents it clashes with is named in the message.
func specUsage(err error, pos syntax.Position, contentPos []syntax.Position) error {
	var se *specError
	if !errors.As(err, &se) {
		return err
	}
	at := func(i int) syntax.Position {
		if i < 0 || i >= len(contentPos) {
			return syntax.Position{}
		}
		return contentPos[i]
	}
	msg := se.msg
	if r := se.at; r != nil {
		if p := at(r.content); p.IsValid() {
			pos = p
		}
		if p := at(r.other); p.IsValid() {
			msg += fmt.Sprintf(" (also from %s:%d)", p.Filename(), p.Line)
		}
	}
	return &interp.Error{Pos: pos, Msg: msg, Usage: true, Cause: err}
}

// clampTime is the mtime clamp: SOURCE_DATE_EPOCH when set, otherwise DefaultMTime.
func clampTime(h *interp.Host) (time.Time, error) {
	if v, ok := h.Getenv("SOURCE_DATE_EPOCH"); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return DefaultMTime(), nil
}
