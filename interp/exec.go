package interp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// EventKind says what happened to a node of the graph.
type EventKind int

const (
	// Started: the node's work began.
	Started EventKind = iota
	// Finished: the node succeeded (Cached tells whether it was a cache hit).
	Finished
	// Failed: the node failed with Err.
	Failed
	// Skipped: the node did not run because a dependency failed or the run was cancelled.
	Skipped
	// Cancelled: the node was stopped while it ran, by Ctrl-C or by another node's failure.
	Cancelled
)

// ErrCancelled is wrapped by the error of a node stopped while it ran.
var ErrCancelled = errors.New("cancelled")

// ErrInterrupted is wrapped by the error of an evaluation or a run stopped by its context
// (Ctrl-C, SIGTERM) rather than by a failure.
var ErrInterrupted = errors.New("interrupted")

// Event reports progress of a run to a Reporter.
type Event struct {
	Kind    EventKind
	Name    string // "task build", "deb hello"
	Err     error
	Cached  bool
	Elapsed time.Duration
	Total   int // number of nodes in the current graph
	// Task tells a task's events from a target's.
	Task bool
	// Ran is set on Finished when a task's run function ran (not for a task of deps only).
	Ran bool
	// Outputs are the files of a Finished node: a target's, or a task's dependencies'.
	Outputs []string
}

// Reporter receives events; it must be safe for concurrent use.
type Reporter interface{ Event(Event) }

// RunOptions control execution.
type RunOptions struct {
	Jobs      int  // parallel actions; default the number of CPUs
	KeepGoing bool // keep building what does not depend on a failure
	Reporter  Reporter
}

// node is a task or a target in the graph.
type node struct {
	id       string
	task     *Task
	target   Target
	deps     []*node
	resolved bool

	done    chan struct{}
	err     error
	outputs []string
	ran     bool
}

func (n *node) pos() syntax.Position {
	if n.task != nil {
		return n.task.Pos
	}
	return n.target.Pos()
}

// Runner executes tasks of an evaluated build. Nodes that succeeded stay done across calls to
// Run, so `upds run a b` builds what b shares with a only once.
type Runner struct {
	b     *Build
	opt   RunOptions
	nodes map[string]*node
}

// NewRunner prepares to execute tasks of b.
func (b *Build) NewRunner(opt RunOptions) *Runner {
	if opt.Jobs <= 0 {
		opt.Jobs = runtime.NumCPU()
	}
	return &Runner{b: b, opt: opt, nodes: map[string]*node{}}
}

// Resolve checks that every name is a task (with a "did you mean" for near misses) and that
// their dependency graphs have no cycle and name no unknown task.
func (r *Runner) Resolve(names []string) ([]*Task, error) {
	var out []*Task
	for _, n := range names {
		t, ok := r.b.Host.Task(n)
		if !ok {
			return nil, &Error{Msg: unknownTask(n, r.b.Host.Tasks()), Usage: true}
		}
		if err := r.check(t, nil); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// check resolves a task's steps (recursively, with cycle detection) and its graph.
func (r *Runner) check(t *Task, chain []string) error {
	for _, c := range chain {
		if c == t.Name {
			return &Error{Pos: t.Pos, Msg: "step cycle: " + strings.Join(append(chain, t.Name), " -> "), Usage: true}
		}
	}
	steps, err := r.steps(t)
	if err != nil {
		return err
	}
	for _, st := range steps {
		if err := r.check(st, append(chain, t.Name)); err != nil {
			return err
		}
	}
	_, err = r.graph(t, nil)
	return err
}

func (r *Runner) steps(t *Task) ([]*Task, error) {
	var out []*Task
	for _, s := range t.rawSteps {
		switch x := s.(type) {
		case *Task:
			out = append(out, x)
		case starlark.String:
			st, ok := r.b.Host.Task(string(x))
			if !ok {
				return nil, &Error{Pos: t.Pos, Msg: fmt.Sprintf("task %s: steps: %s", t.Name, unknownTask(string(x), r.b.Host.Tasks())), Usage: true}
			}
			out = append(out, st)
		}
	}
	return out, nil
}

func unknownTask(name string, tasks []*Task) string {
	msg := fmt.Sprintf("unknown task %q", name)
	best, bestD := "", 1<<30
	for _, t := range tasks {
		if d := editDistance(name, t.Name); d < bestD {
			best, bestD = t.Name, d
		}
	}
	if best != "" && (bestD <= 2 || bestD <= len(name)/3 || strings.HasPrefix(best, name)) {
		return msg + fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(tasks) == 0 {
		return msg + " (BUILD.star declares no tasks)"
	}
	return msg + " (`upds tasks` lists them)"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// graph builds (or reuses) the node for a task or target, checking for cycles.
func (r *Runner) graph(v any, stack []*node) (*node, error) {
	var id string
	switch x := v.(type) {
	case *Task:
		id = "task " + x.Name
	case Target:
		id = x.ID()
	}
	for i, s := range stack {
		if s.id == id {
			var chain []string
			for _, c := range stack[i:] {
				chain = append(chain, c.id)
			}
			chain = append(chain, id)
			return nil, &Error{Pos: stack[i].pos(), Msg: "dependency cycle: " + strings.Join(chain, " -> "), Usage: true}
		}
	}
	if n, ok := r.nodes[id]; ok && n.depsResolved() {
		return n, nil
	}
	n, ok := r.nodes[id]
	if !ok {
		n = &node{id: id}
		switch x := v.(type) {
		case *Task:
			n.task = x
		case Target:
			n.target = x
		}
		r.nodes[id] = n
	}
	stack = append(stack, n)
	var deps []*node
	switch x := v.(type) {
	case *Task:
		for _, d := range x.rawDeps {
			var dv any
			switch dd := d.(type) {
			case starlark.String:
				t, ok := r.b.Host.Task(string(dd))
				if !ok {
					return nil, &Error{Pos: x.Pos, Msg: fmt.Sprintf("task %s: deps: %s", x.Name, unknownTask(string(dd), r.b.Host.Tasks())), Usage: true}
				}
				dv = t
			case *Task:
				dv = dd
			case Target:
				dv = dd
			}
			if dt, ok := dv.(*Task); ok && len(dt.rawSteps) > 0 {
				return nil, &Error{Pos: x.Pos, Msg: fmt.Sprintf("task %s: deps: task %s has steps, which run in order: list it in steps, not in deps", x.Name, dt.Name), Usage: true}
			}
			dn, err := r.graph(dv, stack)
			if err != nil {
				return nil, err
			}
			deps = append(deps, dn)
		}
	case Target:
		for _, d := range x.Deps() {
			dn, err := r.graph(d, stack)
			if err != nil {
				return nil, err
			}
			deps = append(deps, dn)
		}
	}
	n.deps = deps
	n.resolved = true
	return n, nil
}

func (n *node) depsResolved() bool { return n.resolved }

// Run executes the named tasks one after the other, each after its dependencies; the
// dependencies of one task run in parallel. It returns the first error (or all of them joined
// with KeepGoing).
func (r *Runner) Run(ctx context.Context, names []string) error {
	tasks, err := r.Resolve(names)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tasks {
		if err := r.runTask(ctx, t); err != nil {
			errs = append(errs, err)
			if !r.opt.KeepGoing || ctx.Err() != nil {
				break
			}
		}
	}
	if f := r.b.Host.Cache.Flush(); f != nil && len(errs) == 0 {
		fmt.Fprintf(r.b.Host.Stderr, "upds: warning: saving the stat cache: %v\n", f)
	}
	return errors.Join(errs...)
}

// runTask runs a task's steps one after the other, then its dependencies and itself.
func (r *Runner) runTask(ctx context.Context, t *Task) error {
	steps, err := r.steps(t)
	if err != nil {
		return err
	}
	for _, st := range steps {
		if err := r.runTask(ctx, st); err != nil {
			return err
		}
	}
	root, err := r.graph(t, nil)
	if err != nil {
		return err
	}
	return r.runGraph(ctx, root)
}

// Outputs returns the outputs of a finished task (the built files of its dependencies).
func (r *Runner) Outputs(name string) []string {
	if n, ok := r.nodes["task "+name]; ok {
		return n.outputs
	}
	return nil
}

func (r *Runner) runGraph(parent context.Context, root *node) error {
	// Collect the nodes not yet done, in a deterministic order.
	var pending []*node
	seen := map[*node]bool{}
	var visit func(n *node)
	visit = func(n *node) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range n.deps {
			visit(d)
		}
		// Every reachable node takes part in every round: targets are checked again (a step
		// or command-line task may have bumped the version since; an unchanged target is a
		// cache hit), and a task whose run function already ran only collects its deps'
		// outputs again, so that ctx.outputs never names files of an older version.
		pending = append(pending, n)
	}
	visit(root)
	for _, n := range pending {
		n.done = make(chan struct{})
		if n.task == nil || !n.ran {
			n.err = nil // a task that ran keeps its result: its function does not run again
		}
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	sem := make(chan struct{}, r.opt.Jobs)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	total := len(pending)
	for _, n := range pending {
		wg.Add(1)
		go func(n *node) {
			defer wg.Done()
			defer close(n.done)
			if n.task != nil && n.ran {
				// Ran in an earlier round: it keeps its failure, or collects its deps'
				// outputs of this round (they may have been rebuilt at a new version).
				depFailed := false
				for _, d := range n.deps {
					<-d.done
					depFailed = depFailed || d.err != nil
				}
				switch {
				case n.err != nil:
				case depFailed:
					n.err = errSkipped
				default:
					n.outputs = depOutputs(n)
				}
				return
			}
			for _, d := range n.deps {
				if d.done != nil {
					<-d.done
				}
				if d.err != nil {
					n.err = errSkipped
				}
			}
			if n.err == nil && ctx.Err() != nil {
				n.err = errSkipped
			}
			if n.err == nil {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					n.err = errSkipped
				}
			}
			if n.err == errSkipped {
				r.report(n, Event{Kind: Skipped, Total: total})
				return
			}
			start := time.Now()
			r.report(n, Event{Kind: Started, Total: total})
			cached, err := r.execute(ctx, n)
			<-sem
			n.ran = true
			if errors.Is(err, ErrCancelled) {
				// Not a failure of its own: the run says why it stopped (the failure that
				// cancelled it, or "interrupted").
				n.err = err
				r.report(n, Event{Kind: Cancelled, Err: err, Elapsed: time.Since(start), Total: total})
				return
			}
			if err != nil {
				n.err = err
				r.report(n, Event{Kind: Failed, Err: err, Elapsed: time.Since(start), Total: total})
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
				if !r.opt.KeepGoing {
					cancel()
				}
				return
			}
			r.report(n, Event{Kind: Finished, Cached: cached, Elapsed: time.Since(start), Total: total,
				Ran: n.task != nil && n.task.Run != nil, Outputs: n.outputs})
		}(n)
	}
	wg.Wait()
	if len(failures) == 0 && parent.Err() != nil {
		return ErrInterrupted
	}
	return errors.Join(failures...)
}

var errSkipped = errors.New("skipped")

// depOutputs are the outputs of a node's dependencies, in order, without duplicates.
func depOutputs(n *node) []string {
	var outs []string
	seen := map[string]bool{}
	for _, d := range n.deps {
		for _, o := range d.outputs {
			if !seen[o] {
				seen[o] = true
				outs = append(outs, o)
			}
		}
	}
	return outs
}

// report sends an event about n, naming it, to the reporter.
func (r *Runner) report(n *node, e Event) {
	e.Name, e.Task = n.id, n.task != nil
	if r.opt.Reporter != nil {
		r.opt.Reporter.Event(e)
	}
}

func (r *Runner) execute(ctx context.Context, n *node) (cached bool, err error) {
	h := r.b.Host
	outs := depOutputs(n)
	if n.target != nil {
		log := newPrefixWriter(h.Stderr, &h.outMu, n.id)
		defer log.Flush()
		a := &Action{Ctx: ctx, Host: h, Log: log, Jobs: r.opt.Jobs}
		if err := n.target.Build(a); err != nil {
			if ctx.Err() != nil {
				// Stopped by Ctrl-C or by another action's failure: what it failed with (a
				// killed pip, "context canceled" in whatever wrapping) is not its own failure.
				return false, fmt.Errorf("%s: %w", n.id, ErrCancelled)
			}
			var ue *Error
			if errors.As(err, &ue) {
				return false, err
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, n.id+":") {
				msg = n.id + ": " + msg
			}
			return false, &Error{Pos: n.target.Pos(), Msg: msg, Cause: err}
		}
		n.outputs = n.target.Outputs()
		return a.Cached, nil
	}
	t := n.task
	n.outputs = outs
	if t.Run == nil {
		return false, nil
	}
	stdout := newPrefixWriter(h.Stdout, &h.outMu, t.Name)
	stderr := newPrefixWriter(h.Stderr, &h.outMu, t.Name)
	defer stdout.Flush()
	defer stderr.Flush()
	version := ""
	if h.VersionFunc != nil {
		if v, err := h.Version(); err == nil {
			version = v
		}
	}
	thread := &starlark.Thread{
		Name: "task " + t.Name,
		Print: func(_ *starlark.Thread, msg string) {
			fmt.Fprintln(stdout, msg)
		},
		Load: func(*starlark.Thread, string) (starlark.StringDict, error) {
			return nil, fmt.Errorf("load() is only allowed at the top of a .star file")
		},
	}
	thread.SetLocal(localHost, h)
	thread.SetLocal(localPhase, PhaseRun)
	thread.SetLocal(localRun, &RunState{Ctx: ctx, Task: t, Stdout: stdout, Stderr: stderr, Outputs: outs})
	stop := context.AfterFunc(ctx, func() { thread.Cancel("cancelled") })
	defer stop()
	var args starlark.Tuple
	if fn, ok := t.Run.(*starlark.Function); !ok || fn.NumParams() > 0 {
		args = starlark.Tuple{runContext(t, outs, version)}
	}
	if _, err := starlark.Call(thread, t.Run, args, nil); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("task %s: %w", t.Name, ErrCancelled)
		}
		e := convertError(err, false)
		if ue, ok := e.(*Error); ok {
			ue.Msg = fmt.Sprintf("task %s: %s", t.Name, ue.Msg)
		}
		return false, e
	}
	return false, nil
}

// prefixWriter writes whole lines, each prefixed with "[name] ", to an underlying writer; lines
// from tasks running in parallel never interleave within a line.
type prefixWriter struct {
	mu     sync.Mutex
	outMu  *sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
}

func newPrefixWriter(w io.Writer, outMu *sync.Mutex, name string) *prefixWriter {
	return &prefixWriter{w: w, outMu: outMu, prefix: []byte("[" + name + "] ")}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.emit(p.buf[:i+1])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func (p *prefixWriter) emit(line []byte) {
	out := make([]byte, 0, len(p.prefix)+len(line))
	out = append(out, p.prefix...)
	out = append(out, line...)
	p.outMu.Lock()
	p.w.Write(out)
	p.outMu.Unlock()
}

// Flush writes a final unterminated line.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
}
