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
)

var _ interp.CacheChecker = (*Target)(nil)

// Build writes the package (or takes it from the cache) into the output directory. The first
// build of a package in a cache (no stat list yet: nothing is known of its files, so the
// cache cannot hold it either, short of a lost stat list) writes it at once and computes its
// key from the files as they are read, one read of each; later builds compute the key first,
// from the stat list, and write only on a miss.
func (t *Target) Build(a *interp.Action) error {
	h := a.Host
	asm, err := t.assembled(h)
	if err != nil {
		return err
	}
	if err := t.checkProject(asm.in, asm, a.Log); err != nil {
		return t.usageError(err)
	}
	list := h.Cache.StatList(statListName(asm.pkg), true)
	defer list.Abort()
	var key string
	write := func(tmp string) error {
		_, err := asm.plan.WriteFile(a.Ctx, tmp) // data.tar is staged beside tmp, in the cache
		return err
	}
	if list.Known() {
		if key, err = asm.keyWith(a.Ctx, h, list); err == nil {
			err = t.setSource(asm, key)
		}
	} else {
		var written string
		key, written, err = t.writeKeyed(a, asm, list)
		defer os.Remove(written)
		write = func(tmp string) error { return os.Rename(written, tmp) }
	}
	if err == nil {
		err = list.Close()
	}
	if err != nil {
		return err
	}
	dst := filepath.Join(h.OutDir(), Filename(asm.pkg.Control))
	if a.Cached, err = h.Cache.Build("deb", key, dst, write); err != nil {
		return err
	}
	t.built = dst
	return nil
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
		return "", "", err
	}
	return key, path, nil
}

// Cached reports whether Build would take the package from the cache. It assembles the
// package and computes its key as Build does, hashing the files the stat list does not know,
// and writes nothing.
func (t *Target) Cached(a *interp.Action) (bool, error) {
	asm, err := t.assembled(a.Host)
	if err != nil {
		return false, err
	}
	asm.dryRun = true
	key, err := asm.key(a.Ctx, a.Host)
	if err != nil {
		return false, err
	}
	_, ok := a.Host.Cache.Lookup("deb", key)
	return ok, nil
}

// assembled is the package as the Spec describes it now, with the time clamp of the host.
func (t *Target) assembled(h *interp.Host) (*assembly, error) {
	mtime, err := clampTime(h)
	if err != nil {
		return nil, t.usageError(t.spec.errorf("%v", err))
	}
	in := Inputs{Project: h.Project, FS: h.FS, Root: h.Root, MTime: mtime}
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
func (t *Target) usageError(err error) error {
	var se *specError
	if !errors.As(err, &se) {
		return err
	}
	return &interp.Error{Pos: t.pos, Msg: se.msg, Usage: true, Cause: err}
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
