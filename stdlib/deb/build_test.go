package deb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/interp/cache"
)

// diskProject writes a project with a deb() of a tree to a temporary directory.
func diskProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"BUILD.star": `project(name = "app", maintainer = "A <a@example.com>", arch = "amd64", out = "dist")
pkg = deb("app", version = "1.0", contents = [tree("src", "/srv/app", exclude = ["skip/**"])], compression = "zstd")
task("build", deps = [pkg])
`,
		"src/app.py": "print('app')\n", "src/lib/util.py": "x = 1\n", "src/skip/no.py": "no\n", "src/lib/__pycache__/util.pyc": "pyc",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("app.py", filepath.Join(dir, "src/current.py"))
	return dir
}

func loadDisk(t *testing.T, dir string, env ...string) *interp.Build {
	t.Helper()
	b, err := interp.Load(interp.Options{Dir: dir, Builtins: Builtins(), ToolVersion: "test", Env: env,
		Stdout: new(strings.Builder), Stderr: new(strings.Builder)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func planStatus(t *testing.T, dir string, env ...string) interp.PlanStatus {
	t.Helper()
	steps, err := loadDisk(t, dir, env...).NewRunner(interp.RunOptions{}).Plan(context.Background(), []string{"build"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.ID == "deb app" {
			return s.Status
		}
	}
	t.Fatalf("no deb app in %+v", steps)
	return ""
}

// tree lists what is under dir: names, sizes and modification times.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if fi, err := d.Info(); err == nil {
			out = append(out, p+" "+fi.ModTime().String()+" "+fi.Mode().String())
		}
		return nil
	})
	return out
}

// TestDebCached: a deb target says whether Build would be a cache hit (upds run --dry-run),
// without writing anything: build before the first build, cached after, build again once a
// file of the tree changed.
func TestDebCached(t *testing.T) {
	dir := diskProject(t)
	before := tree(t, dir)
	if s := planStatus(t, dir); s != interp.PlanBuild {
		t.Errorf("first: %s", s)
	}
	if after := tree(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("the dry run wrote:\n%v\n%v", before, after)
	}
	if err := loadDisk(t, dir).NewRunner(interp.RunOptions{}).Run(context.Background(), []string{"build"}); err != nil {
		t.Fatal(err)
	}
	if s := planStatus(t, dir); s != interp.PlanCached {
		t.Errorf("after the build: %s", s)
	}
	if s := planStatus(t, dir, "SOURCE_DATE_EPOCH=1700000000"); s != interp.PlanBuild {
		t.Errorf("another SOURCE_DATE_EPOCH: %s", s)
	}
	os.WriteFile(filepath.Join(dir, "src/lib/util.py"), []byte("x = 2\n"), 0o644)
	before = tree(t, dir)
	if s := planStatus(t, dir); s != interp.PlanBuild {
		t.Errorf("after a change: %s", s)
	}
	if after := tree(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("the dry run after a change wrote:\n%v\n%v", before, after)
	}
}

// TestDebSourceDateEpoch: the time clamp is the host's SOURCE_DATE_EPOCH; a bad one is a
// mistake reported at the deb() line, whose cause errors.As finds.
func TestDebSourceDateEpoch(t *testing.T) {
	dir := diskProject(t)
	if err := loadDisk(t, dir, "SOURCE_DATE_EPOCH=1700000000").NewRunner(interp.RunOptions{}).Run(context.Background(), []string{"build"}); err != nil {
		t.Fatal(err)
	}
	info, err := ReadFile(filepath.Join(dir, "dist", "app_1.0_amd64.deb"), ReadOptions{Files: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range info.Files {
		if f.MTime.After(time.Unix(1700000000, 0)) {
			t.Errorf("%s: mtime %s, after SOURCE_DATE_EPOCH", f.Path, f.MTime)
		}
	}
	for _, f := range info.Files {
		if strings.Contains(f.Path, "skip") || strings.Contains(f.Path, "pycache") {
			t.Errorf("%s: excluded, but packaged", f.Path)
		}
	}
	err = loadDisk(t, dir, "SOURCE_DATE_EPOCH=soon").NewRunner(interp.RunOptions{}).Run(context.Background(), []string{"build"})
	var se *specError
	if !interp.IsUsage(err) || !errors.As(err, &se) || !strings.Contains(err.Error(), `BUILD.star:2:10: deb app: SOURCE_DATE_EPOCH="soon" is not a number`) {
		t.Errorf("bad SOURCE_DATE_EPOCH: %v", err)
	}
}

// TestTreeOnDiskLikeInMemory: tree() of a project on disk (walked by walkTree, files by Src)
// gives the entries the afero walk gives (files by Open).
func TestTreeOnDiskLikeInMemory(t *testing.T) {
	dir := diskProject(t)
	s := Spec{Name: "app", Version: "1.0", Compression: "gzip", Owner: &Owner{"www-data", -1},
		Contents: []Content{{Kind: ContentTree, Src: "src", Dest: "/srv/app", Exclude: []string{"skip/**"}}}}
	b := loadDisk(t, dir)
	in := Inputs{Project: b.Host.Project, FS: b.Host.FS, Root: dir}
	disk, err := s.assemble(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Root = ""
	mem, err := s.assemble(in)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := fmt.Sprint(disk.plan.testItems()), fmt.Sprint(mem.plan.testItems()); a != b || len(disk.plan.order) != 7 {
		t.Errorf("on disk:\n%v\nin memory:\n%v", a, b)
	}
	var a, b2 strings.Builder
	if _, err := disk.plan.Write(t.Context(), &a); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.plan.Write(t.Context(), &b2); err != nil {
		t.Fatal(err)
	}
	if a.String() != b2.String() {
		t.Error("the packages differ")
	}
	if r, _ := disk.plan.find("/srv/app/lib/util.py"); r.flags&flagSrc == 0 {
		t.Error("a file on disk is not read by Src")
	}
}

// TestHardlinksInTreeOnDisk: the names of one file in a tree become hard links to the first
// one a walk in name order meets, on disk (walkTree, on several goroutines) as in the afero
// walk, so the packages and their keys are the same.
func TestHardlinksInTreeOnDisk(t *testing.T) {
	dir := diskProject(t)
	for _, p := range []string{"src/z/first.py", "src/a-b/x.py", "src/a/y.py"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "src/a/y.py"), []byte("shared\n"), 0o644)
	for _, p := range []string{"src/a-b/x.py", "src/z/first.py"} {
		if err := os.Link(filepath.Join(dir, "src/a/y.py"), filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	s := Spec{Name: "app", Version: "1.0", Compression: "gzip",
		Contents: []Content{{Kind: ContentTree, Src: "src", Dest: "/srv/app"}}}
	b := loadDisk(t, dir)
	h := &interp.Host{ToolVersion: "test", Cache: cache.Open(filepath.Join(dir, ".nocache"), true)}
	var keys, items []string
	for _, root := range []string{dir, ""} { // on disk, then through the project's BasePathFs
		asm, err := s.assemble(Inputs{Project: b.Host.Project, FS: b.Host.FS, Root: root})
		if err != nil {
			t.Fatal(err)
		}
		key, err := asm.key(t.Context(), h)
		if err != nil {
			t.Fatal(err)
		}
		keys, items = append(keys, key), append(items, fmt.Sprint(asm.plan.testItems()))
	}
	if keys[0] != keys[1] || items[0] != items[1] {
		t.Errorf("on disk and through afero:\n%s %s\n%s %s", keys[0], items[0], keys[1], items[1])
	}
	for _, w := range []string{"/srv/app/a-b/x.py file", "/srv/app/a/y.py hardlink 644 root:root -> /srv/app/a-b/x.py",
		"/srv/app/z/first.py hardlink 644 root:root -> /srv/app/a-b/x.py"} {
		if !strings.Contains(items[0], w) {
			t.Errorf("%s: missing %q", items[0], w)
		}
	}
}

// TestDebKeyedWhileWritten: the first build, which hashes the files as it writes the package,
// and a later one, which computes the key from the stat list first, give the same bytes; so
// does a build without the cache.
func TestDebKeyedWhileWritten(t *testing.T) {
	dir := diskProject(t)
	deb := filepath.Join(dir, "dist", "app_1.0_amd64.deb")
	build := func(noCache bool) []byte {
		t.Helper()
		b, err := interp.Load(interp.Options{Dir: dir, Builtins: Builtins(), ToolVersion: "test", NoCache: noCache,
			Stdout: new(strings.Builder), Stderr: new(strings.Builder)})
		if err == nil {
			err = b.NewRunner(interp.RunOptions{}).Run(context.Background(), []string{"build"})
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(deb)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	first := build(false)
	if _, err := os.Stat(filepath.Join(dir, ".upds", "stats", "deb-app")); err != nil {
		t.Fatalf("no stat list after the first build: %v", err)
	}
	os.RemoveAll(filepath.Join(dir, ".upds", "objects"))
	os.Remove(deb)
	if second := build(false); !bytes.Equal(first, second) {
		t.Error("the key computed first gives other bytes than the key computed while writing")
	}
	os.Remove(deb)
	if third := build(true); !bytes.Equal(first, third) {
		t.Error("--no-cache gives other bytes")
	}
	info, err := ReadFile(deb, ReadOptions{Verify: true})
	if err != nil || len(info.Control.Get("X-Upds-Source")) != 64 {
		t.Errorf("X-Upds-Source %q, %v", info.Control.Get("X-Upds-Source"), err)
	}
}
