package send_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/upds/upds/stdlib/send"
	"github.com/upds/upds/stdlib/sshconn"
	"github.com/upds/upds/stdlib/sshconn/sshtest"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want send.Target
		err  bool
	}{
		{"sftp://deploy@repo.example.com/srv/repo/incoming", send.Target{SSH: sshconn.Target{User: "deploy", Host: "repo.example.com"}, Dir: "/srv/repo/incoming"}, false},
		{"sftp://deploy@repo:2222/~/incoming/", send.Target{SSH: sshconn.Target{User: "deploy", Host: "repo", Port: 2222}, Dir: "incoming"}, false},
		{"sftp://repo", send.Target{SSH: sshconn.Target{Host: "repo"}, Dir: "."}, false},
		{"file:///srv/repo/incoming", send.Target{Dir: "/srv/repo/incoming", Local: true}, false},
		{"/srv/repo/incoming/", send.Target{Dir: "/srv/repo/incoming", Local: true}, false},
		{"incoming", send.Target{Dir: "incoming", Local: true}, false},
		{"sftp://u:secret@h/x", send.Target{}, true},
		{"scp://h/x", send.Target{}, true},
		{"file://otherhost/x", send.Target{}, true},
		{"", send.Target{}, true},
	}
	for _, tc := range tests {
		got, err := send.ParseTarget(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v, err %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// makeFiles writes files of the given sizes with random content.
func makeFiles(t *testing.T, sizes map[string]int) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for name, size := range sizes {
		b := make([]byte, size)
		rand.Read(b)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// sameFiles checks that dir holds exactly the given files with the same content.
func sameFiles(t *testing.T, dir string, files []string) {
	t.Helper()
	var want []string
	for _, f := range files {
		want = append(want, filepath.Base(f))
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(dir, filepath.Base(f)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: content differs (%v)", filepath.Base(f), err)
		}
	}
	sort.Strings(want)
	if got := listDir(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}

// pipeClient starts OpenSSH's sftp-server and talks to it over pipes.
func pipeClient(t *testing.T, args ...string) *sftp.Client {
	t.Helper()
	c, _ := pipeServer(t, args...)
	return c
}

// pipeServer is pipeClient with the sftp-server process.
func pipeServer(t *testing.T, args ...string) (*sftp.Client, *exec.Cmd) {
	t.Helper()
	if _, err := os.Stat(sshtest.SFTPServer); err != nil {
		t.Fatalf("sftp-server is not installed (%s): run .ci/install-deps (openssh-sftp-server)", sshtest.SFTPServer)
	}
	cmd := exec.Command(sshtest.SFTPServer, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := sftp.NewClientPipe(out, in, sftp.UseConcurrentWrites(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); cmd.Wait() })
	return c, cmd
}

// A destination is either an sftp-server pipe or a local directory; both must behave the same.
type sender func(ctx context.Context, files []string, dir string, opt send.Options) error

func destinations(t *testing.T) map[string]sender {
	return map[string]sender{
		"sftp-server": func(ctx context.Context, files []string, dir string, opt send.Options) error {
			return send.SendSFTP(ctx, pipeClient(t), files, dir, opt)
		},
		"local": func(ctx context.Context, files []string, dir string, opt send.Options) error {
			return send.Send(ctx, files, dir, opt)
		},
		"file URL": func(ctx context.Context, files []string, dir string, opt send.Options) error {
			return send.Send(ctx, files, "file://"+dir, opt)
		},
	}
}

func TestSend(t *testing.T) {
	for name, do := range destinations(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dst := t.TempDir()
			files := makeFiles(t, map[string]int{"a_1.0_all.deb": 1000, "b_1.0_amd64.deb": 300 << 10, "c_1.0_amd64.deb": 0, "d.deb": 70000, "e.deb": 5})
			var calls atomic.Int64
			if err := do(ctx, files, dst, send.Options{Concurrency: 2, Progress: func(string, int64, int64) { calls.Add(1) }}); err != nil {
				t.Fatal(err)
			}
			sameFiles(t, dst, files)
			if calls.Load() == 0 {
				t.Error("progress was never called")
			}
			// Re-upload over existing files with new content: replaced.
			for _, f := range files[:2] {
				os.WriteFile(f, []byte("new content of "+f), 0o644)
			}
			if err := do(ctx, files[:2], dst, send.Options{}); err != nil {
				t.Fatal(err)
			}
			sameFiles(t, dst, files)
		})
	}
}

func TestSendFailureLeavesNothing(t *testing.T) {
	for name, do := range destinations(t) {
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			files := makeFiles(t, map[string]int{"big_1.0_amd64.deb": 8 << 20, "small_1.0_all.deb": 100})

			// Cancel in the middle of the big file.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var cancelled atomic.Bool
			progress := func(file string, sent, total int64) {
				if strings.Contains(file, "big") && sent > 1<<20 && !cancelled.Swap(true) {
					cancel()
				}
			}
			err := do(ctx, files, dst, send.Options{Progress: progress})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled upload returned %v, want context.Canceled", err)
			}
			if got := listDir(t, dst); len(got) != 0 {
				t.Errorf("cancelled upload left %v", got)
			}

			// One missing file: nothing of the batch is published.
			err = do(context.Background(), append(files, filepath.Join(t.TempDir(), "missing.deb")), dst, send.Options{})
			if err == nil || !strings.Contains(err.Error(), "missing.deb") {
				t.Fatalf("missing file: %v", err)
			}
			if got := listDir(t, dst); len(got) != 0 {
				t.Errorf("failed batch left %v", got)
			}
		})
	}
}

// TestSendLostConnection: when the connection is lost in the middle of an upload, the
// cleanup fails too; the error's first line names the upload that failed, the cleanup comes
// after it.
func TestSendLostConnection(t *testing.T) {
	c, srv := pipeServer(t)
	files := makeFiles(t, map[string]int{"a_1.0_all.deb": 100, "big_1.0_amd64.deb": 8 << 20})
	var killed atomic.Bool
	progress := func(file string, sent, total int64) {
		if strings.Contains(file, "big") && sent > 1<<20 && !killed.Swap(true) {
			srv.Process.Kill()
		}
	}
	err := send.SendSFTP(context.Background(), c, files, t.TempDir(), send.Options{Concurrency: 1, Progress: progress})
	if err == nil {
		t.Fatal("an upload over a lost connection succeeded")
	}
	lines := strings.Split(err.Error(), "\n")
	if !strings.HasPrefix(lines[0], "send ") || !strings.Contains(lines[0], "big_1.0_amd64.deb") {
		t.Errorf("first line %q does not name the failed upload:\n%v", lines[0], err)
	}
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-1], "remove ") {
		t.Errorf("the failed cleanup is not reported after the cause:\n%v", err)
	}
}

func TestSendRejectsBadInput(t *testing.T) {
	dst := t.TempDir()
	a := makeFiles(t, map[string]int{"x.deb": 1})
	b := makeFiles(t, map[string]int{"x.deb": 2})
	if err := send.Send(context.Background(), append(a, b...), dst, send.Options{}); err == nil {
		t.Error("two files with the same name were accepted")
	}
	c := makeFiles(t, map[string]int{"x.deb.tmp": 1})
	if err := send.Send(context.Background(), c, dst, send.Options{}); err == nil {
		t.Error("a file named *.tmp was accepted")
	}
	if err := send.Send(context.Background(), a, filepath.Join(dst, "nope"), send.Options{}); err == nil {
		t.Error("a missing directory was accepted")
	}
	if got := listDir(t, dst); len(got) != 0 {
		t.Errorf("rejected sends left %v", got)
	}
}

func TestSendSSHD(t *testing.T) {
	srv := sshtest.Start(t)
	dst := t.TempDir()
	to := "sftp://" + srv.User + "@" + srv.Addr() + dst
	files := makeFiles(t, map[string]int{"app_1.0_amd64.deb": 3 << 20, "app-config-prod_1.0_all.deb": 2000})
	ctx := context.Background()
	opt := send.Options{SSH: sshconn.Options{Identity: []string{srv.Identity}, KnownHosts: []string{srv.KnownHosts}, NoAgent: true}}

	// Unknown and changed host keys: refused, nothing uploaded.
	other, err := sshtest.WriteKey(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	kh := t.TempDir()
	unknown := filepath.Join(kh, "unknown")
	changed := filepath.Join(kh, "changed")
	os.WriteFile(unknown, nil, 0o600)
	os.WriteFile(changed, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, other)+"\n"), 0o600)
	for _, f := range []string{unknown, changed} {
		o := opt
		o.SSH.KnownHosts = []string{f}
		err := send.Send(ctx, files, to, o)
		var he *sshconn.HostKeyError
		if !errors.As(err, &he) || he.Changed != (f == changed) {
			t.Errorf("%s known_hosts: got %v", filepath.Base(f), err)
		}
		if got := listDir(t, dst); len(got) != 0 {
			t.Errorf("refused host got files %v", got)
		}
	}

	// Known host: uploaded.
	if err := send.Send(ctx, files, to, opt); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dst, files)

	// Re-upload with new content over the existing files (posix-rename replaces them).
	os.WriteFile(files[0], bytes.Repeat([]byte("v2"), 1<<20), 0o644)
	if err := send.Send(ctx, files, to, opt); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dst, files)

	// Interrupted upload of a multi-MB file: no final file, no .tmp.
	big := makeFiles(t, map[string]int{"big_2.0_amd64.deb": 16 << 20})
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o := opt
	o.Progress = func(_ string, sent, _ int64) {
		if sent > 2<<20 {
			cancel()
		}
	}
	if err := send.Send(cctx, big, to, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted upload returned %v", err)
	}
	sameFiles(t, dst, files) // only the earlier files: no big_2.0 and no .tmp
}
