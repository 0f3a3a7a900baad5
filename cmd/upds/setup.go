package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/upds/upds/stdlib/audit"
	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/setup"
	"github.com/upds/upds/stdlib/sshconn"
)

func newSetupCmd(g *globalFlags) *cobra.Command {
	var (
		source, keyFile, name, suite, update string
		asJSON, quiet                        bool
		connectTimeout                       time.Duration
		sf                                   sshFlags
	)
	c := &cobra.Command{
		Use:   "setup --repo URL --key KEY.asc [--host user@host ...] ROLE...",
		Short: "Point a server at the repository and install its role packages",
		Long: `Sets up this machine (as root), or every --host over SSH in parallel (host keys checked,
~/.ssh/config applied; sudo -n when the login user is not root): installs the repository
key as /etc/apt/keyrings/NAME.asc, writes the deb822 source
/etc/apt/sources.list.d/NAME.sources with Signed-By (taking out any other source of the
same URL), runs apt-get update, repairs an interrupted dpkg or unmet dependencies,
installs the ROLE packages and upgrades every installed package of the repository
non-interactively, then reports what it changed, and configuration files that kept local
changes (exit status 1). A second run changes nothing and says "nothing to do". Ctrl-C
waits for apt to finish (exit status 130); a second Ctrl-C stops waiting.

Before touching any machine the repository's index is read and its signature verified
with --key, and every ROLE must be a package of the repository.
The same steps, without upds on the server: curl -fsSL URL/setup.sh | sudo sh -s -- ROLE...`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, roles []string) error {
			if source == "" || keyFile == "" {
				return usageErr("setup: --repo URL and --key KEY.asc are required")
			}
			if !repo.IsURL(source) {
				return usageErr("setup: --repo %s: want the repository's http:// or https:// URL", source)
			}
			if update != "all" && update != "repo" {
				return usageErr("setup: --update %q: want all or repo", update)
			}
			for _, r := range roles {
				if err := setup.ValidRole(r); err != nil {
					return usageErr("%v", err)
				}
			}
			hosts, err := sf.targets()
			if err != nil {
				return err
			}
			key, err := os.ReadFile(keyFile)
			if err != nil {
				return usageErr("--key: %v", err)
			}
			src := setup.Source{Name: name, URL: source, Suite: suite, Key: key}
			if _, err := setup.Script(src); err != nil {
				return usageErr("%v", err)
			}
			ix, err := readRepoIndex(c.Context(), source, keyFile, suite)
			if err != nil {
				return fmt.Errorf("setup: %w", err)
			}
			src.Components = strings.Fields(ix.Release.Get("Components"))
			src.Origin = ix.Release.Get("Origin")
			have := map[string]bool{}
			for _, p := range ix.Packages {
				have[p.Name] = true
			}
			for _, r := range roles {
				if !have[r] {
					return &exitError{code: 1, err: fmt.Errorf("setup: %s is not a package of %s", r, source)}
				}
			}
			opt := setup.Options{Roles: roles, UpdateRepoOnly: update == "repo"}
			if !quiet && !asJSON {
				opt.Log = os.Stderr
			}
			so := sf.options()
			so.Timeout = connectTimeout
			results, interrupted, err := runSetup(c.Context(), hosts, src, opt, so, g.jobs)
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range results {
				if r.Err != nil || r.NotStarted || len(r.Conflicts) > 0 {
					failed++
				}
			}
			if asJSON {
				if err := printJSON(results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					printSetupResult(os.Stdout, r, len(hosts) > 0)
				}
			}
			switch {
			case interrupted:
				return &exitError{code: 130, err: fmt.Errorf("setup interrupted (%d of %d host(s) not done)", failed, len(results))}
			case failed > 0:
				return &exitError{code: 1, err: fmt.Errorf("setup failed on %d of %d host(s)", failed, len(results))}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&source, "repo", "", "the repository's URL (the directory holding dists/)")
	f.StringVar(&keyFile, "key", "", "the repository's public key (its public/key.asc, obtained safely)")
	f.StringVar(&name, "name", "", "name of the key and source files under /etc/apt (default: the repository's host name)")
	f.StringVar(&suite, "suite", "stable", "the suite")
	f.StringVar(&update, "update", "all", "apt-get update: all (every source) or repo (only this repository's)")
	f.BoolVar(&asJSON, "json", false, "print the results as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not show apt's output")
	f.DurationVar(&connectTimeout, "connect-timeout", sshconn.DefaultTimeout, "time allowed to connect to each --host (the installation itself is not limited)")
	sf.add(c)
	g.addJobsFlag(c, "servers set up at once (default: all)")
	return c
}

// runSetup sets up this machine (no hosts) or the hosts over SSH, with Ctrl-C handling
// (see interrupter): the results, and whether a signal came.
func runSetup(ctx context.Context, hosts []string, src setup.Source, opt setup.Options, so sshconn.Options, jobs int) ([]*setup.Result, bool, error) {
	in := newInterrupter(ctx)
	defer in.close()
	opt.Stop = in.stop
	if len(hosts) == 0 {
		if os.Geteuid() != 0 {
			return nil, false, fmt.Errorf("setup: must run as root to set up this machine (sudo upds setup ...), or name servers with --host")
		}
		in.started("this machine")
		return []*setup.Result{setup.RunLocal(in.detach, src, opt)}, in.interrupted(), nil
	}
	var targets []setup.Host
	for _, h := range hosts {
		t, err := sshconn.ParseTarget(h)
		if err != nil {
			return nil, false, usageErr("--host %s: %v", h, err)
		}
		targets = append(targets, setup.Host{Name: h, Target: t})
		in.started(h)
	}
	opt.Log = nil
	return setup.RunHosts(in.detach, targets, so, jobs, src, opt), in.interrupted(), nil
}

func printSetupResult(w io.Writer, r *setup.Result, prefix bool) {
	p := ""
	if prefix {
		p = r.Host + ": "
	}
	state := func(written bool) string {
		if written {
			return "written"
		}
		return "unchanged"
	}
	if r.KeyPath != "" {
		fmt.Fprintf(w, "%skey     %s %s (fingerprint %s)\n", p, r.KeyPath, state(r.KeyWritten), r.Fingerprint)
	}
	if r.SourcePath != "" {
		fmt.Fprintf(w, "%ssource  %s %s\n", p, r.SourcePath, state(r.SourceWritten))
	}
	if r.Waited {
		fmt.Fprintf(w, "%swaited     for an earlier setup there to end\n", p)
	}
	for _, s := range r.Replaced {
		fmt.Fprintf(w, "%sreplaced   %s\n", p, s)
	}
	for _, s := range r.Repairs {
		fmt.Fprintf(w, "%srepaired   %s\n", p, s)
	}
	for _, ch := range r.Changes {
		fmt.Fprintf(w, "%s%-10s %s %s\n", p, ch.Action, ch.Package, ch.Versions())
	}
	for _, ro := range r.Roles {
		fmt.Fprintf(w, "%srole       %s %s\n", p, ro.Package, ro.Version)
	}
	for _, cf := range r.Conflicts {
		fmt.Fprintf(w, "%sconflict   %s: %s\n", p, cf.File, audit.ConflictText(cf.File))
	}
	switch {
	case r.NotStarted:
		fmt.Fprintf(w, "%sinterrupted: not started\n", p)
	case r.Detached && r.AptRunning:
		fmt.Fprintf(w, "%sinterrupted: upds stopped waiting; the setup is still running there (log: %s)\n", p, setup.LogFile)
	case r.Detached:
		fmt.Fprintf(w, "%sinterrupted: upds stopped waiting; the setup has ended there since (log: %s)\n", p, setup.LogFile)
	case r.Err != nil:
		fmt.Fprintf(w, "%sFAILED: %s\n", p, strings.ReplaceAll(r.Err.Error(), "\n", "\n"+p+"  "))
	case len(r.Conflicts) > 0:
		fmt.Fprintf(w, "%sdone: %d package change(s); %d configuration file(s) need a decision\n", p, len(r.Changes), len(r.Conflicts))
	case r.NothingToDo:
		fmt.Fprintf(w, "%snothing to do: key, source and roles already in place\n", p)
	default:
		fmt.Fprintf(w, "%sdone: %d package change(s)\n", p, len(r.Changes))
	}
}
