package repo

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetupScript: every publish writes public/setup.sh from repo.conf (its URL included)
// and the public key; Init's publish already does.
func TestSetupScript(t *testing.T) {
	dir := newRepo(t, InitOptions{})
	if cfg, err := ReadConfig(dir); err != nil || cfg.URL != "" {
		t.Errorf("ReadConfig without URL field: %+v, %v", cfg, err)
	}
	if _, err := os.Stat(filepath.Join(dir, PublicDir, SetupScriptFile)); err != nil {
		t.Errorf("no setup.sh after Init: %v", err)
	}

	dir = newRepo(t, InitOptions{Config: Config{URL: "https://apt.example.com/"}})
	conf := filepath.Join(dir, ConfigFile)
	orig := mustRead(t, conf)
	if !bytes.HasSuffix(orig, []byte("\nURL: https://apt.example.com/\n")) {
		t.Errorf("repo.conf does not end with the URL:\n%s", orig)
	}
	if cfg, err := ReadConfig(dir); err != nil || cfg.URL != "https://apt.example.com/" {
		t.Errorf("ReadConfig: URL %q, %v", cfg.URL, err)
	}
	os.Remove(filepath.Join(dir, PublicDir, SetupScriptFile))
	if _, err := Publish(t.Context(), dir, PublishOptions{ExtraFiles: map[string][]byte{"robots.txt": []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	got := mustRead(t, filepath.Join(dir, PublicDir, SetupScriptFile))
	key := mustRead(t, filepath.Join(dir, PublicKeyFile))
	for _, want := range [][]byte{[]byte("UPDS_URL='https://apt.example.com/'"), []byte("UPDS_NAME='apt.example.com'"), bytes.TrimSpace(key)} {
		if !bytes.Contains(got, want) {
			t.Errorf("setup.sh lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, PublicDir, "robots.txt")); err != nil {
		t.Errorf("other extra files dropped: %v", err)
	}
	if out, err := exec.Command("sh", "-n", filepath.Join(dir, PublicDir, SetupScriptFile)).CombinedOutput(); err != nil {
		t.Errorf("sh -n setup.sh: %v\n%s", err, out)
	}
	// An unchanged setup.sh is left in place; one changed by hand (content or mode) is rewritten.
	before, _ := os.Stat(filepath.Join(dir, PublicDir, SetupScriptFile))
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(filepath.Join(dir, PublicDir, SetupScriptFile)); !os.SameFile(before, after) {
		t.Error("an unchanged setup.sh was rewritten")
	}
	os.Chmod(filepath.Join(dir, PublicDir, SetupScriptFile), 0o600)
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, PublicDir, SetupScriptFile)); fi.Mode().Perm() != 0o644 {
		t.Errorf("setup.sh mode %v after a publish, want 0644", fi.Mode().Perm())
	}

	os.WriteFile(conf, bytes.Replace(orig, []byte("URL: https://apt.example.com/"), []byte("URL: http://x/$(reboot)"), 1), 0o644)
	if _, err := Publish(t.Context(), dir, PublishOptions{}); err == nil || !strings.Contains(err.Error(), "repo.conf: URL: ") {
		t.Errorf("publish with a bad URL in repo.conf: %v", err)
	}
	if err := Init(filepath.Join(t.TempDir(), "r"), InitOptions{Config: Config{URL: "ftp://x/"}}); err == nil || !strings.Contains(err.Error(), "URL") {
		t.Errorf("Init with a bad URL: %v", err)
	}
}
