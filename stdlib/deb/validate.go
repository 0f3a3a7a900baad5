package deb

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/upds/upds/stdlib/deb/control"
)

// item is an entry ready to be written: ids resolved, mode defaulted, parents present.
type item struct {
	Entry
	uname, gname string
	uid, gid     int
	mode         int64 // tar mode: permissions plus 04000/02000/01000
	mtime        time.Time
}

// Plan is a package that passed Validate, ready to be written: its entries sorted, with
// their parent directories, owners and modes resolved, its control fields in dpkg-gencontrol's
// order. Prepare makes one; writing it checks nothing again.
type Plan struct {
	pkg       *Package
	items     []item // sorted, the root directory first
	control   control.Paragraph
	conffiles []string
	comp      *compression
	level     int
	mtime     time.Time
	installed int64
}

// relationFields are the binary package relation fields, in dpkg-gencontrol's order.
var relationFields = []string{
	"Pre-Depends", "Depends", "Recommends", "Suggests", "Enhances", "Conflicts", "Breaks",
	"Replaces", "Provides", "Built-Using", "Static-Built-Using",
}

// fieldOrder is dpkg-gencontrol's field order for binary packages (Dpkg::Control::FieldsCore).
var fieldOrder = []string{
	"Package", "Package-Type", "Source", "Version", "Kernel-Version", "Built-For-Profiles",
	"Auto-Built-Package", "Architecture", "Subarchitecture", "Installer-Menu-Item",
	"Build-Essential", "Essential", "Protected", "Origin", "Bugs", "Maintainer", "Installed-Size",
	"Pre-Depends", "Depends", "Recommends", "Suggests", "Enhances", "Conflicts", "Breaks",
	"Replaces", "Provides", "Built-Using", "Static-Built-Using", "Section", "Priority",
	"Multi-Arch", "Homepage", "Description", "Tag", "Task",
}

// Validate checks everything that can be checked before writing: control fields (name,
// version, architecture, relations, description), entry paths (absolute, clean, not escaping
// the root, no duplicates, parents are directories), types, owners and ids, conffiles, scripts
// and triggers. Write calls it first.
func Validate(p *Package) error {
	_, err := Prepare(p)
	return err
}

// Prepare validates p as Validate does and returns the plan that writes it. p must not change
// until the plan is written.
func Prepare(p *Package) (*Plan, error) {
	if p == nil {
		return nil, errors.New("nil package")
	}
	pl := &Plan{pkg: p, mtime: p.MTime}
	if pl.mtime.IsZero() {
		pl.mtime = DefaultMTime()
	}
	pl.mtime = pl.mtime.Truncate(time.Second)
	if pl.mtime.Unix() < 0 {
		return nil, fmt.Errorf("mtime %s is before 1970", pl.mtime)
	}
	var ok bool
	if pl.comp, ok = compressionNamed(p.Compression); !ok {
		return nil, fmt.Errorf("compression %q: want %s", p.Compression, writableNames(", ", " or "))
	}
	var err error
	if pl.level, err = pl.comp.level(p.Level); err != nil {
		return nil, err
	}
	if err := pl.prepareEntries(); err != nil {
		return nil, err
	}
	if err := pl.prepareConffiles(); err != nil {
		return nil, err
	}
	if err := checkScripts(p.Scripts, p.Triggers); err != nil {
		return nil, err
	}
	if err := pl.prepareMembers(); err != nil {
		return nil, err
	}
	if pl.control, err = prepareControl(p.Control, pl.installed); err != nil {
		return nil, err
	}
	return pl, nil
}

// CheckPath reports whether p is a valid entry path: absolute, clean, not the root, no ".."
// element, no newline or NUL.
func CheckPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.ContainsAny(p, "\n\x00"):
		return fmt.Errorf("path %q: contains a newline or NUL", p)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is not absolute", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("path %q escapes the package root", p)
		}
	}
	if p == "/" {
		return errors.New(`path "/": the root directory is implicit`)
	}
	if path.Clean(p) != p {
		return fmt.Errorf("path %q is not clean (want %q)", p, path.Clean(p))
	}
	return nil
}

func tarMode(m fs.FileMode, t Type) int64 {
	if t == TypeSymlink {
		return 0o777
	}
	if m.Perm() == 0 && m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == 0 {
		if t == TypeDir {
			return 0o755
		}
		return 0o644
	}
	return unixMode(m)
}

func (pl *Plan) prepareEntries() error {
	items := make([]item, 0, len(pl.pkg.Entries)+8)
	byPath := make(map[string]int, len(pl.pkg.Entries))
	for _, e := range pl.pkg.Entries {
		if err := CheckPath(e.Path); err != nil {
			return fmt.Errorf("entry: %w", err)
		}
		if _, dup := byPath[e.Path]; dup {
			return fmt.Errorf("entry %s: duplicate path", e.Path)
		}
		it := item{Entry: e}
		switch e.Type {
		case TypeFile:
			if e.Open == nil {
				return fmt.Errorf("entry %s: regular file without content (Open is nil)", e.Path)
			}
			if e.Size < 0 {
				return fmt.Errorf("entry %s: negative size", e.Path)
			}
		case TypeDir:
		case TypeSymlink:
			if e.Target == "" {
				return fmt.Errorf("entry %s: symlink without target", e.Path)
			}
			if strings.ContainsAny(e.Target, "\n\x00") {
				return fmt.Errorf("entry %s: symlink target contains a newline or NUL", e.Path)
			}
		case TypeHardlink:
			if err := CheckPath(e.Target); err != nil {
				return fmt.Errorf("entry %s: hard link: %w", e.Path, err)
			}
		default:
			return fmt.Errorf("entry %s: unsupported type %s (want file, dir, symlink or hardlink)", e.Path, e.Type)
		}
		var err error
		if it.uname, it.uid, err = resolveID("user", e.Owner, e.UID, wellKnownUsers); err != nil {
			return fmt.Errorf("entry %s: %w", e.Path, err)
		}
		if it.gname, it.gid, err = resolveID("group", e.Group, e.GID, wellKnownGroups); err != nil {
			return fmt.Errorf("entry %s: %w", e.Path, err)
		}
		it.mode = tarMode(e.Mode, e.Type)
		it.mtime = pl.mtime
		if !e.MTime.IsZero() && e.MTime.Before(pl.mtime) {
			it.mtime = e.MTime.Truncate(time.Second)
			if it.mtime.Unix() < 0 {
				it.mtime = time.Unix(0, 0)
			}
		}
		byPath[e.Path] = len(items)
		items = append(items, it)
	}
	// Add missing parents; check that existing parents are directories.
	n := len(items)
	for i := 0; i < n; i++ {
		for dir := path.Dir(items[i].Path); dir != "/"; dir = path.Dir(dir) {
			if j, ok := byPath[dir]; ok {
				if items[j].Type != TypeDir {
					return fmt.Errorf("entry %s: parent %s is a %s, not a directory", items[i].Path, dir, items[j].Type)
				}
				break // its own parents are handled when it is visited (or were added with it)
			}
			byPath[dir] = len(items)
			items = append(items, item{
				Entry: Entry{Path: dir, Type: TypeDir},
				uname: "root", gname: "root", mode: 0o755, mtime: pl.mtime,
			})
		}
	}
	root := item{Entry: Entry{Path: "/", Type: TypeDir}, uname: "root", gname: "root", mode: 0o755, mtime: pl.mtime}
	items = append(items, root)
	sort.Slice(items, func(a, b int) bool { return items[a].Path < items[b].Path })
	if err := pl.resolveHardlinks(items); err != nil {
		return err
	}
	// Installed-Size, dpkg-gencontrol's rule: regular files (and symlinks, whose size is the
	// length of the target) count their size rounded up to KiB; everything else 1 KiB.
	var kib int64
	for _, it := range items {
		switch it.Type {
		case TypeFile:
			kib += (it.Size + 1023) / 1024
		case TypeSymlink:
			kib += (int64(len(it.Target)) + 1023) / 1024
		case TypeHardlink: // counted once, with its file
		default:
			kib++
		}
	}
	pl.items, pl.installed = items, kib
	return nil
}

func (pl *Plan) prepareConffiles() error {
	seen := map[string]bool{}
	for _, c := range pl.pkg.Conffiles {
		if err := CheckPath(c); err != nil {
			return fmt.Errorf("conffile: %w", err)
		}
		if seen[c] {
			return fmt.Errorf("conffile %s: listed twice", c)
		}
		seen[c] = true
		i := sort.Search(len(pl.items), func(i int) bool { return pl.items[i].Path >= c })
		if i == len(pl.items) || pl.items[i].Path != c {
			return fmt.Errorf("conffile %s: not in the package", c)
		}
		if pl.items[i].Type != TypeFile {
			return fmt.Errorf("conffile %s: is a %s, not a regular file", c, pl.items[i].Type)
		}
		pl.conffiles = append(pl.conffiles, c)
	}
	sort.Strings(pl.conffiles)
	return nil
}

var triggerDirectives = []string{"interest", "interest-await", "interest-noawait", "activate", "activate-await", "activate-noawait"}

func checkScripts(scripts map[string][]byte, triggers []byte) error {
	for name, body := range scripts {
		if !isScript(name) {
			return fmt.Errorf("script %q: want one of %s", name, strings.Join(scriptNames, ", "))
		}
		if !bytes.HasPrefix(body, []byte("#!")) {
			return fmt.Errorf("script %s: must start with \"#!\" (an interpreter line such as #!/bin/sh)", name)
		}
	}
	for i, line := range strings.Split(string(triggers), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		ok := len(f) == 2
		if ok {
			ok = false
			for _, d := range triggerDirectives {
				ok = ok || f[0] == d
			}
		}
		if !ok {
			return fmt.Errorf("triggers line %d: %q: want \"DIRECTIVE TRIGGER-NAME\" with DIRECTIVE one of %s", i+1, line, strings.Join(triggerDirectives, ", "))
		}
	}
	return nil
}

// prepareControl checks the control fields and returns the paragraph to write: Installed-Size
// set, relations canonical, fields in dpkg-gencontrol's order.
func prepareControl(c control.Paragraph, installed int64) (control.Paragraph, error) {
	for _, f := range []string{"Package", "Version", "Architecture", "Maintainer", "Description"} {
		if strings.TrimSpace(c.Get(f)) == "" {
			return control.Paragraph{}, fmt.Errorf("control: missing %s field", f)
		}
	}
	out := c.Clone()
	for i, f := range out.Fields {
		switch {
		case strings.EqualFold(f.Name, "Package"):
			out.Fields[i].Value = strings.TrimSpace(f.Value)
			if err := control.ValidPackageName(out.Fields[i].Value); err != nil {
				return control.Paragraph{}, fmt.Errorf("control: %w", err)
			}
		case strings.EqualFold(f.Name, "Version"):
			out.Fields[i].Value = strings.TrimSpace(f.Value)
			if err := control.ValidVersion(out.Fields[i].Value); err != nil {
				return control.Paragraph{}, fmt.Errorf("control: %w", err)
			}
		case strings.EqualFold(f.Name, "Architecture"):
			out.Fields[i].Value = strings.TrimSpace(f.Value)
			a := out.Fields[i].Value
			if err := control.ValidArchitecture(a); err != nil {
				return control.Paragraph{}, fmt.Errorf("control: %w", err)
			}
			if a == "any" || strings.HasSuffix(a, "-any") || strings.HasPrefix(a, "any-") {
				return control.Paragraph{}, fmt.Errorf("control: architecture %q is a wildcard; a binary package needs a concrete one or \"all\"", a)
			}
		case strings.EqualFold(f.Name, "Description"):
			syn, _, _ := strings.Cut(f.Value, "\n")
			if strings.TrimSpace(syn) == "" {
				return control.Paragraph{}, errors.New("control: Description: the first line (the synopsis) is empty")
			}
		case strings.EqualFold(f.Name, "Installed-Size"):
			out.Fields[i].Value = ""
		}
		for _, rf := range relationFields {
			if strings.EqualFold(f.Name, rf) {
				rs, err := control.ParseRelations(strings.ReplaceAll(f.Value, "\n", " "))
				if err != nil {
					return control.Paragraph{}, fmt.Errorf("control: %s: %w", rf, err)
				}
				if err := rs.CheckBinary(); err != nil {
					return control.Paragraph{}, fmt.Errorf("control: %s: %w", rf, err)
				}
				out.Fields[i].Value = rs.String()
			}
		}
	}
	out.Set("Installed-Size", strconv.FormatInt(installed, 10))
	ordered := control.Paragraph{Fields: make([]control.Field, 0, len(out.Fields))}
	for _, name := range fieldOrder {
		for _, f := range out.Fields {
			if strings.EqualFold(f.Name, name) && strings.TrimSpace(f.Value) != "" {
				ordered.Fields = append(ordered.Fields, control.Field{Name: name, Value: f.Value})
			}
		}
	}
	for _, f := range out.Fields {
		known := false
		for _, name := range fieldOrder {
			known = known || strings.EqualFold(f.Name, name)
		}
		if !known && strings.TrimSpace(f.Value) != "" {
			ordered.Fields = append(ordered.Fields, f)
		}
	}
	if _, err := ordered.Bytes(); err != nil {
		return control.Paragraph{}, fmt.Errorf("control: %w", err)
	}
	return ordered, nil
}

// DefaultGzipLevel is the gzip level used when Package.Level is 0. klauspost/compress's level 7
// gives about the size of zlib's (and so dpkg-deb's) level 6, at a fraction of its time.
const DefaultGzipLevel = 7

// Control returns the control file the package gets: the fields checked and in order,
// Installed-Size computed.
func (pl *Plan) Control() control.Paragraph { return pl.control.Clone() }
