package servertest

import "testing"

func TestPickMirror(t *testing.T) {
	const deb822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
`
	for _, c := range []struct {
		name string
		srcs []aptSource
		want string
	}{
		{"deb822", parseDeb822(deb822), "http://deb.debian.org/debian"},
		{"security first", parseDeb822("Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n\n" + deb822),
			"http://deb.debian.org/debian"},
		{"disabled", parseDeb822("Enabled: no\nTypes: deb\nURIs: http://a.example/debian\nSuites: bookworm\nComponents: main\n\n" + deb822), "http://deb.debian.org/debian"},
		{"deb-src only", parseDeb822("Types: deb-src\nURIs: http://a.example/debian\nSuites: bookworm\nComponents: main\n"), ""},
		{"continuation lines", parseDeb822("Types: deb\nURIs:\n http://m.example/debian\nSuites:\n bookworm\nComponents: main contrib\n"), "http://m.example/debian"},
		{"one-line", parseOneLine("# comment\ndeb-src http://x.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://ftp.de.debian.org/debian/ bookworm main contrib # note\n"),
			"http://ftp.de.debian.org/debian/"},
		{"other suite", parseOneLine("deb http://mirror.example/debian trixie main\n"), "http://mirror.example/debian"},
		{"no main", parseOneLine("deb http://mirror.example/debian bookworm contrib\n"), ""},
		{"third-party only", parseOneLine("deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"), ""},
		{"cdrom", parseOneLine("deb cdrom:[Debian]/ bookworm main\n"), ""},
	} {
		if got := pickMirror(c.srcs); got != c.want {
			t.Errorf("%s: %q, want %q (from %+v)", c.name, got, c.want, c.srcs)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}
