package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func newCleanCmd(g *globalFlags) *cobra.Command {
	var cacheOnly bool
	c := &cobra.Command{
		Use:   "clean",
		Short: "Remove the output directory (dist/) and the cache (.upds/)",
		Long: `Remove the project's output directory (project(out = ...), default dist/) and its cache
(.upds/). The cache only makes builds faster: the next build produces the same bytes.
upds.lock stays: it is part of the project (commit it). --cache-only keeps dist/.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			b, err := g.load(c.Context(), newOutput(progressNone))
			if err != nil {
				return err
			}
			if err := recoverRun(c.Context(), b, "upds clean"); err != nil {
				return err // .upds/ holds the journal of a run that was killed
			}
			dirs := []string{filepath.Join(b.Host.Root, ".upds")}
			if !cacheOnly {
				dirs = append(dirs, b.Host.OutDir())
			}
			for _, d := range dirs {
				if _, err := os.Lstat(d); err != nil {
					continue
				}
				if err := os.RemoveAll(d); err != nil {
					return err
				}
				rel, _ := filepath.Rel(b.Host.Root, d)
				fmt.Printf("removed %s/\n", rel)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&cacheOnly, "cache-only", false, "remove only the cache (.upds/)")
	g.addLibFlag(c)
	return c
}
