package repo

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestWithSetupScript(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	if err := Init(dir, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if u, err := PublicURL(dir); err != nil || u != "" {
		t.Errorf("PublicURL without URL field = %q, %v", u, err)
	}
	conf := filepath.Join(dir, ConfigFile)
	orig, _ := os.ReadFile(conf)
	os.WriteFile(conf, append(append([]byte{}, orig...), "URL: https://apt.example.com/\n"...), 0o644)
	if u, err := PublicURL(dir); err != nil || u != "https://apt.example.com/" {
		t.Errorf("PublicURL = %q, %v", u, err)
	}
	opt, err := WithSetupScript(dir, PublishOptions{ExtraFiles: map[string][]byte{"robots.txt": []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(t.Context(), dir, opt); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, PublicDir, SetupScriptFile))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, PublicKeyFile))
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

	os.WriteFile(conf, append(append([]byte{}, orig...), "URL: http://x/$(reboot)\n"...), 0o644)
	if _, err := WithSetupScript(dir, PublishOptions{}); err == nil || !strings.Contains(err.Error(), "URL") {
		t.Errorf("bad URL in repo.conf: %v", err)
	}
}
