package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/version"
)

// IndexOptions configure ReadIndex.
type IndexOptions struct {
	// Client fetches http(s) sources (nil: http.DefaultClient).
	Client *http.Client
	// Key is the armored public key InRelease must be signed with. For a directory
	// source it defaults to the repository's public/key.asc; for a URL it is required.
	Key []byte
	// Suite defaults to "stable".
	Suite string
	// Architectures to read (default: every architecture the Release file lists).
	Architectures []string
	// Now is used to check Valid-Until (zero: time.Now()).
	Now time.Time
	// Fetch, when set, reads a path relative to the directory that holds dists/, for a
	// repository reached another way (over SFTP); source then only names it in errors, and
	// Key is required.
	Fetch func(path string) ([]byte, error)
}

// Package is one entry of a Packages index.
type Package struct {
	Name         string
	Version      string
	Architecture string
	Filename     string
	Size         int64
	SHA256       string
	Fields       control.Paragraph // the whole stanza
}

// Index is a repository's verified Release and the packages of its indexes.
type Index struct {
	Release  control.Paragraph
	Packages []Package // each package file once, even when listed for several architectures
}

// IsURL reports whether a repository source is an http(s) URL (else it is a directory).
func IsURL(source string) bool {
	return strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://")
}

// maxIndexSize bounds one downloaded index file.
const maxIndexSize = 1 << 30

// ReadIndex reads a repository's signed index from source: an http(s) URL (the
// directory that holds dists/), a repository directory (DIR, its public/ is read), or a
// directory holding dists/ itself. InRelease must be signed by opt.Key and not expired
// (Valid-Until), and every Packages file must match the size and SHA256 that Release lists.
// An InRelease that does not verify (or no key to verify it) is an ErrVerify, an expired
// one an ErrExpired.
func ReadIndex(ctx context.Context, source string, opt IndexOptions) (*Index, error) {
	suite := opt.Suite
	if suite == "" {
		suite = "stable"
	}
	fetch, key, closeFn, err := fetcher(ctx, source, opt)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	if len(key) == 0 {
		return nil, withKind(ErrVerify, fmt.Errorf("read index %s: no public key given to verify InRelease", source))
	}
	in, err := fetch("dists/" + suite + "/InRelease")
	if err != nil {
		return nil, fmt.Errorf("read index %s: %w", source, err)
	}
	text, err := VerifyInRelease(in, key)
	if err != nil {
		return nil, fmt.Errorf("read index %s: %w", source, err)
	}
	rel, err := control.ParseOne(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("read index %s: Release: %w", source, err)
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	if vu := rel.Get("Valid-Until"); vu != "" {
		t, err := parseReleaseDate(vu)
		if err != nil {
			return nil, fmt.Errorf("read index %s: Valid-Until: %w", source, err)
		}
		if now.After(t) {
			return nil, withKind(ErrExpired, fmt.Errorf("read index %s: Release expired at %s (the repository must be published again)", source, vu))
		}
	}
	sums := map[string]fileSum{}
	for _, l := range strings.Split(rel.Get("SHA256"), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		sums[f[2]] = fileSum{Size: n, SHA256: f[0]}
	}
	archs := opt.Architectures
	if len(archs) == 0 {
		archs = strings.Fields(rel.Get("Architectures"))
	}
	byHash := strings.EqualFold(rel.Get("Acquire-By-Hash"), "yes")
	ix := &Index{Release: rel}
	seen := map[string]bool{}
	for _, comp := range strings.Fields(rel.Get("Components")) {
		for _, arch := range archs {
			base := comp + "/binary-" + arch + "/"
			name := base + "Packages.gz"
			s, ok := sums[name]
			if !ok {
				name = base + "Packages"
				if s, ok = sums[name]; !ok {
					continue
				}
			}
			p := "dists/" + suite + "/" + name
			if byHash {
				p = "dists/" + suite + "/" + base + "by-hash/SHA256/" + s.SHA256
			}
			data, err := fetch(p)
			if err != nil && byHash {
				data, err = fetch("dists/" + suite + "/" + name)
			}
			if err != nil {
				return nil, fmt.Errorf("read index %s: %w", source, err)
			}
			sum := sha256.Sum256(data)
			if int64(len(data)) != s.Size || hex.EncodeToString(sum[:]) != s.SHA256 {
				return nil, fmt.Errorf("read index %s: %s does not match the size and SHA256 in Release", source, name)
			}
			if strings.HasSuffix(name, ".gz") {
				zr, err := gzip.NewReader(bytes.NewReader(data))
				if err != nil {
					return nil, fmt.Errorf("read index %s: %s: %w", source, name, err)
				}
				data, err = io.ReadAll(io.LimitReader(zr, maxIndexSize))
				if err != nil {
					return nil, fmt.Errorf("read index %s: %s: %w", source, name, err)
				}
			}
			ps, err := control.Parse(bytes.NewReader(data))
			if err != nil {
				return nil, fmt.Errorf("read index %s: %s: %w", source, name, err)
			}
			for _, p := range ps {
				pk := Package{
					Name: p.Get("Package"), Version: p.Get("Version"), Architecture: p.Get("Architecture"),
					Filename: p.Get("Filename"), SHA256: p.Get("SHA256"), Fields: p,
				}
				pk.Size, _ = strconv.ParseInt(p.Get("Size"), 10, 64)
				k := pk.Name + "\x00" + pk.Version + "\x00" + pk.Architecture + "\x00" + pk.Filename
				if seen[k] {
					continue
				}
				seen[k] = true
				ix.Packages = append(ix.Packages, pk)
			}
		}
	}
	return ix, nil
}

// Newest returns, for each package name, the entry with the highest version (dpkg
// ordering). With arch set, only packages of that architecture or "all" count.
func (ix *Index) Newest(arch string) map[string]Package {
	out := map[string]Package{}
	vers := map[string]version.Version{}
	for _, p := range ix.Packages {
		if arch != "" && p.Architecture != arch && p.Architecture != "all" {
			continue
		}
		v, err := version.ParseLenient(p.Version)
		if err != nil {
			continue
		}
		if cur, ok := vers[p.Name]; !ok || version.Compare(v, cur) > 0 {
			out[p.Name], vers[p.Name] = p, v
		}
	}
	return out
}

func parseReleaseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse date %q", s)
}

// fetcher returns a function reading a repository-relative path from source, and the
// default key for that source.
func fetcher(ctx context.Context, source string, opt IndexOptions) (func(string) ([]byte, error), []byte, func(), error) {
	if opt.Fetch != nil {
		return opt.Fetch, opt.Key, func() {}, nil
	}
	if IsURL(source) {
		base, err := url.Parse(strings.TrimSuffix(source, "/") + "/")
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read index: %w", err)
		}
		client := opt.Client
		if client == nil {
			client = http.DefaultClient
		}
		return func(p string) ([]byte, error) {
			u := base.JoinPath(p)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
			if err != nil {
				return nil, err
			}
			resp, err := client.Do(req)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
			}
			b, err := io.ReadAll(io.LimitReader(resp.Body, maxIndexSize+1))
			if err == nil && len(b) > maxIndexSize {
				err = errors.New("too large")
			}
			if err != nil {
				return nil, fmt.Errorf("GET %s: %w", u, err)
			}
			return b, nil
		}, opt.Key, func() {}, nil
	}
	dir := strings.TrimPrefix(source, "file://")
	key := opt.Key
	if fi, err := os.Stat(filepath.Join(dir, PublicDir, "dists")); err == nil && fi.IsDir() {
		dir = filepath.Join(dir, PublicDir)
	}
	if len(key) == 0 {
		key, _ = os.ReadFile(filepath.Join(dir, "key.asc"))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read index: %w", err)
	}
	return func(p string) ([]byte, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return root.ReadFile(path.Clean(p))
	}, key, func() { root.Close() }, nil
}
