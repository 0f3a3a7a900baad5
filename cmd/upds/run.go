package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.starlark.net/starlark"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/deb"
	"github.com/upds/upds/stdlib/inventory"
	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/send"
	"github.com/upds/upds/stdlib/venv"
	"github.com/upds/upds/stdlib/version"
)

// builtins are the predeclared names the stdlib modules give BUILD.star.
func builtins() starlark.StringDict {
	all := starlark.StringDict{}
	for _, m := range []starlark.StringDict{deb.Builtins(), version.Builtins(), venv.Builtins(), send.Builtins(repo.CheckUploads), repo.Builtins(), inventory.Builtins()} {
		for k, v := range m {
			all[k] = v
		}
	}
	return all
}

func mustGetwd() string {
	wd, _ := os.Getwd()
	return wd
}

// runFlags are the flags of upds run besides the build flags.
type runFlags struct {
	dryRun bool
	json   bool
}

func newRunCmd(g *globalFlags) *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "run TASK...",
		Short: "Run tasks (and their dependencies)",
		Long: `Run the named tasks of BUILD.star. Each task runs after its dependencies;
independent dependencies run in parallel (-j). Tasks named on the command line run in the
given order, so "upds run bump-minor build" builds the bumped version.

A run is a transaction over VERSION and upds.lock: when it fails, is interrupted or is
killed, they are put back as they were before it (after a kill, by the next run), so a
release (bump, then publish) that fails can be run again. One run at a time per project.

--dry-run says what would be built, what comes from the cache and which run functions would
run, without building, running or writing anything. --json prints the result of the run as
JSON on stdout (the tasks' own output then goes to stderr).`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: g.completeTasks,
		RunE: func(c *cobra.Command, args []string) error {
			g.builds = true
			if f.dryRun {
				return g.dryRun(c.Context(), args, f.json)
			}
			return g.runTasks(c.Context(), args, f.json)
		},
	}
	g.addBuildFlags(c)
	c.Flags().BoolVarP(&f.dryRun, "dry-run", "n", false, "say what would be built, come from the cache and run; do nothing")
	c.Flags().BoolVar(&f.json, "json", false, "print the result (with --dry-run: the plan) as JSON on stdout")
	return c
}

// runTasks runs the named tasks, showing the progress on stderr; asJSON prints a build report.
func (g *globalFlags) runTasks(ctx context.Context, names []string, asJSON bool) error {
	out := newOutput(g.progressMode())
	var rep *reportCollector
	var reporter interp.Reporter = out
	if asJSON {
		out.taskStdout = os.Stderr // stdout is the report's
		rep = &reportCollector{next: out}
		reporter = rep
	}
	b, err := g.load(ctx, out)
	if err != nil {
		return err
	}
	r := b.NewRunner(interp.RunOptions{Jobs: g.jobs, KeepGoing: g.keepGoing, Reporter: reporter})
	if _, err := r.Resolve(names); err != nil {
		return err
	}
	tx, err := beginRun(ctx, b, names)
	if err != nil {
		return err
	}
	out.start()
	err = r.Run(ctx, names)
	out.stop(err)
	err = endRun(tx, err)
	var outputs []string
	seen := map[string]bool{}
	for _, name := range names {
		for _, o := range r.Outputs(name) {
			if !seen[o] {
				seen[o] = true
				outputs = append(outputs, o)
			}
		}
	}
	if rep != nil {
		if werr := rep.write(os.Stdout, outputs, err); werr != nil && err == nil {
			err = werr
		}
	} else if err == nil && out.mode != progressNone {
		// Say where the files went.
		for _, o := range outputs {
			if rel, err := filepath.Rel(mustGetwd(), o); err == nil && !strings.HasPrefix(rel, "..") {
				o = rel
			}
			fmt.Fprintf(os.Stderr, "  %s\n", o)
		}
	}
	return err
}

// dryRun prints what upds run would do with the named tasks.
func (g *globalFlags) dryRun(ctx context.Context, names []string, asJSON bool) error {
	b, err := g.load(ctx, newOutput(progressNone))
	if err != nil {
		return err
	}
	r := b.NewRunner(interp.RunOptions{Jobs: g.jobs})
	steps, err := r.Plan(ctx, names)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(steps)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for _, s := range steps {
		line := string(s.Status) + "\t" + s.ID
		if s.Reason != "" {
			line += "\t(" + s.Reason + ")"
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "upds: dry run: nothing was built, run or written")
	return nil
}

func newTasksCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "tasks",
		Short: "List the tasks of BUILD.star with their descriptions",
		Long: `List the tasks of BUILD.star, sorted by name, with the first line of their doc.
--json prints every task with its whole doc, its position in BUILD.star, its dependencies
(the IDs "task NAME" and targets such as "deb NAME") and its steps.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			b, err := g.load(c.Context(), newOutput(progressNone))
			if err != nil {
				return err
			}
			if asJSON {
				return writeTasksJSON(b)
			}
			tasks := b.Host.Tasks()
			if len(tasks) == 0 {
				fmt.Println("BUILD.star declares no tasks")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			for _, t := range tasks {
				doc, _, _ := strings.Cut(strings.TrimSpace(t.Doc), "\n")
				fmt.Fprintf(tw, "%s\t%s\n", t.Name, doc)
			}
			return tw.Flush()
		},
	}
	g.addLibFlag(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the tasks as JSON, with their dependencies and steps")
	return c
}

// writeTasksJSON prints the tasks of b as JSON: name, doc, position, deps and steps.
func writeTasksJSON(b *interp.Build) error {
	nodes, err := b.NewRunner(interp.RunOptions{}).Graph(nil)
	if err != nil {
		return err
	}
	byID := map[string]interp.GraphNode{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	type taskJSON struct {
		Name  string   `json:"name"`
		Doc   string   `json:"doc"`
		Pos   string   `json:"position"`
		Deps  []string `json:"deps"`
		Steps []string `json:"steps"`
	}
	list := []taskJSON{}
	for _, t := range b.Host.Tasks() {
		n := byID["task "+t.Name]
		list = append(list, taskJSON{t.Name, t.Doc, t.Pos.String(), n.Deps, append([]string{}, n.Steps...)})
	}
	return printJSON(list)
}
