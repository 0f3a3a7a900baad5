package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// shopBuild has two packages (shop depends on shop-lib), a bump in steps and a failing task.
const shopBuild = `
project(name = "shop", maintainer = "Ops <ops@example.com>")
lib = deb(name = "shop-lib", arch = "all", description = "library\nThe library.",
          contents = [file("a.txt", "/usr/share/shop/a.txt")])
app = deb(name = "shop", arch = "all", depends = [lib], description = "app\nThe app.",
          contents = [file("a.txt", "/usr/share/shop/app.txt")])
task("build", deps = [app], doc = "build the packages")
task("bump", run = lambda ctx: print(bump("minor")))
task("release", steps = ["bump", "build"], run = lambda ctx: print("released", len(ctx.outputs)))
task("fail", deps = [lib], run = lambda ctx: sh("exit 3"))
`

func shopProject(t *testing.T) string {
	return project(t, map[string]string{"BUILD.star": shopBuild, "VERSION": "1.0\n", "a.txt": "a\n"})
}

// snapshot lists every file and directory under dir with its size and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		m[p] = fmt.Sprint(fi.Mode(), fi.ModTime(), fi.Size())
		return nil
	})
	return m
}

// TestDryRun: upds run --dry-run says what would build and run, and writes nothing: no
// dist/, no cache, no new VERSION, before and after a real build.
func TestDryRun(t *testing.T) {
	dir := shopProject(t)
	for round := 0; round < 2; round++ {
		before := snapshot(t, dir)
		r := upds(t, dir, "run", "--dry-run", "release")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		// deb targets tell whether they are cached (interp.CacheChecker): not before the first
		// build, then they are.
		status := []string{"build", "cached"}[round]
		var lines []string
		for _, l := range strings.Split(r.stdout, "\n") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
		out := strings.Join(lines, "\n")
		for _, w := range []string{"run task bump\n", status + " deb shop-lib (checked now: task bump runs first and may change it)\n",
			"deb shop (", "none task build\n", "run task release\n"} {
			if !strings.Contains(out, w) {
				t.Errorf("round %d: dry run does not say %q:\n%s", round, w, r.stdout)
			}
		}
		if !strings.Contains(r.stderr, "dry run: nothing was built, run or written") || strings.Contains(r.stdout, "[bump]") {
			t.Errorf("round %d: stderr %q", round, r.stderr)
		}
		if after := snapshot(t, dir); !reflect.DeepEqual(before, after) {
			t.Fatalf("round %d: the dry run changed the project:\nbefore %v\nafter  %v", round, before, after)
		}
		if r := upds(t, dir, "run", "build"); r.code != 0 {
			t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
		}
	}
	r := upds(t, dir, "run", "--dry-run", "--json", "build")
	var steps []struct{ ID, Status, Reason string }
	if err := json.Unmarshal([]byte(r.stdout), &steps); err != nil || len(steps) != 3 || steps[2].ID != "task build" || steps[2].Status != "none" {
		t.Errorf("--dry-run --json: %v %+v\n%s", err, steps, r.stdout)
	}
	if r := upds(t, dir, "run", "--dry-run", "biuld"); r.code != 2 {
		t.Errorf("--dry-run of an unknown task: exit %d", r.code)
	}
}

type reportJSON struct {
	Status  string
	Outputs []string
	Error   string
	Actions []struct {
		ID, Kind, Status, Error string
		Outputs                 []string
		ElapsedMS               *int64 `json:"elapsed_ms"`
	}
}

func (r reportJSON) statuses() string {
	var s []string
	for _, a := range r.Actions {
		s = append(s, a.Kind+" "+a.ID+" "+a.Status)
	}
	return strings.Join(s, ", ")
}

// TestRunJSON: upds run --json prints the result on stdout, every action with its status and
// outputs; the tasks' own output goes to stderr.
func TestRunJSON(t *testing.T) {
	dir := shopProject(t)
	r := upds(t, dir, "run", "--json", "release")
	var rep reportJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v:\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	want := "task task bump ran, target deb shop-lib built, target deb shop built, task task build done, task task release ran"
	if rep.Status != "done" || rep.statuses() != want {
		t.Errorf("report %s: %s\nwant %s", rep.Status, rep.statuses(), want)
	}
	shop := filepath.Join(dir, "dist", "shop_1.1_all.deb")
	// release's own outputs are those of its deps (none): its steps' are theirs.
	if !reflect.DeepEqual(rep.Actions[2].Outputs, []string{shop}) || len(rep.Outputs) != 0 || rep.Actions[2].ElapsedMS == nil {
		t.Errorf("outputs: %v, %v", rep.Actions[2].Outputs, rep.Outputs)
	}
	if !strings.Contains(r.stderr, "[bump] 1.1\n") || !strings.Contains(r.stderr, "[release] released 0\n") {
		t.Errorf("the tasks' output is not on stderr:\n%s", r.stderr)
	}
	// Again: the packages come from the cache.
	r = upds(t, dir, "run", "--json", "build")
	rep = reportJSON{}
	json.Unmarshal([]byte(r.stdout), &rep)
	if want := "target deb shop-lib cached, target deb shop cached, task task build done"; rep.statuses() != want || len(rep.Outputs) != 1 {
		t.Errorf("second build: %s, want %s; outputs %v", rep.statuses(), want, rep.Outputs)
	}
	// A failure: exit 1, and the report says which.
	r = upds(t, dir, "run", "--json", "fail")
	rep = reportJSON{}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 {
		t.Fatalf("fail: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	last := rep.Actions[len(rep.Actions)-1]
	if rep.Status != "failed" || last.Status != "failed" || !strings.Contains(last.Error, "exited with status 3") || !strings.Contains(rep.Error, "task fail") {
		t.Errorf("failed run: %+v", rep)
	}
}

func TestGraphCommand(t *testing.T) {
	dir := shopProject(t)
	r := upds(t, dir, "graph", "release")
	for _, w := range []string{"digraph upds {", `"task release" [shape=box];`, `"deb shop" [shape=ellipse];`,
		`"deb shop" -> "deb shop-lib";`, `"task release" -> "task bump" [style=dashed, label="step 1"];`, `"task build" -> "deb shop";`} {
		if r.code != 0 || !strings.Contains(r.stdout, w) {
			t.Errorf("graph: exit %d, no %q:\n%s", r.code, w, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "task fail") {
		t.Errorf("graph release shows task fail:\n%s", r.stdout)
	}
	r = upds(t, dir, "graph", "--format", "mermaid")
	for _, w := range []string{"flowchart LR\n", `(["deb shop-lib"])`, `["task fail"]`, ` -.->|step 2| `} {
		if r.code != 0 || !strings.Contains(r.stdout, w) {
			t.Errorf("graph --format mermaid: exit %d, no %q:\n%s", r.code, w, r.stdout)
		}
	}
	var tasks []struct {
		Name        string
		Deps, Steps []string
	}
	r = upds(t, dir, "tasks", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &tasks); err != nil || len(tasks) != 4 {
		t.Fatalf("tasks --json: %v\n%s", err, r.stdout)
	}
	if got := tasks[2]; got.Name != "fail" || !reflect.DeepEqual(got.Deps, []string{"deb shop-lib"}) {
		t.Errorf("tasks --json: fail: %+v", got)
	}
	if got := tasks[3]; got.Name != "release" || !reflect.DeepEqual(got.Steps, []string{"task bump", "task build"}) || len(got.Deps) != 0 {
		t.Errorf("tasks --json: release: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "dist")); err == nil {
		t.Error("upds graph built something")
	}
}
