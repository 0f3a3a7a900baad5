package deb

// A package as deb() declares it, in plain Go: Spec and what it is made of, and the checks that
// need nothing but the Spec and the project. Plan (assemble.go) turns a Spec into a package.

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/version"
)

// Spec is everything a package built from BUILD.star is, as plain Go values: deb() fills one,
// and Spec.Plan turns one into the package it describes.
type Spec struct {
	// Name is the package name.
	Name string
	// Version is the package version, unless VersionOf is set: then VersionOf gives it when
	// the package is built (the project version, or version()).
	Version   string
	VersionOf func() (string, error)
	// ContentVersion (deb(version = "content")) makes the version follow the content: the
	// version VersionOf gives when the content last changed, as upds.lock records it. deb
	// targets honour it when they build (contentversion.go); Plan ignores it.
	ContentVersion bool
	// Arch is the architecture; "" means the project's.
	Arch string
	// Contents are what the package holds, in order.
	Contents []Content
	// Owner and Group own every entry whose Content names none. nil is root; an Owner
	// alone means its group too, where Debian has a group of that name with a static id.
	Owner, Group *Owner
	// Conffiles are more conffiles: every regular file under /etc already is one, except
	// those in NotConffiles.
	Conffiles, NotConffiles []string
	// The relation fields, written in this order. deb targets in PreDepends and Depends are
	// built along with the package.
	PreDepends, Depends, Recommends, Suggests, Conflicts, Breaks, Replaces, Provides []Relation
	// Section is the section ("" is misc); Priority is written when set.
	Section, Priority string
	// Homepage and Maintainer default to the project's.
	Homepage, Maintainer string
	// Description's first line is the synopsis, the rest the long description; what is
	// missing is made up (Debian requires both).
	Description string
	// Fields are more control fields, written in the order of their names.
	Fields map[string]string
	// The maintainer scripts and the triggers file.
	Preinst, Postinst, Prerm, Postrm, Triggers Script
	// Config is debconf's config script, Templates its templates file; Shlibs and Symbols
	// are the shared library control files.
	Config, Templates, Shlibs, Symbols Script
	// Changelog is the project file of the changelog: Debian's format, or a NEWS-style list
	// (changelog.go). "" means a one-entry placeholder.
	Changelog string
	// Compression of control.tar and data.tar: "gzip", "xz", "zstd" or "none".
	Compression string
	// Docs adds /usr/share/doc/NAME/copyright and changelog.gz, and the lintian overrides
	// for the deployment layout.
	Docs bool
	// LintianOverrides are more lines for /usr/share/lintian/overrides/NAME.
	LintianOverrides []string
}

// Relation is one element of a relation field: Text ("nginx (>= 1.22)", "a | b"), or
// Package, another package of the project, written "NAME (= VERSION)" with the version it
// has when this one is built.
type Relation struct {
	Text    string
	Package Versioned
}

// Versioned is a package whose version is known when it is built: a deb() target.
type Versioned interface {
	Name() string
	Version() (string, error)
}

// Script is a maintainer script or the triggers file: Text itself, or the project file Path.
type Script struct {
	Text, Path string
}

// Owner is the user or the group that owns package entries.
type Owner struct {
	Name string
	// ID is the numeric id; -1 means the static id Debian's base-passwd gives Name, or (for
	// a name without one) a system user or group that a Snippet of the package creates.
	ID int
}

// ContentKind is what a Content puts into the package.
type ContentKind uint8

// The kinds of content: tree(), file(), directory(), link(), link(hard = True), snippet(),
// and a built tree (a venv).
const (
	ContentTree ContentKind = iota
	ContentFile
	ContentDirectory
	ContentLink
	ContentBuilt
	ContentHardlink
	ContentSnippet
)

var contentKinds = [...]struct{ fn, dest string }{
	ContentTree:      {"tree", "into"},
	ContentFile:      {"file", "dest"},
	ContentDirectory: {"directory", "path"},
	ContentLink:      {"link", "path"},
	ContentBuilt:     {"built", ""},
	ContentHardlink:  {"link", "path"},
	ContentSnippet:   {"snippet", ""},
}

// Content is one element of a package's contents.
type Content struct {
	Kind ContentKind
	// Src is the project path of a tree or a file.
	Src string
	// Dest is where it goes in the package: a tree's into, a file's dest, the path of a
	// directory or a link.
	Dest string
	// Target is a link's target: for a hard link, the absolute path of a file of the package.
	Target string
	// Owner and Group override the Spec's for these entries (not for links: root).
	Owner, Group *Owner
	// Mode, when set, is the mode of a directory, of a file, or of a tree's files; otherwise
	// directories are 0755 and files 0755 when executable in the project, else 0644.
	Mode *fs.FileMode
	// Exclude are patterns, relative to a tree's Src, of what stays out.
	Exclude []string
	// Built gives the tree of a ContentBuilt once it is built.
	Built ContentsSource
	// Snippet is what a ContentSnippet adds to the package.
	Snippet *Snippet
}

// Snippet is a part of the maintainer scripts, with what it needs, that a rule adds to a
// package (a service, a system user), as debhelper adds its autoscripts.
type Snippet struct {
	// Scripts are shell text by script name (preinst, postinst, prerm, postrm). The snippets
	// of a package run in the order of its contents in preinst and postinst, in the
	// reverse order in prerm and postrm.
	Scripts map[string]string
	// Depends and PreDepends are relations the package gets.
	Depends, PreDepends []string
	// Users and Groups are the system users and groups the snippet's preinst creates: the
	// package's owner and group may name them without an id.
	Users, Groups []string
}

// String is the content as BUILD.star writes it: file("a.txt", "/etc/a").
func (c Content) String() string {
	switch c.Kind {
	case ContentLink:
		return fmt.Sprintf("link(%q, %q)", c.Dest, c.Target)
	case ContentHardlink:
		return fmt.Sprintf("link(%q, %q, hard = True)", c.Dest, c.Target)
	case ContentSnippet, ContentBuilt:
		return contentKinds[c.Kind].fn + "()"
	case ContentDirectory:
		return fmt.Sprintf("directory(%q)", c.Dest)
	}
	return fmt.Sprintf("%s(%q, %q)", contentKinds[c.Kind].fn, c.Src, c.Dest)
}

// ContentsSource is a target whose built result can be packaged (a venv).
type ContentsSource interface {
	Contents() (*Contents, error)
}

// Contents is what a built target contributes to a package that lists it in contents: a
// directory on disk placed at Into, plus what the package needs because of it.
type Contents struct {
	Dir          string            // the tree on disk
	Into         string            // where it goes in the package
	Depends      []string          // relations it adds to Depends
	Scripts      map[string][]byte // maintainer script snippets (sh), merged into the package's
	ArchSpecific bool              // it holds compiled code: the package cannot be "all"
}

// Inputs are what a Spec is built from besides itself.
type Inputs struct {
	// Project gives the defaults: maintainer, homepage, architecture, and the name, license
	// and copyright of the documentation.
	Project interp.Project
	// FS is the project directory: contents' Src and script paths are relative to it.
	FS afero.Fs
	// Root is its path on the real filesystem ("" in memory), which keys the stat cache.
	Root string
	// MTime is the clamp of every modification time (SOURCE_DATE_EPOCH); zero means
	// DefaultMTime.
	MTime time.Time
}

// ParseOwner reads an owner or group written "NAME" or "NAME:ID". A NAME without an id must
// have a static id in Debian's base-passwd: a user's, or with group set a group's.
func ParseOwner(s string, group bool) (*Owner, error) {
	o, err := parseOwner(s)
	if err == nil && o.ID < 0 {
		err = checkStatic(o.Name, group)
	}
	return o, err
}

// checkStatic reports a user (group) name without a static id in Debian's base-passwd.
func checkStatic(name string, group bool) error {
	_, known := WellKnownUID(name)
	if group {
		_, known = WellKnownGID(name)
	}
	if !known {
		return fmt.Errorf("%q has no static Debian id: write %q with the id your preinst creates it with, or create it in this package: system_user(%q) of @upds//service.star", name, name+":ID", name)
	}
	return nil
}

// parseOwner reads "NAME" or "NAME:ID"; a NAME without an id gets ID -1, whether or not
// Debian has a static id for it (deb() checks that later, when it knows the users the
// package creates).
func parseOwner(s string) (*Owner, error) {
	o := &Owner{Name: s, ID: -1}
	if n, id, ok := strings.Cut(s, ":"); ok {
		i, err := strconv.Atoi(id)
		if err != nil || i < 0 || n == "" {
			return nil, fmt.Errorf("%q: want NAME or NAME:ID", s)
		}
		o.Name, o.ID = n, i
	}
	if o.Name == "" {
		return nil, errors.New("empty name")
	}
	return o, nil
}

// ParseMode turns a Unix mode (0o2775) into an fs.FileMode.
func ParseMode(n int64) (fs.FileMode, error) {
	if n < 0 || n > 0o7777 {
		return 0, fmt.Errorf("%d is not a file mode (0 to 0o7777)", n)
	}
	return fileMode(n), nil
}

// specError is a mistake in what BUILD.star says, as opposed to a failure to read what a
// built target made: it is reported at the deb() line with exit code 2, or at the line of the
// content it is about.
type specError struct {
	msg string
	at  *contentRef // the contents it is about, if any
}

// contentRef names contents of a Spec by their index: the one an error is about, and the
// one it clashes with (-1: none).
type contentRef struct{ content, other int }

func (e *specError) Error() string { return e.msg }

// errorf makes a specError about the package: "deb NAME: ...".
func (s *Spec) errorf(format string, a ...any) error {
	return &specError{msg: fmt.Sprintf("deb %s: "+format, append([]any{s.Name}, a...)...)}
}

// Check reports the first mistake in s that can be found before anything is built, and
// cleans its paths: name, version, architecture, maintainer, compression, contents,
// relations, conffiles and scripts (which must exist in fsys, or start with #!).
func (s *Spec) Check(project interp.Project, fsys afero.Fs) error {
	if err := control.ValidPackageName(s.Name); err != nil {
		return &specError{msg: fmt.Sprintf("deb: name: %v", err)}
	}
	if s.VersionOf == nil {
		if _, err := version.Parse(s.Version); err != nil {
			return s.errorf("version: %v", err)
		}
	}
	if err := control.ValidArchitecture(s.Arch); s.Arch != "" && err != nil {
		return s.errorf("arch: %v", err)
	}
	if err := control.ValidArchitecture(project.Arch); s.Arch == "" && err != nil {
		return s.errorf("project arch: %v", err)
	}
	if s.Maintainer == "" && project.Maintainer == "" {
		return s.errorf(`maintainer: none given: set project(maintainer = "Name <email>") or deb(maintainer = ...)`)
	}
	if _, ok := compressionNamed(s.Compression); !ok || s.Compression == "" {
		return s.errorf("compression: %q is not one of %s", s.Compression, writableNames(", ", ", "))
	}
	if err := s.checkContents(fsys); err != nil {
		return err
	}
	for k, v := range s.Fields {
		if strings.EqualFold(k, "Installed-Size") {
			if _, err := parseInstalledSize(v); err != nil {
				return s.errorf("fields: %v", err)
			}
		}
	}
	if err := s.checkOwners(); err != nil {
		return err
	}
	if err := s.checkRelations(); err != nil {
		return err
	}
	for i, c := range s.Conffiles {
		p, err := destPath(c, "conffiles")
		if err != nil {
			return s.errorf("%v", err)
		}
		s.Conffiles[i] = p
	}
	for i, c := range s.NotConffiles {
		s.NotConffiles[i] = path.Clean(c)
	}
	return s.checkScripts(fsys)
}

func (s *Spec) checkContents(fsys afero.Fs) error {
	seen := map[string]int{}
	for i := range s.Contents {
		c := &s.Contents[i]
		if err := c.check(fsys); err != nil {
			return err
		}
		if c.Kind == ContentBuilt || c.Kind == ContentSnippet {
			continue
		}
		if prev, dup := seen[c.Dest]; dup && c.Kind != ContentTree {
			err := s.errorf("contents: two entries at %s: %s and %s", c.Dest, &s.Contents[prev], c).(*specError)
			err.at = &contentRef{i, prev}
			return err
		}
		seen[c.Dest] = i
	}
	return nil
}

// relationField is one relation field of a Spec.
type relationField struct {
	field, param string // "Pre-Depends", "pre_depends"
	list         []Relation
}

// relationFields are the relation fields in the order they are written.
func (s *Spec) relationFields() []relationField {
	return []relationField{
		{"Pre-Depends", "pre_depends", s.PreDepends}, {"Depends", "depends", s.Depends},
		{"Recommends", "recommends", s.Recommends}, {"Suggests", "suggests", s.Suggests},
		{"Conflicts", "conflicts", s.Conflicts}, {"Breaks", "breaks", s.Breaks},
		{"Replaces", "replaces", s.Replaces}, {"Provides", "provides", s.Provides},
	}
}

func (s *Spec) checkRelations() error {
	for _, f := range s.relationFields() {
		for i, r := range f.list {
			if r.Package != nil {
				if r.Package.Name() == s.Name {
					return s.errorf("%s: a package cannot refer to itself", strings.ToLower(f.field))
				}
				continue
			}
			rs, err := control.ParseRelations(r.Text)
			if err == nil {
				err = rs.CheckBinary()
			}
			if err != nil {
				return s.errorf("%s[%d]: %v", f.param, i, err)
			}
		}
	}
	return nil
}

// scriptField is a maintainer script or another control file deb() sets.
type scriptField struct {
	name   string
	script *Script
	isExec bool // a script: it starts with #!
}

// scriptFields are the maintainer scripts deb() sets and the other control files, in order.
func (s *Spec) scriptFields() []scriptField {
	return []scriptField{{"preinst", &s.Preinst, true}, {"postinst", &s.Postinst, true}, {"prerm", &s.Prerm, true},
		{"postrm", &s.Postrm, true}, {"config", &s.Config, true}, {"triggers", &s.Triggers, false},
		{"templates", &s.Templates, false}, {"shlibs", &s.Shlibs, false}, {"symbols", &s.Symbols, false}}
}

func (s *Spec) checkScripts(fsys afero.Fs) error {
	for _, f := range s.scriptFields() {
		sc := f.script
		switch {
		case sc.Path != "":
			p, err := srcPath(sc.Path, f.name)
			if err != nil {
				return s.errorf("%v", err)
			}
			if _, err := fsys.Stat(p); err != nil {
				return s.errorf("%s: %q: %v", f.name, sc.Path, notFound(err))
			}
			sc.Path = p
		case sc.Text != "" && f.isExec && !strings.HasPrefix(sc.Text, "#!"):
			return s.errorf("%s: the script must start with #! (e.g. #!/bin/sh)", f.name)
		case f.name == "templates":
			if err := CheckTemplates([]byte(sc.Text)); err != nil {
				return s.errorf("templates: %v", err)
			}
		}
	}
	if s.Changelog != "" {
		p, err := srcPath(s.Changelog, "changelog")
		if err != nil {
			return s.errorf("%v", err)
		}
		if _, err := fsys.Stat(p); err != nil {
			return s.errorf("changelog: %q: %v", s.Changelog, notFound(err))
		}
		s.Changelog = p
	}
	return nil
}

// check reports the first mistake in c, as its builtin names it ("file: dest: ..."), and
// cleans its paths.
func (c *Content) check(fsys afero.Fs) error {
	switch c.Kind {
	case ContentBuilt:
		return nil
	case ContentSnippet:
		return c.Snippet.check()
	}
	k := contentKinds[c.Kind]
	raw := c.Src
	var err error
	hasSrc := c.Kind == ContentTree || c.Kind == ContentFile
	if hasSrc {
		if c.Src, err = srcPath(c.Src, k.fn+": src"); err != nil {
			return err
		}
	}
	if c.Dest, err = destPath(c.Dest, k.fn+": "+k.dest); err != nil {
		return err
	}
	if (c.Kind == ContentLink || c.Kind == ContentHardlink) && c.Target == "" {
		return errors.New("link: target is empty")
	}
	if c.Kind == ContentHardlink {
		if c.Target, err = destPath(c.Target, "link: target of a hard link"); err != nil {
			return err
		}
	}
	if !hasSrc {
		return nil
	}
	fi, err := fsys.Stat(c.Src)
	switch {
	case err != nil:
		return fmt.Errorf("%s: src %q: %v", k.fn, raw, notFound(err))
	case c.Kind == ContentTree && !fi.IsDir():
		return fmt.Errorf("tree: src %q is not a directory (use file())", raw)
	case c.Kind == ContentFile && !fi.Mode().IsRegular():
		return fmt.Errorf("file: src %q is not a regular file", raw)
	}
	return nil
}

// destPath checks an absolute path inside the package.
func destPath(p, what string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%s: %q is not absolute (package paths start with /)", what, p)
	}
	c := path.Clean(p)
	if c != p && c+"/" != p {
		return "", fmt.Errorf("%s: %q is not clean (write %q)", what, p, c)
	}
	if c == "/" {
		return "", fmt.Errorf("%s: %q is the package root", what, p)
	}
	return c, nil
}

func srcPath(p, what string) (string, error) {
	c, err := interp.ProjectPath(p)
	if err != nil {
		return "", fmt.Errorf("%s: %v", what, err)
	}
	return c, nil
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("no such file or directory in the project")
	}
	return err
}
