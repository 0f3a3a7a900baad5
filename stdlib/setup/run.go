package setup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/upds/upds/interp/parallel"
	"github.com/upds/upds/stdlib/sshconn"
)

// Options configure a run of the setup script.
type Options struct {
	// Roles are the packages to install (none: only the key, the source, apt-get update
	// and the upgrade of the repository's installed packages).
	Roles []string
	// UpdateRepoOnly runs apt-get update for this repository's source only.
	UpdateRepoOnly bool
	// Log receives apt's output (stderr of the script) as it runs; nil keeps it in Result.Log.
	Log io.Writer
	// Stop, when done, keeps RunHosts from starting hosts it has not started yet (they get
	// a Result with NotStarted); the running ones go on. Nil: never.
	Stop context.Context
}

// Change is one package that the run installed, upgraded, downgraded or removed.
type Change struct {
	Action  Action `json:"action"`
	Package string `json:"package"`
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
}

// Action is what a run did to a package. It is the word the script reports it with, and
// what JSON output shows.
type Action string

// The actions of a Change.
const (
	Installed  Action = "installed"
	Upgraded   Action = "upgraded"
	Downgraded Action = "downgraded"
	Removed    Action = "removed"
)

// actions is the one table of Actions: which versions a Change of each names. The script's
// report line gives them after the package: "VERSION", or "OLD -> NEW" when there are both.
var actions = map[Action]struct{ old, new bool }{
	Installed:  {new: true},
	Upgraded:   {old: true, new: true},
	Downgraded: {old: true, new: true},
	Removed:    {old: true},
}

// parseChange reads a report line of the script split into fields ("installed NAME VERSION",
// "upgraded NAME OLD -> NEW"), or returns false when it is not one.
func parseChange(f []string) (Change, bool) {
	k, ok := actions[Action(f[0])]
	c := Change{Action: Action(f[0])}
	switch {
	case !ok:
		return Change{}, false
	case k.old && k.new && len(f) == 5:
		c.Package, c.Old, c.New = f[1], f[2], f[4]
	case k.old != k.new && len(f) == 3:
		c.Package = f[1]
		if k.old {
			c.Old = f[2]
		} else {
			c.New = f[2]
		}
	default:
		return Change{}, false
	}
	return c, true
}

// Versions is how the change reads after its package: "NEW", "OLD" or "OLD -> NEW".
func (c Change) Versions() string {
	k := actions[c.Action]
	switch {
	case k.old && !k.new:
		return c.Old
	case k.new && !k.old:
		return c.New
	}
	return c.Old + " -> " + c.New
}

// Role is a role package and the version installed after the run.
type Role struct {
	Package string `json:"package"`
	Version string `json:"version"`
}

// Conflict is a configuration file of a repository package that kept local changes:
// File, beside it, is the package's version (PATH.dpkg-dist), or the old local one that
// the package's replaced (PATH.dpkg-old).
type Conflict struct {
	Package string `json:"package"`
	Path    string `json:"path"`
	File    string `json:"file"`
}

// Result is what a run did on one machine.
type Result struct {
	Host          string     `json:"host"`
	KeyPath       string     `json:"key,omitempty"`
	Fingerprint   string     `json:"fingerprint,omitempty"`
	KeyWritten    bool       `json:"key_written"`
	SourcePath    string     `json:"source,omitempty"`
	SourceWritten bool       `json:"source_written"`
	Replaced      []string   `json:"replaced,omitempty"` // other sources of the URL taken out, and their keys
	Waited        bool       `json:"waited,omitempty"`   // an earlier run was still going on
	Repairs       []string   `json:"repairs,omitempty"`  // "dpkg --configure -a (...)", "apt-get --fix-broken install (...)"
	Changes       []Change   `json:"changes"`
	Roles         []Role     `json:"roles"`
	Conflicts     []Conflict `json:"conflicts,omitempty"`
	NothingToDo   bool       `json:"nothing_to_do"`
	// NotStarted: Options.Stop came before the host's turn.
	NotStarted bool `json:"not_started,omitempty"`
	// Detached: the run was left while the script ran (the context ended); it goes on on
	// the machine. AptRunning is whether it still ran when checked after that.
	Detached   bool   `json:"detached,omitempty"`
	AptRunning bool   `json:"apt_running,omitempty"`
	Error      string `json:"error,omitempty"`
	Log        string `json:"-"` // apt's output, when Options.Log was nil
	Err        error  `json:"-"`
}

// args returns the script's command-line arguments.
func (o Options) args() ([]string, error) {
	a := []string{"--update=all"}
	if o.UpdateRepoOnly {
		a[0] = "--update=repo"
	}
	a = append(a, "--")
	for _, r := range o.Roles {
		if err := ValidRole(r); err != nil {
			return nil, err
		}
		a = append(a, r)
	}
	return a, nil
}

// ParseOutput reads the report lines the script prints on stdout.
func ParseOutput(host string, out []byte) *Result {
	r := &Result{Host: host, Changes: []Change{}, Roles: []Role{}}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if c, ok := parseChange(f); ok {
			r.Changes = append(r.Changes, c)
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), f[0]))
		switch {
		case f[0] == "key" && len(f) >= 3:
			r.KeyPath, r.KeyWritten = f[1], f[2] == "written"
			if len(f) >= 5 {
				r.Fingerprint = strings.TrimSuffix(f[4], ")")
			}
		case f[0] == "source" && len(f) >= 3:
			r.SourcePath, r.SourceWritten = f[1], f[2] == "written"
		case f[0] == "role" && len(f) >= 2:
			ro := Role{Package: f[1]}
			if len(f) >= 3 {
				ro.Version = f[2]
			}
			r.Roles = append(r.Roles, ro)
		case f[0] == "conffile" && len(f) == 4:
			r.Conflicts = append(r.Conflicts, Conflict{Package: f[1], Path: f[2], File: f[3]})
		case f[0] == "replaced":
			r.Replaced = append(r.Replaced, rest)
		case f[0] == "repaired":
			r.Repairs = append(r.Repairs, rest)
		case f[0] == "waited":
			r.Waited = true
		case l == "nothing to do":
			r.NothingToDo = true
		}
	}
	return r
}

// RunLocal runs the script for source s on this machine with /bin/sh (as root). The
// script runs in a process group of its own, so that a Ctrl-C on the terminal reaches
// upds only. When ctx ends first, RunLocal stops waiting (Result.Detached): the script
// goes on, and so does the apt it started.
func RunLocal(ctx context.Context, s Source, opt Options) *Result {
	script, args, err := prepare(s, opt)
	if err != nil {
		return &Result{Host: "localhost", Err: err, Error: err.Error()}
	}
	cmd := exec.Command("/bin/sh", append([]string{"-s", "--"}, args...)...)
	cmd.Stdin = bytes.NewReader(script)
	var out, log lockedBuffer
	cmd.Stdout = &out
	cmd.Stderr = logWriter(&log, opt.Log)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return finish("localhost", nil, "", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		r := detached("localhost", out.Bytes(), log.String())
		r.AptRunning = true
		return r
	}
	return finish("localhost", out.Bytes(), log.String(), err)
}

// lockedBuffer is a bytes.Buffer that a command writes while RunLocal may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Bytes returns a copy of what was written so far.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *lockedBuffer) String() string { return string(l.Bytes()) }

// RunSSH runs the script on the machine behind client: with sudo -n when the login
// user is not root. When ctx ends first, RunSSH closes the connection and returns
// (Result.Detached): the script and the apt it started go on on the machine.
func RunSSH(ctx context.Context, host string, client *ssh.Client, sudo bool, s Source, opt Options) *Result {
	script, args, err := prepare(s, opt)
	if err != nil {
		return &Result{Host: host, Err: err, Error: err.Error()}
	}
	sess, err := client.NewSession()
	if err != nil {
		return finish(host, nil, "", fmt.Errorf("ssh session: %w", err))
	}
	defer sess.Close()
	cmd := "sh -s -- " + strings.Join(args, " ")
	if sudo {
		cmd = "sudo -n " + cmd
	}
	sess.Stdin = bytes.NewReader(script)
	var out, log bytes.Buffer
	sess.Stdout = &out
	sess.Stderr = logWriter(&log, opt.Log)
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	err = sess.Run(cmd)
	if err != nil && ctx.Err() != nil {
		return detached(host, out.Bytes(), log.String())
	}
	return finish(host, out.Bytes(), log.String(), err)
}

// detached is the Result of a run left while the script ran.
func detached(host string, out []byte, log string) *Result {
	r := ParseOutput(host, out)
	r.Log, r.Detached = log, true
	r.Err = fmt.Errorf("interrupted: upds stopped waiting, the setup goes on there (its log: %s)", LogFile)
	r.Error = r.Err.Error()
	return r
}

// RunningCommand exits 0 when a run of the script (or the apt-get it started) still runs on
// the machine, 1 when none does. It needs no root.
var RunningCommand = "[ -e " + LockFile + " ] && ! flock -n " + LockFile + " true"

// Running reports whether a run of the script, or the apt-get it started, still runs on
// the machine behind client.
func Running(client *ssh.Client) (bool, error) {
	sess, err := client.NewSession()
	if err != nil {
		return false, err
	}
	defer sess.Close()
	err = sess.Run(RunningCommand)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.ExitStatus() == 1:
		return false, nil
	}
	return false, err
}

// StillRunning tells, after a detach, whether the setup still runs on the machine, over a
// new connection within a few seconds (the user asked to stop): true also when it cannot
// tell.
func StillRunning(ctx context.Context, t sshconn.Target, ssho sshconn.Options) bool {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	ssho.Timeout = 5 * time.Second
	c, err := sshconn.Dial(cctx, t, ssho)
	if err != nil {
		return true
	}
	defer c.Close()
	running, err := Running(c)
	return running || err != nil
}

// Host is one machine to set up over SSH.
type Host struct {
	Name   string // as given on the command line
	Target sshconn.Target
}

// RunHosts sets up every host over SSH in parallel (at most limit at once; 0 means
// all) and returns one Result per host, in the order given. A host that cannot be
// reached, or whose host key is unknown, gets a Result with Err set; the others go on.
// Hosts not started when opt.Stop is done get NotStarted; when ctx ends, RunHosts
// detaches from the running ones (see RunSSH) and checks whether apt still runs there.
func RunHosts(ctx context.Context, hosts []Host, ssho sshconn.Options, limit int, s Source, opt Options) []*Result {
	if limit <= 0 {
		limit = len(hosts)
	}
	// Every host gets its Result, also after ctx is cancelled (its Dial fails at once): the
	// loop itself is not cancelled, and no call returns an error.
	res, _ := parallel.Map(context.WithoutCancel(ctx), len(hosts), limit, func(_ context.Context, i int) (*Result, error) {
		h := hosts[i]
		if stopped(opt.Stop) || ctx.Err() != nil {
			return &Result{Host: h.Name, NotStarted: true, Changes: []Change{}, Roles: []Role{}}, nil
		}
		c, err := sshconn.Dial(ctx, h.Target, ssho)
		if err != nil {
			return &Result{Host: h.Name, Err: err, Error: err.Error()}, nil
		}
		defer c.Close()
		if stopped(opt.Stop) {
			return &Result{Host: h.Name, NotStarted: true, Changes: []Change{}, Roles: []Role{}}, nil
		}
		o := opt
		o.Log = nil // interleaved logs of several hosts are unreadable: keep each in its Result
		r := RunSSH(ctx, h.Name, c, c.User() != "root", s, o)
		if r.Detached {
			r.AptRunning = StillRunning(ctx, h.Target, ssho)
		}
		return r, nil
	})
	return res
}

func stopped(ctx context.Context) bool { return ctx != nil && ctx.Err() != nil }

func prepare(s Source, opt Options) ([]byte, []string, error) {
	if s.URL == "" {
		return nil, nil, errors.New("setup: no repository URL")
	}
	script, err := Script(s)
	if err != nil {
		return nil, nil, err
	}
	args, err := opt.args()
	if err != nil {
		return nil, nil, err
	}
	return script, args, nil
}

func logWriter(buf io.Writer, w io.Writer) io.Writer {
	if w == nil {
		return buf
	}
	return io.MultiWriter(buf, w)
}

func finish(host string, out []byte, log string, err error) *Result {
	r := ParseOutput(host, out)
	r.Log = log
	if exitStatus(err) == ExitConflicts && len(r.Conflicts) > 0 {
		err = nil // set up; the conflicts are in r.Conflicts
	}
	if err != nil {
		msg := lastLines(log, 8)
		if msg != "" {
			err = fmt.Errorf("%w:\n%s", err, msg)
		}
		r.Err = err
		r.Error = err.Error()
	}
	return r
}

// exitStatus is the exit status in a command's error (-1 when there is none).
func exitStatus(err error) int {
	var se *ssh.ExitError
	var ee *exec.ExitError
	switch {
	case errors.As(err, &se):
		return se.ExitStatus()
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// lastLines returns the last n non-empty lines of s.
func lastLines(s string, n int) string {
	var ls []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			ls = append(ls, l)
		}
	}
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
