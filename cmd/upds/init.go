package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/spf13/afero"
	"github.com/spf13/cobra"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/interp/atomicfile"
)

func newInitCmd(g *globalFlags) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "init",
		Short: "Write a starter BUILD.star and VERSION for the Python project in this directory",
		Long: `Look at the Python project in the directory (-C DIR, default the current one): its
requirements.txt or pyproject.toml, its package directory (src/NAME/ or NAME/ with an
__init__.py) and a wheels/ folder if there is one. Write a BUILD.star that packages it with
@upds//python.star (a virtualenv package, an application package and a role package, with
build, bump-* and publish tasks) and a VERSION file holding 0.1.0, then print the next
commands. An existing BUILD.star is never overwritten (exit 2); an existing VERSION is kept.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			p, err := scanProject(g.dir, name)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return p.write(c.OutOrStdout())
		},
	}
	c.Flags().StringVar(&name, "name", "", "package name (default: pyproject.toml's name, or the package directory's)")
	return c
}

// initProject is what upds init found in a directory.
type initProject struct {
	Dir          string
	Name         string // Debian package name
	Src          string // the package directory, project-relative
	PkgDir       string // its last element: the Python package name
	Requirements string // "requirements.txt" or ""
	Pyproject    string // "pyproject.toml" or ""
	Wheels       bool   // a wheels/ folder: install from it only
	Maintainer   string
	KeepVersion  bool // VERSION exists
	// VersionFile and Out are the project's defaults (the BUILD.star written does not set them).
	VersionFile, Out string
}

var debNameRE = regexp.MustCompile(`[^a-z0-9+.-]+`)

// debName turns a directory or distribution name into a Debian package name.
func debName(s string) string {
	s = strings.ToLower(strings.ReplaceAll(s, "_", "-"))
	s = strings.Trim(debNameRE.ReplaceAllString(s, "-"), "-.+")
	if len(s) < 2 {
		return ""
	}
	return s
}

var pyprojectNameRE = regexp.MustCompile(`(?m)^\s*name\s*=\s*["']([^"']+)["']`)

func scanProject(dir, name string) (*initProject, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("init: %s is not a directory", dir)
	}
	if _, err := os.Stat(filepath.Join(abs, "BUILD.star")); err == nil {
		return nil, fmt.Errorf("init: %s already exists: not overwriting it (remove it first to start over)", filepath.Join(dir, "BUILD.star"))
	}
	def := interp.DefaultProject()
	p := &initProject{Dir: abs, VersionFile: def.VersionFile, Out: def.Out}
	exists := func(rel string) bool { _, err := os.Stat(filepath.Join(abs, rel)); return err == nil }
	if exists("requirements.txt") {
		p.Requirements = "requirements.txt"
	}
	if exists("pyproject.toml") && p.Requirements == "" {
		p.Pyproject = "pyproject.toml"
	}
	if p.Requirements == "" && p.Pyproject == "" {
		return nil, fmt.Errorf("init: no requirements.txt or pyproject.toml in %s: upds init starts a BUILD.star for a Python project (write one of them first, even empty)", dir)
	}
	if st, err := os.Stat(filepath.Join(abs, "wheels")); err == nil && st.IsDir() {
		p.Wheels = true
	}
	p.KeepVersion = exists(p.VersionFile)

	// The name: --name, [project] name of pyproject.toml, or the directory's name.
	distName := ""
	if b, err := os.ReadFile(filepath.Join(abs, "pyproject.toml")); err == nil {
		if sec := strings.Index(string(b), "[project]"); sec >= 0 {
			rest := string(b)[sec+len("[project]"):]
			if next := strings.Index(rest, "\n["); next >= 0 {
				rest = rest[:next]
			}
			if m := pyprojectNameRE.FindStringSubmatch(rest); m != nil {
				distName = m[1]
			}
		}
	}
	// The code: src/PKG/__init__.py or PKG/__init__.py; the one named like the project wins.
	var cands []string
	for _, base := range []string{"src", "."} {
		ents, _ := os.ReadDir(filepath.Join(abs, base))
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "tests" || n == "test" ||
				n == "wheels" || n == "dist" || n == "build" || n == "venv" || strings.HasSuffix(n, ".egg-info") {
				continue
			}
			if exists(filepath.Join(base, n, "__init__.py")) {
				cands = append(cands, filepath.ToSlash(filepath.Join(base, n)))
			}
		}
		if len(cands) > 0 {
			break
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("init: no package directory in %s: want src/NAME/__init__.py or NAME/__init__.py", dir)
	}
	sort.Strings(cands)
	want := []string{name, distName, filepath.Base(abs)}
	p.Src = cands[0]
	for _, w := range want {
		found := false
		for _, c := range cands {
			if w != "" && (debName(filepath.Base(c)) == debName(w)) {
				p.Src, found = c, true
				break
			}
		}
		if found {
			break
		}
	}
	p.PkgDir = filepath.Base(p.Src)
	for _, n := range []string{name, distName, p.PkgDir, filepath.Base(abs)} {
		if p.Name = debName(n); p.Name != "" {
			break
		}
	}
	if p.Name == "" {
		return nil, fmt.Errorf("init: cannot make a package name from %q: use --name", p.PkgDir)
	}
	p.Maintainer = maintainerFromEnv()
	return p, nil
}

// maintainerFromEnv is "Name <email>" from DEBFULLNAME/DEBEMAIL (as dch uses them), or a
// placeholder to edit.
func maintainerFromEnv() string {
	name, mail := os.Getenv("DEBFULLNAME"), os.Getenv("DEBEMAIL")
	if n, m, ok := strings.Cut(mail, " <"); ok && strings.HasSuffix(m, ">") {
		name, mail = n, strings.TrimSuffix(m, ">")
	}
	if name == "" || mail == "" {
		return ""
	}
	return name + " <" + mail + ">"
}

var buildTemplate = template.Must(template.New("BUILD.star").Parse(`# BUILD.star of {{.Name}}, written by upds init. upds tasks lists the tasks; the reference is
# docs/builtins.md and docs/rules.md of upds.
load("@upds//python.star", "python_app", "role")

# Where upds run publish puts the packages: a repository made with upds repo init repo
# (a path relative to this directory, or an absolute one).
REPO = "repo"

project(
    name = "{{.Name}}",
    maintainer = "{{if .Maintainer}}{{.Maintainer}}{{else}}{{.Name}} maintainers <root@localhost>{{end}}",{{if not .Maintainer}}  # TODO: you{{end}}
)

# {{.Name}}-virtualenv: the virtualenv in /var/virtualenvs/{{.Name}}, built once and cached; it
# keeps its version while its content is the same (upds.lock records it: commit that file).
# {{.Name}}: the code of {{.Src}} in /srv/python/{{.PkgDir}}.
app = python_app(
    "{{.Name}}",
    src = "{{.Src}}",
{{- if .Requirements}}
    requirements = "{{.Requirements}}",
{{- else}}
    pyproject = "{{.Pyproject}}",
{{- end}}
{{- if .Wheels}}
    pip_args = ["--no-index", "--find-links", "wheels/"],  # offline: only the wheels in wheels/
{{- else}}
    pip_args = [],  # offline builds: ["--no-index", "--find-links", "wheels/"]
{{- end}}
    depends = [],  # what the app needs on the server besides its venv, e.g. "nginx", "uwsgi"
)

# {{.Name}}-server: the role package; a server runs apt-get install {{.Name}}-server.
server = role("{{.Name}}-server", [app.app])

PACKAGES = app.packages + [server]

task("build", deps = PACKAGES, doc = "build the packages into {{.Out}}/")
task("bump-major", run = lambda ctx: print(bump("major")), doc = "increment the major version")
task("bump-minor", run = lambda ctx: print(bump("minor")), doc = "increment the minor version")
task("bump-patch", run = lambda ctx: print(bump("patch")), doc = "increment the patch version")
task(
    "publish",
    deps = PACKAGES,
    run = lambda ctx: publish(ctx.outputs, repo = REPO),
    doc = "build, then publish the packages to the repository REPO",
)
`))

func (p *initProject) write(out interface{ Write([]byte) (int, error) }) error {
	var buf bytes.Buffer
	if err := buildTemplate.Execute(&buf, p); err != nil {
		return err
	}
	build := filepath.Join(p.Dir, "BUILD.star")
	// O_EXCL: never overwrite, even a BUILD.star created since the check.
	f, err := os.OpenFile(build, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &exitError{code: 2, err: fmt.Errorf("init: %s already exists: not overwriting it", build)}
		}
		return err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		os.Remove(build)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(build)
		return err
	}
	version := "0.1.0"
	if !p.KeepVersion {
		if err := os.WriteFile(filepath.Join(p.Dir, p.VersionFile), []byte(version+"\n"), 0o644); err != nil {
			os.Remove(build)
			return err
		}
	} else if b, err := os.ReadFile(filepath.Join(p.Dir, p.VersionFile)); err == nil {
		version = strings.TrimSpace(string(b))
	}
	ignored, err := writeGitignore(p.Dir, p.ignores())
	if err != nil {
		return err
	}
	deps := p.Requirements
	if deps == "" {
		deps = p.Pyproject + " [project] dependencies"
	}
	fmt.Fprintf(out, "wrote BUILD.star")
	if p.KeepVersion {
		fmt.Fprintf(out, " (kept VERSION: %s)\n", version)
	} else {
		fmt.Fprintf(out, " and VERSION (%s)\n", version)
	}
	fmt.Fprintf(out, "  packages  %s-virtualenv (from %s), %s (%s -> /srv/python/%s), %s-server\n",
		p.Name, deps, p.Name, p.Src, p.PkgDir, p.Name)
	if len(ignored) > 0 {
		fmt.Fprintf(out, "  ignored   %s in .gitignore (build output, cache, the repository and its key)\n", strings.Join(ignored, " "))
	}
	if p.Maintainer == "" {
		fmt.Fprintf(out, "  edit      the maintainer in BUILD.star (or set DEBFULLNAME and DEBEMAIL before upds init)\n")
	}
	if !p.Wheels {
		fmt.Fprintf(out, "  note      pip will use its index; for offline builds put wheels in wheels/ and set pip_args\n")
	}
	fmt.Fprintf(out, "  commit    upds.lock with the project once a build writes it (the virtualenv's version)\n")
	fmt.Fprintf(out, "next:\n  upds tasks           list the tasks\n  upds run build       build the packages into %s/\n", p.Out)
	fmt.Fprintf(out, "  upds inspect %s/%s_%s_all.deb\n", p.Out, p.Name, version)
	fmt.Fprintf(out, "  upds repo init repo  create a repository, then: upds run publish\n")
	return nil
}

// ignores are the .gitignore lines for what upds writes in the project: the output directory,
// the cache, the repository REPO names (with its private signing key) and the version lock.
func (p *initProject) ignores() []string {
	return []string{"/" + p.Out + "/", "/.upds/", "/repo/", "/" + path.Join(path.Dir(p.VersionFile), "."+path.Base(p.VersionFile)+".lock")}
}

// writeGitignore adds the lines of want that dir/.gitignore lacks (creating it if need be)
// and returns them. A line that is there with or without its leading or trailing slash counts.
func writeGitignore(dir string, want []string) ([]string, error) {
	file := filepath.Join(dir, ".gitignore")
	old, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		have[strings.Trim(strings.TrimSpace(l), "/")] = true
	}
	var add []string
	for _, w := range want {
		if !have[strings.Trim(w, "/")] {
			add = append(add, w)
		}
	}
	if len(add) == 0 {
		return nil, nil
	}
	text := string(old)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	text += "# upds: build output, cache, repository, version lock\n" + strings.Join(add, "\n") + "\n"
	return add, atomicfile.WriteFile(afero.NewOsFs(), file, []byte(text), 0o644)
}
