package interp

import (
	"context"
	"fmt"
	"io"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// Task is a named unit of work: dependencies, then an optional run function.
type Task struct {
	Name string
	Doc  string
	Run  starlark.Callable
	Pos  syntax.Position
	// deps as written in BUILD.star: task names, *Task values, or targets.
	rawDeps []starlark.Value
	// steps as written: task names or *Task values, run one after the other first.
	rawSteps []starlark.Value
}

var (
	_ starlark.Value    = (*Task)(nil)
	_ starlark.HasAttrs = (*Task)(nil)
)

func (t *Task) String() string        { return fmt.Sprintf("<task %s>", t.Name) }
func (t *Task) Type() string          { return "task" }
func (t *Task) Freeze()               {}
func (t *Task) Truth() starlark.Bool  { return true }
func (t *Task) Hash() (uint32, error) { return starlark.String(t.Name).Hash() }
func (t *Task) AttrNames() []string   { return []string{"doc", "name"} }
func (t *Task) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(t.Name), nil
	case "doc":
		return starlark.String(t.Doc), nil
	}
	return nil, nil
}

// Tasks returns the declared tasks sorted by name.
func (h *Host) Tasks() []*Task {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := append([]*Task(nil), h.order...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Task returns the task with the given name.
func (h *Host) Task(name string) (*Task, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tasks[name]
	return t, ok
}

func builtinTask(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name  string
		deps  *starlark.List
		run   starlark.Callable
		doc   string
		steps *starlark.List
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "deps?", &deps, "run??", &run, "doc?", &doc, "steps?", &steps); err != nil {
		return nil, err
	}
	if PhaseOf(thread) != PhaseEval {
		return nil, fmt.Errorf("task: tasks are declared while BUILD.star is evaluated, not inside a run function")
	}
	if !validTaskName(name) {
		return nil, fmt.Errorf("task: invalid name %q: use letters, digits, '-', '_', '.' and ':'", name)
	}
	t := &Task{Name: name, Doc: doc, Run: run, Pos: CallerPos(thread)}
	if deps != nil {
		for i := 0; i < deps.Len(); i++ {
			d := deps.Index(i)
			switch d.(type) {
			case starlark.String, *Task, Target:
			default:
				return nil, fmt.Errorf("task %s: deps[%d]: want a task name, a task or a target, got %s", name, i, d.Type())
			}
			t.rawDeps = append(t.rawDeps, d)
		}
	}
	if steps != nil {
		for i := 0; i < steps.Len(); i++ {
			st := steps.Index(i)
			switch st.(type) {
			case starlark.String, *Task:
			default:
				return nil, fmt.Errorf("task %s: steps[%d]: want a task name or a task, got %s", name, i, st.Type())
			}
			t.rawSteps = append(t.rawSteps, st)
		}
	}
	h := HostOf(thread)
	h.mu.Lock()
	defer h.mu.Unlock()
	if prev, ok := h.tasks[name]; ok {
		return nil, fmt.Errorf("task %s is already declared at %s", name, prev.Pos)
	}
	h.tasks[name] = t
	h.order = append(h.order, t)
	return t, nil
}

func validTaskName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == ':':
		default:
			return false
		}
	}
	return true
}

// RunState is what a run function's thread carries: the task and where its output goes.
type RunState struct {
	Ctx     context.Context
	Task    *Task
	Stdout  io.Writer
	Stderr  io.Writer
	Outputs []string
}

func runContext(t *Task, outputs []string, version string) starlark.Value {
	outs := make([]starlark.Value, len(outputs))
	for i, o := range outputs {
		outs[i] = starlark.String(o)
	}
	return starlarkstruct.FromStringDict(starlark.String("ctx"), starlark.StringDict{
		"name":    starlark.String(t.Name),
		"outputs": starlark.NewList(outs),
		"version": starlark.String(version),
	})
}
