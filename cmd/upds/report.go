package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/upds/upds/interp"
)

// buildReport is what upds run --json prints: every action of the run in the order it ended,
// and the files the named tasks produced, like Buck2's --build-report.
type buildReport struct {
	// Status is done, failed or interrupted.
	Status  string         `json:"status"`
	Actions []actionReport `json:"actions"`
	// Outputs are the files of the named tasks (absolute paths), when the run succeeded.
	Outputs []string `json:"outputs"`
	// Error is the run's error, as upds prints it on stderr.
	Error string `json:"error,omitempty"`
}

// actionReport is one task or target of a run.
type actionReport struct {
	ID   string `json:"id"`   // "task build", "deb hello"
	Kind string `json:"kind"` // task or target
	// Status: a target was built or cached; a task ran (its run function) or was done (it
	// has only dependencies); either failed, was cancelled while it ran, or was skipped
	// because a dependency failed or the run was interrupted.
	Status    string   `json:"status"`
	Outputs   []string `json:"outputs,omitempty"`
	ElapsedMS int64    `json:"elapsed_ms"`
	Error     string   `json:"error,omitempty"`
}

// reportCollector is the interp.Reporter of a run with --json: it records the actions and
// passes every event on to the progress display.
type reportCollector struct {
	next    interp.Reporter
	mu      sync.Mutex
	actions []actionReport
}

// Event implements interp.Reporter.
func (c *reportCollector) Event(e interp.Event) {
	c.next.Event(e)
	a := actionReport{ID: e.Name, Kind: "target", ElapsedMS: e.Elapsed.Milliseconds()}
	if e.Task {
		a.Kind = "task"
	}
	switch e.Kind {
	case interp.Started:
		return
	case interp.Finished:
		a.Outputs = e.Outputs
		switch {
		case e.Task && e.Ran:
			a.Status = "ran"
		case e.Task:
			a.Status = "done"
		case e.Cached:
			a.Status = "cached"
		default:
			a.Status = "built"
		}
	case interp.Failed:
		a.Status, a.Error = "failed", e.Err.Error()
	case interp.Cancelled:
		a.Status = "cancelled"
	case interp.Skipped:
		a.Status = "skipped"
	}
	c.mu.Lock()
	c.actions = append(c.actions, a)
	c.mu.Unlock()
}

// write prints the report of a run that ended with err.
func (c *reportCollector) write(w io.Writer, outputs []string, err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := buildReport{Status: "done", Actions: c.actions, Outputs: outputs}
	if r.Actions == nil {
		r.Actions = []actionReport{}
	}
	switch {
	case errors.Is(err, interp.ErrInterrupted):
		r.Status, r.Outputs = "interrupted", []string{}
	case err != nil:
		r.Status, r.Outputs, r.Error = "failed", []string{}, err.Error()
	}
	if r.Outputs == nil {
		r.Outputs = []string{}
	}
	return writeJSON(w, r)
}

// printJSON prints v on stdout as indented JSON: the --json output of every command.
func printJSON(v any) error { return writeJSON(os.Stdout, v) }

// writeJSON writes v to w as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
