package interp

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"go.starlark.net/starlark"
)

// checkTarget is a fakeTarget that knows whether it is cached.
type checkTarget struct {
	fakeTarget
	cached bool
	err    error
}

func (c *checkTarget) Cached(a *Action) (bool, error) { return c.cached, c.err }

// builds counts the Build calls of the targets targetBuiltin declares.
type builds struct {
	mu sync.Mutex
	n  int
}

// targetBuiltin declares targets: target(name, deps = [], cached = None, check_error = None);
// cached = None makes one without CacheChecker. build runs in their Build (nil: nothing).
func targetBuiltin(count *builds, build func(a *Action) error) *starlark.Builtin {
	return starlark.NewBuiltin("target", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name, checkErr string
		var deps *starlark.List
		var cached starlark.Value = starlark.None
		if err := starlark.UnpackArgs("target", args, kwargs, "name", &name, "deps?", &deps, "cached?", &cached, "check_error?", &checkErr); err != nil {
			return nil, err
		}
		ft := fakeTarget{id: "fake " + name, built: &count.n, mu: &count.mu, build: build}
		if deps != nil {
			for i := 0; i < deps.Len(); i++ {
				ft.deps = append(ft.deps, deps.Index(i).(Target))
			}
		}
		var t Target = &ft
		if cached != starlark.None {
			ct := &checkTarget{fakeTarget: ft, cached: bool(cached.Truth())}
			if checkErr != "" {
				ct.err = errors.New(checkErr)
			}
			t = ct
		}
		return t, HostOf(thread).AddTarget(t)
	})
}

const planBuild = `
base = target("base", cached = True)
app = target("app", deps = [base], cached = False)
top = target("top", deps = [app], cached = True)
odd = target("odd")
bad = target("bad", cached = True, check_error = "cannot hash input")
after = target("after", deps = [odd], cached = True)
task("build", deps = [top, odd, bad, after])
task("bump", run = lambda ctx: print("bump"))
task("release", steps = ["bump", "build"], run = lambda ctx: print("release"))
`

// loadPlanBuild evaluates planBuild; count counts its targets' builds.
func loadPlanBuild(t *testing.T, count *builds) (*Build, *syncBuf) {
	t.Helper()
	b, out, err := load(t, map[string]string{"BUILD.star": planBuild},
		func(o *Options) { o.Builtins = starlark.StringDict{"target": targetBuiltin(count, nil)} })
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

// TestPlan: a dry run says which targets are cached, which would build (and after which
// dependency), which cannot tell, and which run functions would run; it builds and runs
// nothing.
func TestPlan(t *testing.T) {
	count := &builds{}
	b, out := loadPlanBuild(t, count)
	steps, err := b.NewRunner(RunOptions{}).Plan(context.Background(), []string{"build", "release"})
	if err != nil {
		t.Fatal(err)
	}
	const later = "checked now: task bump runs first and may change it"
	want := []PlanStep{
		{"fake base", PlanCached, ""},
		{"fake app", PlanBuild, ""},
		{"fake top", PlanBuild, "after fake app"},
		{"fake odd", PlanUnknown, "cannot tell without building"},
		{"fake bad", PlanUnknown, "cannot hash input"},
		{"fake after", PlanUnknown, "after fake odd"},
		{"task build", PlanNone, ""},
		{"task bump", PlanRun, ""},
		{"task release", PlanRun, ""},
	}
	if !reflect.DeepEqual(steps, want) {
		t.Errorf("plan of build, release:\n%v\nwant\n%v", steps, want)
	}
	if count.n != 0 || out.String() != "" {
		t.Errorf("a dry run built %d targets, printed %q", count.n, out.String())
	}
	// The targets of release are checked before bump runs: the plan says so.
	steps, err = b.NewRunner(RunOptions{}).Plan(context.Background(), []string{"release"})
	if err != nil {
		t.Fatal(err)
	}
	if steps[0].ID != "task bump" || steps[1] != (PlanStep{"fake base", PlanCached, later}) {
		t.Errorf("plan of release: %v", steps)
	}
	if _, err := b.NewRunner(RunOptions{}).Plan(context.Background(), []string{"relase"}); !IsUsage(err) {
		t.Errorf("unknown task: %v", err)
	}
}

func TestGraph(t *testing.T) {
	b, _ := loadPlanBuild(t, &builds{})
	nodes, err := b.NewRunner(RunOptions{}).Graph([]string{"release"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nodes {
		got = append(got, fmt.Sprintf("%s %v %v %v", n.ID, n.IsTask(), n.Deps, n.Steps))
	}
	want := []string{
		"task bump true [] []",
		"fake base false [] []",
		"fake app false [fake base] []",
		"fake top false [fake app] []",
		"fake odd false [] []",
		"fake bad false [] []",
		"fake after false [fake odd] []",
		"task build true [fake top fake odd fake bad fake after] []",
		"task release true [] [task bump task build]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("graph of release:\n%q\nwant\n%q", got, want)
	}
	all, err := b.NewRunner(RunOptions{}).Graph(nil)
	if err != nil || len(all) != len(want) {
		t.Errorf("graph of every task: %d nodes, %v", len(all), err)
	}
}
