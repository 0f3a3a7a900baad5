package deb

// The Starlark binding of the deb package: deb(), tree(), file(), directory(), link().

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/afero"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/interp/cache"
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
		kind := "owner"
		if group {
			_, known = WellKnownGID(o.name)
			kind = "group"
		}
		if !known {
			return nil, fmt.Errorf("%s: %q has no static Debian id: write %q with the id your preinst creates it with", what, o.name, o.name+":ID")
		}
		_ = kind
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
	if exclude != nil {
		for i := 0; i < exclude.Len(); i++ {
			s, ok := starlark.AsString(exclude.Index(i))
			if !ok {
				return nil, fmt.Errorf("tree: exclude: want strings")
			}
			c.exclude = append(c.exclude, s)
		}
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
	if conffiles != nil {
		for i := 0; i < conffiles.Len(); i++ {
			s, ok := starlark.AsString(conffiles.Index(i))
			if !ok {
				return fail("conffiles: want strings")
			}
			p, err := destPath(s, "conffiles")
			if err != nil {
				return fail("%v", err)
			}
			t.conffiles = append(t.conffiles, p)
		}
	}
	if notConf != nil {
		for i := 0; i < notConf.Len(); i++ {
			s, ok := starlark.AsString(notConf.Index(i))
			if !ok {
				return fail("not_conffiles: want strings")
			}
			t.notConf[path.Clean(s)] = true
		}
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
	if overrides != nil {
		for i := 0; i < overrides.Len(); i++ {
			s, ok := starlark.AsString(overrides.Index(i))
			if !ok {
				return fail("lintian_overrides: want strings")
			}
			t.overrides = append(t.overrides, s)
		}
	}
	if err := h.AddTarget(t); err != nil {
		return nil, err
	}
	return t, nil
}

// ---- building ----

// usageError marks a mistake in the package description found while building: it is reported
// at the deb() line with exit code 2, and nothing is written.
func (t *Target) usageError(err error) error {
	return &interp.Error{Pos: t.pos, Msg: fmt.Sprintf("deb %s: %v", t.name, err), Usage: true}
}

// sourced is an entry with what its cache key needs: where its content comes from.
type sourced struct {
	Entry
	fsys    afero.Fs
	name    string // path in fsys
	statKey string // absolute path for the stat cache ("" for in-memory content)
	fi      fs.FileInfo
	data    []byte // in-memory content
}

// Build writes the package (or takes it from the cache) into the output directory.
func (t *Target) Build(a *interp.Action) error {
	h := a.Host
	ver, err := t.Version()
	if err != nil {
		return t.usageError(fmt.Errorf("version: %v", err))
	}
	if _, err := version.Parse(ver); err != nil {
		return t.usageError(fmt.Errorf("version: %v", err))
	}
	arch, _ := t.resolvedArch()
	var entries []sourced
	var extraDepends []string
	snippets := map[string][]string{}
	archSpecific := false
	for _, v := range t.contents {
		switch c := v.(type) {
		case *content:
			es, err := t.expand(h, c)
			if err != nil {
				return t.usageError(err)
			}
			entries = append(entries, es...)
		case ContentsTarget:
			cs, err := c.Contents()
			if err != nil {
				return err
			}
			es, err := t.expandDir(cs.Dir, cs.Into)
			if err != nil {
				return err
			}
			entries = append(entries, es...)
			extraDepends = append(extraDepends, cs.Depends...)
			for n, s := range cs.Scripts {
				snippets[n] = append(snippets[n], string(s))
			}
			archSpecific = archSpecific || cs.ArchSpecific
		}
	}
	if archSpecific && arch == "all" {
		return t.usageError(errors.New(`arch "all", but its contents hold compiled code: use the machine architecture`))
	}
	maint := t.maintainer
	if maint == "" {
		maint = h.Project.Maintainer
	}
	mtime, err := clampTime(h.Env)
	if err != nil {
		return t.usageError(err)
	}
	// Documentation every package carries, unless BUILD.star provides its own.
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Path] = true
	}
	if t.docs {
		docDir := "/usr/share/doc/" + t.name
		if !have[docDir+"/copyright"] {
			entries = append(entries, memFile(docDir+"/copyright", copyrightFile(h.Project, t.name, maint, mtime)))
		}
		clog := docDir + "/changelog.gz"
		if strings.Contains(ver, "-") {
			clog = docDir + "/changelog.Debian.gz"
		}
		if !have[clog] {
			entries = append(entries, memFile(clog, changelogGz(t.name, ver, maint, mtime)))
		}
		if ov := t.lintianOverrides(entries); len(ov) > 0 && !have["/usr/share/lintian/overrides/"+t.name] {
			entries = append(entries, memFile("/usr/share/lintian/overrides/"+t.name, ov))
		}
	}
	// Control fields.
	var c control.Paragraph
	c.Set("Package", t.name)
	c.Set("Version", ver)
	c.Set("Architecture", arch)
	c.Set("Maintainer", maint)
	for _, f := range relationOrder {
		var parts []string
		for _, v := range t.relations[f] {
			switch d := v.(type) {
			case starlark.String:
				parts = append(parts, string(d))
			case *Target:
				dv, err := d.Version()
				if err != nil {
					return t.usageError(fmt.Errorf("%s: %s: %v", strings.ToLower(f), d.name, err))
				}
				parts = append(parts, fmt.Sprintf("%s (= %s)", d.name, dv))
			}
		}
		if f == "Depends" {
			parts = append(parts, extraDepends...)
		}
		if len(parts) > 0 {
			rs, err := control.ParseRelations(strings.Join(dedupe(parts), ", "))
			if err != nil {
				return t.usageError(fmt.Errorf("%s: %v", strings.ToLower(f), err))
			}
			c.Set(f, rs.String())
		}
	}
	section := t.section
	if section == "" {
		section = "misc"
	}
	c.Set("Section", section)
	if t.priority != "" {
		c.Set("Priority", t.priority)
	}
	home := t.homepage
	if home == "" {
		home = h.Project.Homepage
	}
	if home != "" {
		c.Set("Homepage", home)
	}
	c.Set("Description", description(t.name, h.Project.Name, t.description))
	for _, f := range t.fields {
		c.Set(f[0], f[1])
	}
	// Scripts.
	scripts := map[string][]byte{}
	for _, n := range []string{"preinst", "postinst", "prerm", "postrm"} {
		text := t.scripts[n]
		if t.scriptPos[n] {
			b, err := afero.ReadFile(h.FS, text)
			if err != nil {
				return t.usageError(fmt.Errorf("%s: %v", n, err))
			}
			text = string(b)
		}
		s, err := mergeScript(n, text, snippets[n])
		if err != nil {
			return t.usageError(err)
		}
		if s != nil {
			scripts[n] = s
		}
	}
	var triggers []byte
	if t.triggers != "" {
		triggers = []byte(t.triggers)
		if t.scriptPos["triggers"] {
			if triggers, err = afero.ReadFile(h.FS, t.triggers); err != nil {
				return t.usageError(fmt.Errorf("triggers: %v", err))
			}
		}
	}
	// Conffiles: the listed ones, plus every regular file under /etc unless excluded.
	conf := map[string]bool{}
	for _, p := range t.conffiles {
		conf[p] = true
	}
	for _, e := range entries {
		if e.Type == TypeFile && strings.HasPrefix(e.Path, "/etc/") && !t.notConf[e.Path] {
			conf[e.Path] = true
		}
	}
	conffiles := make([]string, 0, len(conf))
	for p := range conf {
		conffiles = append(conffiles, p)
	}
	sort.Strings(conffiles)

	pkg := &Package{Control: c, Conffiles: conffiles, Scripts: scripts, Triggers: triggers,
		Compression: t.compression, MTime: mtime}
	for _, e := range entries {
		pkg.Entries = append(pkg.Entries, e.Entry)
	}
	// The action key: everything that goes into the package.
	key := cache.NewKey("deb/1", h.ToolVersion)
	if err := writeKey(key, h, pkg, entries); err != nil {
		return err
	}
	source := key.Hex()
	pkg.Control.Set("X-Upds-Source", source)
	if err := Validate(pkg); err != nil {
		return t.usageError(trimPrefix(err, t.name))
	}
	filename := Filename(pkg.Control)
	outDir := h.OutDir()
	dst := filepath.Join(outDir, filename)
	if obj, ok := h.Cache.Lookup("deb", source); ok {
		if err := cache.LinkOut(obj, dst); err != nil {
			return err
		}
		a.Cached = true
		t.built = dst
		return nil
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	if h.Cache.Disabled() {
		if _, err := WriteFile(dst, pkg); err != nil {
			return err
		}
		t.built = dst
		return nil
	}
	tmpDir := filepath.Join(h.Cache.Dir(), "tmp")
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return err
	}
	pkg.TempDir = tmpDir
	tmp := filepath.Join(tmpDir, source+".deb")
	if _, err := WriteFile(tmp, pkg); err != nil {
		return err
	}
	obj, err := h.Cache.Put("deb", source, tmp)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := cache.LinkOut(obj, dst); err != nil {
		return err
	}
	t.built = dst
	return nil
}

func trimPrefix(err error, name string) error {
	return errors.New(strings.TrimPrefix(err.Error(), "deb "+name+": "))
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

// writeKey mixes every input of the package into key: control, scripts, conffiles, options
// and each entry with its content hash (from the stat cache when the file is unchanged).
func writeKey(key *cache.Key, h *interp.Host, pkg *Package, entries []sourced) error {
	ctl, err := pkg.Control.Bytes()
	if err != nil {
		return err
	}
	key.String(string(ctl))
	for _, n := range []string{"preinst", "postinst", "prerm", "postrm"} {
		key.String(n).String(string(pkg.Scripts[n]))
	}
	key.String(string(pkg.Triggers)).Strings(pkg.Conffiles).String(pkg.Compression).Int(pkg.MTime.Unix())
	sorted := append([]sourced(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	key.Int(int64(len(sorted)))
	for _, e := range sorted {
		key.String(e.Path).Int(int64(e.Type)).Int(int64(e.Mode)).String(e.Owner).String(e.Group).
			Int(int64(e.UID)).Int(int64(e.GID)).String(e.Target).Int(e.Size)
		if !e.MTime.IsZero() && e.MTime.Before(pkg.MTime) {
			key.Int(e.MTime.Unix())
		}
		if e.Type != TypeFile {
			continue
		}
		if e.data != nil {
			key.Sum(sha256Sum(e.data))
			continue
		}
		var sum [32]byte
		var err error
		if e.fi != nil {
			sum, err = h.Cache.FileSumInfo(e.fsys, e.name, e.statKey, e.fi)
		} else {
			sum, err = h.Cache.FileSum(e.fsys, e.name, e.statKey)
		}
		if err != nil {
			return fmt.Errorf("hash %s: %w", e.name, err)
		}
		key.Sum(sum)
	}
	return nil
}

// clampTime is the mtime clamp: SOURCE_DATE_EPOCH when set, otherwise DefaultMTime.
func clampTime(env []string) (time.Time, error) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "SOURCE_DATE_EPOCH="); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 {
				return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
			}
			return time.Unix(n, 0).UTC(), nil
		}
	}
	return DefaultMTime(), nil
}

func (t *Target) owners(c *content) (owner, group string, uid, gid int) {
	o, g := t.owner, t.group
	if c != nil && c.owner != nil {
		o = c.owner
	}
	if c != nil && c.group != nil {
		g = c.group
	}
	owner, uid = "root", 0
	if o != nil {
		owner, uid = o.name, o.id
	}
	group, gid = "root", 0
	switch {
	case g != nil:
		group, gid = g.name, g.id
	case o != nil && o.id < 0:
		// owner = "www-data" means www-data:www-data when such a group exists.
		if id, ok := WellKnownGID(o.name); ok {
			group, gid = o.name, id
		}
	}
	return
}

// isBytecode reports a __pycache__ directory or a .pyc file: they stay out of packages, as
// Python writes them on the server.
func isBytecode(rel string) bool {
	base := path.Base(rel)
	return base == "__pycache__" || strings.HasSuffix(base, ".pyc")
}

// expand turns a tree(), file(), directory() or link() into entries.
func (t *Target) expand(h *interp.Host, c *content) ([]sourced, error) {
	owner, group, uid, gid := t.owners(c)
	base := Entry{Owner: owner, Group: group, UID: uid, GID: gid}
	switch c.kind {
	case kindDir:
		e := base
		e.Path, e.Type, e.Mode = c.dest, TypeDir, 0o755
		if c.hasMode {
			e.Mode = c.mode
		}
		return []sourced{{Entry: e}}, nil
	case kindLink:
		e := Entry{Path: c.dest, Type: TypeSymlink, Target: c.target, Owner: "root", Group: "root"}
		return []sourced{{Entry: e}}, nil
	case kindFile:
		fi, err := h.FS.Stat(c.src)
		if err != nil {
			return nil, fmt.Errorf("file %q: %v", c.src, notFound(err))
		}
		return []sourced{t.fileEntry(h, base, c, c.src, c.dest, fi)}, nil
	}
	// tree
	var out []sourced
	rl, _ := h.FS.(afero.LinkReader)
	err := afero.Walk(h.FS, c.src, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(filepath.ToSlash(p), c.src), "/")
		if rel != "" && (isBytecode(rel) || matchAny(c.exclude, rel)) {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dest := c.dest
		if rel != "" {
			dest = c.dest + "/" + rel
		}
		// afero.Walk reports entries with Lstat where the filesystem can: symlinks stay links.
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if rl == nil {
				return fmt.Errorf("tree %q: %s is a symlink and this filesystem cannot read links", c.src, rel)
			}
			target, err := rl.ReadlinkIfPossible(p)
			if err != nil {
				return err
			}
			e := base
			e.Path, e.Type, e.Target = dest, TypeSymlink, target
			out = append(out, sourced{Entry: e})
		case fi.IsDir():
			e := base
			e.Path, e.Type, e.Mode = dest, TypeDir, 0o755
			out = append(out, sourced{Entry: e})
		case fi.Mode().IsRegular():
			out = append(out, t.fileEntry(h, base, c, p, dest, fi))
		default:
			return fmt.Errorf("tree %q: %s is not a file, directory or symlink", c.src, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func matchAny(patterns []string, rel string) bool {
	for _, p := range patterns {
		if interp.MatchPath(p, rel) {
			return true
		}
	}
	return false
}

func (t *Target) fileEntry(h *interp.Host, base Entry, c *content, src, dest string, fi fs.FileInfo) sourced {
	e := base
	e.Path, e.Type, e.Size, e.MTime = dest, TypeFile, fi.Size(), fi.ModTime()
	switch {
	case c != nil && c.hasMode:
		e.Mode = c.mode
	case fi.Mode()&0o111 != 0:
		e.Mode = 0o755
	default:
		e.Mode = 0o644
	}
	fsys := h.FS
	e.Open = func() (io.ReadCloser, error) { return fsys.Open(src) }
	statKey := ""
	if h.Root != "" {
		statKey = filepath.Join(h.Root, filepath.FromSlash(src))
	}
	return sourced{Entry: e, fsys: fsys, name: src, statKey: statKey, fi: fi}
}

// expandDir packages a built directory on the real filesystem (a venv) at into.
func (t *Target) expandDir(dir, into string) ([]sourced, error) {
	owner, group, uid, gid := t.owners(nil)
	base := Entry{Owner: owner, Group: group, UID: uid, GID: gid}
	osfs := afero.NewOsFs()
	var out []sourced
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		dest := into
		if rel != "." {
			dest = into + "/" + filepath.ToSlash(rel)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := base
		e.Path = dest
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Type, e.Target = TypeSymlink, target
			out = append(out, sourced{Entry: e})
		case d.IsDir():
			e.Type, e.Mode = TypeDir, 0o755
			out = append(out, sourced{Entry: e})
		case d.Type().IsRegular():
			e.Type, e.Size, e.MTime = TypeFile, fi.Size(), fi.ModTime()
			e.Mode = 0o644
			if fi.Mode()&0o111 != 0 {
				e.Mode = 0o755
			}
			name := p
			e.Open = func() (io.ReadCloser, error) { return os.Open(name) }
			out = append(out, sourced{Entry: e, fsys: osfs, name: p, statKey: p, fi: fi})
		default:
			return fmt.Errorf("%s: not a file, directory or symlink", p)
		}
		return nil
	})
	return out, err
}

func memFile(p string, data []byte) sourced {
	return sourced{Entry: Entry{Path: p, Type: TypeFile, Mode: 0o644, Size: int64(len(data)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}, data: data}
}

func sha256Sum(b []byte) [32]byte {
	return cache.SumBytes(b)
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
	if !strings.HasSuffix(first, "/sh") && !strings.Contains(first, "/sh ") && !strings.HasSuffix(first, "bash") && !strings.Contains(first, "bash ") {
		return nil, fmt.Errorf("%s: not a shell script: put a line #UPDS# where upds may add its own commands, or write it in sh", name)
	}
	return []byte(first + "\n" + body.String() + rest), nil
}

// copyrightFile is /usr/share/doc/NAME/copyright in the machine-readable format.
func copyrightFile(p interp.Project, name, maint string, mtime time.Time) []byte {
	lic := p.License
	if lic == "" {
		lic = "other"
	}
	holder := p.Copyright
	if holder == "" {
		holder = fmt.Sprintf("%d %s", mtime.Year(), maint)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: %s\n", orDefault(p.Name, name))
	if p.Homepage != "" {
		fmt.Fprintf(&b, "Source: %s\n", p.Homepage)
	}
	fmt.Fprintf(&b, "\nFiles: *\nCopyright: %s\nLicense: %s\n", holder, lic)
	if p.License == "" {
		b.WriteString(" No license was declared: see project(license = ...) in BUILD.star.\n")
	}
	return []byte(b.String())
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// changelogGz is a one-entry Debian changelog for the version, gzipped reproducibly.
func changelogGz(name, ver, maint string, mtime time.Time) []byte {
	text := fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * Built with upds.\n\n -- %s  %s\n",
		name, ver, maint, mtime.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.ModTime = time.Time{}
	zw.Write([]byte(text))
	zw.Close()
	return buf.Bytes()
}

// lintianOverrides returns the overrides for the layout a Python deployment uses on purpose:
// code under /srv or /opt, virtualenvs under /var/virtualenvs.
func (t *Target) lintianOverrides(entries []sourced) []byte {
	var lines []string
	has := func(prefix string) bool {
		for _, e := range entries {
			if strings.HasPrefix(e.Path, prefix) {
				return true
			}
		}
		return false
	}
	if has("/srv/") {
		lines = append(lines, "dir-or-file-in-srv *")
	}
	if has("/opt/") {
		lines = append(lines, "dir-or-file-in-opt *")
	}
	if has("/var/virtualenvs/") {
		lines = append(lines, "non-standard-dir-in-var *")
	}
	if has("/var/virtualenvs/") || has("/srv/") || has("/opt/") {
		// The venv and the code live outside the FHS on purpose (one self-contained tree).
		lines = append(lines, "file-in-unusual-dir *")
	}
	for _, c := range t.contents {
		if _, ok := c.(ContentsTarget); ok {
			// Console scripts run the venv's own interpreter.
			lines = append(lines, "unusual-interpreter *")
			break
		}
	}
	if len(t.contents) == 0 {
		lines = append(lines, "empty-binary-package")
	}
	lines = append(lines, "unknown-field X-Upds-Source")
	lines = append(lines, t.overrides...)
	if len(lines) == 0 {
		return nil
	}
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s: %s\n", t.name, l)
	}
	return []byte(b.String())
}

var _ = hex.EncodeToString
