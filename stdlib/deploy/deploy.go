// Package deploy brings servers to a repository's newest packages, one server after the
// other or a few at a time (upds deploy). Each server is set up with the repository's
// script (setup.RunSSH: key and source, repairs, the server's packages installed, every
// installed package of the repository upgraded), then audited over the same connection:
// a server is done when it ends current and clean. The rollout stops at the first server
// that does not.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/upds/upds/interp/parallel"
	"github.com/upds/upds/stdlib/audit"
	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/setup"
	"github.com/upds/upds/stdlib/sshconn"
)

// Server is one server to deploy to.
type Server struct {
	Name     string   // in the reports
	SSH      string   // [user@]host[:port], or a Host of ~/.ssh/config
	Packages []string // installed (and then kept at the newest version) besides what it has
}

// Options configure a rollout.
type Options struct {
	// Source is the repository the servers are set up from.
	Source setup.Source
	// Index is the repository's verified index: the versions the servers must end at.
	Index *repo.Index
	// SSH configures the connections.
	SSH sshconn.Options
	// ConnectTimeout bounds connecting to one server (default sshconn.DefaultTimeout).
	ConnectTimeout time.Duration
	// Parallel is the number of servers deployed at once (default 1).
	Parallel int
	// Canary deploys to the first server alone first, and stops when it fails, even with
	// KeepGoing.
	Canary bool
	// KeepGoing goes on after a failed server; without it no server starts after one failed.
	KeepGoing bool
	// Stop, when done, starts no more servers; the running ones go on to the end (the
	// context of Rollout ending detaches from them). Nil: never.
	Stop context.Context
	// Started and Done, when set, are called as each server starts and ends (from several
	// goroutines).
	Started func(s Server)
	Done    func(r *Report)
}

// Status is how a server ended.
type Status string

// The statuses of a Report.
const (
	Current     Status = "current"     // set up, every repository package at its newest version, no conflict
	Conflicts   Status = "conflicts"   // current, but configuration files kept local changes
	Outdated    Status = "outdated"    // set up, but the audit found packages not at the newest version, or missing
	Failed      Status = "failed"      // unreachable, or the setup failed
	Skipped     Status = "skipped"     // not started: an earlier server did not end current
	Interrupted Status = "interrupted" // not started, or left running, after Ctrl-C
)

// Report is what a rollout did on one server.
type Report struct {
	Server    string           `json:"server"`
	SSH       string           `json:"ssh"`
	Status    Status           `json:"status"`
	Changes   []setup.Change   `json:"changes"`
	Packages  []setup.Role     `json:"packages"`            // the server's packages and their versions after
	Conflicts []setup.Conflict `json:"conflicts,omitempty"` // conffiles that kept local changes
	Repairs   []string         `json:"repairs,omitempty"`
	Replaced  []string         `json:"replaced,omitempty"` // other apt sources of the repository taken out
	Waited    bool             `json:"waited,omitempty"`   // an earlier setup was still running there
	// Problems are the audit's rows that are not current (outdated, missing, conflict).
	Problems []audit.Row `json:"problems,omitempty"`
	// Detached: upds stopped waiting while the setup ran (second Ctrl-C); AptRunning:
	// it still ran when checked after that.
	Detached   bool    `json:"detached,omitempty"`
	AptRunning bool    `json:"apt_running,omitempty"`
	Error      string  `json:"error,omitempty"`
	Seconds    float64 `json:"seconds"`
	Log        string  `json:"-"` // apt's output
}

// OK reports whether the server ended current and clean.
func (r *Report) OK() bool { return r.Status == Current }

// errFailed stops the rollout (parallel.ForEach starts nothing after an error).
var errFailed = errors.New("a server failed")

// Rollout deploys to the servers in order, opt.Parallel at a time, and returns one Report
// per server, in the order given. ctx ending detaches from the servers being set up (the
// setup goes on there, see setup.RunSSH); opt.Stop ending starts no more.
func Rollout(ctx context.Context, servers []Server, opt Options) []*Report {
	stop := opt.Stop
	if stop == nil {
		stop = context.WithoutCancel(ctx)
	}
	reports := make([]*Report, len(servers))
	run := func(gctx context.Context, i int) error {
		if stop.Err() != nil || gctx.Err() != nil || ctx.Err() != nil {
			return nil // left nil: not started
		}
		if opt.Started != nil {
			opt.Started(servers[i])
		}
		r := deployOne(ctx, servers[i], opt)
		reports[i] = r
		if opt.Done != nil {
			opt.Done(r)
		}
		if !r.OK() && !opt.KeepGoing {
			return errFailed
		}
		return nil
	}
	first := 0
	if opt.Canary && len(servers) > 1 {
		run(stop, 0)
		first = 1
	}
	if first == 0 || reports[0] != nil && reports[0].OK() {
		limit := opt.Parallel
		if limit <= 0 {
			limit = 1
		}
		parallel.ForEach(stop, len(servers)-first, limit, func(gctx context.Context, i int) error { return run(gctx, first+i) })
	}
	for i, r := range reports {
		if r == nil {
			st := Skipped
			if stop.Err() != nil || ctx.Err() != nil {
				st = Interrupted
			}
			reports[i] = &Report{Server: servers[i].Name, SSH: servers[i].SSH, Status: st, Changes: []setup.Change{}, Packages: []setup.Role{}}
		}
	}
	return reports
}

// deployOne sets one server up and audits it.
func deployOne(ctx context.Context, s Server, opt Options) *Report {
	start := time.Now()
	r := &Report{Server: s.Name, SSH: s.SSH, Status: Failed, Changes: []setup.Change{}, Packages: []setup.Role{}}
	defer func() { r.Seconds = time.Since(start).Round(time.Millisecond).Seconds() }()
	t, err := sshconn.ParseTarget(s.SSH)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	so := opt.SSH
	if opt.ConnectTimeout > 0 {
		so.Timeout = opt.ConnectTimeout
	}
	c, err := sshconn.Dial(ctx, t, so)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer c.Close()
	res := setup.RunSSH(ctx, s.Name, c, c.User() != "root", opt.Source, setup.Options{Roles: s.Packages})
	r.Changes, r.Packages, r.Conflicts, r.Repairs, r.Replaced, r.Waited, r.Log =
		res.Changes, res.Roles, res.Conflicts, res.Repairs, res.Replaced, res.Waited, res.Log
	switch {
	case res.Detached:
		r.Status, r.Detached, r.Error = Interrupted, true, res.Error
		r.AptRunning = setup.StillRunning(ctx, t, so)
		return r
	case res.Err != nil:
		r.Error = res.Error
		return r
	}
	qctx, cancel := context.WithTimeout(ctx, audit.DefaultTimeout)
	defer cancel()
	facts, err := audit.Query(qctx, c)
	if err != nil {
		r.Error = fmt.Sprintf("audit after the setup: %v", err)
		return r
	}
	r.Status = Current
	for _, row := range audit.Check(s.Name, facts, s.Packages, opt.Index) {
		if row.Status == audit.Current {
			continue
		}
		r.Problems = append(r.Problems, row)
		if row.Status == audit.Conflict && r.Status == Current {
			r.Status = Conflicts
		} else if row.Status != audit.Conflict {
			r.Status = Outdated
		}
	}
	return r
}
