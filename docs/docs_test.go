// Package docs_test runs the code examples of docs/*.md and BUILD.star.example, so that the
// documentation cannot rot. The conventions are described in docs/README.md:
//
//	```python title=BUILD.star           write the block to BUILD.star and evaluate it (upds tasks)
//	```python title=BUILD.star run=build also run these tasks (comma-separated)
//	```ANY title=PATH                    write the block to PATH (relative to the current directory)
//	```sh                                run the block with sh -e in the page's directory
//	```sh expect=fail                    the block must fail (exit status not 0)
//	```LANG skip="why"                   shown, not run; the reason is required
//	<!-- docs-test: on -->               the page takes part (its blocks are run as above)
//	<!-- docs-test: fixture=hello -->    ... and starts in a copy of examples/hello
//	<!-- docs-test: s3 -->               ... with the AWS_* variables of an S3 server on 127.0.0.1
//	                                     (SeaweedFS, interp/storage/s3test; bucket "upds")
//
// Every page gets a new empty directory (or the fixture). A `cd` in a sh block carries over to
// the next block, as in a terminal. Processes a block leaves running are killed at the end of
// the page. Other blocks (```text, output) are not code and are not run.
package docs_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upds/upds/interp/storage/s3test"
)

// binDir holds the upds binary built for the test; it is put first in PATH.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "upds-docs-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	if bin := os.Getenv("UPDS_TEST_BINARY"); bin != "" {
		// A binary built beforehand (e.g. while another package of the tree does not compile).
		if err := os.Symlink(bin, filepath.Join(dir, "upds")); err != nil {
			panic(err)
		}
	} else if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "upds"), "../cmd/upds").CombinedOutput(); err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	s3test.StopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ownPages are the pages that must take part. A page takes part with a docs-test line; then
// every python and sh block must run or say why not (skip="...").
var ownPages = map[string]bool{
	"README.md": true, "getting-started.md": true, "builtins.md": true, "commands.md": true,
	"design.md": true, "rules.md": true, "../examples/hello/README.md": true,
	"send.md": true, "venv.md": true, "fleet.md": true, "servers.md": true, "release.md": true,
	"s3.md": true,
}

// strict: the page takes part (a docs-test line), so every code block counts.

// codeLangs are the languages whose blocks are code that a test must run (on own pages).
var codeLangs = map[string]bool{"python": true, "starlark": true, "sh": true, "shell": true, "bash": true}

type block struct {
	line  int
	lang  string
	attrs map[string]string
	text  string
}

var attrRE = regexp.MustCompile(`([A-Za-z0-9_-]+)(?:=("((?:[^"\\]|\\.)*)"|\S+))?`)

// parse returns the fenced blocks of a Markdown page and its docs-test directives.
func parse(t *testing.T, name string, src []byte) ([]block, map[string]string) {
	var blocks []block
	directives := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur *block
	var fence string
	var body strings.Builder
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur == nil {
			if rest, ok := strings.CutPrefix(trimmed, "<!-- docs-test:"); ok {
				for _, m := range attrRE.FindAllStringSubmatch(strings.TrimSuffix(rest, "-->"), -1) {
					directives[m[1]] = unquote(m)
				}
				continue
			}
			if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
				fence = trimmed[:3]
				for strings.HasPrefix(trimmed[len(fence):], fence[:1]) {
					fence += fence[:1]
				}
				info := strings.TrimSpace(trimmed[len(fence):])
				lang, rest, _ := strings.Cut(info, " ")
				b := block{line: n, lang: lang, attrs: map[string]string{}}
				for _, m := range attrRE.FindAllStringSubmatch(rest, -1) {
					b.attrs[m[1]] = unquote(m)
				}
				cur = &b
				body.Reset()
			}
			continue
		}
		if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
			cur.text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	if cur != nil {
		t.Fatalf("%s:%d: unterminated code block", name, cur.line)
	}
	return blocks, directives
}

func unquote(m []string) string {
	if m[2] == "" {
		return "true"
	}
	if strings.HasPrefix(m[2], `"`) {
		return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(m[3])
	}
	return m[2]
}

// page is the state of one page's run: its directory and the current directory in it.
type page struct {
	t      *testing.T
	strict bool
	name   string
	root   string
	cwd    string
	env    []string
	pgid   []int
}

func (p *page) env0() []string {
	env := []string{"PATH=" + binDir + ":" + os.Getenv("PATH"), "HOME=" + filepath.Join(p.root, ".home"), "LC_ALL=C.UTF-8",
		"TERM=dumb"}
	for _, k := range []string{"GOCACHE", "GOPATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, p.env...)
}

// shell runs a sh block in the current directory and returns its output and exit status.
func (p *page) shell(b block) (string, int) {
	marker := filepath.Join(p.root, ".home", "cwd")
	script := "trap 'pwd > \"" + marker + "\"' EXIT\n" + b.text
	shell := "sh"
	if b.lang == "bash" {
		shell = "bash"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, "-e", "-c", script)
	cmd.Dir = p.cwd
	cmd.Env = p.env0()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Output goes to a buffer: background processes keep a copy of the pipe, so Wait must not
	// wait for them.
	cmd.WaitDelay = time.Second
	err := cmd.Start()
	if err != nil {
		return err.Error(), -1
	}
	p.pgid = append(p.pgid, cmd.Process.Pid)
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil && !strings.Contains(err.Error(), "WaitDelay") {
		return out.String() + err.Error(), -1
	}
	if b, err := os.ReadFile(marker); err == nil {
		if d := strings.TrimSpace(string(b)); d != "" {
			p.cwd = d
		}
	}
	return out.String(), code
}

func (p *page) upds(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(binDir, "upds"), args...)
	cmd.Dir = p.cwd
	cmd.Env = p.env0()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *page) run(blocks []block) (ran, skipped, unmarked int) {
	t := p.t
	for _, b := range blocks {
		where := fmt.Sprintf("%s:%d", p.name, b.line)
		if reason, ok := b.attrs["skip"]; ok {
			if strings.TrimSpace(reason) == "" || reason == "skip" {
				t.Fatalf("%s: skip needs a reason: skip=\"why\"", where)
			}
			skipped++
			continue
		}
		if title, ok := b.attrs["title"]; ok {
			dst := filepath.Join(p.cwd, filepath.FromSlash(title))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			mode := fs.FileMode(0o644)
			if strings.HasPrefix(b.text, "#!") {
				mode = 0o755
			}
			if err := os.WriteFile(dst, []byte(b.text), mode); err != nil {
				t.Fatal(err)
			}
			ran++
			if filepath.Base(title) != "BUILD.star" || b.attrs["check"] == "no" {
				continue
			}
			dir := filepath.Dir(dst)
			if out, err := p.upds("-C", dir, "tasks"); err != nil {
				t.Fatalf("%s: upds tasks on this BUILD.star: %v\n%s", where, err, out)
			}
			if tasks := b.attrs["run"]; tasks != "" {
				args := append([]string{"-C", dir, "--progress=plain", "run"}, strings.Split(tasks, ",")...)
				if out, err := p.upds(args...); err != nil {
					t.Fatalf("%s: upds %s: %v\n%s", where, strings.Join(args, " "), err, out)
				}
			}
			continue
		}
		switch b.lang {
		case "sh", "shell", "bash":
			if !p.strict {
				unmarked++
				continue
			}
			out, code := p.shell(b)
			want := b.attrs["expect"]
			switch {
			case want == "fail" && code == 0:
				t.Fatalf("%s: the block should fail but exited 0:\n%s\n--- output:\n%s", where, b.text, out)
			case want != "fail" && code != 0:
				t.Fatalf("%s: exit status %d:\n%s\n--- output:\n%s", where, code, b.text, out)
			}
			for _, w := range strings.Split(b.attrs["output"], "|") {
				if w != "" && !strings.Contains(out, w) {
					t.Fatalf("%s: output has no %q:\n%s", where, w, out)
				}
			}
			ran++
		case "python", "starlark":
			unmarked++
			if p.strict {
				t.Errorf("%s: a %s block with neither title=FILE nor skip=\"why\"", where, b.lang)
			}
		default:
			if codeLangs[b.lang] {
				unmarked++
			}
		}
	}
	return
}

func (p *page) cleanup() {
	for _, pg := range p.pgid {
		syscall.Kill(-pg, syscall.SIGTERM)
	}
	time.Sleep(100 * time.Millisecond)
	for _, pg := range p.pgid {
		syscall.Kill(-pg, syscall.SIGKILL)
	}
}

// fixture copies an example project into dir (without what a build leaves behind).
func fixture(t *testing.T, name, dir string) {
	src := filepath.Join("..", "examples", name)
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("fixture %q: %v", name, err)
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (d.Name() == "dist" || d.Name() == ".upds" || d.Name() == "repo" || d.Name() == "__pycache__" ||
			d.Name() == "build" || strings.HasSuffix(d.Name(), ".egg-info")) {
			return filepath.SkipDir
		}
		out := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDocs(t *testing.T) {
	pages, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	// The walkthroughs of the examples are documentation too.
	examples, _ := filepath.Glob("../examples/*/README.md")
	pages = append(pages, examples...)
	sort.Strings(pages)
	for own := range ownPages {
		if _, err := os.Stat(own); err != nil {
			t.Errorf("%s is missing", own)
		}
	}
	for _, name := range pages {
		t.Run(strings.TrimPrefix(strings.TrimSuffix(name, ".md"), "../"), func(t *testing.T) {
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			blocks, dirs := parse(t, name, src)
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, ".home"), 0o755)
			work := filepath.Join(root, "work")
			os.MkdirAll(work, 0o755)
			if f := dirs["fixture"]; f != "" {
				fixture(t, f, work)
			}
			_, on := dirs["on"]
			p := &page{t: t, name: name, root: root, cwd: work, strict: on || dirs["fixture"] != ""}
			if _, ok := dirs["s3"]; ok {
				p.env = append(s3test.Shared(t).Env(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
			}
			if ownPages[name] && !p.strict {
				t.Fatalf("%s has no <!-- docs-test: on --> line", name)
			}
			defer p.cleanup()
			ran, skipped, unmarked := p.run(blocks)
			t.Logf("%s: %d blocks run, %d skipped with a reason, %d code blocks not marked for the test", name, ran, skipped, unmarked)
			if ownPages[name] && ran == 0 && name != "README.md" {
				t.Errorf("%s: no block ran", name)
			}
		})
	}
}

// TestBuildStarExample evaluates BUILD.star.example in a copy of examples/hello, the project
// it is written for, builds every package and checks them with lintian.
func TestBuildStarExample(t *testing.T) {
	dir := t.TempDir()
	fixture(t, "hello", dir)
	b, err := os.ReadFile("../BUILD.star.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "BUILD.star"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &page{t: t, root: t.TempDir(), cwd: dir}
	out, err := p.upds("tasks")
	if err != nil {
		t.Fatalf("upds tasks: %v\n%s", err, out)
	}
	for _, w := range []string{"build", "bump-patch", "manifest", "publish", "send", "wheels"} {
		if !strings.Contains(out, w+" ") {
			t.Errorf("upds tasks has no %s:\n%s", w, out)
		}
	}
	if out, err := p.upds("--progress=plain", "run", "manifest"); err != nil || !strings.Contains(out, `"version":"0.1.0"`) {
		t.Fatalf("upds run manifest: %v\n%s", err, out)
	}
	// Every builtin appears in the file.
	for _, name := range []string{"load(", "project(", "venv(", "deb(", "tree(", "file(", "directory(", "link(", "glob(",
		"version(", "bump(", "task(", "sh(", "send(", "publish(", "struct(", "json."} {
		if !bytes.Contains(b, []byte(name)) {
			t.Errorf("BUILD.star.example does not show %s", name)
		}
	}
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Fatal("lintian is not installed: run .ci/install-deps")
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "dist", "*.deb"))
	if len(debs) != 4 {
		t.Fatalf("dist/ holds %v, want 4 packages", debs)
	}
	if out, err := exec.Command("lintian", append([]string{"--fail-on", "error,warning"}, debs...)...).CombinedOutput(); err != nil {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// anchor is GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(t *testing.T, path string) map[string]bool {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	inFence := false
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inFence = !inFence
		}
		if !inFence && strings.HasPrefix(l, "#") {
			out[anchor(strings.TrimLeft(l, "#"))] = true
		}
	}
	return out
}

// TestLinks checks that the relative links of the pages above lead to files that exist and,
// with a #fragment, to a heading of that file.
func TestLinks(t *testing.T) {
	pages, _ := filepath.Glob("*.md")
	examples, _ := filepath.Glob("../examples/*/README.md")
	for _, name := range append(pages, append(examples, "../README.md")...) {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		text := regexp.MustCompile("(?s)```.*?```").ReplaceAllString(string(src), "")
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(link, "#")
			target := name
			if file != "" {
				target = filepath.Join(filepath.Dir(name), file)
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s: link %s: %v", name, link, err)
				continue
			}
			if frag != "" && strings.HasSuffix(target, ".md") && !anchors(t, target)[frag] {
				t.Errorf("%s: link %s: no heading #%s in %s", name, link, frag, target)
			}
		}
	}
}
