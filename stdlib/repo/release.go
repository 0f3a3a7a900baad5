package repo

// The release stage of a publish: the extra files of public/ (setup.sh), then
// dists/SUITE/Release, Release.gpg and InRelease, signed, InRelease renamed last.

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/upds/upds/interp/storage"
)

// writeRelease writes the extra files (path -> content) that changed; then, only if fence
// returns nil, Release and Release.gpg, and InRelease last.
func writeRelease(ctx context.Context, pub storage.Store, cfg Config, st *state, sig *signer, now time.Time, extra map[string][]byte, fence func() error) error {
	text := releaseText(cfg, st, now)
	inrelease, err := sig.clearsign(text, now)
	if err != nil {
		return err
	}
	detached, err := sig.detach(text, now)
	if err != nil {
		return err
	}
	dists := "dists/" + cfg.Suite + "/"
	var objs []storage.Object
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		name := path.Clean(name)
		if inPlace(ctx, pub, name, extra[name]) {
			continue
		}
		objs = append(objs, storage.Object{Name: name, Data: extra[name], CacheControl: "no-cache"})
	}
	if err := pub.Put(ctx, objs...); err != nil {
		return err
	}
	if err := fence(); err != nil {
		return err
	}
	err = pub.Put(ctx, storage.Object{Name: dists + "Release", Data: text, CacheControl: "no-cache"},
		storage.Object{Name: dists + "Release.gpg", Data: detached, CacheControl: "no-cache"})
	if err != nil {
		return err
	}
	return pub.Put(ctx, storage.Object{Name: dists + "InRelease", Data: inrelease, CacheControl: "no-cache"})
}

// inPlace reports whether the object name already holds data (in a Dir, as a file of
// mode 0644, which a web server serves): rewriting it would change nothing a client sees.
func inPlace(ctx context.Context, pub storage.Store, name string, data []byte) bool {
	if info, err := pub.Stat(ctx, name); err != nil || info.Size != int64(len(data)) {
		return false
	}
	if d, ok := pub.(*storage.Dir); ok {
		if fi, err := os.Lstat(d.Path(name)); err != nil || fi.Mode().Perm() != 0o644 {
			return false
		}
	}
	old, _, err := storage.ReadFile(ctx, pub, name)
	return err == nil && bytes.Equal(old, data)
}

// releaseText is the Release file: the repository's fields and the sums of every index file.
func releaseText(cfg Config, st *state, now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Origin: %s\nLabel: %s\nSuite: %s\nCodename: %s\n", cfg.Origin, cfg.Label, cfg.Suite, cfg.Codename)
	fmt.Fprintf(&b, "Date: %s\n", now.UTC().Format(time.RFC1123))
	if cfg.ValidFor > 0 {
		fmt.Fprintf(&b, "Valid-Until: %s\n", now.Add(cfg.ValidFor).UTC().Format(time.RFC1123))
	}
	fmt.Fprintf(&b, "Architectures: %s\nComponents: %s\n", strings.Join(cfg.Architectures, " "), cfg.Component)
	if cfg.Description != "" {
		fmt.Fprintf(&b, "Description: %s\n", cfg.Description)
	}
	b.WriteString("Acquire-By-Hash: yes\n")
	type line struct {
		name string
		s    fileSum
	}
	var lines []line
	for d, s := range st.Indexes {
		for n, fs := range s.Files {
			lines = append(lines, line{d + "/" + n, fs})
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].name < lines[j].name })
	b.WriteString("MD5Sum:\n")
	for _, l := range lines {
		fmt.Fprintf(&b, " %s %8d %s\n", l.s.MD5, l.s.Size, l.name)
	}
	b.WriteString("SHA256:\n")
	for _, l := range lines {
		fmt.Fprintf(&b, " %s %8d %s\n", l.s.SHA256, l.s.Size, l.name)
	}
	return []byte(b.String())
}
