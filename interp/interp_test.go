package interp

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/spf13/afero"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// memProject returns an in-memory project with the given files.
func memProject(t testing.TB, files map[string]string) afero.Fs {
	t.Helper()
	fs := afero.NewMemMapFs()
	for name, content := range files {
		if err := afero.WriteFile(fs, name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func load(t testing.TB, files map[string]string, mod ...func(*Options)) (*Build, *syncBuf, error) {
	t.Helper()
	out := &syncBuf{}
	opt := Options{FS: memProject(t, files), Stdout: out, Stderr: out,
		Rules: fstest.MapFS{"python.star": {Data: []byte("def hello():\n    return 'from @upds'\n")}}}
	for _, m := range mod {
		m(&opt)
	}
	b, err := Load(opt)
	return b, out, err
}

func TestLoadResolution(t *testing.T) {
	b, out, err := load(t, map[string]string{
		"BUILD.star": `
load("//rules/a.star", "a")
load("@upds//python.star", "hello")
load("@shared//lib.star", "shared")
print(a, hello(), shared)
project(name = "p")
`,
		"rules/a.star": `load("b.star", "b")
a = "a+" + b`,
		"rules/b.star": `b = "b"`,
	}, func(o *Options) {
		o.LibFS = map[string]afero.Fs{"shared": memProject(t, map[string]string{"lib.star": `shared = "lib"`})}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "a+b from @upds lib" {
		t.Fatalf("print = %q", got)
	}
	if b.Host.Project.Name != "p" || b.Host.Project.Out != "dist" || b.Host.Project.VersionFile != "VERSION" {
		t.Fatalf("project = %+v", b.Host.Project)
	}
}

func TestLoadCachedOnce(t *testing.T) {
	_, out, err := load(t, map[string]string{
		"BUILD.star":  "load('//one.star', 'x')\nload('//two.star', 'y')\n",
		"one.star":    "load('//common.star', 'c')\nx = c",
		"two.star":    "load('//common.star', 'c')\ny = c",
		"common.star": "print('evaluated common')\nc = 1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "evaluated common"); n != 1 {
		t.Fatalf("common.star evaluated %d times, want 1", n)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"cycle", map[string]string{"BUILD.star": "load('//a.star', 'a')", "a.star": "load('//b.star', 'b')\na=1", "b.star": "load('//a.star', 'a')\nb=1"},
			"load cycle: //a.star -> //b.star -> //a.star"},
		{"escape", map[string]string{"BUILD.star": "load('//../etc/x.star', 'a')"}, `escapes the project root`},
		{"missing", map[string]string{"BUILD.star": "load('//nope.star', 'a')"}, `load("//nope.star"): no such file`},
		{"unknown lib", map[string]string{"BUILD.star": "load('@other//x.star', 'a')"}, `unknown library "other": map it with --lib other=DIR or UPDS_LIB_OTHER=DIR`},
		{"syntax", map[string]string{"BUILD.star": "project(name = 'x')\ntask(\n"}, "BUILD.star:3:1: got end of file"},
		{"syntax in loaded", map[string]string{"BUILD.star": "load('//a.star', 'a')", "a.star": "a = (\n"}, "a.star:2:1:"},
		{"eval error position", map[string]string{"BUILD.star": "x = 1\ny = x + 'a'\n"}, "BUILD.star:2:7: unknown binary op: int + string"},
		{"builtin error position", map[string]string{"BUILD.star": "project(name = 'a')\n\ntask('b', deps = [3])\n"}, "BUILD.star:3:5: task b: deps[0]: want a task name"},
		{"duplicate task", map[string]string{"BUILD.star": "task('a')\ntask('a')\n"}, "BUILD.star:2:5: task a is already declared at BUILD.star:1:5"},
		{"sh at eval", map[string]string{"BUILD.star": "sh('true')"}, "BUILD.star:1:3: sh() may only be called inside a task's run function"},
		{"no build file", map[string]string{"x": ""}, "no BUILD.star"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := load(t, tc.files)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err.Error(), tc.want)
			}
			if !IsUsage(err) {
				t.Fatalf("error %q is not a usage error", err)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestFrozenAfterEval(t *testing.T) {
	b, _, err := load(t, map[string]string{"BUILD.star": `
items = []
def add(ctx):
    items.append(1)
task("add", run = add)
`})
	if err != nil {
		t.Fatal(err)
	}
	err = b.NewRunner(RunOptions{}).Run(context.Background(), []string{"add"})
	if err == nil || !strings.Contains(err.Error(), "frozen") {
		t.Fatalf("mutating a global from a run function: err = %v, want a frozen error", err)
	}
	if !strings.HasPrefix(err.Error(), "BUILD.star:4:17: task add:") {
		t.Fatalf("error does not name the line: %q", err)
	}
}

// recorder is a Reporter that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Event(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) names(kind EventKind) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e.Name)
		}
	}
	return out
}

// blocker is a builtin that lets a test see run functions executing at the same time: each
// call waits until `want` calls are inside, or fails after a timeout.
type blocker struct {
	mu     sync.Mutex
	inside int
	want   int
	all    chan struct{}
}

func (bl *blocker) builtin() *starlark.Builtin {
	return starlark.NewBuiltin("meet", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		bl.mu.Lock()
		bl.inside++
		if bl.inside == bl.want {
			close(bl.all)
		}
		bl.mu.Unlock()
		select {
		case <-bl.all:
			return starlark.None, nil
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("run functions did not overlap")
		}
	})
}

func TestParallelRunFunctionsOverlap(t *testing.T) {
	bl := &blocker{want: 3, all: make(chan struct{})}
	b, _, err := load(t, map[string]string{"BUILD.star": `
task("a", run = lambda ctx: meet())
task("b", run = lambda ctx: meet())
task("c", run = lambda ctx: meet())
task("all", deps = ["a", "b", "c"])
`}, func(o *Options) { o.Builtins = starlark.StringDict{"meet": bl.builtin()} })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.NewRunner(RunOptions{Jobs: 3}).Run(context.Background(), []string{"all"}); err != nil {
		t.Fatal(err)
	}
}

func TestJobsBound(t *testing.T) {
	// With -j 1 the same three tasks must not overlap: meet() would time out, so use a
	// builtin that records the maximum concurrency instead.
	var mu sync.Mutex
	cur, peak := 0, 0
	track := starlark.NewBuiltin("track", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		mu.Lock()
		cur++
		peak = max(peak, cur)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		cur--
		mu.Unlock()
		return starlark.None, nil
	})
	b, _, err := load(t, map[string]string{"BUILD.star": `
task("a", run = lambda ctx: track())
task("b", run = lambda ctx: track())
task("c", run = lambda ctx: track())
task("all", deps = ["a", "b", "c"])
`}, func(o *Options) { o.Builtins = starlark.StringDict{"track": track} })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.NewRunner(RunOptions{Jobs: 1}).Run(context.Background(), []string{"all"}); err != nil {
		t.Fatal(err)
	}
	if peak != 1 {
		t.Fatalf("peak concurrency with -j 1 = %d", peak)
	}
}

func TestCommandLineOrder(t *testing.T) {
	b, out, err := load(t, map[string]string{"BUILD.star": `
task("first", run = lambda ctx: print("first"))
task("shared", run = lambda ctx: print("shared"))
task("second", deps = ["shared"], run = lambda ctx: print("second"))
task("third", deps = ["shared", "first"], run = lambda ctx: print("third"))
`})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.NewRunner(RunOptions{}).Run(context.Background(), []string{"first", "second", "third"}); err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(strings.NewReplacer("[first]", "", "[second]", "", "[third]", "", "[shared]", "").Replace(out.String()))
	want := []string{"first", "shared", "second", "third"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("order = %v, want %v (shared runs once)", got, want)
	}
}

func TestFailureCancelsAndKeepGoing(t *testing.T) {
	files := map[string]string{"BUILD.star": `
def bad(ctx):
    fail("broken")
task("bad", run = bad)
task("slow", run = lambda ctx: wait())
task("after", deps = ["bad"], run = lambda ctx: print("after"))
task("all", deps = ["bad", "slow", "after"])
`}
	// wait() blocks until cancelled or 200ms: with the default, the failure of "bad" cancels it.
	wait := starlark.NewBuiltin("wait", func(thread *starlark.Thread, _ *starlark.Builtin, _ starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		select {
		case <-RunOf(thread).Ctx.Done():
			return nil, fmt.Errorf("cancelled")
		case <-time.After(200 * time.Millisecond):
			return starlark.None, nil
		}
	})
	withWait := func(o *Options) { o.Builtins = starlark.StringDict{"wait": wait} }

	b, _, err := load(t, files, withWait)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	err = b.NewRunner(RunOptions{Jobs: 4, Reporter: rec}).Run(context.Background(), []string{"all"})
	if err == nil || !strings.Contains(err.Error(), `BUILD.star:3:9: task bad: fail: broken`) {
		t.Fatalf("err = %v", err)
	}
	if got := rec.names(Finished); len(got) != 0 {
		t.Fatalf("finished after a failure without --keep-going: %v", got)
	}

	b, _, err = load(t, files, withWait)
	if err != nil {
		t.Fatal(err)
	}
	rec = &recorder{}
	err = b.NewRunner(RunOptions{Jobs: 4, KeepGoing: true, Reporter: rec}).Run(context.Background(), []string{"all"})
	if err == nil {
		t.Fatal("no error")
	}
	if got := rec.names(Finished); len(got) != 1 || got[0] != "task slow" {
		t.Fatalf("finished with --keep-going = %v, want [task slow]", got)
	}
	if got := rec.names(Skipped); len(got) != 2 {
		t.Fatalf("skipped = %v, want after and all", got)
	}
}

func TestCancelStopsRunningShell(t *testing.T) {
	b, _, err := load(t, map[string]string{"BUILD.star": `task("sleep", run = lambda ctx: sh("sleep 30"))`})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	start := time.Now()
	rec := &recorder{}
	err = b.NewRunner(RunOptions{Reporter: rec}).Run(ctx, []string{"sleep"})
	if err == nil || err.Error() != "interrupted" {
		t.Fatalf("err = %v, want interrupted", err)
	}
	if got := rec.names(Cancelled); len(got) != 1 || got[0] != "task sleep" {
		t.Fatalf("cancelled = %v, want [task sleep]", got)
	}
	if got := rec.names(Failed); len(got) != 0 {
		t.Fatalf("failed = %v, want none", got)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("cancel did not stop the command")
	}
}

// TestFailureCancelsOthers: the first failure stops what runs beside it; those are reported
// as cancelled, and the run's error is the failure alone (one line, not one per task).
func TestFailureCancelsOthers(t *testing.T) {
	b, _, err := load(t, map[string]string{"BUILD.star": `
task("bad", run = lambda ctx: sh("sleep 0.2; exit 3"))
task("long", run = lambda ctx: sh("sleep 30"))
task("all", deps = ["bad", "long"])
`})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	start := time.Now()
	err = b.NewRunner(RunOptions{Jobs: 2, Reporter: rec}).Run(context.Background(), []string{"all"})
	if err == nil || !strings.Contains(err.Error(), "exited with status 3") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %q, want bad's failure alone", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("the failure did not stop the other task")
	}
	if got := rec.names(Failed); len(got) != 1 || got[0] != "task bad" {
		t.Errorf("failed = %v, want [task bad]", got)
	}
	if got := rec.names(Cancelled); len(got) != 1 || got[0] != "task long" {
		t.Errorf("cancelled = %v, want [task long]", got)
	}
}

func TestCyclesAndUnknownTasks(t *testing.T) {
	b, _, err := load(t, map[string]string{"BUILD.star": `
task("x", deps = ["y"])
task("y", deps = ["z"])
task("z", deps = ["x"])
task("build")
task("bad", deps = ["biuld"])
`})
	if err != nil {
		t.Fatal(err)
	}
	r := b.NewRunner(RunOptions{})
	if _, err := r.Resolve([]string{"x"}); err == nil || !strings.Contains(err.Error(), "cycle: task x -> task y -> task z -> task x") {
		t.Fatalf("cycle: %v", err)
	}
	if _, err := r.Resolve([]string{"buidl"}); err == nil || !strings.Contains(err.Error(), `unknown task "buidl" (did you mean "build"?)`) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := r.Resolve([]string{"bad"}); err == nil || !strings.Contains(err.Error(), `BUILD.star:6:5: task bad: deps: unknown task "biuld" (did you mean "build"?)`) {
		t.Fatalf("unknown dep: %v", err)
	}
}

// fakeTarget is a minimal Target for executor tests.
type fakeTarget struct {
	id    string
	deps  []Target
	out   string
	built *int
	mu    *sync.Mutex
	build func(a *Action) error // what Build does besides counting (nil: nothing)
}

func (f *fakeTarget) String() string        { return f.id }
func (f *fakeTarget) Type() string          { return "fake" }
func (f *fakeTarget) Freeze()               {}
func (f *fakeTarget) Truth() starlark.Bool  { return true }
func (f *fakeTarget) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable") }
func (f *fakeTarget) ID() string            { return f.id }
func (f *fakeTarget) Pos() syntax.Position  { return syntax.Position{} }
func (f *fakeTarget) Deps() []Target        { return f.deps }
func (f *fakeTarget) Outputs() []string     { return []string{f.out} }
func (f *fakeTarget) Build(a *Action) error {
	f.mu.Lock()
	*f.built++
	f.mu.Unlock()
	if f.build != nil {
		return f.build(a)
	}
	return nil
}

func TestTargetsBuildOnceAndFeedOutputs(t *testing.T) {
	var mu sync.Mutex
	n := 0
	mk := starlark.NewBuiltin("target", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name string
		var deps *starlark.List
		if err := starlark.UnpackArgs("target", args, kwargs, "name", &name, "deps?", &deps); err != nil {
			return nil, err
		}
		ft := &fakeTarget{id: "fake " + name, out: "/out/" + name, built: &n, mu: &mu}
		if deps != nil {
			for i := 0; i < deps.Len(); i++ {
				ft.deps = append(ft.deps, deps.Index(i).(Target))
			}
		}
		return ft, HostOf(thread).AddTarget(ft)
	})
	b, out, err := load(t, map[string]string{"BUILD.star": `
base = target("base")
app = target("app", deps = [base])
task("build", deps = [app, base], run = lambda ctx: print(ctx.outputs))
task("again", deps = ["build", app])
`}, func(o *Options) { o.Builtins = starlark.StringDict{"target": mk} })
	if err != nil {
		t.Fatal(err)
	}
	// In one round, a target reached twice (again -> build -> app, again -> app) builds once.
	if err := b.NewRunner(RunOptions{}).Run(context.Background(), []string{"again"}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("targets built %d times, want 2", n)
	}
	// Each command-line task is a round: targets are checked again (the cache makes an
	// unchanged one cheap), since a task before may have bumped the version.
	n = 0
	if err := b.NewRunner(RunOptions{}).Run(context.Background(), []string{"build", "again"}); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("targets built %d times over two rounds, want 4", n)
	}
	if !strings.Contains(out.String(), `["/out/app", "/out/base"]`) {
		t.Fatalf("ctx.outputs: %q", out.String())
	}
}

// BenchmarkEvaluate20Modules1000Tasks is the evaluation budget: a BUILD.star that loads 20
// modules and declares 1,000 tasks.
func BenchmarkEvaluate20Modules1000Tasks(b *testing.B) {
	files := map[string]string{}
	var main strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&main, "load('//rules/m%d.star', m%d = 'make')\n", i, i)
		files[fmt.Sprintf("rules/m%d.star", i)] = fmt.Sprintf(`
def make(prefix, n):
    for i in range(n):
        deps = [prefix + "-" + str(i - 1)] if i > 0 else []
        task(prefix + "-" + str(i), deps = deps, run = lambda ctx: None, doc = "task %d")
`, i)
	}
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&main, "m%d('t%d', 50)\n", i, i)
	}
	files["BUILD.star"] = main.String()
	fs := memProject(b, files)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bd, err := Load(Options{FS: fs})
		if err != nil {
			b.Fatal(err)
		}
		if n := len(bd.Host.Tasks()); n != 1000 {
			b.Fatalf("%d tasks", n)
		}
	}
}

func TestSteps(t *testing.T) {
	b, out, err := load(t, map[string]string{"BUILD.star": `
task("bump", run = lambda ctx: print("bump"))
task("build", deps = ["compile"], run = lambda ctx: print("build"))
task("compile", run = lambda ctx: print("compile"))
task("publish", deps = ["build"], run = lambda ctx: print("publish"))
task("release", steps = ["bump", "publish"], run = lambda ctx: print("release"))
task("loop1", steps = ["loop2"])
task("loop2", steps = ["loop1"])
task("bad", deps = ["release"])
`})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.NewRunner(RunOptions{}).Run(context.Background(), []string{"release"}); err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(strings.NewReplacer("[bump]", "", "[build]", "", "[compile]", "", "[publish]", "", "[release]", "").Replace(out.String()))
	if strings.Join(got, " ") != "bump compile build publish release" {
		t.Fatalf("steps ran as %v", got)
	}
	r := b.NewRunner(RunOptions{})
	if _, err := r.Resolve([]string{"loop1"}); err == nil || !strings.Contains(err.Error(), "step cycle: loop1 -> loop2 -> loop1") {
		t.Fatalf("step cycle: %v", err)
	}
	if _, err := r.Resolve([]string{"bad"}); err == nil || !strings.Contains(err.Error(), "task release has steps") {
		t.Fatalf("steps task as a dep: %v", err)
	}
}

// TestFinishedEvents: a Finished event tells a task from a target, says whether a task's run
// function ran, and carries the node's outputs (what upds run --json reports).
func TestFinishedEvents(t *testing.T) {
	var mu sync.Mutex
	n := 0
	mk := starlark.NewBuiltin("target", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		ft := &fakeTarget{id: "fake app", out: "/out/app", built: &n, mu: &mu}
		return ft, HostOf(thread).AddTarget(ft)
	})
	b, _, err := load(t, map[string]string{"BUILD.star": `
app = target()
task("build", deps = [app])
task("publish", deps = ["build"], run = lambda ctx: None)
`}, func(o *Options) { o.Builtins = starlark.StringDict{"target": mk} })
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := b.NewRunner(RunOptions{Reporter: rec}).Run(context.Background(), []string{"publish"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rec.events {
		if e.Kind == Finished {
			got = append(got, fmt.Sprintf("%s task=%v ran=%v %v", e.Name, e.Task, e.Ran, e.Outputs))
		}
	}
	want := "[fake app task=false ran=false [/out/app] task build task=true ran=false [/out/app] task publish task=true ran=true [/out/app]]"
	if fmt.Sprint(got) != want {
		t.Errorf("finished events:\n%v\nwant\n%v", got, want)
	}
}
