// Package send uploads files to an SFTP server or a local directory safely: each file is
// written under a temporary name, verified (size and SHA-256) and only then renamed.
package send

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"github.com/upds/upds/interp/parallel"
	"github.com/upds/upds/stdlib/sshconn"
)

// TmpSuffix is appended to a file's name while it is being uploaded. Watchers
// (upds repo watch) ignore names with this suffix.
const TmpSuffix = ".tmp"

// DefaultConcurrency is the number of files uploaded at the same time when
// Options.Concurrency is zero.
const DefaultConcurrency = 4

// Options configure Send.
type Options struct {
	// SSH configures the connection for sftp:// targets (identity files,
	// known_hosts, agent, timeout).
	SSH sshconn.Options
	// Concurrency bounds how many files upload at once (default DefaultConcurrency).
	Concurrency int
	// Progress, when set, is called as bytes of a file are sent, from several
	// goroutines at once when files upload concurrently.
	Progress func(file string, sent, total int64)
	// Check, when set, looks at the destination before anything is uploaded (see Check).
	Check Check
}

// Target is a parsed destination.
type Target struct {
	// SSH is the server for sftp:// targets; zero for local directories.
	SSH sshconn.Target
	// Dir is the destination directory: absolute or relative to the login
	// directory (sftp://host/~/dir) on the server; a local path otherwise.
	Dir string
	// Local is true for a local directory target.
	Local bool
}

// String returns the target in the form ParseTarget accepts.
func (t Target) String() string {
	if t.Local {
		return t.Dir
	}
	d := t.Dir
	if !strings.HasPrefix(d, "/") {
		d = "/~/" + d
	}
	return "sftp://" + t.SSH.String() + d
}

// ParseTarget parses "sftp://[user@]host[:port]/dir", "file:///dir" or a plain
// directory path. "sftp://host/~/dir" names dir under the login directory.
func ParseTarget(to string) (Target, error) {
	switch {
	case strings.HasPrefix(to, "sftp://"):
		u, err := url.Parse(to)
		if err != nil {
			return Target{}, fmt.Errorf("send target %q: %w", to, err)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return Target{}, fmt.Errorf("send target %q: unexpected query or fragment", to)
		}
		if _, hasPass := u.User.Password(); hasPass {
			return Target{}, fmt.Errorf("send target %q: passwords are not supported; use an SSH key", to)
		}
		hp := u.Host
		if u.User != nil {
			hp = u.User.Username() + "@" + hp
		}
		st, err := sshconn.ParseTarget(hp)
		if err != nil {
			return Target{}, fmt.Errorf("send target %q: %w", to, err)
		}
		dir := u.Path
		switch {
		case dir == "" || dir == "/~" || dir == "/~/":
			dir = "."
		case strings.HasPrefix(dir, "/~/"):
			dir = path.Clean(dir[3:])
		default:
			dir = path.Clean(dir)
		}
		return Target{SSH: st, Dir: dir}, nil
	case strings.HasPrefix(to, "file://"):
		u, err := url.Parse(to)
		if err != nil {
			return Target{}, fmt.Errorf("send target %q: %w", to, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return Target{}, fmt.Errorf("send target %q: file:// URLs must name a local path (file:///dir)", to)
		}
		if u.Path == "" {
			return Target{}, fmt.Errorf("send target %q: missing directory", to)
		}
		return Target{Dir: filepath.Clean(u.Path), Local: true}, nil
	case strings.Contains(to, "://"):
		return Target{}, fmt.Errorf("send target %q: unsupported scheme (use sftp://user@host/dir or a directory)", to)
	case to == "":
		return Target{}, errors.New("send: empty target")
	}
	return Target{Dir: filepath.Clean(to), Local: true}, nil
}

// Send uploads files into the directory named by to. Every file is first written as
// NAME.tmp, then its size and SHA-256 are checked against the local file (on SFTP by
// reading the upload back). Only when every file has been uploaded and verified are they
// renamed to their final names (posix-rename, so an existing file is replaced atomically).
// On any failure, including ctx being cancelled, the temporary files are removed and no
// file of this batch appears under its final name unless the renaming step itself fails.
func Send(ctx context.Context, files []string, to string, opt Options) error {
	t, err := ParseTarget(to)
	if err != nil {
		return err
	}
	seen := map[string]string{}
	for _, f := range files {
		b := filepath.Base(f)
		if prev, ok := seen[b]; ok {
			return fmt.Errorf("send: %s and %s have the same name", prev, f)
		}
		if strings.HasSuffix(b, TmpSuffix) {
			return fmt.Errorf("send %s: name ends in %s, which receivers ignore", f, TmpSuffix)
		}
		seen[b] = f
	}
	if len(files) == 0 {
		return nil
	}
	if t.Local {
		if files, err = check(ctx, opt, localRemote(t.Dir), files); err != nil {
			return err
		}
		return sendBatch(ctx, files, localDest{dir: t.Dir}, opt)
	}
	conn, err := sshconn.Dial(ctx, t.SSH, opt.SSH)
	if err != nil {
		return fmt.Errorf("send to %s: %w", to, err)
	}
	defer conn.Close()
	c, err := sftp.NewClient(conn, sftp.UseConcurrentWrites(true))
	if err != nil {
		return fmt.Errorf("send to %s: start sftp: %w", to, err)
	}
	defer c.Close()
	return SendSFTP(ctx, c, files, t.Dir, opt)
}

// SendSFTP is Send over an established SFTP client (for example one made with
// sftp.NewClientPipe). dir is the remote directory.
func SendSFTP(ctx context.Context, c *sftp.Client, files []string, dir string, opt Options) error {
	fi, err := c.Stat(dir)
	if err != nil {
		return fmt.Errorf("send: remote directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("send: remote %s is not a directory", dir)
	}
	if files, err = check(ctx, opt, sftpRemote(c, dir), files); err != nil {
		return err
	}
	return sendBatch(ctx, files, &sftpDest{c: c, dir: dir}, opt)
}

// dest is one kind of destination.
type dest interface {
	// upload writes src as name+TmpSuffix and verifies it against size and sum.
	upload(ctx context.Context, name string, src io.Reader, size int64, sum []byte) error
	// commit renames name+TmpSuffix to name.
	commit(name string) error
	// abort removes name+TmpSuffix.
	abort(name string) error
	where(name string) string
}

// ctxReader fails reads once ctx is done, so a transfer stops mid-file.
type ctxReader struct {
	ctx      context.Context
	r        io.Reader
	n, total int64
	name     string
	progress func(string, int64, int64)
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.progress != nil && n > 0 {
		r.progress(r.name, r.n, r.total)
	}
	return n, err
}

// sendBatch uploads files to d, opt.Concurrency at a time, and renames them only when
// every one has been uploaded and verified. One failure stops the batch.
func sendBatch(ctx context.Context, files []string, d dest, opt Options) error {
	conc := opt.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	errs := make([]error, len(files))
	started := make([]bool, len(files))
	// The errors are in errs; the first one stops the uploads not yet started and cancels
	// the ctx of those running: nothing of the batch is renamed.
	parallel.ForEach(ctx, len(files), conc, func(ctx context.Context, i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		started[i] = true
		errs[i] = uploadOne(ctx, files[i], d, opt)
		return errs[i]
	})
	if ctx.Err() != nil || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		return abortBatch(ctx, files, started, errs, d)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if err := d.commit(name); err != nil {
			// Remove what is left so that no stale .tmp stays behind.
			for _, g := range files {
				d.abort(filepath.Base(g))
			}
			return fmt.Errorf("send %s: rename to %s: %w", f, d.where(name), err)
		}
	}
	return nil
}

// abortBatch removes the temporary files of the uploads that started and returns why the
// batch failed: the uploads' errors, other than cancellations caused by the first, and only
// after them what the cleanup could not remove (after a lost connection both fail, and the
// first line must name the cause).
func abortBatch(ctx context.Context, files []string, started []bool, errs []error, d dest) error {
	var cleanup []error
	for i, f := range files {
		if started[i] {
			if err := d.abort(filepath.Base(f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				cleanup = append(cleanup, fmt.Errorf("remove %s: %w", d.where(filepath.Base(f)+TmpSuffix), err))
			}
		}
	}
	var real []error
	for _, e := range errs {
		if e != nil && !errors.Is(e, context.Canceled) {
			real = append(real, e)
		}
	}
	if len(real) == 0 {
		for _, e := range errs {
			if e != nil {
				real = append(real, e)
			}
		}
	}
	if len(real) == 0 {
		real = append(real, fmt.Errorf("send: %w", context.Cause(ctx)))
	}
	return errors.Join(append(real, cleanup...)...)
}

func uploadOne(ctx context.Context, file string, d dest, opt Options) error {
	name := filepath.Base(file)
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("send %s: not a regular file", file)
	}
	// Hash the source first: the upload is then checked against what the file held
	// before it was sent, not against whatever the sending pass happened to read.
	h := sha256.New()
	n, err := io.Copy(h, &ctxReader{ctx: ctx, r: f})
	if err != nil {
		return fmt.Errorf("send %s: read: %w", file, err)
	}
	if n != fi.Size() {
		return fmt.Errorf("send %s: file changed while reading (%d bytes, expected %d)", file, n, fi.Size())
	}
	sum := h.Sum(nil)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("send %s: %w", file, err)
	}
	r := &ctxReader{ctx: ctx, r: f, total: n, name: file, progress: opt.Progress}
	if err := d.upload(ctx, name, r, n, sum); err != nil {
		return fmt.Errorf("send %s to %s: %w", file, d.where(name), err)
	}
	return nil
}

// sftpDest uploads over SFTP.
type sftpDest struct {
	c   *sftp.Client
	dir string
}

func (d *sftpDest) where(name string) string { return path.Join(d.dir, name) }

func (d *sftpDest) upload(ctx context.Context, name string, src io.Reader, size int64, sum []byte) error {
	tmp := path.Join(d.dir, name+TmpSuffix)
	f, err := d.c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	n, err := f.ReadFromWithConcurrency(src, 0)
	if err == nil && n != size {
		err = fmt.Errorf("wrote %d bytes, expected %d", n, size)
	}
	if err == nil {
		if _, ok := d.c.HasExtension("fsync@openssh.com"); ok {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Verify: size from the server, content by reading the upload back.
	st, err := d.c.Stat(tmp)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if st.Size() != size {
		return fmt.Errorf("verify: %s has %d bytes, expected %d", tmp, st.Size(), size)
	}
	rf, err := d.c.Open(tmp)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer rf.Close()
	h := sha256.New()
	if _, err := rf.WriteTo(h); err != nil {
		return fmt.Errorf("verify: read back %s: %w", tmp, err)
	}
	if got := h.Sum(nil); string(got) != string(sum) {
		return fmt.Errorf("verify: %s has sha256 %s, expected %s", tmp, hex.EncodeToString(got), hex.EncodeToString(sum))
	}
	return ctx.Err()
}

func (d *sftpDest) commit(name string) error {
	tmp, final := path.Join(d.dir, name+TmpSuffix), path.Join(d.dir, name)
	if _, ok := d.c.HasExtension("posix-rename@openssh.com"); ok {
		return d.c.PosixRename(tmp, final)
	}
	// Plain SFTP rename fails (or, on some servers, is not atomic) when the target
	// exists: use it only when there is nothing to replace.
	if _, err := d.c.Lstat(final); err == nil {
		return fmt.Errorf("%s exists and the server does not support posix-rename@openssh.com", final)
	}
	return d.c.Rename(tmp, final)
}

func (d *sftpDest) abort(name string) error {
	done := make(chan error, 1)
	go func() { done <- d.c.Remove(path.Join(d.dir, name+TmpSuffix)) }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		d.c.Close() // a dead connection: give up rather than hang
		return errors.New("timed out")
	}
}

// localDest writes into a local directory.
type localDest struct{ dir string }

func (d localDest) where(name string) string { return filepath.Join(d.dir, name) }

func (d localDest) upload(ctx context.Context, name string, src io.Reader, size int64, sum []byte) (err error) {
	fi, err := os.Stat(d.dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", d.dir)
	}
	tmp := filepath.Join(d.dir, name+TmpSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, src)
	if err == nil && n != size {
		err = fmt.Errorf("wrote %d bytes, expected %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	rf, err := os.Open(tmp)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer rf.Close()
	h := sha256.New()
	if n, err = io.Copy(h, rf); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if n != size || string(h.Sum(nil)) != string(sum) {
		return fmt.Errorf("verify: %s does not match the source (%d bytes, sha256 %x)", tmp, n, h.Sum(nil))
	}
	return ctx.Err()
}

func (d localDest) commit(name string) error {
	if err := os.Rename(filepath.Join(d.dir, name+TmpSuffix), filepath.Join(d.dir, name)); err != nil {
		return err
	}
	df, err := os.Open(d.dir)
	if err != nil {
		return err
	}
	defer df.Close()
	return df.Sync()
}

func (d localDest) abort(name string) error {
	return os.Remove(filepath.Join(d.dir, name+TmpSuffix))
}
