package setup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/upds/upds/interp/parallel"
	"github.com/upds/upds/stdlib/sshconn"
)

// Options configure a run of the setup script.
type Options struct {
	// Roles are the packages to install (none: only the key, the source and apt-get update).
	Roles []string
	// UpdateRepoOnly runs apt-get update for this repository's source only.
	UpdateRepoOnly bool
	// Log receives apt's output (stderr of the script) as it runs; nil keeps it in Result.Log.
	Log io.Writer
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

// Result is what a run did on one machine.
type Result struct {
	Host          string   `json:"host"`
	KeyPath       string   `json:"key,omitempty"`
	Fingerprint   string   `json:"fingerprint,omitempty"`
	KeyWritten    bool     `json:"key_written"`
	SourcePath    string   `json:"source,omitempty"`
	SourceWritten bool     `json:"source_written"`
	Changes       []Change `json:"changes"`
	Roles         []Role   `json:"roles"`
	NothingToDo   bool     `json:"nothing_to_do"`
	Error         string   `json:"error,omitempty"`
	Log           string   `json:"-"` // apt's output, when Options.Log was nil
	Err           error    `json:"-"`
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
		case l == "nothing to do":
			r.NothingToDo = true
		}
	}
	return r
}

// RunLocal runs the script for source s on this machine with /bin/sh (as root).
func RunLocal(ctx context.Context, s Source, opt Options) *Result {
	script, args, err := prepare(s, opt)
	if err != nil {
		return &Result{Host: "localhost", Err: err, Error: err.Error()}
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-s", "--"}, args...)...)
	cmd.Stdin = bytes.NewReader(script)
	var out, log bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = logWriter(&log, opt.Log)
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	return finish("localhost", out.Bytes(), log.String(), err)
}

// RunSSH runs the script on the machine behind client: with sudo -n when the login
// user is not root.
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
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return finish(host, out.Bytes(), log.String(), err)
}

// Host is one machine to set up over SSH.
type Host struct {
	Name   string // as given on the command line
	Target sshconn.Target
}

// RunHosts sets up every host over SSH in parallel (at most limit at once; 0 means
// all) and returns one Result per host, in the order given. A host that cannot be
// reached, or whose host key is unknown, gets a Result with Err set; the others go on.
func RunHosts(ctx context.Context, hosts []Host, ssho sshconn.Options, limit int, s Source, opt Options) []*Result {
	if limit <= 0 {
		limit = len(hosts)
	}
	// Every host gets its Result, also after ctx is cancelled (its Dial fails at once): the
	// loop itself is not cancelled, and no call returns an error.
	res, _ := parallel.Map(context.WithoutCancel(ctx), len(hosts), limit, func(_ context.Context, i int) (*Result, error) {
		h := hosts[i]
		c, err := sshconn.Dial(ctx, h.Target, ssho)
		if err != nil {
			return &Result{Host: h.Name, Err: err, Error: err.Error()}, nil
		}
		defer c.Close()
		o := opt
		o.Log = nil // interleaved logs of several hosts are unreadable: keep each in its Result
		return RunSSH(ctx, h.Name, c, c.User() != "root", s, o), nil
	})
	return res
}

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

func logWriter(buf *bytes.Buffer, w io.Writer) io.Writer {
	if w == nil {
		return buf
	}
	return io.MultiWriter(buf, w)
}

func finish(host string, out []byte, log string, err error) *Result {
	r := ParseOutput(host, out)
	r.Log = log
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
