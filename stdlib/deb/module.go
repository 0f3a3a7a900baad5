package deb

// The Starlark binding of the deb package: deb(), tree(), file(), directory(), link(). It only
// unpacks arguments into a Spec and its Contents (args.go has the Unpacker types); spec.go
// checks them, assemble.go and build.go build the package.

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/upds/upds/interp"
)

// Builtins are the names this module gives BUILD.star. The deb() targets of the evaluations
// that use them know each other (two packages of a project may not ship one path).
func Builtins() starlark.StringDict {
	reg := &registry{}
	return starlark.StringDict{
		"deb": starlark.NewBuiltin("deb", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return builtinDeb(thread, b, args, kwargs, reg)
		}),
		"tree":      starlark.NewBuiltin("tree", builtinTree),
		"file":      starlark.NewBuiltin("file", builtinFile),
		"directory": starlark.NewBuiltin("directory", builtinDirectory),
		"link":      starlark.NewBuiltin("link", builtinLink),
		"snippet":   starlark.NewBuiltin("snippet", builtinSnippet),
	}
}

// ContentsTarget is a target whose built result can be packaged (a venv).
type ContentsTarget interface {
	interp.Target
	ContentsSource
}

// ---- contents values ----

// content is the value of tree(), file(), directory() or link().
type content struct {
	Content
	pos syntax.Position
}

var _ starlark.Value = (*content)(nil)

func (c *content) Type() string          { return contentKinds[c.Kind].fn }
func (c *content) Freeze()               {}
func (c *content) Truth() starlark.Bool  { return true }
func (c *content) Hash() (uint32, error) { return starlark.String(c.String()).Hash() }

// newContent checks c and makes it a value.
func newContent(thread *starlark.Thread, c Content) (starlark.Value, error) {
	if err := c.check(interp.HostOf(thread).FS); err != nil {
		return nil, err
	}
	return &content{Content: c, pos: interp.CallerPos(thread)}, nil
}

func builtinTree(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	c := Content{Kind: ContentTree}
	var owner, group ownerArg
	var mode modeArg
	if err := unpackArgs(b.Name(), args, kwargs, nil, "src", &c.Src, "into", &c.Dest, "owner??", &owner,
		"group??", &group, "mode??", &mode, "exclude?", (*stringList)(&c.Exclude)); err != nil {
		return nil, err
	}
	c.Owner, c.Group, c.Mode = owner.o, group.o, mode.m
	return newContent(thread, c)
}

func builtinFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	c := Content{Kind: ContentFile}
	var owner, group ownerArg
	var mode modeArg
	if err := unpackArgs(b.Name(), args, kwargs, nil, "src", &c.Src, "dest", &c.Dest, "owner??", &owner,
		"group??", &group, "mode??", &mode); err != nil {
		return nil, err
	}
	c.Owner, c.Group, c.Mode = owner.o, group.o, mode.m
	return newContent(thread, c)
}

func builtinDirectory(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	c := Content{Kind: ContentDirectory}
	var owner, group ownerArg
	var mode modeArg
	if err := unpackArgs(b.Name(), args, kwargs, nil, "path", &c.Dest, "owner??", &owner, "group??", &group,
		"mode??", &mode); err != nil {
		return nil, err
	}
	c.Owner, c.Group, c.Mode = owner.o, group.o, mode.m
	return newContent(thread, c)
}

func builtinLink(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	c := Content{Kind: ContentLink}
	var hard bool
	if err := unpackArgs(b.Name(), args, kwargs, nil, "path", &c.Dest, "target", &c.Target, "hard?", &hard); err != nil {
		return nil, err
	}
	if hard {
		c.Kind = ContentHardlink
	}
	return newContent(thread, c)
}

func builtinSnippet(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	sn := &Snippet{Scripts: map[string]string{}}
	var pre, post, prerm, postrm string
	if err := unpackArgs(b.Name(), args, kwargs, nil, "preinst?", &pre, "postinst?", &post, "prerm?", &prerm,
		"postrm?", &postrm, "depends?", (*stringList)(&sn.Depends), "pre_depends?", (*stringList)(&sn.PreDepends),
		"users?", (*stringList)(&sn.Users), "groups?", (*stringList)(&sn.Groups)); err != nil {
		return nil, err
	}
	for name, text := range map[string]string{"preinst": pre, "postinst": post, "prerm": prerm, "postrm": postrm} {
		if text != "" {
			sn.Scripts[name] = text
		}
	}
	return newContent(thread, Content{Kind: ContentSnippet, Snippet: sn})
}

// ---- deb() ----

// Target is a package declared with deb(); building it writes OUT/NAME_VERSION_ARCH.deb.
type Target struct {
	spec Spec
	pos  syntax.Position
	host *interp.Host
	reg  *registry // the other packages of the project

	built string // the path after Build
	// contentPos is where BUILD.star gives each of spec.Contents (zero: not known).
	contentPos []syntax.Position
	resolved   resolvedVersion // version = "content": the version Build resolved
}

var (
	_ interp.Target     = (*Target)(nil)
	_ starlark.HasAttrs = (*Target)(nil)
	_ Versioned         = (*Target)(nil)
)

func (t *Target) String() string        { return fmt.Sprintf("<deb %s>", t.spec.Name) }
func (t *Target) Type() string          { return "deb" }
func (t *Target) Freeze()               {}
func (t *Target) Truth() starlark.Bool  { return true }
func (t *Target) Hash() (uint32, error) { return starlark.String(t.ID()).Hash() }
func (t *Target) ID() string            { return "deb " + t.spec.Name }
func (t *Target) Pos() syntax.Position  { return t.pos }
func (t *Target) Outputs() []string {
	if t.built == "" {
		return nil
	}
	return []string{t.built}
}

// Name is the package name.
func (t *Target) Name() string { return t.spec.Name }

func (t *Target) AttrNames() []string { return []string{"filename", "name", "path", "version"} }

func (t *Target) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(t.spec.Name), nil
	case "version":
		v, err := t.Version()
		if err != nil {
			return nil, err
		}
		return starlark.String(v), nil
	case "filename":
		f, err := t.Filename()
		if err != nil {
			return nil, err
		}
		return starlark.String(f), nil
	case "path":
		if t.built != "" {
			return starlark.String(t.built), nil
		}
		f, err := t.Filename()
		if err != nil {
			return nil, err
		}
		return starlark.String(filepath.Join(t.host.OutDir(), f)), nil
	}
	return nil, nil
}

// Version is the package version now: the literal given to deb(), or the project version read
// at this moment (so a bump earlier in the same run is seen); for version = "content", see
// contentVersionNow.
func (t *Target) Version() (string, error) {
	if t.spec.ContentVersion {
		return t.contentVersionNow()
	}
	return t.spec.version()
}

// Filename is NAME_VERSION_ARCH.deb for the version now.
func (t *Target) Filename() (string, error) {
	v, err := t.Version()
	if err != nil {
		return "", err
	}
	return FileName(t.spec.Name, v, t.spec.arch(t.host.Project.Arch)), nil
}

// Deps are the targets in contents and the deb targets in Depends and Pre-Depends: building
// a package builds the packages it needs, so they are released together. A target in
// another relation (conflicts, breaks, ...) only lends its name and version.
func (t *Target) Deps() []interp.Target {
	var out []interp.Target
	for _, c := range t.spec.Contents {
		if tg, ok := c.Built.(interp.Target); ok {
			out = append(out, tg)
		}
	}
	for _, rs := range [][]Relation{t.spec.PreDepends, t.spec.Depends} {
		for _, r := range rs {
			if tg, ok := r.Package.(interp.Target); ok {
				out = append(out, tg)
			}
		}
	}
	return out
}

func builtinDeb(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, reg *registry) (starlark.Value, error) {
	h := interp.HostOf(thread)
	if interp.PhaseOf(thread) != interp.PhaseEval {
		return nil, fmt.Errorf("deb: packages are declared while BUILD.star is evaluated, not inside a run function")
	}
	s := Spec{Priority: "optional", Compression: "gzip", Docs: true, VersionOf: h.Version}
	var contentPos []syntax.Position
	ver := versionArg{&s}
	arch := archArg{&s.Arch}
	var owner, group ownerArg
	prefix := func() string { return strings.TrimSpace("deb " + s.Name) }
	if err := unpackArgs(b.Name(), args, kwargs, prefix,
		"name", &s.Name, "version??", &ver, "arch??", &arch, "contents?", contentList{&s.Contents, &contentPos},
		"owner??", &owner, "group??", &group,
		"conffiles?", (*stringList)(&s.Conffiles), "not_conffiles?", (*stringList)(&s.NotConffiles),
		"pre_depends?", (*relationList)(&s.PreDepends), "depends?", (*relationList)(&s.Depends),
		"recommends?", (*relationList)(&s.Recommends), "suggests?", (*relationList)(&s.Suggests),
		"conflicts?", (*relationList)(&s.Conflicts), "breaks?", (*relationList)(&s.Breaks),
		"replaces?", (*relationList)(&s.Replaces), "provides?", (*relationList)(&s.Provides),
		"section??", &s.Section, "priority?", &s.Priority, "homepage??", &s.Homepage,
		"description?", &s.Description, "maintainer??", &s.Maintainer, "fields?", (*fieldMap)(&s.Fields),
		"preinst??", (*scriptArg)(&s.Preinst), "postinst??", (*scriptArg)(&s.Postinst),
		"prerm??", (*scriptArg)(&s.Prerm), "postrm??", (*scriptArg)(&s.Postrm),
		"triggers??", (*triggersArg)(&s.Triggers), "config??", (*scriptArg)(&s.Config),
		"templates??", (*textArg)(&s.Templates), "shlibs??", (*triggersArg)(&s.Shlibs),
		"symbols??", (*textArg)(&s.Symbols), "changelog??", &s.Changelog,
		"compression?", &s.Compression, "docs?", &s.Docs,
		"lintian_overrides?", (*stringList)(&s.LintianOverrides)); err != nil {
		return nil, err
	}
	s.Owner, s.Group = owner.o, group.o
	if err := s.Check(h.Project, h.FS); err != nil {
		if se := (*specError)(nil); errors.As(err, &se) && se.at != nil {
			return nil, specUsage(err, interp.CallerPos(thread), contentPos)
		}
		return nil, err
	}
	t := &Target{spec: s, pos: interp.CallerPos(thread), contentPos: contentPos, host: h, reg: reg}
	if err := h.AddTarget(t); err != nil {
		return nil, err
	}
	reg.add(t)
	return t, nil
}
