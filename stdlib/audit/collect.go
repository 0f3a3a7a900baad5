package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/sshconn"
)

// DefaultTimeout bounds the work on one host (connect, handshake, dpkg-query).
const DefaultTimeout = 30 * time.Second

// checkTarget validates "[user@]host[:port]".
func checkTarget(s string) error {
	t, err := sshconn.ParseTarget(s)
	if err != nil {
		return err
	}
	for _, c := range t.Host + t.User {
		if c <= ' ' || c == '/' || c == '@' || c == '\'' || c == '"' || c == '\\' || c >= 0x7f {
			return fmt.Errorf("%q: %w", s, errBadTarget)
		}
	}
	return nil
}

// Options configure Run.
type Options struct {
	// SSH configures the connections (identity, known_hosts).
	SSH sshconn.Options
	// Timeout bounds each host (default DefaultTimeout).
	Timeout time.Duration
	// Parallel bounds the hosts queried at once (0: all).
	Parallel int
	// StatusFile is read for the local machine (default StatusFile).
	StatusFile string
}

// LocalHost is the host name Run uses for the local machine.
const LocalHost = "localhost"

// Run audits the hosts against the index in parallel, each within opt.Timeout.
// An empty hosts list audits the local machine (its dpkg status file). A host that
// cannot be queried yields one Unreachable row with the reason; the others go on.
// Rows come per host in the order given, each host's sorted by package.
func Run(ctx context.Context, hosts []string, ix *repo.Index, opt Options) []Row {
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if len(hosts) == 0 {
		file := opt.StatusFile
		if file == "" {
			file = StatusFile
		}
		inst, err := ReadStatus(file)
		if err != nil {
			return []Row{{Host: LocalHost, Status: Unreachable, Error: err.Error()}}
		}
		f := &Facts{Installed: inst}
		if file == StatusFile {
			// This machine's own packages: their configuration files are here too.
			if f.Conffiles, err = localConffiles(ctx); err != nil {
				return []Row{{Host: LocalHost, Status: Unreachable, Error: err.Error()}}
			}
		}
		return Check(LocalHost, f, nil, ix)
	}
	hs := make([]Host, len(hosts))
	for i, h := range hosts {
		hs[i] = Host{Name: h, SSH: h}
	}
	return RunHosts(ctx, hs, ix, opt)
}
