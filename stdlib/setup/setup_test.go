package setup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// testKey returns a new armored ed25519 public key and its fingerprint.
func testKey(t *testing.T) ([]byte, string) {
	t.Helper()
	e, err := openpgp.NewEntity("test repo", "", "repo@localhost", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	b.WriteByte('\n')
	return b.Bytes(), fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
}

// TestDefaultName: the Go function and setup.sh's default_name give the same names.
func TestDefaultName(t *testing.T) {
	key, _ := testKey(t)
	dir := t.TempDir()
	scripts := map[string]string{}
	for _, c := range []struct{ url, origin, want string }{
		{"https://apt.example.com/", "upds", "apt.example.com"},
		{"https://APT.Example.COM", "", "apt.example.com"},
		{"https://apt.example.com/hello/", "upds", "apt.example.com-hello"},
		{"https://apt.example.com:8443/a_b/c/", "x", "apt.example.com-a-b-c"},
		{"http://127.0.0.1:8080/", "upds", "upds"},
		{"http://127.0.0.1:8080/", "Hello Repo", "hello-repo"},
		{"http://127.0.0.1:8080/", "", "upds"},
		{"http://10.0.0.5/apt/", "Team.", "team-apt"},
		{"http://localhost:8080/", "hello", "hello"},
		{"http://[::1]:8080/repo", "hello", "hello-repo"},
		{"http://[::1]/", "--", "upds"},
		{"http://1234/", "o", "o"},
	} {
		if got := DefaultName(c.url, c.origin); got != c.want {
			t.Errorf("DefaultName(%q, %q) = %q, want %q", c.url, c.origin, got, c.want)
		}
		p, ok := scripts[c.origin]
		if !ok {
			script, err := Script(Source{Origin: c.origin, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			p = filepath.Join(dir, fmt.Sprintf("setup-%d.sh", len(scripts)))
			os.WriteFile(p, script, 0o644)
			scripts[c.origin] = p
		}
		out, err := exec.Command("sh", p, "--print-name", "--repo", c.url).CombinedOutput()
		if err != nil || string(out) != c.want+"\n" {
			t.Errorf("setup.sh --print-name --repo %s (origin %q): %v %q, want %q", c.url, c.origin, err, out, c.want)
		}
	}
	// The name given, and the one of the URL the script carries.
	script, _ := Script(Source{URL: "http://127.0.0.1:8080/", Origin: "hello", Key: key})
	p := filepath.Join(dir, "baked.sh")
	os.WriteFile(p, script, 0o644)
	for args, want := range map[string]string{"": "hello", "--name x": "x", "--repo https://apt.example.com/": "apt.example.com"} {
		out, err := exec.Command("sh", append([]string{p, "--print-name"}, strings.Fields(args)...)...).CombinedOutput()
		if err != nil || string(out) != want+"\n" {
			t.Errorf("setup.sh --print-name %s: %v %q, want %q", args, err, out, want)
		}
	}
}

// TestSourcesAwk: other sources of the repository's URL are taken out of apt's files,
// in both formats; the rest of each file stays as it was.
func TestSourcesAwk(t *testing.T) {
	const url = "http://127.0.0.1:8080/"
	for _, c := range []struct {
		name, fmt, in, want, side string
	}{
		{"deb822 alone", "deb822", "# written by upds setup\nTypes: deb\nURIs: http://127.0.0.1:8080\nSuites: stable\nComponents: main\nSigned-By: /etc/apt/keyrings/127.0.0.1.asc\n",
			"", "key /etc/apt/keyrings/127.0.0.1.asc\nremoved 1\n"},
		{"deb822 among others", "deb822", "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\n" +
			"Types: deb\nURIs:\n http://127.0.0.1:8080/\n http://mirror.example.com/\nSuites: stable\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n -----END PGP PUBLIC KEY BLOCK-----\n\n" +
			"Enabled: no\nTypes: deb\nURIs: http://127.0.0.1:8080/\nSuites: old\nComponents: main\n",
			"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\n" +
				"Types: deb\nURIs: http://mirror.example.com/\nSuites: stable\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n -----END PGP PUBLIC KEY BLOCK-----\n\n" +
				"Enabled: no\nTypes: deb\nURIs: http://127.0.0.1:8080/\nSuites: old\nComponents: main\n",
			"removed 1\n"},
		{"one-line", "line", "deb http://deb.debian.org/debian bookworm main\n" +
			"deb [arch=amd64 signed-by=/etc/apt/keyrings/old.gpg] http://127.0.0.1:8080/ stable main\n" +
			"deb [signed-by=/usr/share/keyrings/x.gpg] http://127.0.0.1:8080 stable main\n# deb http://127.0.0.1:8080/ stable main\n",
			"deb http://deb.debian.org/debian bookworm main\n" +
				"# disabled by upds setup (/etc/apt/sources.list.d/upds.sources is the source of this repository): deb [arch=amd64 signed-by=/etc/apt/keyrings/old.gpg] http://127.0.0.1:8080/ stable main\n" +
				"# disabled by upds setup (/etc/apt/sources.list.d/upds.sources is the source of this repository): deb [signed-by=/usr/share/keyrings/x.gpg] http://127.0.0.1:8080 stable main\n" +
				"# deb http://127.0.0.1:8080/ stable main\n",
			"key /etc/apt/keyrings/old.gpg\nkey /usr/share/keyrings/x.gpg\nremoved 2\n"},
		{"other URL only", "line", "deb http://127.0.0.1:8080/other stable main\n", "deb http://127.0.0.1:8080/other stable main\n", "removed 0\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in, side := filepath.Join(dir, "in"), filepath.Join(dir, "side")
			os.WriteFile(in, []byte(c.in), 0o644)
			cmd := exec.Command("awk", "-v", "url="+strings.TrimSuffix(url, "/"), "-v", "fmt="+c.fmt, "-v", "side="+side,
				"-v", "name=/etc/apt/sources.list.d/upds.sources", sourcesAwk, in)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != c.want {
				t.Errorf("got\n%s\nwant\n%s", out, c.want)
			}
			if got, _ := os.ReadFile(side); string(got) != c.side {
				t.Errorf("side file %q, want %q", got, c.side)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	key, _ := testKey(t)
	for _, c := range []struct {
		name string
		s    Source
		want string
	}{
		{"ftp", Source{URL: "ftp://x/", Key: key}, "want http"},
		{"quote", Source{URL: "http://x/'a", Key: key}, "not allowed"},
		{"space", Source{URL: "http://x/a b", Key: key}, "not allowed"},
		{"userinfo", Source{URL: "http://u:p@x/", Key: key}, "user info"},
		{"name", Source{URL: "http://x/", Name: "../etc", Key: key}, "name"},
		{"suite", Source{URL: "http://x/", Suite: "a b", Key: key}, "suite"},
		{"nokey", Source{URL: "http://x/"}, "no repository key"},
		{"notakey", Source{URL: "http://x/", Key: []byte("hello")}, "not an armored"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Script(c.s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Script: %v, want an error with %q", err, c.want)
			}
		})
	}
	if err := ValidRole("-rf"); err == nil {
		t.Error("ValidRole(-rf) accepted")
	}
}

func TestSourcesFile(t *testing.T) {
	key, _ := testKey(t)
	got, err := Source{URL: "https://apt.example.com/repo", Key: key}.SourcesFile()
	if err != nil {
		t.Fatal(err)
	}
	want := "# written by upds setup\nTypes: deb\nURIs: https://apt.example.com/repo\nSuites: stable\nComponents: main\nSigned-By: /etc/apt/keyrings/apt.example.com-repo.asc\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestScriptLint checks the generated script with sh -n, dash -n and shellcheck.
func TestScriptLint(t *testing.T) {
	key, fpr := testKey(t)
	for _, u := range []string{"https://apt.example.com/", ""} {
		script, err := Script(Source{URL: u, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(script, []byte("UPDS_FINGERPRINT='"+fpr+"'")) {
			t.Errorf("script lacks the fingerprint %s", fpr)
		}
		if !bytes.Contains(script, bytes.TrimSpace(key)) {
			t.Error("script lacks the key")
		}
		p := filepath.Join(t.TempDir(), "setup.sh")
		if err := os.WriteFile(p, script, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, sh := range []string{"sh", "dash", "bash"} {
			if _, err := exec.LookPath(sh); err != nil {
				continue
			}
			if out, err := exec.Command(sh, "-n", p).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, out)
			}
		}
		if _, err := exec.LookPath("shellcheck"); err != nil {
			t.Fatal("shellcheck is not installed: run .ci/install-deps")
		}
		if out, err := exec.Command("shellcheck", "-s", "sh", p).CombinedOutput(); err != nil {
			t.Errorf("shellcheck: %v\n%s", err, out)
		}
	}
}

// TestScriptUsage runs the script's argument checks (they come before the root check).
func TestScriptUsage(t *testing.T) {
	key, _ := testKey(t)
	script, err := Script(Source{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "setup.sh")
	os.WriteFile(p, script, 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"role"}, "no repository URL"},
		{[]string{"--repo", "ftp://x", "role"}, "want an http"},
		{[]string{"--repo", "http://x/$(id)", "role"}, "unexpected character"},
		{[]string{"--repo=http://x/", "--name", "../x", "role"}, "--name"},
		{[]string{"--repo=http://x/", "Bad_Role"}, "bad role"},
		{[]string{"--bogus"}, "unknown option"},
	} {
		cmd := exec.Command("sh", append([]string{p}, c.args...)...)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("sh setup.sh %q: %v\n%s\nwant exit 2 and %q", c.args, err, out, c.want)
		}
	}
}

func TestParseOutput(t *testing.T) {
	out := `key       /etc/apt/keyrings/x.asc written (fingerprint ABCD)
source    /etc/apt/sources.list.d/x.sources unchanged
installed app 1.9.0
upgraded  lib 1.0 -> 1.1
downgraded old 2.0 -> 1.0
removed   gone 3
role      web 1.9.0
done
`
	r := ParseOutput("h", []byte(out))
	if !r.KeyWritten || r.SourceWritten || r.Fingerprint != "ABCD" || r.NothingToDo || r.SourcePath != "/etc/apt/sources.list.d/x.sources" {
		t.Errorf("bad result %+v", r)
	}
	want := []Change{{"installed", "app", "", "1.9.0"}, {"upgraded", "lib", "1.0", "1.1"}, {"downgraded", "old", "2.0", "1.0"}, {"removed", "gone", "3", ""}}
	if len(r.Changes) != len(want) {
		t.Fatalf("changes %+v", r.Changes)
	}
	for i := range want {
		if r.Changes[i] != want[i] {
			t.Errorf("change %d = %+v, want %+v", i, r.Changes[i], want[i])
		}
	}
	if len(r.Roles) != 1 || r.Roles[0] != (Role{"web", "1.9.0"}) {
		t.Errorf("roles %+v", r.Roles)
	}
	if r := ParseOutput("h", []byte("key a unchanged (fingerprint X)\nnothing to do\n")); !r.NothingToDo {
		t.Error("nothing to do not parsed")
	}
	for i, v := range []string{"1.9.0", "1.0 -> 1.1", "2.0 -> 1.0", "3"} {
		if got := r.Changes[i].Versions(); got != v {
			t.Errorf("change %d Versions() = %q, want %q", i, got, v)
		}
	}
	// Lines with the wrong number of fields are not changes.
	if r := ParseOutput("h", []byte("installed app\nupgraded lib 1.0 1.1\nremoved a b c\nreinstalled x 1\n")); len(r.Changes) != 0 {
		t.Errorf("changes %+v", r.Changes)
	}
	b, _ := json.Marshal(r.Changes[1])
	if string(b) != `{"action":"upgraded","package":"lib","old":"1.0","new":"1.1"}` {
		t.Errorf("JSON %s", b)
	}
}
