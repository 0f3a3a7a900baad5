package deb

// deb(version = "content"): a package whose version is the project version at which its
// content last changed. upds.lock (stdlib/version) remembers the version and the content key of
// each such package; a build resolves the version from it and records a new one there.

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/version"
)

// contentProbeVersion is the version a content-versioned package is assembled with to compute
// its content key: everything derived from the version (the Version field, the changelog and
// its name) is the same whatever the real version is.
const contentProbeVersion = "0"

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
	l, err := version.ReadLock(t.host.FS, version.LockFile)
	if err != nil {
		return "", err
	}
	if e, ok := l.Get(t.spec.Name); ok {
		return e.Version, nil
	}
	return t.spec.version()
}

// versioned is the Spec to build and its inputs: t.spec itself, or for version = "content" a
// copy with the version resolved against upds.lock, and the inputs with the fixed time clamp
// (DefaultMTime, whatever SOURCE_DATE_EPOCH says: a clamp that moves with every commit would
// give the package new bytes, so a new version, at every release). With record, the resolved
// version and the content key are written to upds.lock (when they changed) and Version gives
// the version from then on; without, nothing is written (a dry run).
func (t *Target) versioned(ctx context.Context, h *interp.Host, in Inputs, record bool) (*Spec, Inputs, error) {
	if !t.spec.ContentVersion {
		return &t.spec, in, nil
	}
	in.MTime = DefaultMTime()
	key, err := t.spec.contentKey(ctx, h, in)
	if err != nil {
		return nil, in, err
	}
	project, err := t.spec.version()
	if err != nil {
		return nil, in, t.spec.errorf("version: %v", err)
	}
	var ver string
	resolve := func(l *version.Lock) error {
		var prev *version.LockEntry
		if e, ok := l.Get(t.spec.Name); ok {
			prev = &e
		}
		ver, err = version.ContentVersion(prev, project, key)
		if err != nil {
			return t.spec.errorf("version: %v", err)
		}
		l.Set(version.LockEntry{Name: t.spec.Name, Version: ver, Key: key})
		return nil
	}
	if record {
		err = version.UpdateLock(h.FS, version.LockFile, version.LockOptions{Guard: h.Project.VersionFile}, resolve)
	} else {
		var l *version.Lock
		if l, err = version.ReadLock(h.FS, version.LockFile); err == nil {
			err = resolve(l)
		}
	}
	if err != nil {
		if se := (*specError)(nil); !errors.As(err, &se) {
			err = t.spec.errorf("%v", err)
		}
		return nil, in, err
	}
	if record {
		t.resolved.set(ver)
	}
	s := t.spec
	s.Version, s.VersionOf = ver, nil
	return &s, in, nil
}

// contentKey is the key of everything that goes into the package except its version and what
// is derived from it: the key of the package assembled at contentProbeVersion.
func (s *Spec) contentKey(ctx context.Context, h *interp.Host, in Inputs) (string, error) {
	probe := *s
	probe.Version, probe.VersionOf = contentProbeVersion, nil
	asm, err := probe.assemble(in)
	if err != nil {
		return "", err
	}
	return asm.key(ctx, h)
}
