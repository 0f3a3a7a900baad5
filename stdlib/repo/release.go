package repo

// The release stage of a publish: dists/SUITE/Release, Release.gpg and InRelease, signed,
// InRelease renamed last.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// writeRelease writes dists/SUITE/Release, Release.gpg and, last, InRelease.
func writeRelease(pub string, cfg Config, st *state, sig *signer, now time.Time) error {
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
	text := []byte(b.String())
	inrelease, err := sig.clearsign(text, now)
	if err != nil {
		return err
	}
	detached, err := sig.detach(text, now)
	if err != nil {
		return err
	}
	dists := filepath.Join(pub, "dists", cfg.Suite)
	if err := os.MkdirAll(dists, 0o755); err != nil {
		return err
	}
	// All three synced first, then renamed in order: InRelease last.
	var tmps []string
	defer func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}()
	names := []string{"Release", "Release.gpg", "InRelease"}
	for i, data := range [][]byte{text, detached, inrelease} {
		t, err := writeTemp(dists, names[i], data, 0o644)
		if err != nil {
			return err
		}
		tmps = append(tmps, t)
	}
	for i, n := range names {
		if err := os.Rename(tmps[i], filepath.Join(dists, n)); err != nil {
			return err
		}
		tmps[i] = ""
	}
	tmps = nil
	return syncDir(dists)
}
