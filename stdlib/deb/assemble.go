package deb

// From a Spec to the package it describes: contents expanded, documentation added, control
// fields, scripts and conffiles made.

import (
	"errors"
	"fmt"
	"slices"
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
	return a.plan, nil
}

// assembly is a package made from a Spec and validated: the Package (without entries: the
// plan holds them) and its Plan.
type assembly struct {
	pkg      *Package
	plan     *Plan
	warnings []string // for the user, not errors
	in       Inputs   // what it was made from
	dryRun   bool     // key writes nothing
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

// assemble makes the package and validates it: the contents go into the Plan as they are
// walked. Mistakes in the Spec are specErrors; failures to read a built tree are not.
func (s *Spec) assemble(in Inputs) (*assembly, error) {
	ver, err := s.version()
	if err == nil {
		_, err = version.Parse(ver)
	}
	if err != nil {
		return nil, s.errorf("version: %v", err)
	}
	arch := s.arch(in.Project.Arch)
	maint := orDefault(s.Maintainer, in.Project.Maintainer)
	mtime := in.MTime
	if mtime.IsZero() {
		mtime = DefaultMTime()
	}
	a := &assembly{pkg: &Package{Compression: s.Compression, MTime: mtime}}
	if a.plan, err = newPlan(a.pkg); err != nil {
		return nil, s.errorf("%v", err)
	}
	seen := s.newContentFacts(ver)
	built, err := s.expandContents(in, a.plan, seen)
	if err == nil && built.archSpecific && arch == "all" {
		err = s.errorf(`arch "all", but its contents hold compiled code: use the machine architecture`)
	}
	if err == nil && s.Docs {
		err = a.addDocs(s, seen, in, ver, maint, mtime)
	}
	if err == nil {
		err = s.complete(a.pkg, in, seen, built, ver, arch, maint)
	}
	if err == nil {
		if err = a.plan.finish(); err != nil {
			err = &entryError{err}
		}
	}
	if de := (*dupError)(nil); errors.As(err, &de) {
		return nil, s.dupPath(in, de.path)
	}
	if ee := (*entryError)(nil); errors.As(err, &ee) {
		return nil, s.errorf("%v", ee.err)
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// complete sets the control fields, scripts, control files and conffiles of pkg.
func (s *Spec) complete(pkg *Package, in Inputs, seen *contentFacts, built *builtContents, ver, arch, maint string) error {
	c, err := s.control(in, ver, arch, maint, built)
	if err != nil {
		return err
	}
	pkg.Control, pkg.Conffiles = c, s.conffiles(seen)
	return s.controlFiles(in.FS, built.snippets, pkg)
}

// contentFacts is what the docs and the conffiles need to know of the contents, noted as the
// entries go by.
type contentFacts struct {
	paths    map[string]bool // the documentation's paths: whether the contents have them
	prefixes map[string]bool // "/srv/", "/opt/", "/var/virtualenvs/": whether anything is under them
	etc      []etcFile       // regular files under /etc
}

// etcFile is a regular file under /etc and its record.
type etcFile struct {
	path string
	rec  uint32
}

func (s *Spec) newContentFacts(ver string) *contentFacts {
	f := &contentFacts{paths: map[string]bool{}, prefixes: map[string]bool{}}
	for _, p := range s.docPaths(ver) {
		f.paths[p] = false
	}
	for _, p := range []string{"/srv/", "/opt/", "/var/virtualenvs/"} {
		f.prefixes[p] = false
	}
	return f
}

// note notes e, whose record in the Plan is rec.
func (f *contentFacts) note(e *Entry, rec uint32) {
	if _, ok := f.paths[e.Path]; ok {
		f.paths[e.Path] = true
	}
	for p, seen := range f.prefixes {
		if !seen && strings.HasPrefix(e.Path, p) {
			f.prefixes[p] = true
		}
	}
	if e.Type == TypeFile && strings.HasPrefix(e.Path, "/etc/") {
		f.etc = append(f.etc, etcFile{e.Path, rec})
	}
}

// dropLinked forgets the files under /etc that linkInodes made hard links: not conffiles.
func (f *contentFacts) dropLinked(pl *Plan) {
	f.etc = slices.DeleteFunc(f.etc, func(e etcFile) bool { return pl.recs.at(e.rec).typ != TypeFile })
}

// docPaths are the copyright file, the changelog and the lintian overrides of the package.
func (s *Spec) docPaths(ver string) []string {
	docDir := "/usr/share/doc/" + s.Name
	clog := docDir + "/changelog.gz"
	if strings.Contains(ver, "-") {
		clog = docDir + "/changelog.Debian.gz"
	}
	return []string{docDir + "/copyright", clog, "/usr/share/lintian/overrides/" + s.Name}
}

// addDocs adds the documentation every package carries, unless the contents have their own:
// then a warning says that they replace it.
func (a *assembly) addDocs(s *Spec, seen *contentFacts, in Inputs, ver, maint string, mtime time.Time) error {
	paths := s.docPaths(ver)
	for _, f := range []struct {
		path string
		make func() ([]byte, error)
	}{
		{paths[0], func() ([]byte, error) { return copyrightFile(in.Project, s.Name, maint, mtime), nil }},
		{paths[1], func() ([]byte, error) { return s.changelogGz(in.FS, ver, maint, mtime) }},
		{paths[2], func() ([]byte, error) { return s.lintianOverrides(seen), nil }},
	} {
		if seen.paths[f.path] {
			a.warnings = append(a.warnings, fmt.Sprintf("the contents' %s replaces the one upds writes (docs = False leaves out all of them)", f.path))
			continue
		}
		data, err := f.make()
		if err != nil {
			return err
		}
		if len(data) > 0 {
			e := memFile(f.path, data)
			if err := a.plan.add(&e, -1); err != nil {
				return &entryError{err}
			}
		}
	}
	return nil
}

// control makes the control fields; Prepare orders and completes them.
func (s *Spec) control(in Inputs, ver, arch, maint string, built *builtContents) (control.Paragraph, error) {
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
		switch f.field {
		case "Pre-Depends":
			parts = append(parts, built.preDepends...)
		case "Depends":
			parts = append(parts, built.depends...)
			if s.usesDebconf() && !s.names(s.PreDepends, s.Depends)["debconf"] && !s.names(s.PreDepends, s.Depends)["debconf-2.0"] {
				// What dh_installdebconf adds: the config script and the templates need debconf.
				parts = append(parts, "debconf (>= 0.5) | debconf-2.0")
			}
		}
		if len(parts) > 0 {
			rs, err := joinRelations(parts)
			if err != nil {
				return c, s.errorf("%s: %v", strings.ToLower(f.field), err)
			}
			c.Set(f.field, rs)
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

// controlFiles reads the maintainer scripts and the other control files into pkg, and merges
// the snippets of the contents into the scripts.
func (s *Spec) controlFiles(fsys afero.Fs, snippets map[string][]string, pkg *Package) error {
	pkg.Scripts = map[string][]byte{}
	for _, f := range s.scriptFields() {
		text := []byte(f.script.Text)
		if f.script.Path != "" {
			var err error
			if text, err = afero.ReadFile(fsys, f.script.Path); err != nil {
				return s.errorf("%s: %v", f.name, err)
			}
		}
		if !f.isExec {
			if len(text) > 0 {
				*pkg.member(f.name) = text
			}
			continue
		}
		sc, err := mergeScript(f.name, string(text), snippets[f.name])
		if err != nil {
			return s.errorf("%v", err)
		}
		if sc != nil {
			pkg.Scripts[f.name] = sc
		}
	}
	return nil
}

// conffiles are the listed ones, plus every regular file under /etc unless excluded.
func (s *Spec) conffiles(seen *contentFacts) []string {
	conf := map[string]bool{}
	for _, p := range s.Conffiles {
		conf[p] = true
	}
	notConf := map[string]bool{}
	for _, p := range s.NotConffiles {
		notConf[p] = true
	}
	for _, e := range seen.etc {
		if !notConf[e.path] {
			conf[e.path] = true
		}
	}
	out := make([]string, 0, len(conf))
	for p := range conf {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// joinRelations is the relation field of parts ("a, b", "c | d"), each relation once.
func joinRelations(parts []string) (string, error) {
	var all control.Relations
	seen := map[string]bool{}
	for _, p := range parts {
		rs, err := control.ParseRelations(p)
		if err != nil {
			return "", err
		}
		for _, alt := range rs {
			if k := (control.Relations{alt}).String(); !seen[k] {
				seen[k] = true
				all = append(all, alt)
			}
		}
	}
	return all.String(), nil
}

// usesDebconf reports a package with a debconf config script or templates.
func (s *Spec) usesDebconf() bool {
	return s.Config != (Script{}) || s.Templates != (Script{})
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
// venv, snippets) need. Each of those runs as its own sh, with the same arguments, from a
// here-document, so that its exit or its case on "$1" cannot cut the rest short; set -e makes
// its failure the script's failure. Like debhelper's #DEBHELPER#, a line "#UPDS#" in the script
// marks where they go; without it they run first, right after the #! line and the set -e line
// that follows it (shell scripts only).
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
	if after, ok := strings.CutPrefix(rest, "set -e\n"); ok {
		// After the script's set -e, so that a failing snippet fails the script.
		first, rest = first+"\nset -e", after
	}
	return []byte(first + "\n" + body.String() + rest), nil
}

// isShell reports whether a #! line runs sh or bash.
func isShell(line string) bool {
	return strings.HasSuffix(line, "/sh") || strings.Contains(line, "/sh ") ||
		strings.HasSuffix(line, "bash") || strings.Contains(line, "bash ")
}

// dupPath is the error for two entries at path p: it is about the second of the contents that
// put something there (a path the documentation adds too: the first), and names the first.
func (s *Spec) dupPath(in Inputs, p string) error {
	var from []int
	for i := range s.Contents {
		c := &s.Contents[i]
		found := false
		find := func(e Entry, _ fileID) error {
			found = found || e.Path == p
			return nil
		}
		switch c.Kind {
		case ContentSnippet:
			continue
		case ContentBuilt:
			if cs, err := c.Built.Contents(); err == nil {
				s.expandDir(cs.Dir, cs.Into, find)
			}
		default:
			s.expand(in, c, find)
		}
		if found {
			from = append(from, i)
		}
	}
	err := s.errorf("%s is in the package twice", p).(*specError)
	switch len(from) {
	case 0:
	case 1:
		err.at = &contentRef{from[0], -1}
	default:
		err.at = &contentRef{from[1], from[0]}
	}
	return err
}
