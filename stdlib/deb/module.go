package deb

// The Starlark binding of the deb package: deb(), tree(), file(), directory(), link().

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/version"
)

// Builtins are the names this module gives BUILD.star.
func Builtins() starlark.StringDict {
	return starlark.StringDict{
		"deb":       starlark.NewBuiltin("deb", builtinDeb),
		"tree":      starlark.NewBuiltin("tree", builtinTree),
		"file":      starlark.NewBuiltin("file", builtinFile),
		"directory": starlark.NewBuiltin("directory", builtinDirectory),
		"link":      starlark.NewBuiltin("link", builtinLink),
	}
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

// ContentsTarget is a target whose built result can be packaged (a venv).
type ContentsTarget interface {
	interp.Target
	Contents() (*Contents, error)
}

// ---- contents values ----

// ownership is an owner or group with its optional explicit id ("app:990").
type ownership struct {
	name string
	id   int // -1: the well-known id
}

func parseOwner(v starlark.Value, what string, group bool) (*ownership, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	s, ok := starlark.AsString(v)
	if !ok {
		return nil, fmt.Errorf("%s: want a string, got %s", what, v.Type())
	}
	o := &ownership{name: s, id: -1}
	if n, id, ok := strings.Cut(s, ":"); ok {
		i, err := strconv.Atoi(id)
		if err != nil || i < 0 || n == "" {
			return nil, fmt.Errorf("%s: %q: want NAME or NAME:ID", what, s)
		}
		o.name, o.id = n, i
	}
	if o.name == "" {
		return nil, fmt.Errorf("%s: empty name", what)
	}
	if o.id < 0 {
		_, known := WellKnownUID(o.name)
		if group {
			_, known = WellKnownGID(o.name)
		}
		if !known {
			return nil, fmt.Errorf("%s: %q has no static Debian id: write %q with the id your preinst creates it with", what, o.name, o.name+":ID")
		}
	}
	return o, nil
}

func parseMode(v starlark.Value, what string) (fs.FileMode, bool, error) {
	if v == nil || v == starlark.None {
		return 0, false, nil
	}
	i, ok := v.(starlark.Int)
	if !ok {
		return 0, false, fmt.Errorf("%s: want an int such as 0o644, got %s", what, v.Type())
	}
	n, ok := i.Int64()
	if !ok || n < 0 || n > 0o7777 {
		return 0, false, fmt.Errorf("%s: %v is not a file mode (0 to 0o7777)", what, v)
	}
	m := fs.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m, true, nil
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

type contentKind int

const (
	kindTree contentKind = iota
	kindFile
	kindDir
	kindLink
)

// content is a tree(), file(), directory() or link() value.
type content struct {
	kind         contentKind
	src, dest    string
	target       string
	owner, group *ownership
	mode         fs.FileMode
	hasMode      bool
	exclude      []string
	pos          syntax.Position
}

var kindNames = map[contentKind]string{kindTree: "tree", kindFile: "file", kindDir: "directory", kindLink: "link"}

func (c *content) String() string {
	switch c.kind {
	case kindLink:
		return fmt.Sprintf("link(%q, %q)", c.dest, c.target)
	case kindDir:
		return fmt.Sprintf("directory(%q)", c.dest)
	}
	return fmt.Sprintf("%s(%q, %q)", kindNames[c.kind], c.src, c.dest)
}
func (c *content) Type() string          { return kindNames[c.kind] }
func (c *content) Freeze()               {}
func (c *content) Truth() starlark.Bool  { return true }
func (c *content) Hash() (uint32, error) { return starlark.String(c.String()).Hash() }

func builtinTree(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var src, into string
	var owner, group, mode starlark.Value = starlark.None, starlark.None, starlark.None
	var exclude *starlark.List
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "src", &src, "into", &into, "owner?", &owner, "group?", &group, "mode?", &mode, "exclude?", &exclude); err != nil {
		return nil, err
	}
	c := &content{kind: kindTree, pos: interp.CallerPos(thread)}
	var err error
	if c.src, err = srcPath(src, "tree: src"); err != nil {
		return nil, err
	}
	if c.dest, err = destPath(into, "tree: into"); err != nil {
		return nil, err
	}
	if err := c.ownership(owner, group, mode, "tree"); err != nil {
		return nil, err
	}
	if c.exclude, err = interp.Strings(exclude, "tree: exclude"); err != nil {
		return nil, err
	}
	fi, err := interp.HostOf(thread).FS.Stat(c.src)
	if err != nil {
		return nil, fmt.Errorf("tree: src %q: %v", src, notFound(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("tree: src %q is not a directory (use file())", src)
	}
	return c, nil
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("no such file or directory in the project")
	}
	return err
}

func (c *content) ownership(owner, group, mode starlark.Value, fn string) error {
	var err error
	if c.owner, err = parseOwner(owner, fn+": owner", false); err != nil {
		return err
	}
	if c.group, err = parseOwner(group, fn+": group", true); err != nil {
		return err
	}
	if c.mode, c.hasMode, err = parseMode(mode, fn+": mode"); err != nil {
		return err
	}
	return nil
}

func builtinFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var src, dest string
	var owner, group, mode starlark.Value = starlark.None, starlark.None, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "src", &src, "dest", &dest, "owner?", &owner, "group?", &group, "mode?", &mode); err != nil {
		return nil, err
	}
	c := &content{kind: kindFile, pos: interp.CallerPos(thread)}
	var err error
	if c.src, err = srcPath(src, "file: src"); err != nil {
		return nil, err
	}
	if c.dest, err = destPath(dest, "file: dest"); err != nil {
		return nil, err
	}
	if err := c.ownership(owner, group, mode, "file"); err != nil {
		return nil, err
	}
	fi, err := interp.HostOf(thread).FS.Stat(c.src)
	if err != nil {
		return nil, fmt.Errorf("file: src %q: %v", src, notFound(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("file: src %q is not a regular file", src)
	}
	return c, nil
}

func builtinDirectory(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var p string
	var owner, group, mode starlark.Value = starlark.None, starlark.None, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p, "owner?", &owner, "group?", &group, "mode?", &mode); err != nil {
		return nil, err
	}
	c := &content{kind: kindDir, pos: interp.CallerPos(thread)}
	var err error
	if c.dest, err = destPath(p, "directory: path"); err != nil {
		return nil, err
	}
	if err := c.ownership(owner, group, mode, "directory"); err != nil {
		return nil, err
	}
	return c, nil
}

func builtinLink(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var p, target string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p, "target", &target); err != nil {
		return nil, err
	}
	c := &content{kind: kindLink, pos: interp.CallerPos(thread), target: target}
	var err error
	if c.dest, err = destPath(p, "link: path"); err != nil {
		return nil, err
	}
	if target == "" {
		return nil, fmt.Errorf("link: target is empty")
	}
	return c, nil
}

// ---- deb() ----

// Target is a package declared with deb(); building it writes OUT/NAME_VERSION_ARCH.deb.
type Target struct {
	name        string
	version     starlark.Value // None (the project version), a string, or a lazy version
	arch        string
	contents    []starlark.Value
	owner       *ownership
	group       *ownership
	conffiles   []string
	notConf     map[string]bool
	relations   map[string][]starlark.Value // field -> strings or *Target
	section     string
	priority    string
	homepage    string
	description string
	maintainer  string
	fields      [][2]string
	scripts     map[string]string // name -> inline text or project path (resolved at build)
	scriptPos   map[string]bool   // true: the value is a project path
	triggers    string
	compression string
	docs        bool
	overrides   []string
	pos         syntax.Position
	host        *interp.Host

	built string // the path after Build
}

var (
	_ interp.Target     = (*Target)(nil)
	_ starlark.HasAttrs = (*Target)(nil)
)

func (t *Target) String() string        { return fmt.Sprintf("<deb %s>", t.name) }
func (t *Target) Type() string          { return "deb" }
func (t *Target) Freeze()               {}
func (t *Target) Truth() starlark.Bool  { return true }
func (t *Target) Hash() (uint32, error) { return starlark.String(t.ID()).Hash() }
func (t *Target) ID() string            { return "deb " + t.name }
func (t *Target) Pos() syntax.Position  { return t.pos }
func (t *Target) Outputs() []string {
	if t.built == "" {
		return nil
	}
	return []string{t.built}
}

// Name is the package name.
func (t *Target) Name() string { return t.name }

func (t *Target) AttrNames() []string { return []string{"filename", "name", "path", "version"} }

func (t *Target) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(t.name), nil
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
// at this moment (so a bump earlier in the same run is seen).
func (t *Target) Version() (string, error) {
	switch v := t.version.(type) {
	case starlark.String:
		return string(v), nil
	case version.Lazy:
		return v.Resolve()
	}
	return t.host.Version()
}

// Filename is NAME_VERSION_ARCH.deb for the version now.
func (t *Target) Filename() (string, error) {
	v, err := t.Version()
	if err != nil {
		return "", err
	}
	var c control.Paragraph
	c.Set("Package", t.name)
	c.Set("Version", v)
	arch, err := t.resolvedArch()
	if err != nil {
		return "", err
	}
	c.Set("Architecture", arch)
	return Filename(c), nil
}

func (t *Target) resolvedArch() (string, error) {
	if t.arch != "" {
		return t.arch, nil
	}
	return t.host.Project.Arch, nil
}

// Deps are the targets in contents and the deb targets in Depends and Pre-Depends: building
// a package builds the packages it needs, so they are released together. A target in
// another relation (conflicts, breaks, ...) only lends its name and version.
func (t *Target) Deps() []interp.Target {
	var out []interp.Target
	for _, c := range t.contents {
		if tg, ok := c.(interp.Target); ok {
			out = append(out, tg)
		}
	}
	for _, f := range []string{"Pre-Depends", "Depends"} {
		for _, v := range t.relations[f] {
			if tg, ok := v.(*Target); ok {
				out = append(out, tg)
			}
		}
	}
	return out
}

// relationOrder lists the deb() relation parameters and their control fields.
var relationOrder = []string{"Pre-Depends", "Depends", "Recommends", "Suggests", "Conflicts", "Breaks", "Replaces", "Provides"}

var relationParams = map[string]string{
	"pre_depends": "Pre-Depends", "depends": "Depends", "recommends": "Recommends", "suggests": "Suggests",
	"conflicts": "Conflicts", "breaks": "Breaks", "replaces": "Replaces", "provides": "Provides",
}

func builtinDeb(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h := interp.HostOf(thread)
	if interp.PhaseOf(thread) != interp.PhaseEval {
		return nil, fmt.Errorf("deb: packages are declared while BUILD.star is evaluated, not inside a run function")
	}
	var (
		name                                   string
		ver, arch                              starlark.Value = starlark.None, starlark.None
		contents, conffiles, notConf           *starlark.List
		owner, group                           starlark.Value = starlark.None, starlark.None
		section, homepage, maintainer          starlark.Value = starlark.None, starlark.None, starlark.None
		priority                                              = "optional"
		description                            string
		fields                                 *starlark.Dict
		preinst, postinst, prerm, postrm, trig starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None, starlark.None
		compression                                           = "gzip"
		docs                                                  = true
		overrides                              *starlark.List
		rel                                    = map[string]*starlark.List{}
	)
	relVars := make([]*starlark.List, len(relationOrder))
	pairs := []any{"name", &name, "version?", &ver, "arch?", &arch, "contents?", &contents,
		"owner?", &owner, "group?", &group, "conffiles?", &conffiles, "not_conffiles?", &notConf}
	params := []string{"pre_depends", "depends", "recommends", "suggests", "conflicts", "breaks", "replaces", "provides"}
	for i, p := range params {
		pairs = append(pairs, p+"?", &relVars[i])
	}
	pairs = append(pairs, "section?", &section, "priority?", &priority, "homepage?", &homepage,
		"description?", &description, "maintainer?", &maintainer, "fields?", &fields,
		"preinst?", &preinst, "postinst?", &postinst, "prerm?", &prerm, "postrm?", &postrm,
		"triggers?", &trig, "compression?", &compression, "docs?", &docs, "lintian_overrides?", &overrides)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, pairs...); err != nil {
		return nil, err
	}
	for i, p := range params {
		rel[relationParams[p]] = relVars[i]
	}
	fail := func(format string, a ...any) (starlark.Value, error) {
		return nil, fmt.Errorf("deb %s: "+format, append([]any{name}, a...)...)
	}
	if err := control.ValidPackageName(name); err != nil {
		return nil, fmt.Errorf("deb: name: %v", err)
	}
	t := &Target{name: name, version: ver, priority: priority, description: description,
		compression: compression, docs: docs, pos: interp.CallerPos(thread), host: h,
		relations: map[string][]starlark.Value{}, scripts: map[string]string{}, scriptPos: map[string]bool{},
		notConf: map[string]bool{}}
	switch v := ver.(type) {
	case starlark.NoneType, version.Lazy:
	case starlark.String:
		if _, err := version.Parse(string(v)); err != nil {
			return fail("version: %v", err)
		}
	default:
		return fail("version: want a string or version(), got %s", ver.Type())
	}
	if arch != starlark.None {
		s, ok := starlark.AsString(arch)
		if !ok {
			return fail("arch: want a string")
		}
		if err := control.ValidArchitecture(s); err != nil {
			return fail("arch: %v", err)
		}
		t.arch = s
	}
	if err := control.ValidArchitecture(h.Project.Arch); t.arch == "" && err != nil {
		return fail("project arch: %v", err)
	}
	for _, s := range []struct {
		v   starlark.Value
		dst *string
		n   string
	}{{section, &t.section, "section"}, {homepage, &t.homepage, "homepage"}, {maintainer, &t.maintainer, "maintainer"}} {
		if s.v == starlark.None {
			continue
		}
		str, ok := starlark.AsString(s.v)
		if !ok {
			return fail("%s: want a string, got %s", s.n, s.v.Type())
		}
		*s.dst = str
	}
	if t.maintainer == "" && h.Project.Maintainer == "" {
		return fail(`maintainer: none given: set project(maintainer = "Name <email>") or deb(maintainer = ...)`)
	}
	switch compression {
	case "gzip", "xz", "zstd", "none":
	default:
		return fail("compression: %q is not one of gzip, xz, zstd, none", compression)
	}
	var err error
	if t.owner, err = parseOwner(owner, "deb "+name+": owner", false); err != nil {
		return nil, err
	}
	if t.group, err = parseOwner(group, "deb "+name+": group", true); err != nil {
		return nil, err
	}
	// contents
	seen := map[string]string{}
	if contents != nil {
		for i := 0; i < contents.Len(); i++ {
			v := contents.Index(i)
			switch c := v.(type) {
			case *content:
				if prev, dup := seen[c.dest]; dup && c.kind != kindTree {
					return fail("contents: two entries at %s: %s and %s", c.dest, prev, c)
				}
				seen[c.dest] = c.String()
			case ContentsTarget:
			case *Target:
				return fail("contents[%d]: a package cannot contain a package (list it in depends)", i)
			default:
				return fail("contents[%d]: want tree(), file(), directory(), link() or venv(), got %s", i, v.Type())
			}
			t.contents = append(t.contents, v)
		}
	}
	for f, list := range rel {
		if list == nil {
			continue
		}
		for i := 0; i < list.Len(); i++ {
			v := list.Index(i)
			switch d := v.(type) {
			case starlark.String:
				rs, err := control.ParseRelations(string(d))
				if err != nil {
					return fail("%s[%d]: %v", strings.ToLower(strings.ReplaceAll(f, "-", "_")), i, err)
				}
				if err := rs.CheckBinary(); err != nil {
					return fail("%s[%d]: %v", strings.ToLower(strings.ReplaceAll(f, "-", "_")), i, err)
				}
			case *Target:
				if d.name == name {
					return fail("%s: a package cannot refer to itself", strings.ToLower(f))
				}
			default:
				return fail("%s[%d]: want a string or a deb target, got %s", strings.ToLower(strings.ReplaceAll(f, "-", "_")), i, v.Type())
			}
			t.relations[f] = append(t.relations[f], v)
		}
	}
	confs, err := interp.Strings(conffiles, "conffiles")
	if err != nil {
		return fail("%v", err)
	}
	for _, c := range confs {
		p, err := destPath(c, "conffiles")
		if err != nil {
			return fail("%v", err)
		}
		t.conffiles = append(t.conffiles, p)
	}
	notConfs, err := interp.Strings(notConf, "not_conffiles")
	if err != nil {
		return fail("%v", err)
	}
	for _, c := range notConfs {
		t.notConf[path.Clean(c)] = true
	}
	if fields != nil {
		for _, it := range fields.Items() {
			k, ok1 := starlark.AsString(it[0])
			v, ok2 := starlark.AsString(it[1])
			if !ok1 || !ok2 {
				return fail("fields: want string keys and values")
			}
			t.fields = append(t.fields, [2]string{k, v})
		}
		sort.Slice(t.fields, func(i, j int) bool { return t.fields[i][0] < t.fields[j][0] })
	}
	for _, s := range []struct {
		n string
		v starlark.Value
	}{{"preinst", preinst}, {"postinst", postinst}, {"prerm", prerm}, {"postrm", postrm}, {"triggers", trig}} {
		if s.v == starlark.None {
			continue
		}
		str, ok := starlark.AsString(s.v)
		if !ok {
			return fail("%s: want a file path or the script text, got %s", s.n, s.v.Type())
		}
		isText := strings.Contains(str, "\n") || strings.HasPrefix(str, "#!")
		if s.n == "triggers" {
			isText = strings.Contains(str, "\n") || strings.Contains(str, " ")
		}
		if !isText {
			p, err := srcPath(str, s.n)
			if err != nil {
				return fail("%v", err)
			}
			if _, err := h.FS.Stat(p); err != nil {
				return fail("%s: %q: %v", s.n, str, notFound(err))
			}
			str = p
		} else if s.n != "triggers" && !strings.HasPrefix(str, "#!") {
			return fail("%s: the script must start with #! (e.g. #!/bin/sh)", s.n)
		}
		if s.n == "triggers" {
			t.triggers = str
			t.scriptPos["triggers"] = !isText
			continue
		}
		t.scripts[s.n] = str
		t.scriptPos[s.n] = !isText
	}
	if t.overrides, err = interp.Strings(overrides, "lintian_overrides"); err != nil {
		return fail("%v", err)
	}
	if err := h.AddTarget(t); err != nil {
		return nil, err
	}
	return t, nil
}
