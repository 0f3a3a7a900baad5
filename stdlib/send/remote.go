package send

// The destination as a Check sees it before anything is uploaded: Remote reads files in the
// destination directory and its parent, locally or over SFTP (repo.CheckUploads reads a
// repository's index through it).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/pkg/sftp"
)

// Remote is a destination directory seen before an upload. Names are relative to it and may
// reach its parent ("../repo.conf"); a missing file is an fs.ErrNotExist.
type Remote interface {
	// Dir is the directory: a local path, or the path on the SFTP server.
	Dir() string
	// ReadFile reads a file of at most MaxRemoteRead bytes.
	ReadFile(ctx context.Context, name string) ([]byte, error)
	// Sum is the size and SHA-256 (hex) of a file.
	Sum(ctx context.Context, name string) (size int64, sha string, err error)
}

// MaxRemoteRead bounds what Remote.ReadFile reads (a repository's Packages index).
const MaxRemoteRead = 1 << 30

// Check looks at the destination before anything is uploaded: it returns the files to upload
// (it may leave out files the destination already has), or an error, and then nothing is
// uploaded.
type Check func(ctx context.Context, dest Remote, files []string) ([]string, error)

// check runs opt.Check, if any, on the destination d.
func check(ctx context.Context, opt Options, d Remote, files []string) ([]string, error) {
	if opt.Check == nil {
		return files, nil
	}
	return opt.Check(ctx, d, files)
}

// remote is a destination directory whose files open reads: a local one or one on an SFTP server.
type remote struct {
	dir  string
	open func(name string) (io.ReadCloser, error)
}

func localRemote(dir string) remote {
	return remote{dir, func(name string) (io.ReadCloser, error) { return os.Open(filepath.Join(dir, name)) }}
}

func sftpRemote(c *sftp.Client, dir string) remote {
	return remote{dir, func(name string) (io.ReadCloser, error) {
		f, err := c.Open(path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		return f, nil
	}}
}

func (r remote) Dir() string { return r.dir }

func (r remote) ReadFile(ctx context.Context, name string) ([]byte, error) {
	f, err := r.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBounded(ctx, f, name)
}

func (r remote) Sum(ctx context.Context, name string) (int64, string, error) {
	f, err := r.open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	return sum(ctx, f)
}

func readBounded(ctx context.Context, r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(&ctxReader{ctx: ctx, r: r}, MaxRemoteRead+1))
	if err == nil && len(b) > MaxRemoteRead {
		err = errors.New("larger than 1 GiB")
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

func sum(ctx context.Context, r io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(h, &ctxReader{ctx: ctx, r: r})
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
