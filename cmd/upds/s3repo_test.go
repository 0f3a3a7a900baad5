package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upds/upds/interp/storage/s3test"
	"github.com/upds/upds/stdlib/setup"
	"github.com/upds/upds/stdlib/sshconn/sshtest"
)

// TestServersFromBucket: the repository on S3 (SeaweedFS on 127.0.0.1) end to end with the
// commands: upds repo init --storage, publish() and upds repo publish into the bucket; then
// upds setup, audit (by the bucket's URL, and by the repository directory), deploy over SSH
// and setup.sh all read the bucket's HTTP address, as apt does.
func TestServersFromBucket(t *testing.T) {
	need(t, "apt-get", "dpkg", "dpkg-query", "curl", "gpg")
	if os.Geteuid() != 0 {
		t.Fatal("installs packages with dpkg and apt-get: run the tests as root, as .ci/run does")
	}
	start := time.Now()
	srv := s3test.Shared(t)
	srv.Setenv(t)
	t.Cleanup(func() { exec.Command("dpkg", "-P", serversRole, serversApp).Run() })
	s := &serversRun{t: t, name: fmt.Sprintf("upds-s3-test-%d", os.Getpid())}
	s.keyFile, s.srcFile = "/etc/apt/keyrings/"+s.name+".asc", "/etc/apt/sources.list.d/"+s.name+".sources"
	prefix := "servers-" + fmt.Sprint(os.Getpid())
	loc := "s3://" + s3test.Bucket + "/" + prefix
	s.proj = project(t, map[string]string{
		"BUILD.star": serversBuild + "REPO = \"../repo\"\ntask(\"publish\", deps = [app, role], run = lambda ctx: publish(ctx.outputs, REPO))\n",
		"VERSION":    "1.9.0\n", "src/hello.txt": "hello\n",
	})
	dir := filepath.Join(filepath.Dir(s.proj), "repo")
	s.rp = &serverRepo{dir: dir, url: srv.URL(prefix) + "/", key: filepath.Join(dir, "key.asc")}
	cleanupBucketSource(t, s.name, s.rp.url)
	r := upds(t, s.proj, "repo", "init", "--storage", loc, dir)
	if r.code != 0 || !strings.Contains(r.stdout, "published to "+loc) || !strings.Contains(r.stdout, "apt reads      "+srv.URL(prefix)) {
		t.Fatalf("repo init --storage: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "public")); err == nil {
		t.Error("repo init --storage made public/")
	}
	// Uploads from a bucket into a repository on disk: init says where they go.
	inDir := filepath.Join(t.TempDir(), "repo")
	if r := upds(t, s.proj, "repo", "init", "--incoming", loc+"-in", inDir); r.code != 0 || !strings.Contains(r.stdout, "uploads go to  "+loc+"-in/\n") {
		t.Errorf("repo init --incoming: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The second publish() finds both packages in the bucket's index: nothing is sent.
	for _, want := range []string{"published 2 new", "published 0 new, 2 unchanged"} {
		if r := upds(t, s.proj, "run", "publish"); r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("upds run publish: exit %d, want %q\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "incoming")); len(ents) != 0 {
		t.Errorf("incoming/ after publish(): %v", ents)
	}
	if r := upds(t, s.proj, "repo", "serve", dir); r.code == 0 || !strings.Contains(r.stderr, loc) {
		t.Errorf("repo serve of a repository in a bucket: exit %d\n%s", r.code, r.stderr)
	}
	s.setupLocal()
	sshd := sshtest.Start(t)
	s.sshArgs = []string{"--identity", sshd.Identity, "--known-hosts", sshd.KnownHosts}
	s.host = sshd.User + "@" + sshd.Addr()
	s.auditCurrent()
	if r := upds(t, s.proj, "audit", "--repo", dir); r.code != 0 || !strings.Contains(r.stdout, "2 current") {
		t.Errorf("audit --repo DIR (read from the bucket): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	s.deployUpgrade()
	// deploy names the key and source after the URL (and replaced those of setup --name).
	deployed := "/etc/apt/sources.list.d/" + setup.DefaultName(s.rp.url, "upds") + ".sources"
	if src := sh(t, s.proj, "cat "+deployed); !strings.Contains(src, "URIs: "+s.rp.url+"\n") {
		t.Errorf("%s:\n%s", deployed, src)
	}
	sh(t, s.proj, "dpkg -P "+serversRole+" "+serversApp+" && rm -f "+s.keyFile+" "+s.srcFile+" "+deployed+" /etc/apt/keyrings/"+setup.DefaultName(s.rp.url, "upds")+".asc")
	s.setupScript()
	t.Logf("repository on S3 end to end: %s", time.Since(start).Round(time.Millisecond))
}

// deployUpgrade publishes 1.10.0 into the bucket with upds repo publish and deploys it over
// SSH: the server upgrades and ends current.
func (s *serversRun) deployUpgrade() {
	t := s.t
	s.publish110()
	args := append([]string{"deploy", "--repo", s.rp.url, "--key", s.rp.key, "--host", s.host}, s.sshArgs...)
	r := upds(t, s.proj, args...)
	if r.code != 0 || !strings.Contains(r.stdout, "upgraded") {
		t.Fatalf("deploy from the bucket: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, pkg := range []string{serversApp, serversRole} {
		if v := installed(t, pkg); v != "1.10.0" {
			t.Errorf("after deploy: %s %q installed, want 1.10.0", pkg, v)
		}
	}
}

// cleanupBucketSource removes what a setup named name leaves behind, and the lists apt
// fetched from url (apt names them after the URL's host and path).
func cleanupBucketSource(t *testing.T, name, url string) {
	t.Cleanup(func() {
		for _, n := range []string{name, name + "-sh", setup.DefaultName(url, "upds")} {
			os.Remove("/etc/apt/keyrings/" + n + ".asc")
			os.Remove("/etc/apt/sources.list.d/" + n + ".sources")
		}
		site := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), "/", "_")
		lists, _ := filepath.Glob("/var/lib/apt/lists/" + site + "_*")
		for _, l := range lists {
			os.Remove(l)
		}
	})
}
