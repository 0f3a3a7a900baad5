package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/upds/upds/stdlib/audit"
	"github.com/upds/upds/stdlib/deploy"
	"github.com/upds/upds/stdlib/inventory"
	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/setup"
	"github.com/upds/upds/stdlib/sshconn"
)

// repoFlags name the repository of deploy and audit: --repo and --key, else fleet() of
// BUILD.star.
type repoFlags struct {
	url, key, suite string
}

// resolve returns the repository's URL (or directory), key file and suite.
func (rf repoFlags) resolve(inv *inventory.Inventory, cmd string) (repoFlags, error) {
	r := rf
	if r.url == "" && inv != nil && inv.Repo != nil {
		r.url = inv.Repo.URL
		if r.key == "" {
			r.key = inv.Repo.Key
		}
		if r.suite == "" {
			r.suite = inv.Repo.Suite
		}
	}
	if r.url == "" {
		return r, usageErr("%s: no repository: pass --repo URL --key KEY.asc, or declare fleet(repo = URL, key = FILE) in BUILD.star", cmd)
	}
	if r.suite == "" {
		r.suite = "stable"
	}
	return r, nil
}

// source reads and verifies the repository's index and returns the setup source for it.
func (rf repoFlags) source(ctx context.Context, cmd string) (setup.Source, *repo.Index, error) {
	if !repo.IsURL(rf.url) {
		return setup.Source{}, nil, usageErr("%s: --repo %s: want the repository's http:// or https:// URL", cmd, rf.url)
	}
	if rf.key == "" {
		return setup.Source{}, nil, usageErr("%s: --key KEY.asc is required with --repo", cmd)
	}
	key, err := os.ReadFile(rf.key)
	if err != nil {
		return setup.Source{}, nil, usageErr("--key: %v", err)
	}
	src := setup.Source{URL: rf.url, Suite: rf.suite, Key: key}
	if _, err := setup.Script(src); err != nil {
		return src, nil, usageErr("%v", err)
	}
	ix, err := readRepoIndex(ctx, rf.url, rf.key, rf.suite)
	if err != nil {
		return src, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	src.Origin = ix.Release.Get("Origin")
	src.Components = strings.Fields(ix.Release.Get("Components"))
	return src, ix, nil
}

// interrupter turns signals into the two steps of stopping work on servers: the first
// Ctrl-C (or SIGTERM) starts no more servers and waits for the running ones, whose apt
// must not stop half-way; the second stops waiting (the setup goes on there).
type interrupter struct {
	stop, detach             context.Context
	cancelStop, cancelDetach context.CancelFunc
	mu                       sync.Mutex
	running                  map[string]bool
	ch                       chan os.Signal
	done                     chan struct{}
}

func newInterrupter(parent context.Context) *interrupter {
	in := &interrupter{running: map[string]bool{}, ch: make(chan os.Signal, 4), done: make(chan struct{})}
	base := context.WithoutCancel(parent) // the root command's context ends at the first signal
	in.stop, in.cancelStop = context.WithCancel(base)
	in.detach, in.cancelDetach = context.WithCancel(base)
	signal.Notify(in.ch, os.Interrupt, syscall.SIGTERM)
	go in.loop()
	return in
}

func (in *interrupter) loop() {
	n := 0
	for {
		select {
		case <-in.done:
			return
		case <-in.ch:
		}
		n++
		in.mu.Lock()
		var names []string
		for s := range in.running {
			names = append(names, s)
		}
		in.mu.Unlock()
		sort.Strings(names)
		switch {
		case n == 1 && len(names) > 0:
			in.cancelStop()
			fmt.Fprintf(os.Stderr, "upds: interrupted: no more servers start; waiting for %s to finish, so that apt is not stopped half-way (Ctrl-C again: stop waiting, the setup goes on there)\n", strings.Join(names, ", "))
		case n == 1:
			in.cancelStop()
		default:
			in.cancelDetach()
			fmt.Fprintln(os.Stderr, "upds: interrupted again: not waiting any more")
		}
	}
}

func (in *interrupter) started(name string) {
	in.mu.Lock()
	in.running[name] = true
	in.mu.Unlock()
}

func (in *interrupter) finished(name string) {
	in.mu.Lock()
	delete(in.running, name)
	in.mu.Unlock()
}

// interrupted reports whether a signal came.
func (in *interrupter) interrupted() bool { return in.stop.Err() != nil }

func (in *interrupter) close() {
	signal.Stop(in.ch)
	close(in.done)
	in.cancelStop()
	in.cancelDetach()
}

// deployServers are the servers of a deploy: the inventory's (by name or group) and --host.
func deployServers(inv *inventory.Inventory, names []string, sf *sshFlags) ([]deploy.Server, error) {
	var out []deploy.Server
	hosts, err := sf.targets()
	if err != nil {
		return nil, err
	}
	if inv != nil && (len(names) > 0 || len(hosts) == 0) {
		sel, err := inv.Select(names)
		if err != nil {
			return nil, usageErr("deploy: %v", err)
		}
		for _, s := range sel {
			out = append(out, deploy.Server{Name: s.Name, SSH: s.SSH, Packages: s.Packages})
		}
	} else if len(names) > 0 {
		return nil, usageErr("deploy: %s: no BUILD.star declares servers here (use --host)", strings.Join(names, ", "))
	}
	for _, h := range hosts {
		out = append(out, deploy.Server{Name: h, SSH: h})
	}
	if len(out) == 0 {
		return nil, usageErr("deploy: no servers: declare them with server() in BUILD.star, or name them with --host")
	}
	return out, nil
}

func newDeployCmd(g *globalFlags) *cobra.Command {
	var (
		rf                        repoFlags
		sf                        sshFlags
		opt                       deploy.Options
		asJSON                    bool
		connectTimeout            time.Duration
		parallelServers           int
		canary, keepGoing, asList bool
	)
	c := &cobra.Command{
		Use:   "deploy [SERVER|GROUP...] [--repo URL --key KEY.asc] [--parallel N] [--canary] [--keep-going]",
		Short: "Bring servers to the repository's newest packages, one after the other",
		Long: `Deploys to the servers that BUILD.star declares with server() (all, or those named by
server or group), and to every --host: each is set up from the repository as upds setup
does (key and source, repairs of an interrupted or broken dpkg, its packages installed),
every package of the repository installed there is upgraded to the newest version, and
an audit over the same connection checks that it ended current and clean (no package
outdated or missing, no configuration file that kept local changes).

Servers go one at a time (--parallel N: N at a time); --canary deploys to the first one
alone first. The rollout stops at the first server that does not end current and clean,
unless --keep-going. Ctrl-C starts no more servers and waits for the running ones (apt
is never stopped half-way); a second Ctrl-C stops waiting, the setup goes on there.

The repository is --repo URL --key KEY.asc, or fleet(repo = ..., key = ...) in BUILD.star.
Exit status: 0 when every server ended current and clean, 1 otherwise, 2 for bad usage,
130 when interrupted.`,
		Example: `  upds deploy                    # every server of BUILD.star's inventory
  upds deploy --canary production  # one server of the group first, then the others
  upds deploy web1 --parallel 2 --keep-going --json
  upds deploy --repo https://apt.example.com/ --key key.asc --host root@web9`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: g.completeServers,
		RunE: func(c *cobra.Command, names []string) error {
			if parallelServers < 1 {
				return usageErr("deploy: --parallel must be at least 1, not %d", parallelServers)
			}
			inv, err := g.loadInventory(c.Context(), len(sf.hosts) > 0 || sf.hostsFile != "")
			if err != nil {
				return err
			}
			servers, err := deployServers(inv, names, &sf)
			if err != nil {
				return err
			}
			if asList {
				for _, s := range servers {
					fmt.Printf("%s\t%s\t%s\n", s.Name, s.SSH, strings.Join(s.Packages, " "))
				}
				return nil
			}
			if rf, err = rf.resolve(inv, "deploy"); err != nil {
				return err
			}
			if opt.Source, opt.Index, err = rf.source(c.Context(), "deploy"); err != nil {
				return err
			}
			have := map[string]bool{}
			for _, p := range opt.Index.Packages {
				have[p.Name] = true
			}
			for _, s := range servers {
				for _, p := range s.Packages {
					if !have[p] {
						return &exitError{code: 1, err: fmt.Errorf("deploy: %s: %s is not a package of %s", s.Name, p, rf.url)}
					}
				}
			}
			opt.SSH, opt.ConnectTimeout = sf.options(), connectTimeout
			opt.Parallel, opt.Canary, opt.KeepGoing = parallelServers, canary, keepGoing
			return runDeploy(c.Context(), servers, opt, asJSON)
		},
	}
	f := c.Flags()
	f.StringVar(&rf.url, "repo", "", "the repository's URL (default: fleet() of BUILD.star)")
	f.StringVar(&rf.key, "key", "", "the repository's public key (its public/key.asc, obtained safely)")
	f.StringVar(&rf.suite, "suite", "", "the suite (default: fleet()'s, or stable)")
	f.IntVar(&parallelServers, "parallel", 1, "servers deployed at once")
	f.BoolVar(&canary, "canary", false, "deploy to the first server alone first; stop if it fails")
	f.BoolVar(&keepGoing, "keep-going", false, "go on after a server failed (without it, no server starts after one failed)")
	f.BoolVar(&asJSON, "json", false, "print the reports as JSON")
	f.BoolVar(&asList, "dry-run", false, "list the servers and their packages, and do nothing")
	f.DurationVar(&connectTimeout, "connect-timeout", sshconn.DefaultTimeout, "time allowed to connect to each server")
	sf.add(c)
	g.addLibFlag(c)
	return c
}

// runDeploy runs the rollout with Ctrl-C handling and prints the reports.
func runDeploy(ctx context.Context, servers []deploy.Server, opt deploy.Options, asJSON bool) error {
	in := newInterrupter(ctx)
	defer in.close()
	var mu sync.Mutex
	opt.Stop = in.stop
	opt.Started = func(s deploy.Server) {
		in.started(s.Name)
		if !asJSON {
			mu.Lock()
			fmt.Fprintf(os.Stderr, "%s: deploying %s\n", s.Name, strings.Join(append([]string{s.SSH}, s.Packages...), " "))
			mu.Unlock()
		}
	}
	opt.Done = func(r *deploy.Report) {
		in.finished(r.Server)
		if !asJSON {
			mu.Lock()
			printDeployReport(os.Stdout, r)
			mu.Unlock()
		}
	}
	reports := deploy.Rollout(in.detach, servers, opt)
	counts := map[deploy.Status]int{}
	for _, r := range reports {
		counts[r.Status]++
		if !asJSON && (r.Status == deploy.Skipped || r.Status == deploy.Interrupted && !r.Detached) {
			printDeployReport(os.Stdout, r)
		}
	}
	if asJSON {
		if err := printJSON(reports); err != nil {
			return err
		}
	}
	var parts []string
	for _, st := range []deploy.Status{deploy.Current, deploy.Conflicts, deploy.Outdated, deploy.Failed, deploy.Skipped, deploy.Interrupted} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	sum := strings.Join(parts, ", ")
	switch {
	case in.interrupted():
		return &exitError{code: 130, err: fmt.Errorf("deploy interrupted: %s", sum)}
	case counts[deploy.Current] != len(reports):
		return &exitError{code: 1, err: fmt.Errorf("deploy: %s", sum)}
	}
	if !asJSON {
		fmt.Printf("deploy: %s\n", sum)
	}
	return nil
}

// printDeployReport prints what happened on one server, a line each, prefixed by its name.
func printDeployReport(w io.Writer, r *deploy.Report) {
	p := r.Server + ": "
	line := func(word, text string) { fmt.Fprintf(w, "%s%-10s %s\n", p, word, text) }
	if r.Waited {
		line("waited", "for an earlier setup there to end")
	}
	for _, s := range r.Replaced {
		line("replaced", s)
	}
	for _, s := range r.Repairs {
		line("repaired", s)
	}
	for _, ch := range r.Changes {
		line(string(ch.Action), ch.Package+" "+ch.Versions())
	}
	for _, row := range r.Problems {
		switch row.Status {
		case audit.Conflict:
			line("conflict", row.File+": "+audit.ConflictText(row.File))
		case audit.Missing:
			line("missing", strings.TrimSpace(row.Package+" "+row.Latest))
		default:
			line(string(row.Status), fmt.Sprintf("%s %s (repository: %s)", row.Package, row.Installed, row.Latest))
		}
	}
	secs := fmt.Sprintf(" in %.1fs", r.Seconds)
	switch r.Status {
	case deploy.Current:
		fmt.Fprintf(w, "%scurrent: %d package change(s)%s\n", p, len(r.Changes), secs)
	case deploy.Conflicts, deploy.Outdated:
		fmt.Fprintf(w, "%s%s: %d package change(s)%s, %d problem(s) above\n", p, strings.ToUpper(string(r.Status)), len(r.Changes), secs, len(r.Problems))
	case deploy.Skipped:
		fmt.Fprintf(w, "%sskipped: an earlier server did not end current\n", p)
	case deploy.Interrupted:
		switch {
		case !r.Detached:
			fmt.Fprintf(w, "%sinterrupted: not started\n", p)
		case r.AptRunning:
			fmt.Fprintf(w, "%sinterrupted: upds stopped waiting; the setup is still running there (log: %s); deploy again when it ended\n", p, setup.LogFile)
		default:
			fmt.Fprintf(w, "%sinterrupted: upds stopped waiting; the setup has ended there since (log: %s)\n", p, setup.LogFile)
		}
	default:
		fmt.Fprintf(w, "%sFAILED: %s\n", p, strings.ReplaceAll(r.Error, "\n", "\n"+p+"  "))
	}
}
