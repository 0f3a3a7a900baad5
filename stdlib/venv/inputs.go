package venv

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// inputs are the local files a build reads, found by following the requirements files and
// pip_args the way pip does. Every path is absolute and inside the project.
type inputs struct {
	files []string // requirements and constraints files, in the order they are read
	refs  []string // other local files and directories: wheels, sdists, find-links dirs, source trees
	deps  []string // pyproject.toml [project] dependencies
}

// pipValueOptions are pip install options that take a value (as "--opt VALUE").
var pipValueOptions = map[string]bool{
	"-r": true, "--requirement": true, "-c": true, "--constraint": true, "-e": true, "--editable": true,
	"-t": true, "--target": true, "--platform": true, "--python-version": true, "--implementation": true,
	"--abi": true, "--root": true, "--prefix": true, "--src": true, "--upgrade-strategy": true,
	"--progress-bar": true, "--root-user-action": true, "--report": true, "-i": true, "--index-url": true,
	"--extra-index-url": true, "-f": true, "--find-links": true, "--no-binary": true, "--only-binary": true,
	"--global-option": true, "--install-option": true, "-C": true, "--config-settings": true, "--log": true,
	"--proxy": true, "--retries": true, "--timeout": true, "--exists-action": true, "--trusted-host": true,
	"--cert": true, "--client-cert": true, "--cache-dir": true, "--python": true, "--keyring-provider": true,
	"--use-feature": true, "--use-deprecated": true, "--log-file": true, "--local-log": true,
}

// refusedOptions change where pip installs or what it leaves behind: a packaged venv cannot use them.
var refusedOptions = map[string]string{
	"-e": "editable installs point into the build machine's project", "--editable": "editable installs point into the build machine's project",
	"-t": "the venv is the target", "--target": "the venv is the target",
	"--prefix": "the venv is the prefix", "--root": "the venv is the root", "--user": "the venv is the target",
	"--python": "the interpreter is set with python", "--src": "editable installs are not supported",
	"--log": "logs go to the build log", "--log-file": "logs go to the build log", "--local-log": "logs go to the build log",
	"--report": "reports would be written outside the venv", "--cache-dir": "the build uses a private cache",
	"-U": "an upgrade of a fresh venv means nothing", "--upgrade": "an upgrade of a fresh venv means nothing",
}

// splitOption splits "--opt=value" and reports whether arg is an option taking a value.
func splitOption(arg string) (opt, value string, hasValue, inline bool) {
	if strings.HasPrefix(arg, "--") {
		if i := strings.IndexByte(arg, '='); i > 0 {
			return arg[:i], arg[i+1:], true, true
		}
		return arg, "", pipValueOptions[arg], false
	}
	if len(arg) > 2 && arg[0] == '-' && pipValueOptions[arg[:2]] {
		return arg[:2], arg[2:], true, true // -rFILE
	}
	return arg, "", pipValueOptions[arg], false
}

// collectInputs follows requirements, constraints, pyproject and pip_args to every local
// file pip will read. It fails on a missing file, a path outside the project or a refused option.
func (s *Spec) collectInputs() (*inputs, error) {
	in := &inputs{}
	seen := map[string]bool{}
	for _, r := range s.Requirements {
		if err := s.readReqFile(in, seen, "", r, "requirements"); err != nil {
			return nil, err
		}
	}
	for _, c := range s.Constraints {
		if err := s.readReqFile(in, seen, "", c, "constraints"); err != nil {
			return nil, err
		}
	}
	if s.Pyproject != "" {
		p, err := s.projectPath("", s.Pyproject, "pyproject")
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("pyproject %s: %w", s.Pyproject, err)
		}
		deps, err := ParsePyprojectDependencies(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Pyproject, err)
		}
		in.deps = deps
		for i, d := range deps {
			if err := s.requirementLine(in, s.ProjectDir, d, fmt.Sprintf("%s: dependencies[%d]", s.Pyproject, i)); err != nil {
				return nil, err
			}
		}
	}
	args := s.PipArgs
	for i := 0; i < len(args); i++ {
		where := fmt.Sprintf("pip_args[%d]", i)
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			if err := s.requirementLine(in, s.ProjectDir, a, where); err != nil {
				return nil, err
			}
			continue
		}
		opt, val, hasValue, inline := splitOption(a)
		if why, ok := refusedOptions[opt]; ok {
			return nil, fmt.Errorf("%s: %s is not allowed: %s", where, opt, why)
		}
		if hasValue && !inline {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("%s: %s needs a value", where, opt)
			}
			i++
			val = args[i]
		}
		if err := s.option(in, seen, s.ProjectDir, opt, val, where); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// option handles one option from pip_args or a requirements file. base is the directory
// relative paths in -r/-c/-f resolve against (the requirements file's directory, as pip does).
func (s *Spec) option(in *inputs, seen map[string]bool, base, opt, val, where string) error {
	if why, ok := refusedOptions[opt]; ok {
		return fmt.Errorf("%s: %s is not allowed: %s", where, opt, why)
	}
	switch opt {
	case "-r", "--requirement":
		return s.readReqFile(in, seen, base, val, where)
	case "-c", "--constraint":
		return s.readReqFile(in, seen, base, val, where)
	case "-f", "--find-links", "-i", "--index-url", "--extra-index-url":
		return s.localRef(in, base, val, where, true)
	}
	return nil
}

// localRef records a local path or file: URL. Non-local URLs (https://...) are not inputs.
// For find-links, pip tries the path relative to the requirements file first, then the cwd.
func (s *Spec) localRef(in *inputs, base, val, where string, optional bool) error {
	p, ok := localPath(val)
	if !ok {
		return nil
	}
	cands := []string{}
	if filepath.IsAbs(p) {
		cands = append(cands, p)
	} else {
		cands = append(cands, filepath.Join(base, p), filepath.Join(s.ProjectDir, p))
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			abs, err := s.projectPath("", c, where)
			if err != nil {
				return err
			}
			in.refs = append(in.refs, abs)
			return nil
		}
	}
	if optional {
		// pip only warns about a missing find-links location; the key does not depend on it.
		return nil
	}
	return fmt.Errorf("%s: %s: no such file or directory", where, val)
}

// localPath reports whether a requirement or location refers to the local file system.
func localPath(v string) (string, bool) {
	if strings.HasPrefix(v, "file:") {
		u, err := url.Parse(v)
		if err != nil {
			return "", false
		}
		return u.Path, u.Path != ""
	}
	if strings.Contains(v, "://") {
		return "", false
	}
	return v, v != ""
}

var archiveExts = []string{".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar"}

// requirementLine records the local file a requirement names, if any: "./libs/x",
// "wheels/x-1.0-py3-none-any.whl", "name @ file:///...". Plain "name==1.0" names nothing local.
func (s *Spec) requirementLine(in *inputs, base, line, where string) error {
	req := line
	if i := strings.Index(req, " @ "); i >= 0 { // PEP 508 direct reference
		req = strings.TrimSpace(req[i+3:])
	}
	if i := strings.IndexByte(req, ';'); i >= 0 && !strings.HasPrefix(req, "file:") {
		req = strings.TrimSpace(req[:i])
	}
	if strings.HasPrefix(req, "file:") {
		p, _ := localPath(req)
		return s.mustRef(in, p, where)
	}
	if strings.Contains(req, "://") {
		return nil
	}
	isPath := strings.HasPrefix(req, ".") || strings.HasPrefix(req, "/") || strings.Contains(req, string(filepath.Separator))
	for _, ext := range archiveExts {
		if strings.HasSuffix(req, ext) {
			isPath = true
		}
	}
	if !isPath {
		return nil
	}
	if i := strings.IndexByte(req, '['); i > 0 && strings.HasSuffix(req, "]") { // ./pkg[extra]
		req = req[:i]
	}
	return s.mustRef(in, req, where)
}

func (s *Spec) mustRef(in *inputs, p, where string) error {
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.ProjectDir, p) // pip resolves requirement paths against the cwd
	}
	abs, err := s.projectPath("", p, where)
	if err != nil {
		return err
	}
	in.refs = append(in.refs, abs)
	return nil
}

// projectPath resolves p (relative to base, or to the project) and makes sure that it stays
// inside the project, symlinks included.
func (s *Spec) projectPath(base, p, where string) (string, error) {
	if base == "" {
		base = s.ProjectDir
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	p = filepath.Clean(p)
	inside := func(p, root string) bool {
		return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
	}
	if !inside(p, filepath.Clean(s.ProjectDir)) {
		return "", fmt.Errorf("%s: %s is outside the project %s", where, p, s.ProjectDir)
	}
	root, err := filepath.EvalSymlinks(s.ProjectDir)
	if err != nil {
		return "", fmt.Errorf("project dir %s: %w", s.ProjectDir, err)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if os.IsNotExist(err) {
			return "", fmt.Errorf("%s: %s: no such file or directory", where, rel(s.ProjectDir, p))
		}
		return "", fmt.Errorf("%s: %w", where, err)
	}
	if !inside(real, root) {
		return "", fmt.Errorf("%s: %s is a symlink to %s, outside the project %s", where, rel(s.ProjectDir, p), real, s.ProjectDir)
	}
	return real, nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// readReqFile reads a requirements or constraints file and follows what it references.
func (s *Spec) readReqFile(in *inputs, seen map[string]bool, base, name, where string) error {
	p, err := s.projectPath(base, name, where)
	if err != nil {
		return err
	}
	if seen[p] {
		return nil
	}
	seen[p] = true
	in.files = append(in.files, p)
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	dir := filepath.Dir(p)
	display := rel(s.ProjectDir, p)
	for _, l := range logicalLines(string(data)) {
		line := l.text
		at := fmt.Sprintf("%s:%d", display, l.num)
		if !strings.HasPrefix(line, "-") {
			// requirement [--hash=...] [--config-settings ...]: the requirement is the part before options
			req := line
			if i := strings.Index(req, " -"); i >= 0 {
				req = strings.TrimSpace(req[:i])
			}
			if err := s.requirementLine(in, dir, req, at); err != nil {
				return err
			}
			continue
		}
		fields := strings.Fields(line)
		opt, val, hasValue, inline := splitOption(fields[0])
		if hasValue && !inline {
			if len(fields) < 2 {
				return fmt.Errorf("%s: %s needs a value", at, opt)
			}
			val = fields[1]
		}
		if err := s.option(in, seen, dir, opt, val, at); err != nil {
			return err
		}
	}
	return nil
}

type logicalLine struct {
	num  int
	text string
}

// logicalLines joins backslash continuations and drops comments and blank lines, like pip.
func logicalLines(data string) []logicalLine {
	var out []logicalLine
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(line)
		text := cur.String()
		cur.Reset()
		if i := strings.Index(text, "#"); i == 0 {
			text = ""
		} else if i := strings.Index(text, " #"); i >= 0 {
			text = text[:i]
		} else if i := strings.Index(text, "\t#"); i >= 0 {
			text = text[:i]
		}
		if text = strings.TrimSpace(text); text != "" {
			out = append(out, logicalLine{start, text})
		}
	}
	if cur.Len() > 0 {
		if text := strings.TrimSpace(cur.String()); text != "" {
			out = append(out, logicalLine{start, text})
		}
	}
	return out
}

// HashFunc returns the sha256 of the regular file at path, whose Lstat is info. Key calls it
// for every local input file; a caller may memoize it by path, size, mtime and inode.
type HashFunc func(path string, info fs.FileInfo) ([32]byte, error)

// HashFile is the HashFunc that reads the file.
func HashFile(path string, _ fs.FileInfo) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// hashTree writes the names, modes and contents of every file under p (or of p itself) to h.
func hashTree(h hash.Hash, p string, hashFile HashFunc) error {
	return filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != p && (d.Name() == ".git" || d.Name() == "__pycache__") {
			return filepath.SkipDir
		}
		r, _ := filepath.Rel(p, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "entry %q %o\n", r, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "link %q\n", t)
		case info.Mode().IsRegular():
			sum, err := hashFile(path, info)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "sha256 %x %d\n", sum, info.Size())
		}
		return nil
	})
}

// keyFormat changes whenever Build's output changes for the same inputs.
const keyFormat = "upds-venv-key-v1"

// key hashes everything a build depends on.
func (s *Spec) key(in *inputs, py *interpreter, toolVersion string, hashFile HashFunc) (string, error) {
	h := sha256.New()
	field := func(k string, v ...string) {
		fmt.Fprintf(h, "%s %d\n", k, len(v))
		for _, x := range v {
			fmt.Fprintf(h, "%q\n", x)
		}
	}
	field("format", keyFormat)
	field("tool", toolVersion)
	field("name", s.Name)
	field("into", s.into())
	field("python", py.Real, py.Version, py.Pip)
	field("with-pip", fmt.Sprint(s.WithPip))
	field("keep-symbols", fmt.Sprint(s.KeepSymbols))
	for _, w := range py.Ensurepip { // installed WithPip; and the pip that installs, with an old system pip
		field("ensurepip", filepath.Base(w))
	}
	field("pip-args", s.PipArgs...)
	root, _ := filepath.EvalSymlinks(s.ProjectDir)
	relative := func(p string) string { return rel(root, p) }
	reqs := make([]string, len(s.Requirements))
	copy(reqs, s.Requirements)
	field("requirements", reqs...)
	field("constraints", s.Constraints...)
	field("pyproject-dependencies", in.deps...)
	for _, f := range in.files {
		field("file", relative(f))
		if err := hashTree(h, f, hashFile); err != nil {
			return "", fmt.Errorf("hash %s: %w", f, err)
		}
	}
	refs := append([]string(nil), in.refs...)
	sort.Strings(refs)
	last := ""
	for _, r := range refs {
		if r == last {
			continue
		}
		last = r
		field("ref", relative(r))
		if err := hashTree(h, r, hashFile); err != nil {
			return "", fmt.Errorf("hash %s: %w", r, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
