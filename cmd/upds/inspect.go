package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/upds/upds/stdlib/deb"
)

func newInspectCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:               "inspect FILE.deb",
		Short:             "Show a package's control fields, scripts, conffiles, control files (triggers, debconf templates, shlibs, symbols) and files (dpkg-deb -I -c)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeDebs,
		RunE: func(c *cobra.Command, args []string) error {
			info, err := deb.ReadFile(args[0], deb.ReadOptions{Files: true})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(info)
			}
			return info.WriteText(os.Stdout)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return c
}
