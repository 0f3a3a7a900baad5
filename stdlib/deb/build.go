package deb

// Building a deb() target: the package assembled from its Spec, its action key computed, then
// written, or taken from the cache.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/interp/cache"
	"github.com/upds/upds/interp/parallel"
)

// Build writes the package (or takes it from the cache) into the output directory.
func (t *Target) Build(a *interp.Action) error {
	h := a.Host
	mtime, err := clampTime(h.Env)
	if err != nil {
		return t.usageError(t.spec.errorf("%v", err))
	}
	in := Inputs{Project: h.Project, FS: h.FS, Root: h.Root, MTime: mtime}
	asm, key, err := t.assembleKeyed(a.Ctx, h, in, true)
	if err != nil {
		return t.usageError(err)
	}
	asm.pkg.Control.Set("X-Upds-Source", key)
	pl, err := Prepare(asm.pkg)
	if err != nil {
		return t.usageError(t.spec.errorf("%v", err))
	}
	if err := t.checkProject(in, asm, a.Log); err != nil {
		return t.usageError(err)
	}
	dst := filepath.Join(h.OutDir(), Filename(asm.pkg.Control))
	a.Cached, err = h.Cache.Build("deb", key, dst, func(tmp string) error {
		_, err := pl.WriteFile(a.Ctx, tmp) // data.tar is staged beside tmp, in the cache
		return err
	})
	if err != nil {
		return err
	}
	t.built = dst
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
	return &interp.Error{Pos: t.pos, Msg: se.msg, Usage: true}
}

// key is the action key of the package: everything that goes into it, control, scripts,
// conffiles, options and each entry with its content hash (from the stat cache when the file
// is unchanged).
func (a *assembly) key(ctx context.Context, h *interp.Host) (string, error) {
	pkg := a.pkg
	key := cache.NewKey("deb/1", h.ToolVersion)
	ctl, err := pkg.Control.Bytes()
	if err != nil {
		return "", err
	}
	key.String(string(ctl))
	for _, n := range []string{"preinst", "postinst", "prerm", "postrm"} {
		key.String(n).String(string(pkg.Scripts[n]))
	}
	key.String(string(pkg.Triggers)).Strings(pkg.Conffiles).String(pkg.Compression).Int(pkg.MTime.Unix())
	if c, ok := compressionNamed(pkg.Compression); ok && c.encoder != nil {
		key.String(c.encoder()) // libzstd's output changes with its version
	}
	sorted := append([]sourced(nil), a.entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	sums, err := contentSums(ctx, h.Cache, sorted)
	if err != nil {
		return "", err
	}
	key.Int(int64(len(sorted)))
	for i, e := range sorted {
		key.String(e.Path).Int(int64(e.Type)).Int(int64(e.Mode)).String(e.Owner).String(e.Group).
			Int(int64(e.UID)).Int(int64(e.GID)).String(e.Target).Int(e.Size)
		if !e.MTime.IsZero() && e.MTime.Before(pkg.MTime) {
			key.Int(e.MTime.Unix())
		}
		if e.Type == TypeFile {
			key.Sum(sums[i])
		}
	}
	return key.Hex(), nil
}

// contentSums returns the sha256 of every regular file among entries (from the stat cache
// when the file is unchanged), hashing on every core: a cold build of a large tree reads all
// of it here before the package is written.
func contentSums(ctx context.Context, c *cache.Cache, entries []sourced) ([][32]byte, error) {
	sums := make([][32]byte, len(entries))
	const batch = 64 // files per call: most are small, and the stat cache answers many
	err := parallel.ForEach(ctx, (len(entries)+batch-1)/batch, 0, func(ctx context.Context, b int) error {
		for i := b * batch; i < min((b+1)*batch, len(entries)); i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			e := &entries[i]
			var err error
			switch {
			case e.Type != TypeFile:
			case e.data != nil:
				sums[i] = cache.SumBytes(e.data)
			case e.fi != nil:
				sums[i], err = c.FileSumInfo(e.fsys, e.name, e.statKey, e.fi)
			default:
				sums[i], err = c.FileSum(e.fsys, e.name, e.statKey)
			}
			if err != nil {
				return fmt.Errorf("hash %s: %w", e.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sums, nil
}

// clampTime is the mtime clamp: SOURCE_DATE_EPOCH when set, otherwise DefaultMTime.
func clampTime(env []string) (time.Time, error) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "SOURCE_DATE_EPOCH="); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 {
				return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
			}
			return time.Unix(n, 0).UTC(), nil
		}
	}
	return DefaultMTime(), nil
}
