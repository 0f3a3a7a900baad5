package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/upds/upds/stdlib/send"
	"github.com/upds/upds/stdlib/sshconn"
	"github.com/upds/upds/stdlib/sshconn/sshtest"
)

func incomingFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, IncomingDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// sendChecked sends files to to with CheckUploads, as send() does; it returns the notes.
func sendChecked(files []string, to string, opt send.Options) ([]string, error) {
	var notes []string
	opt.Check = func(ctx context.Context, d send.Remote, files []string) ([]string, error) {
		up, n, err := CheckUploads(ctx, d, files)
		notes = n
		return up, err
	}
	return notes, send.Send(context.Background(), files, to, opt)
}

// testCheckUploads runs the cases against the repository dir, reached as to (a local path
// or sftp://) with opt.
func testCheckUploads(t *testing.T, dir, to string, opt send.Options) {
	built := t.TempDir()
	app := buildDeb(t, built, "app", "1.0", "all")
	venv := buildDeb(t, built, "app-venv", "1.0", "amd64")
	upload(t, dir, "app", "1.0", "all")
	upload(t, dir, "app-venv", "1.0", "amd64")
	if _, err := Publish(context.Background(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	// The same bytes: nothing sent, and send says so.
	notes, err := sendChecked([]string{app, venv}, to, opt)
	if err != nil || len(notes) != 2 || !strings.Contains(notes[0], "app 1.0 (all): the repository has it already") {
		t.Fatalf("same content: %v, notes %q", err, notes)
	}
	if got := incomingFiles(t, dir); len(got) != 0 {
		t.Fatalf("incoming/ holds %v", got)
	}
	// Other bytes under the same name and version: refused, nothing sent (not even the
	// package that is new).
	changed := buildDeb(t, t.TempDir(), "app", "1.0", "all", "X-Build: 2")
	next := buildDeb(t, built, "app-config", "1.1", "all")
	_, err = sendChecked([]string{next, changed}, to, opt)
	var ce *ConflictError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &ce) || ce.Package != "app 1.0 (all)" ||
		!strings.HasPrefix(err.Error(), "app 1.0 (all) is already in the repository ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("conflict: %v", err)
	}
	if got := incomingFiles(t, dir); len(got) != 0 {
		t.Fatalf("a refused send left %v in incoming/", got)
	}
	// A new package goes; then the same again is waiting in incoming/ (skipped), other bytes
	// under its name are refused.
	if notes, err := sendChecked([]string{next}, to, opt); err != nil || len(notes) != 0 {
		t.Fatalf("new package: %v %q", err, notes)
	}
	if notes, err := sendChecked([]string{next}, to, opt); err != nil || len(notes) != 1 || !strings.Contains(notes[0], "waiting in incoming/ already") {
		t.Fatalf("pending, same bytes: %v %q", err, notes)
	}
	other := buildDeb(t, t.TempDir(), "app-config", "1.1", "all", "X-Build: 3")
	if _, err := sendChecked([]string{other}, to, opt); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "is waiting in ") {
		t.Fatalf("pending, other bytes: %v", err)
	}
	if got := incomingFiles(t, dir); strings.Join(got, " ") != "app-config_1.1_all.deb" {
		t.Fatalf("incoming/ holds %v", got)
	}
}

// TestCheckUploadsLocal: send() to a local repository's incoming/ checks its index.
func TestCheckUploadsLocal(t *testing.T) {
	dir := newRepo(t, InitOptions{})
	testCheckUploads(t, dir, filepath.Join(dir, IncomingDir), send.Options{})
}

// TestCheckUploadsSFTP: the same over SFTP (OpenSSH's sshd and sftp-server on 127.0.0.1): the
// index, the key and the pending uploads are read through the SFTP connection.
func TestCheckUploadsSFTP(t *testing.T) {
	srv := sshtest.Start(t)
	dir := newRepo(t, InitOptions{})
	opt := send.Options{SSH: sshconn.Options{Identity: []string{srv.Identity}, KnownHosts: []string{srv.KnownHosts}, NoAgent: true}}
	testCheckUploads(t, dir, "sftp://"+srv.User+"@"+srv.Addr()+filepath.Join(dir, IncomingDir), opt)
}

// TestCheckUploadsElsewhere: a folder that is not a repository's incoming/ gets every file.
func TestCheckUploadsElsewhere(t *testing.T) {
	built := t.TempDir()
	app := buildDeb(t, built, "app", "1.0", "all")
	for _, dst := range []string{t.TempDir(), filepath.Join(t.TempDir(), IncomingDir)} {
		os.MkdirAll(dst, 0o755)
		if notes, err := sendChecked([]string{app}, dst, send.Options{}); err != nil || len(notes) != 0 {
			t.Fatalf("%s: %v %q", dst, err, notes)
		}
		if _, err := os.Stat(filepath.Join(dst, filepath.Base(app))); err != nil {
			t.Fatal(err)
		}
	}
}
