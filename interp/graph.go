package interp

import "go.starlark.net/syntax"

// GraphNode is a task or a target with what it needs: the IDs of its dependencies (for a
// target, its Deps(): a package's Depends on another package of the build) and of a task's
// steps.
type GraphNode struct {
	ID    string          `json:"id"` // "task build", "deb hello"
	Task  *Task           `json:"-"`  // nil for a target
	Pos   syntax.Position `json:"-"`
	Deps  []string        `json:"deps"`
	Steps []string        `json:"steps,omitempty"`
}

// IsTask reports whether the node is a task (not a target).
func (g GraphNode) IsTask() bool { return g.Task != nil }

// Graph returns the named tasks (every task when names is empty), their steps and everything
// they depend on, each once, each after what it needs. It checks the graph as Run does:
// unknown tasks and cycles are errors.
func (r *Runner) Graph(names []string) ([]GraphNode, error) {
	var tasks []*Task
	if len(names) == 0 {
		tasks = r.b.Host.Tasks()
		for _, t := range tasks {
			if err := r.check(t, nil); err != nil {
				return nil, err
			}
		}
	} else {
		var err error
		if tasks, err = r.Resolve(names); err != nil {
			return nil, err
		}
	}
	w := &graphWalk{r: r, seen: map[string]bool{}}
	for _, t := range tasks {
		if err := w.task(t); err != nil {
			return nil, err
		}
	}
	return w.out, nil
}

type graphWalk struct {
	r    *Runner
	seen map[string]bool
	out  []GraphNode
}

// task adds a task after its steps and dependencies.
func (w *graphWalk) task(t *Task) error {
	n, err := w.r.graph(t, nil)
	if err != nil || w.seen[n.id] {
		return err
	}
	steps, err := w.r.steps(t)
	if err != nil {
		return err
	}
	var stepIDs []string
	for _, st := range steps {
		if err := w.task(st); err != nil {
			return err
		}
		stepIDs = append(stepIDs, "task "+st.Name)
	}
	w.node(n) // not seen yet: a task with steps is no one's dependency, nor its own step
	w.out[len(w.out)-1].Steps = stepIDs
	return nil
}

// node adds a node after its dependencies; the node added last is n.
func (w *graphWalk) node(n *node) {
	if w.seen[n.id] {
		return
	}
	w.seen[n.id] = true
	deps := []string{}
	for _, d := range n.deps {
		w.node(d)
		deps = append(deps, d.id)
	}
	w.out = append(w.out, GraphNode{ID: n.id, Task: n.task, Pos: n.pos(), Deps: deps})
}
