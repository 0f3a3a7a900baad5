package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/upds/upds/stdlib/version"
)

func newVersionCmd(g *globalFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the project version (the VERSION file)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			b, err := g.load(c.Context(), newOutput(progressNone))
			if err != nil {
				return err
			}
			v, err := version.ReadProject(b.Host)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Println(v)
			return nil
		},
	}
	g.addLibFlag(c)
	return c
}

func newBumpCmd(g *globalFlags) *cobra.Command {
	var names []string
	for _, p := range version.Parts() {
		names = append(names, string(p))
	}
	c := &cobra.Command{
		Use:       "bump " + strings.Join(names, "|"),
		Short:     "Increment a part of the project version and print the new version",
		Long:      "Rewrite VERSION atomically (under a lock) with one part incremented; the parts after it are zeroed\nand the number of parts is kept: 1.9 -> minor -> 1.10, 1.4.2 -> major -> 2.0.0, 2.0.0 -> revision -> 2.0.0-1.",
		Args:      cobra.ExactArgs(1),
		ValidArgs: names,
		RunE: func(c *cobra.Command, args []string) error {
			part, err := version.ParsePart(args[0])
			if err != nil {
				return usageErr("bump: %q is not one of %s", args[0], strings.Join(names, ", "))
			}
			b, err := g.load(c.Context(), newOutput(progressNone))
			if err != nil {
				return err
			}
			if err := recoverRun(c.Context(), b, "upds bump"); err != nil {
				return err
			}
			_, nv, err := version.BumpFile(b.Host.FS, b.Host.Project.VersionFile, part)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Println(nv.String())
			return nil
		},
	}
	g.addLibFlag(c)
	return c
}
