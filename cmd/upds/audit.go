package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/upds/upds/stdlib/audit"
	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/sshconn"
)

// sshFlags are the SSH options shared by setup and audit.
type sshFlags struct {
	hosts      []string
	hostsFile  string
	identity   []string
	knownHosts []string
	sshConfig  string
}

func (s *sshFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringArrayVar(&s.hosts, "host", nil, "a server to reach over SSH: [user@]host[:port] (repeatable)")
	f.StringVar(&s.hostsFile, "hosts", "", "a file of servers, one [user@]host[:port] per line (# comments)")
	f.StringArrayVar(&s.identity, "identity", nil, "SSH private key file (default: ssh-agent, ~/.ssh/id_ed25519, ~/.ssh/id_rsa)")
	f.StringArrayVar(&s.knownHosts, "known-hosts", nil, "known_hosts file (default ~/.ssh/known_hosts); unknown host keys are refused")
	f.StringVar(&s.sshConfig, "ssh-config", "", "ssh_config file, like ssh -F (default ~/.ssh/config and /etc/ssh/ssh_config; none: no file)")
}

// targets returns the hosts of --host and --hosts, validated.
func (s *sshFlags) targets() ([]string, error) {
	var out []string
	for _, h := range s.hosts {
		if _, err := audit.ParseHosts(strings.NewReader(h), "--host"); err != nil {
			return nil, usageErr("--host %q: want [user@]host[:port]", h)
		}
		out = append(out, h)
	}
	if s.hostsFile != "" {
		hs, err := audit.ReadHostsFile(s.hostsFile)
		if err != nil {
			return nil, usageErr("--hosts: %v", err)
		}
		out = append(out, hs...)
	}
	seen := map[string]bool{}
	uniq := out[:0]
	for _, h := range out {
		if !seen[h] {
			seen[h] = true
			uniq = append(uniq, h)
		}
	}
	return uniq, nil
}

func (s *sshFlags) options() sshconn.Options {
	return sshconn.Options{Identity: s.identity, KnownHosts: s.knownHosts, ConfigFile: s.sshConfig}
}

// readRepoIndex reads and verifies the repository's signed index; key is required
// for a URL and defaults to the repository's key.asc for a directory.
func readRepoIndex(ctx context.Context, source, keyFile, suite string) (*repo.Index, error) {
	var key []byte
	isURL := repo.IsURL(source)
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, usageErr("--key: %v", err)
		}
		key = b
	} else if isURL {
		return nil, usageErr("--repo %s: --key KEY.asc is required for a URL (the repository's public/key.asc, obtained safely)", source)
	}
	if !isURL {
		if fi, err := os.Stat(strings.TrimPrefix(source, "file://")); err != nil || !fi.IsDir() {
			return nil, usageErr("--repo %s: not a URL (http://, https://) nor a directory", source)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ix, err := repo.ReadIndex(ctx, source, repo.IndexOptions{Key: key, Suite: suite})
	if err != nil {
		if errors.Is(err, repo.ErrVerify) {
			k := keyFile
			if k == "" {
				k = "the repository's public/key.asc"
			}
			return nil, fmt.Errorf("%w (the index is not validly signed by %s: refusing to trust it)", err, k)
		}
		return nil, err
	}
	return ix, nil
}

func newAuditCmd(g *globalFlags) *cobra.Command {
	var (
		source, keyFile, suite, statusFile string
		asJSON, verbose                    bool
		timeout                            time.Duration
		sf                                 sshFlags
	)
	c := &cobra.Command{
		Use:   "audit [SERVER|GROUP...] [--repo URL|DIR] [--key KEY.asc] [--host user@host ...] [--hosts FILE] [--json]",
		Short: "Compare installed package versions with the newest in the repository",
		Long: `Reads the installed packages (dpkg-query over SSH, in parallel, each within --timeout:
on every --host, or on the servers of BUILD.star's inventory that are named, or on all of
them when BUILD.star declares a fleet() and no --repo is given; otherwise this machine's
dpkg status file) and the repository's signed index (InRelease verified with --key;
default: fleet() of BUILD.star), and reports for every installed package the
repository carries: current, outdated (with the newest version) or ahead; for installed
role packages (packages that depend on packages of the repository), and for the packages
the inventory gives a server, those not installed: missing; configuration files of
repository packages with a .dpkg-dist or .dpkg-old beside them: conflict; hosts that
could not be queried: unreachable.

Exit status: 0 when everything is current, 1 otherwise (or when the repository cannot be
read or its signature does not verify), 2 for bad usage.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, names []string) error {
			hosts, err := sf.targets()
			if err != nil {
				return err
			}
			if len(names) > 0 && len(hosts) > 0 {
				return usageErr("audit: servers of the inventory (%s) or --host, not both", strings.Join(names, " "))
			}
			if len(names) > 0 && c.Flags().Changed("dpkg-status") {
				return usageErr("audit: servers of the inventory (%s) or --dpkg-status (this machine), not both", strings.Join(names, " "))
			}
			var servers []audit.Host
			if len(hosts) == 0 && !c.Flags().Changed("dpkg-status") && (len(names) > 0 || source == "") {
				// Servers of BUILD.star's inventory: those named, or all when it declares a
				// fleet() and no --repo says otherwise.
				rf := repoFlags{url: source, key: keyFile}
				if c.Flags().Changed("suite") {
					rf.suite = suite
				}
				if servers, rf, err = inventoryAudit(c.Context(), g, rf, names); err != nil {
					return err
				}
				source, keyFile = rf.url, rf.key
				if rf.suite != "" {
					suite = rf.suite
				}
			}
			if source == "" {
				return usageErr("audit: --repo URL|DIR is required")
			}
			ix, err := readRepoIndex(c.Context(), source, keyFile, suite)
			if err != nil {
				return err
			}
			opt := audit.Options{SSH: sf.options(), Timeout: timeout, Parallel: g.jobs, StatusFile: statusFile}
			var rows []audit.Row
			if len(servers) > 0 {
				rows = audit.RunHosts(c.Context(), servers, ix, opt)
			} else {
				rows = audit.Run(c.Context(), hosts, ix, opt)
			}
			if !verbose {
				for i := range rows {
					rows[i].Source = ""
				}
			}
			if asJSON {
				if err := printJSON(rows); err != nil {
					return err
				}
			} else if err := audit.WriteTable(os.Stdout, rows, verbose); err != nil {
				return err
			}
			if !audit.OK(rows) {
				return &exitError{code: 1, err: fmt.Errorf("audit: %s", summary(rows))}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&source, "repo", "", "the repository: its URL (the directory holding dists/) or a repository directory")
	f.StringVar(&keyFile, "key", "", "the repository's public key (KEY.asc) that InRelease must be signed with (default for a directory: its public/key.asc)")
	f.StringVar(&suite, "suite", "stable", "the suite to read")
	f.BoolVar(&asJSON, "json", false, "print a JSON list of {host, package, installed, latest, status}")
	f.BoolVarP(&verbose, "verbose", "v", false, "also show each installed package's X-Upds-Source (the hash of what it was built from)")
	f.DurationVar(&timeout, "timeout", audit.DefaultTimeout, "time allowed for each host (connect and query)")
	f.StringVar(&statusFile, "dpkg-status", audit.StatusFile, "dpkg status file read for this machine (without --host)")
	sf.add(c)
	g.addJobsFlag(c, "hosts queried at once (default: all)")
	c.ValidArgsFunction = g.completeServers
	return c
}

// summary counts the rows that are not current: "2 outdated, 1 unreachable".
func summary(rows []audit.Row) string {
	counts := map[audit.Status]int{}
	for _, r := range rows {
		counts[r.Status]++
	}
	var parts []string
	for _, st := range []audit.Status{audit.Outdated, audit.Ahead, audit.Missing, audit.Conflict, audit.Unreachable} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	return strings.Join(parts, ", ")
}
