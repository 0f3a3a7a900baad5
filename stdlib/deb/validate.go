package deb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/upds/upds/interp/cache"
	"github.com/upds/upds/stdlib/deb/control"
)

// Plan is a package that passed Validate, ready to be written: its entries sorted, with
// their parent directories, owners and modes resolved, its control fields in dpkg-gencontrol's
// order. Prepare makes one; writing it checks nothing again. A Plan is written by one Write at
// a time (they take turns).
type Plan struct {
	pkg *Package
	// The entries (records.go): records in arena order, order sorts them by path, the root
	// directory first.
	arena  arena
	recs   recs
	order  []uint32
	owners []owner
	srcs   sources
	opens  []func() (io.ReadCloser, error)
	col    collector            // while the entries are added
	files  int                  // regular files
	links  map[uint32]linkGroup // the names of files with hard links (hardlinks.go)

	control   control.Paragraph
	conffiles []string
	comp      *compression
	level     int
	mtime     time.Time
	installed int64

	writing sync.Mutex // records hold the md5s of the Write in progress

	// A build that computes its key as it writes the package (build.go) sets these: fileSums
	// gets the sums of every regular file (from the hashing goroutines; then every file is
	// hashed, and its stat fingerprint is in the record), beforeControl is called between
	// data.tar and control.tar.
	fileSums      func(i uint32, sums cache.Sums)
	beforeControl func() error
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

// Prepare validates p as Validate does and returns the plan that writes it. The plan keeps
// each entry in a compact record, not the Entry; p must not change until the plan is written.
func Prepare(p *Package) (*Plan, error) {
	pl, err := newPlan(p)
	if err != nil {
		return nil, err
	}
	for i := range p.Entries {
		if err := pl.add(&p.Entries[i], i); err != nil {
			return nil, err
		}
	}
	if p.Walk != nil {
		if err := p.Walk(func(e Entry) error { return pl.add(&e, -1) }); err != nil {
			return nil, err
		}
	}
	if err := pl.finish(); err != nil {
		return nil, err
	}
	return pl, nil
}

// newPlan checks the options of p and returns a Plan without entries.
func newPlan(p *Package) (*Plan, error) {
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
	pl.ownerOf(ownerKey{}) // 0: root:root, the owner of implicit directories
	return pl, nil
}

// finish checks what the entries added make of the package: the entries together, conffiles,
// scripts and control.
func (pl *Plan) finish() error {
	if err := pl.sortEntries(); err != nil {
		return err
	}
	if err := pl.prepareConffiles(); err != nil {
		return err
	}
	if err := checkScripts(pl.pkg.Scripts, pl.pkg.Triggers); err != nil {
		return err
	}
	if err := pl.prepareMembers(); err != nil {
		return err
	}
	var err error
	pl.control, err = prepareControl(pl.pkg.Control, pl.installed)
	return err
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
	if p == ".." || strings.HasPrefix(p, "../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "/../") {
		return fmt.Errorf("path %q escapes the package root", p)
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
		r, ok := pl.find(c)
		if !ok {
			return fmt.Errorf("conffile %s: not in the package", c)
		}
		if r.typ != TypeFile {
			return fmt.Errorf("conffile %s: is a %s, not a regular file", c, r.typ)
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
