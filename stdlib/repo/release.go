package repo

// The release stage of a publish: the extra files of public/ (setup.sh), then
// dists/SUITE/Release, Release.gpg and InRelease, signed, InRelease renamed last.

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/upds/upds/interp/atomicfile"
)

// writeRelease writes the extra files of public/ (path -> content) that changed, then
// dists/SUITE/Release, Release.gpg and, last, InRelease.
func writeRelease(pub string, cfg Config, st *state, sig *signer, now time.Time, extra map[string][]byte) error {
	text := releaseText(cfg, st, now)
	inrelease, err := sig.clearsign(text, now)
	if err != nil {
		return err
	}
	detached, err := sig.detach(text, now)
	if err != nil {
		return err
	}
	dists := filepath.Join(pub, "dists", cfg.Suite)
	var staged []*atomicfile.File
	defer func() {
		for _, f := range staged {
			f.Abort()
		}
	}()
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		abs := filepath.Join(pub, filepath.FromSlash(path.Clean(name)))
		if inPlace(abs, extra[name]) {
			continue
		}
		f, err := stage(filepath.Dir(abs), filepath.Base(abs), extra[name])
		if err != nil {
			return err
		}
		staged = append(staged, f)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"Release", text}, {"Release.gpg", detached}, {"InRelease", inrelease}} {
		sf, err := stage(dists, f.name, f.data)
		if err != nil {
			return err
		}
		staged = append(staged, sf)
	}
	// All synced first, then renamed in order: InRelease last.
	return atomicfile.CommitAll(staged...)
}

// inPlace reports whether the file at abs is already a regular file, mode 0644, that
// holds data: rewriting it would change nothing a client sees.
func inPlace(abs string, data []byte) bool {
	fi, err := os.Lstat(abs)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 || fi.Size() != int64(len(data)) {
		return false
	}
	old, err := os.ReadFile(abs)
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
