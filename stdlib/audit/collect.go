package audit

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/upds/upds/interp/parallel"
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
	limit := opt.Parallel
	if limit <= 0 {
		limit = len(hosts)
	}
	// Every host gets its rows, also after ctx is cancelled (its query fails at once): the
	// loop itself is not cancelled, and no call returns an error.
	res, _ := parallel.Map(context.WithoutCancel(ctx), len(hosts), limit, func(_ context.Context, i int) ([]Row, error) {
		return collectHost(ctx, hosts[i], ix, opt.SSH, timeout), nil
	})
	rows := []Row{}
	for _, r := range res {
		rows = append(rows, r...)
	}
	return rows
}

// collectHost audits one host within timeout: its rows, or one Unreachable row with the reason.
func collectHost(ctx context.Context, h string, ix *repo.Index, so sshconn.Options, timeout time.Duration) []Row {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if so.Timeout <= 0 || so.Timeout > timeout {
		so.Timeout = timeout
	}
	inst, err := CollectSSH(hctx, h, so)
	if err != nil {
		if hctx.Err() != nil && ctx.Err() == nil && !strings.Contains(err.Error(), "deadline") {
			err = fmt.Errorf("%w (timed out after %s)", err, timeout)
		}
		return []Row{{Host: h, Status: Unreachable, Error: err.Error()}}
	}
	return Compare(h, inst, ix)
}
