package repo

// The release stage of a publish: dists/SUITE/Release, Release.gpg and InRelease, signed,
// InRelease renamed last.

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/upds/upds/interp/atomicfile"
)

// writeRelease writes dists/SUITE/Release, Release.gpg and, last, InRelease.
func writeRelease(pub string, cfg Config, st *state, sig *signer, now time.Time) error {
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
	// All three written and synced first, then renamed in order: InRelease last.
	var staged []*atomicfile.File
	defer func() {
		for _, f := range staged {
			f.Abort()
		}
	}()
	for _, f := range []struct {
		name string
		data []byte
	}{{"Release", text}, {"Release.gpg", detached}, {"InRelease", inrelease}} {
		sf, err := stage(dists, f.name, f.data)
		if err != nil {
			return err
		}
		staged = append(staged, sf)
		if err := sf.Sync(); err != nil {
			return fmt.Errorf("write %s: %w", sf.Path(), err)
		}
	}
	for _, f := range staged {
		if err := f.Commit(); err != nil {
			return err
		}
	}
	return nil
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
