package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSendPublishAndRepoCommands(t *testing.T) {
	need(t, "gpg", "gpgv", "dpkg-deb")
	dir := project(t, map[string]string{
		"BUILD.star": `
project(name = "upds-cli-pub", maintainer = "Ops <ops@example.com>")
p = deb("upds-cli-pub", contents = [file("a.txt", "/usr/share/upds-cli-pub/a.txt")], description = "test package\nfor publish")
REPO = "../repo"
task("build", deps = [p])
task("send", deps = ["build"], run = lambda ctx: send(ctx.outputs, REPO + "/incoming"))
task("publish", deps = ["build"], run = lambda ctx: publish(ctx.outputs, REPO))
task("publish-bad", run = lambda ctx: publish(["a.txt"], REPO))
`,
		"VERSION": "1.9.0\n",
		"a.txt":   "a\n",
	})
	repoDir := filepath.Join(filepath.Dir(dir), "repo")
	r := upds(t, dir, "repo", "init", "--url", "http://127.0.0.1:9/", repoDir)
	if r.code != 0 {
		t.Fatalf("repo init: exit %d\n%s", r.code, r.stderr)
	}
	if r := upds(t, dir, "repo", "init", repoDir); r.code == 0 {
		t.Fatal("repo init over an existing repository succeeded")
	}
	if b, err := os.ReadFile(filepath.Join(repoDir, "public", "setup.sh")); err != nil || !strings.Contains(string(b), "UPDS_URL='http://127.0.0.1:9/'") {
		t.Fatalf("setup.sh after repo init --url: %v\n%s", err, b)
	}
	if r := upds(t, dir, "repo", "init", "--url", "ftp:/x", filepath.Join(t.TempDir(), "r")); r.code != 2 {
		t.Fatalf("repo init with a bad --url: exit %d", r.code)
	}
	if st, err := os.Stat(filepath.Join(repoDir, "private")); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("private/: %v %v", st, err)
	}

	// send() to the incoming folder, then upds repo publish.
	if r := upds(t, dir, "run", "send"); r.code != 0 || !strings.Contains(r.stdout, "[send] sent upds-cli-pub_1.9.0_amd64.deb to ../repo/incoming") {
		t.Fatalf("send: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = upds(t, dir, "repo", "publish", repoDir)
	if r.code != 0 || !strings.Contains(r.stdout, "added     pool/main/u/upds-cli-pub/upds-cli-pub_1.9.0_amd64.deb") {
		t.Fatalf("publish: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// publish() in a run function, after a bump: 1.10.0 joins 1.9.0.
	if r := upds(t, dir, "bump", "minor"); r.stdout != "1.10.0\n" {
		t.Fatalf("bump: %q", r.stdout)
	}
	if r := upds(t, dir, "run", "publish"); r.code != 0 || !strings.Contains(r.stdout, "published 1 new") {
		t.Fatalf("publish(): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pk, err := os.ReadFile(filepath.Join(repoDir, "public/dists/stable/main/binary-amd64/Packages"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"Version: 1.9.0", "Version: 1.10.0"} {
		if !strings.Contains(string(pk), v) {
			t.Errorf("Packages lacks %s:\n%s", v, pk)
		}
	}
	// The signature verifies with the published key.
	pub := filepath.Join(repoDir, "public")
	kr := filepath.Join(t.TempDir(), "keyring.gpg")
	sh(t, pub, "gpg --dearmor < key.asc > "+kr)
	sh(t, pub, "gpgv --keyring "+kr+" dists/stable/InRelease")
	sh(t, pub, "gpgv --keyring "+kr+" dists/stable/Release.gpg dists/stable/Release")

	// A bad upload fails the task, names the file and the reason, is not copied into
	// incoming/, and leaves the published packages as they were (the indexes stay valid:
	// gpgv still verifies them).
	r = upds(t, dir, "run", "publish-bad")
	if r.code != 1 || !strings.Contains(r.stderr, "publish: a.txt is not a Debian package") {
		t.Fatalf("publish of a non-deb: exit %d\n%s", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(repoDir, "public/dists/stable/main/binary-amd64/Packages")); string(after) != string(pk) {
		t.Fatalf("a refused upload changed Packages:\n%s", after)
	}
	sh(t, pub, "gpgv --keyring "+kr+" dists/stable/InRelease")
	if left, _ := os.ReadDir(filepath.Join(repoDir, "incoming")); len(left) != 0 {
		t.Fatalf("a refused upload left %d files in incoming/", len(left))
	}
}
