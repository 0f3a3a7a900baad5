package audit

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/sshconn"
	"golang.org/x/sync/errgroup"
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

// CollectSSH returns the installed packages of a remote host (dpkg-query over SSH).
func CollectSSH(ctx context.Context, target string, opt sshconn.Options) ([]Installed, error) {
	t, err := sshconn.ParseTarget(target)
	if err != nil {
		return nil, err
	}
	c, err := sshconn.Dial(ctx, t, opt)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	s, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("ssh %s: session: %w", t.Addr(), err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	if err := s.Run(QueryCommand); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ssh %s: dpkg-query: %w", t.Addr(), ctx.Err())
		}
		return nil, fmt.Errorf("ssh %s: dpkg-query: %v: %s", t.Addr(), err, strings.TrimSpace(errb.String()))
	}
	return ParseQuery(&out)
}

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
		return Compare(LocalHost, inst, ix)
	}
	res := make([][]Row, len(hosts))
	var g errgroup.Group
	if opt.Parallel > 0 {
		g.SetLimit(opt.Parallel)
	}
	for i, h := range hosts {
		g.Go(func() error {
			hctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			so := opt.SSH
			if so.Timeout <= 0 || so.Timeout > timeout {
				so.Timeout = timeout
			}
			inst, err := CollectSSH(hctx, h, so)
			if err != nil {
				if hctx.Err() != nil && ctx.Err() == nil && !strings.Contains(err.Error(), "deadline") {
					err = fmt.Errorf("%w (timed out after %s)", err, timeout)
				}
				res[i] = []Row{{Host: h, Status: Unreachable, Error: err.Error()}}
				return nil // an unreachable host is a row, not a reason to stop the others
			}
			res[i] = Compare(h, inst, ix)
			return nil
		})
	}
	g.Wait()
	rows := []Row{}
	for _, r := range res {
		rows = append(rows, r...)
	}
	return rows
}
