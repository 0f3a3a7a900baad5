package deb

// deb(version = "content"): a package whose version is the project version at which its
// content last changed. upds.lock (stdlib/version) remembers, for each such package, its
// version and its key at that version (its X-Upds-Source); a build resolves the version from it
// and records a new one there.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/version"
)

// resolvedVersion is the version the last Build of a content-versioned package resolved.
type resolvedVersion struct{ v atomic.Pointer[string] }

func (r *resolvedVersion) get() (string, bool) {
	if p := r.v.Load(); p != nil {
		return *p, true
	}
	return "", false
}

func (r *resolvedVersion) set(v string) { r.v.Store(&v) }

// contentVersionNow is Version for version = "content": the version the last build resolved;
// before the package is built in this run, the version upds.lock records for it; without one,
// the project version (what its first build will give it).
func (t *Target) contentVersionNow() (string, error) {
	if v, ok := t.resolved.get(); ok {
		return v, nil
	}
	e, err := t.locked(t.host)
	if err != nil {
		return "", err
	}
	if e != nil {
		return e.Version, nil
	}
	return t.spec.version()
}

// locked is the package's entry in upds.lock, or nil.
func (t *Target) locked(h *interp.Host) (*version.LockEntry, error) {
	l, err := version.ReadLock(h.FS, version.LockFile)
	if err != nil {
		return nil, t.spec.errorf("%v", err)
	}
	if e, ok := l.Get(t.spec.Name); ok {
		return &e, nil
	}
	return nil, nil
}

// assembleKeyed assembles the package to build and computes its action key (its
// X-Upds-Source). For version = "content" the version is resolved against upds.lock: the
// package is assembled at the recorded version, and when its key is the recorded one, nothing
// in it changed and it keeps that version; otherwise it takes version.ContentVersion's and is
// assembled again. Its times are clamped to DefaultMTime whatever SOURCE_DATE_EPOCH says (a
// clamp that moved with every commit would make new bytes, so a new version, at every
// release). With record, a new version and key are written to upds.lock and Version gives the
// version from then on; without, nothing is written (a dry run).
func (t *Target) assembleKeyed(ctx context.Context, h *interp.Host, in Inputs, record bool) (*assembly, string, error) {
	if !t.spec.ContentVersion {
		return t.spec.assembleKey(ctx, h, in, !record)
	}
	in.MTime = DefaultMTime()
	project, err := t.spec.version()
	if err != nil {
		return nil, "", t.spec.errorf("version: %v", err)
	}
	prev, err := t.locked(h)
	if err != nil {
		return nil, "", err
	}
	ver := project
	if prev != nil {
		ver = prev.Version
	}
	asm, key, err := t.spec.at(ver).assembleKey(ctx, h, in, !record)
	if err != nil {
		return nil, "", err
	}
	if prev == nil || key != prev.Key { // new content (or a first build): a new version
		guess := ver
		if ver, err = version.ContentVersion(prev, project, key); err != nil {
			return nil, "", t.spec.errorf("version: %v", err)
		}
		if ver != guess {
			if asm, key, err = t.spec.at(ver).assembleKey(ctx, h, in, !record); err != nil {
				return nil, "", err
			}
		}
		if record {
			if err := t.record(h, prev, version.LockEntry{Name: t.spec.Name, Version: ver, Key: key}); err != nil {
				return nil, "", err
			}
		}
	}
	if record {
		t.resolved.set(ver)
	}
	return asm, key, nil
}

// at is a copy of s at version v.
func (s *Spec) at(v string) *Spec {
	c := *s
	c.Version, c.VersionOf, c.ContentVersion = v, nil, false
	return &c
}

// assembleKey assembles the package and computes its key; a dry run writes nothing (not
// even the stat list).
func (s *Spec) assembleKey(ctx context.Context, h *interp.Host, in Inputs, dryRun bool) (*assembly, string, error) {
	asm, err := s.assemble(in)
	if err != nil {
		return nil, "", err
	}
	asm.dryRun = dryRun
	key, err := asm.key(ctx, h)
	return asm, key, err
}

// record writes e into upds.lock, unless someone changed the package's line since prev was read.
func (t *Target) record(h *interp.Host, prev *version.LockEntry, e version.LockEntry) error {
	err := version.UpdateLock(h.FS, version.LockFile, version.LockOptions{Guard: h.Project.VersionFile}, func(l *version.Lock) error {
		now, ok := l.Get(e.Name)
		if ok != (prev != nil) || ok && now != *prev {
			return fmt.Errorf("%s changed while the package was built: build again", version.LockFile)
		}
		l.Set(e)
		return nil
	})
	if se := (*specError)(nil); err != nil && !errors.As(err, &se) {
		err = t.spec.errorf("%v", err)
	}
	return err
}
