package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/upds/upds/stdlib/audit"
	"github.com/upds/upds/stdlib/inventory"
)

// loadInventory evaluates BUILD.star and returns its inventory; nil (and no error) when
// there is no BUILD.star and the caller may do without (optional). ctx stops the
// evaluation; print() goes to stderr, so that stdout keeps the command's own output.
func (g *globalFlags) loadInventory(ctx context.Context, optional bool) (*inventory.Inventory, error) {
	return g.inventoryTo(ctx, os.Stderr, optional)
}

// inventoryTo is loadInventory with print() going to w.
func (g *globalFlags) inventoryTo(ctx context.Context, w io.Writer, optional bool) (*inventory.Inventory, error) {
	if optional {
		if _, err := os.Stat(g.buildFile()); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	b, err := g.loadTo(ctx, w, os.Stderr)
	if err != nil {
		return nil, err
	}
	inv, err := inventory.Of(b.Host)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return inv, nil
}

// buildFile is the path of BUILD.star.
func (g *globalFlags) buildFile() string {
	if g.dir == "" {
		return "BUILD.star"
	}
	return g.dir + "/BUILD.star"
}

func newServersCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "servers [SERVER|GROUP...]",
		Short: "List the servers BUILD.star declares (the inventory)",
		Long: `Lists the servers that BUILD.star declares with server(): name, how upds reaches
them over SSH, their groups and packages, and the repository fleet() names. Names of
servers or groups select some. upds deploy and upds audit act on the same servers.`,
		Example: `  upds servers
  upds servers production        # the servers of a group
  upds servers --json | jq -r '.servers[].name'`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: g.completeServers,
		RunE: func(c *cobra.Command, names []string) error {
			inv, err := g.loadInventory(c.Context(), false)
			if err != nil {
				return err
			}
			sel, err := inv.Select(names)
			if err != nil {
				return usageErr("servers: %v", err)
			}
			if asJSON {
				out := *inv
				out.Servers = sel
				return printJSON(out)
			}
			return writeServers(os.Stdout, sel, inv.Repo)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the inventory as JSON: {servers: [{name, ssh, packages, groups, position}], repository}")
	g.addLibFlag(c)
	return c
}

// writeServers prints the servers as a table, then the repository.
func writeServers(w io.Writer, servers []inventory.Server, r *inventory.Repository) error {
	if len(servers) == 0 {
		fmt.Fprintln(w, "BUILD.star declares no server(): see docs/fleet.md")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SERVER\tSSH\tGROUPS\tPACKAGES")
		dash := func(l []string) string {
			if len(l) == 0 {
				return "-"
			}
			return strings.Join(l, ",")
		}
		for _, s := range servers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.SSH, dash(s.Groups), strings.Join(s.Packages, " "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r != nil {
		fmt.Fprintf(w, "repository %s (suite %s, key %s)\n", r.URL, r.Suite, r.Key)
	}
	return nil
}

// inventoryAudit returns the servers of BUILD.star's inventory as audit hosts: those
// named, or, with no names, all of them when it declares a fleet() (none when there is no
// BUILD.star or no fleet()); and the repository: rf's, else fleet()'s.
func inventoryAudit(ctx context.Context, g *globalFlags, rf repoFlags, names []string) ([]audit.Host, repoFlags, error) {
	inv, err := g.loadInventory(ctx, len(names) == 0)
	if err != nil || inv == nil || len(names) == 0 && inv.Repo == nil {
		return nil, rf, err
	}
	sel, err := inv.Select(names)
	if err != nil {
		return nil, rf, usageErr("audit: %v", err)
	}
	var hosts []audit.Host
	for _, s := range sel {
		hosts = append(hosts, audit.Host{Name: s.Name, SSH: s.SSH, Packages: s.Packages})
	}
	if rf.url == "" && inv.Repo == nil {
		return hosts, rf, nil // audit says --repo is required
	}
	rf, err = rf.resolve(inv, "audit")
	return hosts, rf, err
}

// completeServers completes the server and group names of BUILD.star's inventory (for
// deploy, servers and audit). A BUILD.star that does not evaluate completes nothing.
func (g *globalFlags) completeServers(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	inv, err := g.inventoryTo(c.Context(), io.Discard, false)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	var out []cobra.Completion
	add := func(name, desc string) {
		if strings.HasPrefix(name, toComplete) && !slices.Contains(args, name) {
			out = append(out, cobra.CompletionWithDesc(name, desc))
		}
	}
	for _, s := range inv.Servers {
		add(s.Name, s.SSH)
	}
	for _, grp := range inv.Groups() {
		add(grp, "group")
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
