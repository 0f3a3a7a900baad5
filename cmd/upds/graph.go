package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/upds/upds/interp"
)

// graphFormats are the values of upds graph --format; the first is the default.
var graphFormats = []string{"dot", "mermaid"}

func newGraphCmd(g *globalFlags) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "graph [TASK...]",
		Short: "Print the graph of tasks and packages (Graphviz dot or Mermaid)",
		Long: `Print the named tasks (every task without arguments) with everything they need: an
arrow from each task or target to each of its dependencies (a package's Depends on another
package of the build included), and a dashed arrow from a task to each of its steps,
numbered in the order they run. --format dot (Graphviz: dot -Tsvg) or mermaid (renders in
GitHub and GitLab Markdown).`,
		ValidArgsFunction: g.completeTasks,
		RunE: func(c *cobra.Command, args []string) error {
			b, err := g.load(c.Context(), newOutput(progressNone))
			if err != nil {
				return err
			}
			nodes, err := b.NewRunner(interp.RunOptions{}).Graph(args)
			if err != nil {
				return err
			}
			if format == "mermaid" {
				return writeMermaid(os.Stdout, nodes)
			}
			return writeDot(os.Stdout, nodes)
		},
	}
	g.addLibFlag(c)
	addChoice(c, false, &format, "format", graphFormats, "output format: dot or mermaid")
	return c
}

// writeDot writes the graph in Graphviz's dot language: tasks are boxes, targets ellipses.
func writeDot(w io.Writer, nodes []interp.GraphNode) error {
	var b strings.Builder
	b.WriteString("digraph upds {\n  rankdir=LR;\n")
	for _, n := range nodes {
		shape := "ellipse"
		if n.IsTask() {
			shape = "box"
		}
		fmt.Fprintf(&b, "  %q [shape=%s];\n", n.ID, shape)
	}
	for _, n := range nodes {
		for i, s := range n.Steps {
			fmt.Fprintf(&b, "  %q -> %q [style=dashed, label=\"step %d\"];\n", n.ID, s, i+1)
		}
		for _, d := range n.Deps {
			fmt.Fprintf(&b, "  %q -> %q;\n", n.ID, d)
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMermaid writes the graph as a Mermaid flowchart: tasks are rectangles, targets
// stadiums, nodes named n0, n1, ... with their IDs as labels.
func writeMermaid(w io.Writer, nodes []interp.GraphNode) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	name := map[string]string{}
	for i, n := range nodes {
		name[n.ID] = fmt.Sprintf("n%d", i)
		label := strings.ReplaceAll(n.ID, `"`, "#quot;")
		if n.IsTask() {
			fmt.Fprintf(&b, "  %s[\"%s\"]\n", name[n.ID], label)
		} else {
			fmt.Fprintf(&b, "  %s([\"%s\"])\n", name[n.ID], label)
		}
	}
	for _, n := range nodes {
		for i, s := range n.Steps {
			fmt.Fprintf(&b, "  %s -.->|step %d| %s\n", name[n.ID], i+1, name[s])
		}
		for _, d := range n.Deps {
			fmt.Fprintf(&b, "  %s --> %s\n", name[n.ID], name[d])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
