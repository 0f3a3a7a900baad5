package repo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upds/upds/stdlib/deb/control"
)

func TestInit(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{Suite: "prod", Architectures: []string{"amd64", "all"}, Origin: "acme"}})
	for p, mode := range map[string]os.FileMode{
		IncomingDir: os.ModeDir | 0o755, RejectedDir: os.ModeDir | 0o755, PublicDir: os.ModeDir | 0o755,
		PrivateDir: os.ModeDir | 0o700, KeyFile: 0o600, PublicKeyFile: 0o644,
		"public/dists/prod/InRelease": 0o644, "public/dists/prod/main/binary-amd64/Packages.gz": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), mode)
		}
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Suite != "prod" || cfg.Codename != "prod" || cfg.Origin != "acme" || cfg.Component != "main" || strings.Join(cfg.Architectures, " ") != "amd64 all" {
		t.Errorf("config: %+v", cfg)
	}
	key, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	pub, _ := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if !bytes.Contains(key, []byte("PGP PRIVATE KEY BLOCK")) || !bytes.Contains(pub, []byte("PGP PUBLIC KEY BLOCK")) || bytes.Contains(pub, []byte("PRIVATE")) {
		t.Error("key files do not hold the expected armored keys")
	}
	if err := Init(dir, InitOptions{}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("second Init: %v", err)
	}

	// Importing the key into another repository: same public key.
	dir2 := newRepo(t, InitOptions{ImportKey: key})
	pub2, _ := os.ReadFile(filepath.Join(dir2, PublicKeyFile))
	s1, _ := loadSigner(key)
	s2, _ := loadSigner(mustRead(t, filepath.Join(dir2, KeyFile)))
	if s1 == nil || s2 == nil || s1.key.KeyId != s2.key.KeyId || len(pub2) == 0 {
		t.Error("imported key differs")
	}
	if err := Init(filepath.Join(t.TempDir(), "r"), InitOptions{ImportKey: pub}); err == nil {
		t.Error("a public key was accepted as the signing key")
	}
	if err := Init(filepath.Join(t.TempDir(), "r"), InitOptions{Config: Config{Architectures: []string{"amd64", "../x"}}}); err == nil {
		t.Error("bad architecture accepted")
	}
	empty := t.TempDir()
	if _, err := Publish(t.Context(), empty, PublishOptions{}); !errors.Is(err, ErrNotRepository) || err.Error() != empty+" is not a repository (no repo.conf; run upds repo init)" {
		t.Errorf("Publish of a directory without repo.conf: %v", err)
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gpgv checks InRelease and Release.gpg with gpgv and the repository's key.asc.
func gpgv(t *testing.T, dir, suite string) {
	t.Helper()
	need(t, "gpg", "gpgv")
	ring := filepath.Join(t.TempDir(), "key.gpg")
	cmd := exec.Command("gpg", "--batch", "--yes", "--homedir", t.TempDir(), "--dearmor", "-o", ring, filepath.Join(dir, PublicKeyFile))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gpg --dearmor: %v: %s", err, out)
	}
	d := filepath.Join(dir, "public/dists", suite)
	for _, args := range [][]string{{filepath.Join(d, "InRelease")}, {filepath.Join(d, "Release.gpg"), filepath.Join(d, "Release")}} {
		cmd := exec.Command("gpgv", append([]string{"--keyring", ring}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Good signature") {
			t.Errorf("gpgv %s: %v: %s", args[0], err, out)
		}
	}
}

func TestPublishApt(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{ValidFor: 7 * 24 * time.Hour}})
	upload(t, dir, "hello", "1.9.0", "amd64", "Depends: libc6")
	upload(t, dir, "hello", "1.10.0", "amd64", "Depends: libc6", "X-Upds-Source: git abc123")
	upload(t, dir, "hello", "1.10.0", "arm64")
	upload(t, dir, "libfoo", "2.0", "all", "Source: foo-src (2.0-1)")
	// Epoch: one upload with %3a in the name, one with the epoch left out.
	p := upload(t, dir, "epochy", "1:2.0", "all")
	os.Rename(p, filepath.Join(dir, IncomingDir, "epochy_1%3a2.0_all.deb"))
	upload(t, dir, "epochless", "3:1.0", "amd64")
	// A partial upload must be left alone.
	os.WriteFile(filepath.Join(dir, IncomingDir, "partial_1.0_amd64.deb.tmp"), []byte("half"), 0o644)

	rep, err := Publish(t.Context(), dir, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Added) != 6 || len(rep.Rejected) != 0 || rep.Packages != 6 {
		t.Fatalf("report: %+v", rep)
	}
	for _, p := range []string{
		"pool/main/h/hello/hello_1.10.0_amd64.deb", "pool/main/h/hello/hello_1.9.0_amd64.deb",
		"pool/main/f/foo-src/libfoo_2.0_all.deb", "pool/main/e/epochy/epochy_2.0_all.deb",
		"pool/main/e/epochless/epochless_1.0_amd64.deb",
	} {
		if _, err := os.Stat(filepath.Join(dir, PublicDir, p)); err != nil {
			t.Errorf("pool: %v", err)
		}
	}
	if got, _ := os.ReadDir(filepath.Join(dir, IncomingDir)); len(got) != 1 || got[0].Name() != "partial_1.0_amd64.deb.tmp" {
		t.Errorf("incoming/ after publish: %v", got)
	}
	pk := checkPublished(t, dir)
	gpgv(t, dir, "stable")

	// apt, against the repository served by Handler.
	srv := serve(t, dir)
	a := newApt(t, srv.URL, filepath.Join(dir, PublicKeyFile), "stable")
	checkApt(t, a)
	checkReadIndex(t, dir, srv.URL)

	// Publishing again with nothing new changes no index (same by-hash files), only the date.
	before := mustRead(t, filepath.Join(dir, "public/dists/stable/main/binary-amd64/Packages.gz"))
	rep, err = Publish(t.Context(), dir, PublishOptions{})
	if err != nil || len(rep.Added) != 0 || rep.Packages != 6 {
		t.Fatalf("republish: %+v %v", rep, err)
	}
	if after := mustRead(t, filepath.Join(dir, "public/dists/stable/main/binary-amd64/Packages.gz")); !bytes.Equal(before, after) {
		t.Error("Packages.gz changed although nothing was uploaded")
	}
	a.must("apt-get", "update")

	// Losing the cache changes nothing but speed.
	os.Remove(filepath.Join(dir, cacheFile))
	os.Remove(filepath.Join(dir, stateFile))
	if rep, err = Publish(t.Context(), dir, PublishOptions{}); err != nil || rep.Packages != 6 {
		t.Fatalf("publish without cache: %+v %v", rep, err)
	}
	if after := mustRead(t, filepath.Join(dir, "public/dists/stable/main/binary-amd64/Packages")); string(after) != pk {
		t.Errorf("Packages differs after a rebuild from the pool:\n%s\n---\n%s", after, pk)
	}
	a.must("apt-get", "update")
}

// checkPublished checks TestPublishApt's amd64 Packages (arch all in every arch, fields
// kept) and Release, and returns the Packages text.
func checkPublished(t *testing.T, dir string) string {
	t.Helper()
	pk := string(mustRead(t, filepath.Join(dir, "public/dists/stable/main/binary-amd64/Packages")))
	ps, err := control.Parse(strings.NewReader(pk))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Get("Package")+"="+p.Get("Version"))
		for _, f := range []string{"Filename", "Size", "MD5sum", "SHA256", "Description", "Maintainer"} {
			if p.Get(f) == "" {
				t.Errorf("%s: no %s", p.Get("Package"), f)
			}
		}
		if p.Get("Package") == "hello" && p.Get("Version") == "1.10.0" && (p.Get("X-Upds-Source") != "git abc123" || p.Get("Depends") != "libc6") {
			t.Errorf("hello 1.10.0 stanza lost fields:\n%v", p)
		}
	}
	want := []string{"epochless=3:1.0", "epochy=1:2.0", "hello=1.9.0", "hello=1.10.0", "libfoo=2.0"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("amd64 Packages lists %v, want %v", names, want)
	}
	rel := string(mustRead(t, filepath.Join(dir, "public/dists/stable/Release")))
	for _, s := range []string{"Suite: stable", "Codename: stable", "Acquire-By-Hash: yes", "Valid-Until: ", "Architectures: amd64 arm64 all", "Components: main", " main/binary-arm64/Packages.gz\n", "SHA256:\n", "MD5Sum:\n"} {
		if !strings.Contains(rel, s) {
			t.Errorf("Release lacks %q:\n%s", s, rel)
		}
	}
	return pk
}

// checkApt checks that apt sees TestPublishApt's packages.
func checkApt(t *testing.T, a *apt) {
	t.Helper()
	a.must("apt-get", "update")
	pol := a.must("apt-cache", "policy", "hello")
	if !strings.Contains(pol, "Candidate: 1.10.0") {
		t.Errorf("apt-cache policy hello:\n%s", pol)
	}
	a.must("apt-get", "download", "hello", "libfoo", "epochy")
	for _, f := range []string{"hello_1.10.0_amd64.deb", "libfoo_2.0_all.deb", "epochy_1%3a2.0_all.deb"} {
		if _, err := os.Stat(filepath.Join(a.dir, "dl", f)); err != nil {
			t.Errorf("apt-get download: %v", err)
		}
	}
	show := a.must("apt-cache", "show", "hello=1.10.0")
	if !strings.Contains(show, "X-Upds-Source: git abc123") {
		t.Errorf("apt-cache show lacks the custom field:\n%s", show)
	}
}

// checkReadIndex checks that ReadIndex, over HTTP (url) and from the directory, agrees
// with apt, and refuses what it must: another key, no key, an expired Release.
func checkReadIndex(t *testing.T, dir, url string) {
	t.Helper()
	for _, src := range []string{url, dir} {
		ix, err := ReadIndex(context.Background(), src, IndexOptions{Key: mustRead(t, filepath.Join(dir, PublicKeyFile))})
		if err != nil {
			t.Fatalf("ReadIndex %s: %v", src, err)
		}
		if len(ix.Packages) != 6 {
			t.Errorf("ReadIndex %s: %d packages, want 6", src, len(ix.Packages))
		}
		n := ix.Newest("amd64")
		if n["hello"].Version != "1.10.0" || n["epochy"].Version != "1:2.0" || n["libfoo"].Fields.Get("Source") != "foo-src (2.0-1)" || len(n) != 4 {
			t.Errorf("ReadIndex %s: newest %v", src, slices.Collect(maps.Keys(n)))
		}
	}
	other := newRepo(t, InitOptions{})
	if _, err := ReadIndex(context.Background(), url, IndexOptions{Key: mustRead(t, filepath.Join(other, PublicKeyFile))}); !errors.Is(err, ErrVerify) {
		t.Errorf("ReadIndex of a Release signed by another key: %v", err)
	}
	if _, err := ReadIndex(context.Background(), url, IndexOptions{}); !errors.Is(err, ErrVerify) {
		t.Errorf("ReadIndex of a URL without a key: %v", err)
	}
	if _, err := ReadIndex(context.Background(), dir, IndexOptions{Now: time.Now().Add(8 * 24 * time.Hour)}); !errors.Is(err, ErrExpired) || errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("ReadIndex after Valid-Until: %v", err)
	}
}

func TestRejections(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{Architectures: []string{"amd64", "all"}}})
	inc := filepath.Join(dir, IncomingDir)
	upload(t, dir, "good", "1.0", "amd64")
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, dir)
	a := newApt(t, srv.URL, filepath.Join(dir, PublicKeyFile), "stable")
	a.must("apt-get", "update")

	os.WriteFile(filepath.Join(inc, "corrupt_1.0_amd64.deb"), []byte("!<arch>\nthis is not a deb"), 0o644)
	os.WriteFile(filepath.Join(inc, "notes.txt"), []byte("hello"), 0o644)
	// (data.tar paths and md5sums: TestVerifyLevels)
	craftDeb(t, filepath.Join(inc, "named_1.0_amd64.deb"), "Package: other\nVersion: 1.0\nArchitecture: amd64\nDescription: x\n",
		[]string{"./usr/x"})
	craftDeb(t, filepath.Join(inc, "wrong_1.0_s390x.deb"), "Package: wrong\nVersion: 1.0\nArchitecture: s390x\nDescription: x\n",
		[]string{"./usr/x"})
	craftDeb(t, filepath.Join(inc, "badver_1.0~~x!_amd64.deb"), "Package: badver\nVersion: 1.0~~x!\nArchitecture: amd64\nDescription: x\n",
		[]string{"./usr/x"})
	// Same name and version as the pool, different content.
	other := buildDeb(t, t.TempDir(), "good", "1.0", "amd64", "Depends: changed")
	os.Rename(other, filepath.Join(inc, "good_1.0_amd64.deb"))
	// Same content as the pool: dropped quietly.
	cp(t, filepath.Join(dir, "public/pool/main/g/good/good_1.0_amd64.deb"), filepath.Join(inc, "good_1.0_amd64.deb.again"))

	rep, err := Publish(t.Context(), dir, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, r := range rep.Rejected {
		reasons[r.File] = r.Reason
	}
	want := map[string]string{
		"corrupt_1.0_amd64.deb":    "not a valid .deb",
		"notes.txt":                "not a .deb",
		"named_1.0_amd64.deb":      "does not match",
		"wrong_1.0_s390x.deb":      "s390x",
		"badver_1.0~~x!_amd64.deb": "version",
		"good_1.0_amd64.deb":       "different content",
		"good_1.0_amd64.deb.again": "not a .deb",
	}
	for _, r := range rep.Rejected {
		t.Logf("rejected %s: %s", r.File, r.Reason)
	}
	for f, sub := range want {
		r, ok := reasons[f]
		if !ok || !strings.Contains(r, sub) {
			t.Errorf("%s: rejected with %q, want a reason containing %q", f, r, sub)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, RejectedDir, f+".reason"))
		if err != nil || strings.Count(string(data), "\n") != 1 || strings.TrimSpace(string(data)) != r {
			t.Errorf("%s.reason: %q %v", f, data, err)
		}
		if _, err := os.Stat(filepath.Join(dir, RejectedDir, f)); err != nil {
			t.Errorf("rejected upload not kept: %v", err)
		}
	}
	if len(rep.Rejected) != len(want) || rep.Packages != 1 {
		t.Errorf("report: %+v", rep)
	}
	if ents, _ := os.ReadDir(inc); len(ents) != 0 {
		t.Errorf("incoming/ not emptied: %v", ents)
	}
	a.must("apt-get", "update")
	gpgv(t, dir, "stable")

	// A second upload rejected under a name already in rejected/ keeps the first.
	os.WriteFile(filepath.Join(inc, "notes.txt"), []byte("again"), 0o644)
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"notes.txt": "hello", "notes.1.txt": "again"} {
		if got, _ := os.ReadFile(filepath.Join(dir, RejectedDir, f)); string(got) != want {
			t.Errorf("rejected/%s: %q, want %q", f, got, want)
		}
		if _, err := os.Stat(filepath.Join(dir, RejectedDir, f+".reason")); err != nil {
			t.Error(err)
		}
	}

	// The identical upload is dropped as unchanged.
	cp(t, filepath.Join(dir, "public/pool/main/g/good/good_1.0_amd64.deb"), filepath.Join(inc, "good_1.0_amd64.deb"))
	rep, err = Publish(t.Context(), dir, PublishOptions{})
	if err != nil || len(rep.Unchanged) != 1 || len(rep.Rejected) != 0 {
		t.Errorf("identical re-upload: %+v %v", rep, err)
	}
}

func cp(t testing.TB, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, mustRead(t, from), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKeepVersions(t *testing.T) {
	dir := newRepo(t, InitOptions{})
	for _, v := range []string{"1.0", "1.2", "1.10", "1.9", "2.0~rc1"} {
		upload(t, dir, "app", v, "amd64")
	}
	upload(t, dir, "app", "1.0", "arm64")
	upload(t, dir, "tool", "0.1", "all")
	rep, err := Publish(t.Context(), dir, PublishOptions{KeepVersions: 2})
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, r := range rep.Removed {
		removed = append(removed, filepath.Base(r))
	}
	slices.Sort(removed)
	if strings.Join(removed, " ") != "app_1.0_amd64.deb app_1.2_amd64.deb app_1.9_amd64.deb" {
		t.Errorf("removed %v", removed)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "public/pool/main/a/app"))
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != "app_1.0_arm64.deb app_1.10_amd64.deb app_2.0~rc1_amd64.deb" {
		t.Errorf("pool holds %v", left)
	}
	if rep.Packages != 4 {
		t.Errorf("%d packages indexed", rep.Packages)
	}
}

func TestHandler(t *testing.T) {
	dir := newRepo(t, InitOptions{})
	os.WriteFile(filepath.Join(dir, IncomingDir, "x.deb"), []byte("upload"), 0o644)
	os.Symlink(filepath.Join(dir, KeyFile), filepath.Join(dir, PublicDir, "leak.asc"))
	os.Symlink("../../../../../../../etc/passwd", filepath.Join(dir, PublicDir, "dists", "passwd"))
	srv := serve(t, dir)
	get := func(p string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.URL.Opaque = p // sent as is, unnormalised
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/key.asc"); code != 200 || !strings.Contains(body, "PUBLIC KEY") {
		t.Errorf("key.asc: %d", code)
	}
	if code, _ := get("/dists/stable/InRelease"); code != 200 {
		t.Errorf("InRelease: %d", code)
	}
	for _, p := range []string{"/../private/signing-key.asc", "/../repo.conf", "/%2e%2e/private/signing-key.asc",
		"/leak.asc", "/dists/", "/pool/", "/../incoming/x.deb", "/dists/stable/main/binary-amd64/.Packages.tmp"} {
		code, body := get(p)
		if code == 200 || strings.Contains(body, "PRIVATE") || strings.Contains(body, "upload") {
			t.Errorf("GET %s: %d %q", p, code, body)
		}
	}
	// A symlink out of public/ is not found (not a server error).
	for _, p := range []string{"/leak.asc", "/dists/passwd"} {
		if code, body := get(p); code != http.StatusNotFound {
			t.Errorf("GET %s: %d %q, want 404", p, code, body)
		}
	}
}

// TestServerClosesIdleConnections: an idle keep-alive connection is closed by the server
// after its idle timeout, so idle clients do not hold descriptors for good.
func TestServerClosesIdleConnections(t *testing.T) {
	dir := newRepo(t, InitOptions{})
	h, err := Handler(dir)
	if err != nil {
		t.Fatal(err)
	}
	if NewServer(h, 0).IdleTimeout != IdleTimeout {
		t.Errorf("default idle timeout %v", NewServer(h, 0).IdleTimeout)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, 300*time.Millisecond)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /key.asc HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("first request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("an idle keep-alive connection is still open after 10 s: %v", err)
	}
}

func TestWatch(t *testing.T) {
	dir := newRepo(t, InitOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var reports []*PublishReport
	done := make(chan error, 1)
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		done <- Watch(ctx, dir, WatchOptions{Interval: 50 * time.Millisecond}, func(r *PublishReport, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("watch publish: %v", err)
			}
			reports = append(reports, r)
		})
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	pk := filepath.Join(dir, "public/dists/stable/main/binary-amd64/Packages")
	// An upload in progress is not published.
	tmp := filepath.Join(dir, IncomingDir, "web_1.0_amd64.deb.tmp")
	src := buildDeb(t, t.TempDir(), "web", "1.0", "amd64")
	cp(t, src, tmp)
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	n := len(reports)
	mu.Unlock()
	if n != 0 {
		t.Fatalf("published while only a .tmp was in incoming/")
	}
	os.Rename(tmp, filepath.Join(dir, IncomingDir, "web_1.0_amd64.deb"))
	waitFor("web in Packages", func() bool { return bytes.Contains(mustRead(t, pk), []byte("Package: web\n")) })
	// A bad upload is rejected and the watch goes on.
	os.WriteFile(filepath.Join(dir, IncomingDir, "bad_1.0_amd64.deb"), []byte("junk"), 0o644)
	waitFor("bad rejected", func() bool {
		_, err := os.Stat(filepath.Join(dir, RejectedDir, "bad_1.0_amd64.deb.reason"))
		return err == nil
	})
	upload(t, dir, "web", "1.1", "amd64")
	waitFor("web 1.1 in Packages", func() bool { return bytes.Contains(mustRead(t, pk), []byte("Version: 1.1\n")) })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v", err)
		}
		done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not stop on cancel")
	}
}

func TestVerifyInRelease(t *testing.T) {
	dir := newRepo(t, InitOptions{})
	in := mustRead(t, filepath.Join(dir, "public/dists/stable/InRelease"))
	key := mustRead(t, filepath.Join(dir, PublicKeyFile))
	text, err := VerifyInRelease(in, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(text, mustRead(t, filepath.Join(dir, "public/dists/stable/Release"))) {
		t.Errorf("signed text differs from Release:\n%s", text)
	}
	if err := VerifyDetached(mustRead(t, filepath.Join(dir, "public/dists/stable/Release")), mustRead(t, filepath.Join(dir, "public/dists/stable/Release.gpg")), key); err != nil {
		t.Error(err)
	}
	tampered := bytes.Replace(in, []byte("Suite: stable"), []byte("Suite: stab1e"), 1)
	if _, err := VerifyInRelease(tampered, key); !errors.Is(err, ErrVerify) {
		t.Errorf("tampered InRelease: %v", err)
	}
	other := newRepo(t, InitOptions{})
	if _, err := VerifyInRelease(in, mustRead(t, filepath.Join(other, PublicKeyFile))); !errors.Is(err, ErrVerify) {
		t.Errorf("InRelease with another repository's key: %v", err)
	}
	if _, err := VerifyInRelease([]byte("Origin: x\n"), key); !errors.Is(err, ErrVerify) {
		t.Errorf("unsigned text: %v", err)
	}
	if err := VerifyDetached([]byte("Origin: x\n"), mustRead(t, filepath.Join(dir, "public/dists/stable/Release.gpg")), key); !errors.Is(err, ErrVerify) {
		t.Errorf("Release.gpg of other text: %v", err)
	}
}

// TestWatchRefreshesValidUntil: with Valid-For, watch re-signs Release before it expires.
func TestWatchRefreshesValidUntil(t *testing.T) {
	dir := newRepo(t, InitOptions{Config: Config{ValidFor: 2 * time.Second}})
	rel := filepath.Join(dir, "public/dists/stable/Release")
	before := string(mustRead(t, rel))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, dir, WatchOptions{Interval: 50 * time.Millisecond}, nil) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(6 * time.Second); string(mustRead(t, rel)) == before; {
		if time.Now().After(deadline) {
			t.Fatal("Release was not re-signed within its validity")
		}
		time.Sleep(50 * time.Millisecond)
	}
	gpgv(t, dir, "stable")
}
