package repo

// Before an upload to a repository's incoming/ (send(), publish()): a name, version and
// architecture the repository already holds with other content is refused, and one it holds
// with the same content is not uploaded again.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"

	"github.com/upds/upds/stdlib/deb"
	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/send"
	"github.com/upds/upds/stdlib/version"
)

// ErrConflict is what a ConflictError is (errors.Is): an upload whose name, version and
// architecture the repository already holds with other content.
var ErrConflict = errors.New("already in the repository with other content")

// ConflictError is an upload refused because the repository holds its name, version and
// architecture with other content: published, or waiting in incoming/.
type ConflictError struct {
	Package      string // "hello 0.1.3 (all)"
	Where        string // "in the repository /srv/apt", "waiting in /srv/apt/incoming"
	Theirs, Ours string // SHA-256 in hex
}

// Error says which package, where, and what to do, in one line.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s is %s with other content (SHA256 %.12s there, %.12s here): a changed package needs a new version: bump VERSION and build again",
		e.Package, e.Where, e.Theirs, e.Ours)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// CheckUploads is a send.UploadCheck. When dest is the incoming/ folder of a repository (its
// parent holds repo.conf), it reads the repository's signed index (the suite of repo.conf)
// through dest, and for each package in files:
//
//   - the same name, version and architecture with the same SHA-256, published or waiting in
//     incoming/ under the same file name: left out of upload, with a note saying so;
//   - with another SHA-256: a *ConflictError naming the package, and nothing is uploaded.
//
// Any other destination gets every file.
func CheckUploads(ctx context.Context, dest send.Remote, files []string) (upload, notes []string, err error) {
	if path.Base(filepath.ToSlash(dest.Dir())) != IncomingDir {
		return files, nil, nil
	}
	conf, err := dest.ReadFile(ctx, "../"+ConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return files, nil, nil // not a repository's incoming/
	}
	repoDir := path.Dir(filepath.ToSlash(dest.Dir()))
	if err != nil {
		return nil, nil, err
	}
	ix, err := readIndexThrough(ctx, dest, repoDir, conf)
	if err != nil {
		return nil, nil, err
	}
	held := map[string]Package{}
	for _, p := range ix.Packages {
		held[packageKey(p.Name, p.Version, p.Architecture)] = p
	}
	for _, f := range files {
		note, err := checkUpload(ctx, dest, held, repoDir, f)
		if err != nil {
			return nil, nil, err
		}
		if note != "" {
			notes = append(notes, note)
			continue
		}
		upload = append(upload, f)
	}
	return upload, notes, nil
}

// readIndexThrough reads the index of the repository whose incoming/ dest is, through dest:
// the suite from its repo.conf, the key from its public/key.asc.
func readIndexThrough(ctx context.Context, dest send.Remote, repoDir string, conf []byte) (*Index, error) {
	p, err := control.ParseOne(bytes.NewReader(conf))
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", repoDir, ConfigFile, err)
	}
	key, err := dest.ReadFile(ctx, "../"+PublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("check the repository %s before the upload: %w", repoDir, err)
	}
	ix, err := ReadIndex(ctx, repoDir, IndexOptions{Suite: p.Get("Suite"), Key: key, Fetch: func(name string) ([]byte, error) {
		return dest.ReadFile(ctx, "../"+PublicDir+"/"+name)
	}})
	if err != nil {
		return nil, fmt.Errorf("check the repository before the upload: %w", err)
	}
	return ix, nil
}

// packageKey identifies a package in a repository: name, version (as dpkg compares it) and
// architecture.
func packageKey(name, ver, arch string) string {
	if v, err := version.ParseLenient(ver); err == nil {
		ver = v.String()
	}
	return name + "_" + ver + "_" + arch
}

// checkUpload compares one package with what the repository holds: a note when it need not
// be uploaded, an ErrConflict when it must not be.
func checkUpload(ctx context.Context, dest send.Remote, held map[string]Package, repoDir, file string) (string, error) {
	info, err := deb.ReadFile(file, deb.ReadOptions{Hash: true})
	if err != nil {
		return "", fmt.Errorf("%s is not a Debian package a repository takes: %w", filepath.Base(file), err)
	}
	c := info.Control
	name, ver, arch := c.Get("Package"), c.Get("Version"), c.Get("Architecture")
	pkg := fmt.Sprintf("%s %s (%s)", name, ver, arch)
	conflict := func(where, theirs string) error {
		return &ConflictError{Package: pkg, Where: where, Theirs: theirs, Ours: info.SHA256}
	}
	if p, ok := held[packageKey(name, ver, arch)]; ok {
		if p.SHA256 != info.SHA256 {
			return "", conflict("already in the repository "+repoDir, p.SHA256)
		}
		return fmt.Sprintf("%s: the repository has it already, the same bytes: not sent", pkg), nil
	}
	_, sum, err := dest.Sum(ctx, filepath.Base(file))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("check %s in %s: %w", filepath.Base(file), dest.Dir(), err)
	case sum != info.SHA256:
		return "", conflict("waiting in "+dest.Dir(), sum)
	}
	return fmt.Sprintf("%s: waiting in incoming/ already, the same bytes: not sent", pkg), nil
}
