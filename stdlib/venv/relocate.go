package venv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/upds/upds/interp/atomicfile"
)

// maxShebang is the longest "#!" line Linux runs (BINPRM_BUF_SIZE 128 including the newline);
// pip writes a /bin/sh trampoline instead when the interpreter path is longer.
const maxShebang = 127

// relocator rewrites a venv built at root so that it works at into.
type relocator struct {
	root      string   // the staging venv
	into      string   // its path on the server
	python    string   // the versioned system interpreter, /usr/bin/python3.11
	forbidden []string // paths that must not appear anywhere afterwards (root, the work dir)

	strip bool // strip debugging symbols from compiled files, as dh_strip does
	ctx   context.Context
	log   io.Writer

	modified map[string]bool // files rewritten, relative to root
	removed  map[string]bool // files deleted, relative to root
	elfFiles []string        // compiled files, relative to root
}

func (r *relocator) run() error {
	r.modified = map[string]bool{}
	r.removed = map[string]bool{}
	if err := r.removeBytecode(); err != nil {
		return err
	}
	if err := r.pyvenvCfg(); err != nil {
		return err
	}
	if err := r.interpreterLinks(); err != nil {
		return err
	}
	if err := r.dropDirectURLs(); err != nil {
		return err
	}
	if err := r.rewriteFiles(); err != nil {
		return err
	}
	if r.strip {
		if err := r.stripELF(); err != nil {
			return err
		}
	}
	if err := r.normalizeModes(); err != nil {
		return err
	}
	if err := r.updateRecords(); err != nil {
		return err
	}
	return r.scan()
}

// removeBytecode removes __pycache__ directories and .pyc/.pyo files: the postinst compiles
// them on the server, with the right paths inside.
func (r *relocator) removeBytecode() error {
	var dirs []string
	err := filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "__pycache__" {
			dirs = append(dirs, p)
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && (strings.HasSuffix(p, ".pyc") || strings.HasSuffix(p, ".pyo")) {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove bytecode: %w", err)
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("remove bytecode: %w", err)
		}
	}
	return nil
}

// pyvenvCfg points home at the interpreter's directory and drops the "command" line, which
// records the build machine's staging path (Python 3.11+).
func (r *relocator) pyvenvCfg() error {
	p := filepath.Join(r.root, "pyvenv.cfg")
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("pyvenv.cfg: %w", err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		k, _, _ := strings.Cut(line, "=")
		switch strings.TrimSpace(k) {
		case "command":
			continue
		case "home":
			line = "home = " + filepath.Dir(r.python)
		case "executable":
			line = "executable = " + r.python
		}
		out = append(out, line)
	}
	if err := os.WriteFile(p, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("pyvenv.cfg: %w", err)
	}
	return nil
}

// interpreterLinks makes bin/python, bin/python3 and bin/python3.X point straight at the
// versioned system interpreter, so that a change of /usr/bin/python3 (a newer default Python)
// does not move the venv to an interpreter its compiled modules were not built for.
func (r *relocator) interpreterLinks() error {
	bin := filepath.Join(r.root, "bin")
	ents, err := os.ReadDir(bin)
	if err != nil {
		return fmt.Errorf("bin: %w", err)
	}
	for _, e := range ents {
		if e.Type()&fs.ModeSymlink == 0 || !strings.HasPrefix(e.Name(), "python") {
			continue
		}
		p := filepath.Join(bin, e.Name())
		if err := os.Remove(p); err != nil {
			return err
		}
		if err := os.Symlink(r.python, p); err != nil {
			return err
		}
	}
	return nil
}

// rewriteFiles replaces the staging path with into in every text file (scripts, activate
// scripts, .pth files, direct_url.json, RECORD) and relocates absolute symlinks. Binary files
// are not edited: a staging path left in one fails the scan.
func (r *relocator) rewriteFiles() error {
	old := []byte(r.root)
	sc := newScanner(old)
	return filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rp, _ := filepath.Rel(r.root, p)
		if d.Type()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if t == r.root || strings.HasPrefix(t, r.root+"/") {
				if err := os.Remove(p); err != nil {
					return err
				}
				return os.Symlink(r.into+strings.TrimPrefix(t, r.root), p)
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		isELF, found, err := sc.scan(p)
		if err != nil {
			return err
		}
		if isELF {
			r.elfFiles = append(r.elfFiles, rp)
		}
		if !found || isELF {
			return nil // binary files are not edited; the scan reports a path left in one
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.IndexByte(data, 0) >= 0 {
			return nil
		}
		out := data
		if bytes.HasPrefix(out, []byte("#!")) {
			out = r.shebang(out)
		}
		out = bytes.ReplaceAll(out, old, []byte(r.into))
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, out, info.Mode().Perm()); err != nil {
			return err
		}
		r.modified[rp] = true
		return nil
	})
}

// shebang relocates a script's interpreter line. pip writes "#!/STAGING/bin/python" or, when
// that is longer than the kernel allows, a trampoline:
//
//	#!/bin/sh
//	'''exec' /STAGING/bin/python "$0" "$@"
//	' '''
//
// Both become "#!INTO/bin/python" when that fits, and the trampoline with INTO otherwise.
func (r *relocator) shebang(data []byte) []byte {
	prefix := []byte(r.root + "/")
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	var interp []byte
	switch {
	case bytes.HasPrefix(first, append([]byte("#!"), prefix...)):
		interp = first[2:]
	case bytes.Equal(first, []byte("#!/bin/sh")):
		second, rest2, ok := bytes.Cut(rest, []byte("\n"))
		third, rest3, ok3 := bytes.Cut(rest2, []byte("\n"))
		if !ok || !bytes.HasPrefix(second, []byte("'''exec' ")) || !bytes.HasSuffix(second, []byte(` "$0" "$@"`)) {
			return data
		}
		if !ok3 {
			third, rest3 = rest2, nil
		}
		if !bytes.Equal(bytes.TrimSpace(third), []byte("' '''")) {
			return data
		}
		interp = bytes.TrimSuffix(bytes.TrimPrefix(second, []byte("'''exec' ")), []byte(` "$0" "$@"`))
		if len(interp) >= 2 && interp[0] == '"' && interp[len(interp)-1] == '"' {
			interp = interp[1 : len(interp)-1]
		}
		if !bytes.HasPrefix(interp, prefix) {
			return data
		}
		rest = rest3
	default:
		return data
	}
	newInterp := bytes.Replace(interp, []byte(r.root), []byte(r.into), 1)
	var b bytes.Buffer
	if len(newInterp)+2 <= maxShebang && !bytes.ContainsAny(newInterp, " \t") {
		b.WriteString("#!")
		b.Write(newInterp)
		b.WriteString("\n")
	} else {
		b.WriteString("#!/bin/sh\n'''exec' ")
		b.Write(newInterp)
		b.WriteString(" \"$0\" \"$@\"\n' '''\n")
	}
	b.Write(rest)
	return b.Bytes()
}

// updateRecords refreshes the sha256 and size of rewritten files in the RECORD files of the
// installed distributions, so that the metadata stays true.
func (r *relocator) updateRecords() error {
	if len(r.modified) == 0 && len(r.removed) == 0 {
		return nil
	}
	records, err := filepath.Glob(filepath.Join(r.root, "lib", "python*", "site-packages", "*.dist-info", "RECORD"))
	if err != nil {
		return err
	}
	for _, rec := range records {
		if err := r.updateRecord(rec); err != nil {
			return fmt.Errorf("%s: %w", strings.TrimPrefix(rec, r.root+"/"), err)
		}
	}
	return nil
}

func (r *relocator) updateRecord(rec string) error {
	data, err := os.ReadFile(rec)
	if err != nil {
		return err
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		return err
	}
	sitePackages := filepath.Dir(filepath.Dir(rec))
	changed := false
	kept := rows[:0]
	for _, row := range rows {
		if len(row) < 3 {
			kept = append(kept, row)
			continue
		}
		p := filepath.Clean(filepath.Join(sitePackages, row[0]))
		rp, err := filepath.Rel(r.root, p)
		if err == nil && r.removed[rp] {
			changed = true
			continue
		}
		kept = append(kept, row)
		if err != nil || row[1] == "" || !r.modified[rp] {
			continue
		}
		content, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(content)
		row[1] = "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:])
		row[2] = strconv.Itoa(len(content))
		changed = true
	}
	if !changed {
		return nil
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.WriteAll(kept); err != nil {
		return err
	}
	info, err := os.Stat(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(rec, buf.Bytes(), info.Mode().Perm())
}

// scan fails if any file, file name or symlink target still holds a forbidden path.
func (r *relocator) scan() error {
	var leaks []string
	var forbidden [][]byte
	for _, f := range r.forbidden {
		forbidden = append(forbidden, []byte(f))
	}
	sc := newScanner(forbidden...)
	err := filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rp, _ := filepath.Rel(r.root, p)
		var data []byte
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			data = []byte(t)
		case d.Type().IsRegular():
			_, found, err := sc.scan(p)
			if err != nil {
				return err
			}
			if found {
				leaks = append(leaks, rp)
			}
			return nil
		default:
			return nil
		}
		for _, f := range r.forbidden {
			if bytes.Contains(data, []byte(f)) {
				leaks = append(leaks, rp)
				break
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	if len(leaks) > 0 {
		sort.Strings(leaks)
		more := ""
		if len(leaks) > 5 {
			more = fmt.Sprintf(" and %d more", len(leaks)-5)
			leaks = leaks[:5]
		}
		return fmt.Errorf("the build path %s is still in %s%s (binary files are not rewritten)", r.root, strings.Join(leaks, ", "), more)
	}
	return nil
}

// dropDirectURLs removes the direct_url.json (PEP 610) of distributions installed from a local
// file or directory: it records the build machine's path (file:///home/.../wheels/x.whl), which
// means nothing on the server and would make the package depend on where it was built. The
// distribution then looks installed from an index, which is what a deployed venv is.
func (r *relocator) dropDirectURLs() error {
	files, err := filepath.Glob(filepath.Join(r.root, "lib", "python*", "site-packages", "*.dist-info", "direct_url.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, []byte(`"file:`)) {
			continue
		}
		if err := os.Remove(f); err != nil {
			return err
		}
		rp, _ := filepath.Rel(r.root, f)
		r.removed[rp] = true
	}
	return nil
}

// normalizeModes makes the tree independent of the build machine's umask: directories 0755,
// files 0755 when executable and 0644 otherwise.
func (r *relocator) normalizeModes() error {
	return filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var mode fs.FileMode
		switch {
		case d.IsDir():
			mode = 0o755
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode = 0o644
			if info.Mode()&0o100 != 0 {
				mode = 0o755
			}
		default:
			return nil
		}
		return os.Chmod(p, mode)
	})
}

// scanner finds patterns in files, reading them in chunks with one reused buffer (a compiled
// library may be hundreds of MB; a venv has tens of thousands of small files).
type scanner struct {
	patterns [][]byte
	overlap  int
	buf      []byte
}

func newScanner(patterns ...[]byte) *scanner {
	s := &scanner{patterns: patterns}
	for _, pat := range patterns {
		s.overlap = max(s.overlap, len(pat)-1)
	}
	s.buf = make([]byte, 1<<20+s.overlap)
	return s
}

// scan reports whether the file at p is an ELF file and whether it contains any pattern.
func (s *scanner) scan(p string) (isELF, found bool, err error) {
	f, err := os.Open(p)
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	buf := s.buf[:0]
	first := true
	for {
		n, err := io.ReadFull(f, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if first {
			isELF = bytes.HasPrefix(buf, []byte("\x7fELF"))
			first = false
		}
		for _, pat := range s.patterns {
			if bytes.Contains(buf, pat) {
				return isELF, true, nil
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return isELF, false, nil
		}
		if err != nil {
			return isELF, false, err
		}
		// Keep the tail: a pattern may straddle two chunks.
		keep := min(s.overlap, len(buf))
		copy(buf, buf[len(buf)-keep:])
		buf = buf[:keep]
	}
}

// scanFile is a one-off scanner.scan.
func scanFile(p string, patterns [][]byte) (isELF, found bool, err error) {
	return newScanner(patterns...).scan(p)
}

// stripELF removes symbol tables and debugging sections from compiled files that have them,
// with dh_strip's arguments: --strip-unneeded for shared objects (extension modules), all
// symbols for executables; .comment and .note go too. Wheels built locally (with -g) carry
// them; lintian calls that unstripped-binary-or-object, and they can double a package's size.
func (r *relocator) stripELF() error {
	if len(r.elfFiles) == 0 {
		return nil
	}
	stripBin, err := exec.LookPath("strip")
	if err != nil {
		return fmt.Errorf("compiled files need stripping but strip is missing (apt-get install binutils), or keep their symbols")
	}
	for _, rp := range r.elfFiles {
		p := filepath.Join(r.root, rp)
		f, err := elf.Open(p)
		if err != nil {
			continue // not an object strip understands
		}
		typ := f.Type
		unstripped := false
		for _, sec := range f.Sections {
			if sec.Name == ".symtab" || strings.HasPrefix(sec.Name, ".debug_") {
				unstripped = true
			}
		}
		f.Close()
		if !unstripped || (typ != elf.ET_DYN && typ != elf.ET_EXEC) {
			continue
		}
		args := []string{"--remove-section=.comment", "--remove-section=.note"}
		if typ == elf.ET_DYN {
			args = append(args, "--strip-unneeded")
		}
		if err := stripFile(r.ctx, stripBin, args, p); err != nil {
			return fmt.Errorf("strip %s: %w", rp, err)
		}
		fmt.Fprintf(r.log, "stripped %s\n", rp)
		r.modified[rp] = true
	}
	return nil
}

// stripFile runs strip with args on p, writing its output to an atomicfile that replaces p
// (with p's mode) only when strip succeeds. strip writes into the file it is given with -o.
func stripFile(ctx context.Context, stripBin string, args []string, p string) error {
	info, err := os.Stat(p)
	if err != nil {
		return err
	}
	f, err := atomicfile.Create(nil, p, info.Mode().Perm())
	if err != nil {
		return err
	}
	defer f.Abort()
	cmd := exec.CommandContext(ctx, stripBin, append(args, "-o", f.Name(), p)...)
	cmd.Env = scrubbedEnv("", "")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return f.Commit()
}
