package deb

// From a Spec to the package it describes: contents expanded, documentation added, control
// fields, scripts and conffiles made.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/version"
)

// Plan checks s (see Check) and turns it into the validated package it describes, built from
// in: contents expanded, documentation added, versions resolved, control fields, scripts and
// conffiles made. (upds also adds the X-Upds-Source field, the hash of it all.)
func (s *Spec) Plan(in Inputs) (*Plan, error) {
	if err := s.Check(in.Project, in.FS); err != nil {
		return nil, err
	}
	a, err := s.assemble(in)
	if err != nil {
		return nil, err
	}
	pl, err := Prepare(a.pkg)
	if err != nil {
		return nil, s.errorf("%v", err)
	}
	return pl, nil
}

// assembly is a package made from a Spec, not validated yet, with where its entries come from.
type assembly struct {
	pkg     *Package
	entries []sourced // as in pkg.Entries
}

// version is the package version now: Version, or what VersionOf says.
func (s *Spec) version() (string, error) {
	if s.VersionOf != nil {
		return s.VersionOf()
	}
	return s.Version, nil
}

// arch is the package architecture: the Spec's, or the project's.
func (s *Spec) arch(p string) string {
	if s.Arch != "" {
		return s.Arch
	}
	return p
}

// assemble makes the package. Mistakes in the Spec are specErrors; failures to read a built
// tree are not.
func (s *Spec) assemble(in Inputs) (*assembly, error) {
	ver, err := s.version()
	if err == nil {
		_, err = version.Parse(ver)
	}
	if err != nil {
		return nil, s.errorf("version: %v", err)
	}
	arch := s.arch(in.Project.Arch)
	entries, built, err := s.expandContents(in)
	if err != nil {
		return nil, err
	}
	if built.archSpecific && arch == "all" {
		return nil, s.errorf(`arch "all", but its contents hold compiled code: use the machine architecture`)
	}
	maint := orDefault(s.Maintainer, in.Project.Maintainer)
	mtime := in.MTime
	if mtime.IsZero() {
		mtime = DefaultMTime()
	}
	if s.Docs {
		entries = s.addDocs(entries, in, ver, maint, mtime)
	}
	c, err := s.control(in, ver, arch, maint, built.depends)
	if err != nil {
		return nil, err
	}
	scripts, triggers, err := s.scripts(in.FS, built.snippets)
	if err != nil {
		return nil, err
	}
	pkg := &Package{Control: c, Conffiles: s.conffiles(entries), Scripts: scripts, Triggers: triggers,
		Compression: s.Compression, MTime: mtime}
	for _, e := range entries {
		pkg.Entries = append(pkg.Entries, e.Entry)
	}
	return &assembly{pkg: pkg, entries: entries}, nil
}

// addDocs adds the documentation every package carries, unless the contents have their own.
func (s *Spec) addDocs(entries []sourced, in Inputs, ver, maint string, mtime time.Time) []sourced {
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Path] = true
	}
	docDir := "/usr/share/doc/" + s.Name
	if !have[docDir+"/copyright"] {
		entries = append(entries, memFile(docDir+"/copyright", copyrightFile(in.Project, s.Name, maint, mtime)))
	}
	clog := docDir + "/changelog.gz"
	if strings.Contains(ver, "-") {
		clog = docDir + "/changelog.Debian.gz"
	}
	if !have[clog] {
		entries = append(entries, memFile(clog, changelogGz(s.Name, ver, maint, mtime)))
	}
	overrides := "/usr/share/lintian/overrides/" + s.Name
	if ov := s.lintianOverrides(entries); len(ov) > 0 && !have[overrides] {
		entries = append(entries, memFile(overrides, ov))
	}
	return entries
}

// control makes the control fields; Prepare orders and completes them.
func (s *Spec) control(in Inputs, ver, arch, maint string, extraDepends []string) (control.Paragraph, error) {
	var c control.Paragraph
	c.Set("Package", s.Name)
	c.Set("Version", ver)
	c.Set("Architecture", arch)
	c.Set("Maintainer", maint)
	for _, f := range s.relationFields() {
		var parts []string
		for _, r := range f.list {
			if r.Package == nil {
				parts = append(parts, r.Text)
				continue
			}
			v, err := r.Package.Version()
			if err != nil {
				return c, s.errorf("%s: %s: %v", strings.ToLower(f.field), r.Package.Name(), err)
			}
			parts = append(parts, fmt.Sprintf("%s (= %s)", r.Package.Name(), v))
		}
		if f.field == "Depends" {
			parts = append(parts, extraDepends...)
		}
		if len(parts) > 0 {
			rs, err := control.ParseRelations(strings.Join(dedupe(parts), ", "))
			if err != nil {
				return c, s.errorf("%s: %v", strings.ToLower(f.field), err)
			}
			c.Set(f.field, rs.String())
		}
	}
	c.Set("Section", orDefault(s.Section, "misc"))
	if s.Priority != "" {
		c.Set("Priority", s.Priority)
	}
	if home := orDefault(s.Homepage, in.Project.Homepage); home != "" {
		c.Set("Homepage", home)
	}
	c.Set("Description", description(s.Name, in.Project.Name, s.Description))
	names := make([]string, 0, len(s.Fields))
	for k := range s.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		c.Set(k, s.Fields[k])
	}
	return c, nil
}

// scripts reads the maintainer scripts and the triggers file, and merges the snippets of
// built contents into the scripts.
func (s *Spec) scripts(fsys afero.Fs, snippets map[string][]string) (map[string][]byte, []byte, error) {
	scripts := map[string][]byte{}
	var triggers []byte
	for _, f := range s.scriptFields() {
		text := []byte(f.script.Text)
		if f.script.Path != "" {
			var err error
			if text, err = afero.ReadFile(fsys, f.script.Path); err != nil {
				return nil, nil, s.errorf("%s: %v", f.name, err)
			}
		}
		if f.name == "triggers" {
			if len(text) > 0 {
				triggers = text
			}
			continue
		}
		sc, err := mergeScript(f.name, string(text), snippets[f.name])
		if err != nil {
			return nil, nil, s.errorf("%v", err)
		}
		if sc != nil {
			scripts[f.name] = sc
		}
	}
	return scripts, triggers, nil
}

// conffiles are the listed ones, plus every regular file under /etc unless excluded.
func (s *Spec) conffiles(entries []sourced) []string {
	conf := map[string]bool{}
	for _, p := range s.Conffiles {
		conf[p] = true
	}
	notConf := map[string]bool{}
	for _, p := range s.NotConffiles {
		notConf[p] = true
	}
	for _, e := range entries {
		if e.Type == TypeFile && strings.HasPrefix(e.Path, "/etc/") && !notConf[e.Path] {
			conf[e.Path] = true
		}
	}
	out := make([]string, 0, len(conf))
	for p := range conf {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// description folds deb()'s description into the control field: the first line is the
// synopsis, the rest the long description.
// A missing description or extended description gets a neutral one (Debian requires both).
func description(name, project, d string) string {
	d = strings.TrimSpace(d)
	if d == "" {
		d = "package of the " + orDefault(project, name) + " deployment"
	}
	if !strings.Contains(d, "\n") {
		d += "\nThis package is part of the " + orDefault(project, name) + " project and was built with upds."
	}
	return d
}

// mergeScript combines a maintainer script from BUILD.star with the scripts that contents (a
// venv) need. Each of those runs as its own sh, with the same arguments, from a here-document,
// so that its exit or its case on "$1" cannot cut the rest short; set -e makes its failure the
// script's failure. Like debhelper's #DEBHELPER#, a line "#UPDS#" in the script marks where
// they go; without it they run first, right after the #! line (shell scripts only).
func mergeScript(name, text string, snippets []string) ([]byte, error) {
	if text == "" && len(snippets) == 0 {
		return nil, nil
	}
	var body strings.Builder
	for i, s := range snippets {
		if !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		end := fmt.Sprintf("UPDS_%s_%d_END", strings.ToUpper(name), i)
		fmt.Fprintf(&body, "sh -s -- \"$@\" <<'%s'\n%s%s\n", end, s, end)
	}
	if text == "" && len(snippets) == 1 && strings.HasPrefix(snippets[0], "#!") {
		return []byte(snippets[0]), nil
	}
	if text == "" {
		return []byte("#!/bin/sh\nset -e\n" + body.String()), nil
	}
	if !strings.HasPrefix(text, "#!") {
		return nil, fmt.Errorf("%s: the script must start with #! (e.g. #!/bin/sh)", name)
	}
	if strings.Contains(text, "#UPDS#") {
		return []byte(strings.Replace(text, "#UPDS#\n", body.String(), 1)), nil
	}
	if len(snippets) == 0 {
		return []byte(text), nil
	}
	first, rest, _ := strings.Cut(text, "\n")
	if !isShell(first) {
		return nil, fmt.Errorf("%s: not a shell script: put a line #UPDS# where upds may add its own commands, or write it in sh", name)
	}
	return []byte(first + "\n" + body.String() + rest), nil
}

// isShell reports whether a #! line runs sh or bash.
func isShell(line string) bool {
	return strings.HasSuffix(line, "/sh") || strings.Contains(line, "/sh ") ||
		strings.HasSuffix(line, "bash") || strings.Contains(line, "bash ")
}
