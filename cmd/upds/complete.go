package main

import (
	"context"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// completeTasks completes the task names of BUILD.star (for run and graph): it evaluates
// BUILD.star in the directory of -C, with print() silenced. A BUILD.star that does not
// evaluate completes nothing.
func (g *globalFlags) completeTasks(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	ctx := c.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	b, err := g.loadTo(ctx, io.Discard, io.Discard)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	var out []cobra.Completion
	for _, t := range b.Host.Tasks() {
		if strings.HasPrefix(t.Name, toComplete) && !slices.Contains(args, t.Name) {
			doc, _, _ := strings.Cut(strings.TrimSpace(t.Doc), "\n")
			out = append(out, cobra.CompletionWithDesc(t.Name, doc))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeDebs completes .deb files (and directories on the way to them).
func completeDebs(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []cobra.Completion{"deb"}, cobra.ShellCompDirectiveFilterFileExt
}
