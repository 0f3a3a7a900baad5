package interp

import (
	"context"
	"io"
)

// CacheChecker is implemented by a Target that can tell whether its Build would take the
// outputs from the cache, without building and without writing anything (no output file, no
// cache entry, no stat-cache flush). upds run --dry-run asks it; a target without it is
// reported as PlanUnknown.
type CacheChecker interface {
	Target
	// Cached reports whether Build, called now with an Action like a, would be a cache hit.
	// a.Log discards; a.Cached is not used.
	Cached(a *Action) (bool, error)
}

// PlanStatus is what a run would do with a task or a target.
type PlanStatus string

const (
	// PlanCached: the target's outputs would come from the cache.
	PlanCached PlanStatus = "cached"
	// PlanBuild: the target would be built.
	PlanBuild PlanStatus = "build"
	// PlanUnknown: the target cannot tell without building (or depends on one that cannot).
	PlanUnknown PlanStatus = "unknown"
	// PlanRun: the task's run function would run.
	PlanRun PlanStatus = "run"
	// PlanNone: the task has no run function; it only gathers its dependencies.
	PlanNone PlanStatus = "none"
)

// PlanStep is one task or target of a plan, in the order a run would finish them.
type PlanStep struct {
	ID     string     `json:"id"` // "task build", "deb hello"
	Status PlanStatus `json:"status"`
	// Reason says why, when the status alone does not: the dependency that is built first,
	// the error of a cache check, or the task that runs before a target is built.
	Reason string `json:"reason,omitempty"`
}

// Plan says what Run(ctx, names) would do, without doing it: which targets would be built
// and which come from the cache, and which run functions would run. Nothing is built, run or
// written. A target is checked as things are now: when a task that runs earlier (a bump in
// steps) changes its inputs, the Reason says so.
func (r *Runner) Plan(ctx context.Context, names []string) ([]PlanStep, error) {
	tasks, err := r.Resolve(names)
	if err != nil {
		return nil, err
	}
	p := &planner{r: r, ctx: ctx, status: map[*node]PlanStatus{}}
	for _, t := range tasks {
		if err := p.task(t); err != nil {
			return nil, err
		}
	}
	return p.steps, nil
}

type planner struct {
	r      *Runner
	ctx    context.Context
	status map[*node]PlanStatus
	steps  []PlanStep
	// ranBefore is the first task of an earlier round whose run function would run: what it
	// does (bump the version, write a file) is not known to the checks after it.
	ranBefore string
}

// task plans a task's steps, then the task with its dependencies: one round of Run each.
func (p *planner) task(t *Task) error {
	steps, err := p.r.steps(t)
	if err != nil {
		return err
	}
	for _, st := range steps {
		if err := p.task(st); err != nil {
			return err
		}
	}
	root, err := p.r.graph(t, nil)
	if err != nil {
		return err
	}
	first := len(p.steps)
	if err := p.visit(root); err != nil {
		return err
	}
	for _, s := range p.steps[first:] {
		if s.Status == PlanRun && p.ranBefore == "" {
			p.ranBefore = s.ID
		}
	}
	return nil
}

// visit plans a node after its dependencies, once.
func (p *planner) visit(n *node) error {
	if _, ok := p.status[n]; ok {
		return nil
	}
	p.status[n] = "" // visiting: the graph has no cycle (graph checked it)
	for _, d := range n.deps {
		if err := p.visit(d); err != nil {
			return err
		}
	}
	if err := p.ctx.Err(); err != nil {
		return &Error{Msg: ErrInterrupted.Error(), Cause: ErrInterrupted}
	}
	s := p.step(n)
	p.status[n] = s.Status
	p.steps = append(p.steps, s)
	return nil
}

// step decides what would happen to one node whose dependencies are planned.
func (p *planner) step(n *node) PlanStep {
	s := PlanStep{ID: n.id}
	if n.task != nil {
		s.Status = PlanNone
		if n.task.Run != nil {
			s.Status = PlanRun
		}
		return s
	}
	for _, d := range n.deps {
		if st := p.status[d]; st == PlanBuild || st == PlanUnknown {
			s.Status, s.Reason = st, "after "+d.id
			return s
		}
	}
	c, ok := n.target.(CacheChecker)
	if !ok {
		s.Status, s.Reason = PlanUnknown, "cannot tell without building"
		return s
	}
	h := p.r.b.Host
	cached, err := c.Cached(&Action{Ctx: p.ctx, Host: h, Log: io.Discard, Jobs: p.r.opt.Jobs})
	switch {
	case err != nil:
		s.Status, s.Reason = PlanUnknown, err.Error()
	case cached:
		s.Status = PlanCached
	default:
		s.Status = PlanBuild
	}
	if p.ranBefore != "" && s.Status != PlanUnknown {
		s.Reason = "checked now: " + p.ranBefore + " runs first and may change it"
	}
	return s
}
