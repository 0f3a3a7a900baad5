package deb

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testTemplates = `Template: upds-test/start
Type: boolean
Default: true
Description: Start the service?
 The service starts after installation.
Description-de.UTF-8: Den Dienst starten?
 Der Dienst startet nach der Installation.

Template: upds-test/port
Type: string
Default: 8000
Description: Port:
`
	testConfig  = "#!/bin/sh\nset -e\n. /usr/share/debconf/confmodule\ndb_input medium upds-test/start || true\ndb_go || true\n"
	testShlibs  = "libupds 1 libupds1 (>= 1.0)\nudeb: libupds 1 libupds1-udeb (>= 1.0)\n"
	testSymbols = "libupds.so.1 libupds1 #MINVER#\n* Build-Depends-Package: libupds-dev\n upds_hello@Base 1.0\n"
)

// richPackage is hardlinkPackage with every script, triggers, templates, shlibs and symbols.
func richPackage(name, compression string) *Package {
	p := hardlinkPackage(name, compression)
	sh := func(s string) []byte { return []byte("#!/bin/sh\nset -e\necho " + s + "\n") }
	p.Scripts = map[string][]byte{"preinst": sh("preinst"), "postinst": sh("postinst"), "prerm": sh("prerm"),
		"postrm": sh("postrm"), "config": []byte(testConfig)}
	p.Triggers = []byte("interest-noawait /usr/share/" + name + "\n")
	p.Templates, p.Shlibs, p.Symbols = []byte(testTemplates), []byte(testShlibs), []byte(testSymbols)
	return p
}

// TestControlMembers writes config, templates, shlibs and symbols, and reads them back with
// dpkg-deb and with Read, Info.WriteText and JSON.
func TestControlMembers(t *testing.T) {
	need(t, "dpkg-deb")
	dir := t.TempDir()
	deb := filepath.Join(dir, "x.deb")
	if _, err := WriteFile(deb, richPackage("upds-test-members", "gzip")); err != nil {
		t.Fatal(err)
	}
	ctl := filepath.Join(dir, "ctl")
	run(t, "dpkg-deb", "--control", deb, ctl)
	for name, want := range map[string]string{"templates": testTemplates, "config": testConfig, "shlibs": testShlibs, "symbols": testSymbols} {
		b, err := os.ReadFile(filepath.Join(ctl, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
		fi, _ := os.Stat(filepath.Join(ctl, name))
		if mode := map[bool]os.FileMode{true: 0o755, false: 0o644}[name == "config"]; fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v", name, fi.Mode())
		}
	}
	info, err := ReadFile(deb, ReadOptions{Files: true, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if string(info.Templates) != testTemplates || string(info.Shlibs) != testShlibs || string(info.Symbols) != testSymbols ||
		string(info.Scripts["config"]) != testConfig {
		t.Errorf("read: %q %q %q %q", info.Templates, info.Shlibs, info.Symbols, info.Scripts["config"])
	}
	var text bytes.Buffer
	must(t, info.WriteText(&text))
	for _, want := range []string{"\nconfig (", "\ntemplates (", "  Template: upds-test/start\n", "\nshlibs (", "\nsymbols (", "  libupds.so.1 libupds1 #MINVER#\n"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("WriteText lacks %q:\n%s", want, text.String())
		}
	}
	js, err := json.Marshal(info)
	if err != nil || !strings.Contains(string(js), `"templates":"Template: upds-test/start\n`) || !strings.Contains(string(js), `"shlibs":"libupds 1`) {
		t.Errorf("json: %v %s", err, js)
	}
}

func TestControlMembersInvalid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(p *Package)
		want   string
	}{
		{"no template name", func(p *Package) { p.Templates = []byte("Type: string\nDescription: x\n") }, "templates: template 1: no Template field"},
		{"bad template name", func(p *Package) { p.Templates = []byte("Template: start\nType: string\nDescription: x\n") }, `template "start": want OWNER/NAME`},
		{"template twice", func(p *Package) {
			p.Templates = []byte(testTemplates + "\nTemplate: upds-test/port\nType: string\nDescription: y\n")
		}, "defined twice"},
		{"bad template type", func(p *Package) { p.Templates = []byte("Template: a/b\nType: yesno\nDescription: x\n") }, `Type "yesno" is not one of`},
		{"no description", func(p *Package) { p.Templates = []byte("Template: a/b\nType: note\n") }, "no Description field"},
		{"not deb822", func(p *Package) { p.Templates = []byte("Template: a/b\nno colon here\n") }, "templates: line 2"},
		{"bad shlibs", func(p *Package) { p.Shlibs = []byte("libupds 1\n") }, "shlibs: line 1"},
		{"symbol first", func(p *Package) { p.Symbols = []byte(" upds_hello@Base 1.0\n") }, "symbols: line 1: a symbol before any library line"},
		{"config without #!", func(p *Package) { p.Scripts = map[string][]byte{"config": []byte("db_input\n")} }, `script config: must start with "#!"`},
		{"bad installed size", func(p *Package) { p.Control.Set("Installed-Size", "12 KiB") }, `Installed-Size "12 KiB": want a whole number of KiB`},
		{"negative installed size", func(p *Package) { p.Control.Set("Installed-Size", "-1") }, "want a whole number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := richPackage("t1", "gzip")
			tc.modify(p)
			if err := Validate(p); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestInstalledSizeGiven: an Installed-Size in the control fields is written as it is.
func TestInstalledSizeGiven(t *testing.T) {
	p := samplePackage("upds-test-given", "gzip")
	p.Control.Set("Installed-Size", " 4096 ")
	pl, err := Prepare(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := pl.Control().Get("Installed-Size"); got != "4096" || pl.installed != 4096 {
		t.Errorf("Installed-Size %q (%d), want 4096", got, pl.installed)
	}
}
