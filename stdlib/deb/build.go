package deb

// Building a deb() target: contents expanded, control fields and scripts resolved, the
// action key computed, the package written or taken from the cache.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/afero"
	"github.com/upds/upds/interp"
	"github.com/upds/upds/interp/cache"
	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/version"
	"go.starlark.net/starlark"
	"golang.org/x/sync/errgroup"
)

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
	if err := writeKey(a.Ctx, key, h, pkg, entries); err != nil {
		return err
	}
	source := key.Hex()
	pkg.Control.Set("X-Upds-Source", source)
	if err := Validate(pkg); err != nil {
		return t.usageError(err)
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
		if _, err := WriteFileContext(a.Ctx, dst, pkg); err != nil {
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
	if _, err := WriteFileContext(a.Ctx, tmp, pkg); err != nil {
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
func writeKey(ctx context.Context, key *cache.Key, h *interp.Host, pkg *Package, entries []sourced) error {
	ctl, err := pkg.Control.Bytes()
	if err != nil {
		return err
	}
	key.String(string(ctl))
	for _, n := range []string{"preinst", "postinst", "prerm", "postrm"} {
		key.String(n).String(string(pkg.Scripts[n]))
	}
	key.String(string(pkg.Triggers)).Strings(pkg.Conffiles).String(pkg.Compression).Int(pkg.MTime.Unix())
	if pkg.Compression == "zstd" { // libzstd's output changes with its version
		key.String(ZstdEncoder())
	}
	sorted := append([]sourced(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	sums, err := contentSums(ctx, h, sorted)
	if err != nil {
		return err
	}
	key.Int(int64(len(sorted)))
	for i, e := range sorted {
		key.String(e.Path).Int(int64(e.Type)).Int(int64(e.Mode)).String(e.Owner).String(e.Group).
			Int(int64(e.UID)).Int(int64(e.GID)).String(e.Target).Int(e.Size)
		if !e.MTime.IsZero() && e.MTime.Before(pkg.MTime) {
			key.Int(e.MTime.Unix())
		}
		if e.Type == TypeFile {
			key.Sum(sums[i])
		}
	}
	return nil
}

// contentSums returns the sha256 of every regular file among entries (from the stat cache
// when the file is unchanged), hashing on every core: a cold build of a large tree reads all
// of it here before the package is written.
func contentSums(ctx context.Context, h *interp.Host, entries []sourced) ([][32]byte, error) {
	sums := make([][32]byte, len(entries))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	const batch = 64 // files per goroutine: most are small, and the stat cache answers many
	for start := 0; start < len(entries); start += batch {
		g.Go(func() error {
			for i := start; i < min(start+batch, len(entries)); i++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				e := &entries[i]
				var err error
				switch {
				case e.Type != TypeFile:
				case e.data != nil:
					sums[i] = sha256Sum(e.data)
				case e.fi != nil:
					sums[i], err = h.Cache.FileSumInfo(e.fsys, e.name, e.statKey, e.fi)
				default:
					sums[i], err = h.Cache.FileSum(e.fsys, e.name, e.statKey)
				}
				if err != nil {
					return fmt.Errorf("hash %s: %w", e.name, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil { // the first error; the others stop at their next file
		return nil, err
	}
	return sums, nil
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
