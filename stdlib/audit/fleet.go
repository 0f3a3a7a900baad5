package audit

// Audits of servers beyond dpkg's versions: configuration files that kept local changes
// (conflicts), and the packages a server is expected to have (the inventory's).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/upds/upds/interp/parallel"
	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/sshconn"
)

// ConffileCommand lists, one "PACKAGE\tPATH\tFILE" line each, the configuration files of
// installed packages that have FILE, PATH.dpkg-dist (the package's version, which dpkg did
// not install because PATH was changed locally) or PATH.dpkg-old (the local version the
// package's replaced), beside them.
const ConffileCommand = `dpkg-query -W -f='${db:Status-Status} ${Package}\n${Conffiles}\n' 2>/dev/null | ` +
	`while read -r a b _; do case $a in ` +
	`/*) for s in dpkg-dist dpkg-old; do if [ -n "$p" ] && [ -e "$a.$s" ]; then printf '%s\t%s\t%s\n' "$p" "$a" "$a.$s"; fi; done ;; ` +
	`installed) p=$b ;; *) p= ;; esac; done`

// conffileMark separates the output of QueryCommand from that of ConffileCommand in
// hostCommand's.
const conffileMark = "#upds-conffiles"

// hostCommand queries the packages and the conffile conflicts in one session.
const hostCommand = QueryCommand + "; echo '" + conffileMark + "'; " + ConffileCommand

// Conffile is a configuration file of an installed package with a .dpkg-dist or .dpkg-old
// file beside it.
type Conffile struct {
	Package, Path, File string
}

// ParseConffiles reads the output of ConffileCommand.
func ParseConffiles(r io.Reader) ([]Conffile, error) {
	var out []Conffile
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("conffile list: %q: want PACKAGE, PATH and FILE", sc.Text())
		}
		out = append(out, Conffile{f[0], f[1], f[2]})
	}
	return out, sc.Err()
}

// Facts are what a host's audit reads from it.
type Facts struct {
	Installed []Installed
	Conffiles []Conffile
}

// Query reads the installed packages and the conffile conflicts of the host behind client
// (one SSH session); ctx ending closes the client.
func Query(ctx context.Context, client *ssh.Client) (*Facts, error) {
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	s, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	if err := s.Run(hostCommand); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dpkg-query: %w", ctx.Err())
		}
		return nil, fmt.Errorf("dpkg-query: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	pkgs, conf, _ := bytes.Cut(out.Bytes(), []byte(conffileMark+"\n"))
	f := &Facts{}
	if f.Installed, err = ParseQuery(bytes.NewReader(pkgs)); err != nil {
		return nil, err
	}
	if f.Conffiles, err = ParseConffiles(bytes.NewReader(conf)); err != nil {
		return nil, err
	}
	return f, nil
}

// localConffiles runs ConffileCommand on this machine.
func localConffiles(ctx context.Context) ([]Conffile, error) {
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", ConffileCommand).Output()
	if err != nil {
		return nil, fmt.Errorf("conffiles: %w", err)
	}
	return ParseConffiles(bytes.NewReader(out))
}

// Host is a machine to audit over SSH.
type Host struct {
	// Name is the host in the rows ("web1").
	Name string
	// SSH is how to reach it: [user@]host[:port] or a Host of ~/.ssh/config.
	SSH string
	// Packages are the packages it must have: those not installed are Missing.
	Packages []string
}

// Check is the audit of one host's facts: Compare's rows, a Conflict row for each
// conffile of a repository package with a .dpkg-dist or .dpkg-old beside it, and a
// Missing row for each expected package that is not installed. Rows are sorted by package.
func Check(host string, f *Facts, expected []string, ix *repo.Index) []Row {
	rows := Compare(host, f.Installed, ix)
	newest := ix.Newest(nativeArch(f.Installed))
	inRepo := map[string]bool{}
	for _, p := range ix.Packages {
		inRepo[p.Name] = true
	}
	have := map[string]Installed{}
	for _, p := range f.Installed {
		have[p.Name] = p
	}
	for _, c := range f.Conffiles {
		if !inRepo[c.Package] {
			continue
		}
		p := have[c.Package]
		rows = append(rows, Row{Host: host, Package: c.Package, Installed: p.Version, Latest: newest[c.Package].Version,
			Status: Conflict, Arch: p.Arch, File: c.File})
	}
	listed := map[string]bool{}
	for _, r := range rows {
		listed[r.Package] = true
	}
	for _, name := range expected {
		if _, ok := have[name]; ok || listed[name] {
			continue
		}
		listed[name] = true
		rows = append(rows, Row{Host: host, Package: name, Latest: newest[name].Version, Status: Missing})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Package < rows[j].Package })
	return rows
}

// nativeArch is the architecture of the host's dpkg ("" when unknown).
func nativeArch(installed []Installed) string {
	for _, p := range installed {
		if p.Name == "dpkg" {
			return p.Arch
		}
	}
	return ""
}

// RunHosts audits the hosts against the index in parallel (at most opt.Parallel at once),
// each within opt.Timeout: Check's rows, or one Unreachable row with the reason. Rows come
// per host in the order given.
func RunHosts(ctx context.Context, hosts []Host, ix *repo.Index, opt Options) []Row {
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	limit := opt.Parallel
	if limit <= 0 {
		limit = len(hosts)
	}
	// Every host gets its rows, also after ctx is cancelled (its query fails at once): the
	// loop itself is not cancelled, and no call returns an error.
	res, _ := parallel.Map(context.WithoutCancel(ctx), len(hosts), limit, func(_ context.Context, i int) ([]Row, error) {
		return auditHost(ctx, hosts[i], ix, opt.SSH, timeout), nil
	})
	rows := []Row{}
	for _, r := range res {
		rows = append(rows, r...)
	}
	return rows
}

// auditHost audits one host within timeout.
func auditHost(ctx context.Context, h Host, ix *repo.Index, so sshconn.Options, timeout time.Duration) []Row {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if so.Timeout <= 0 || so.Timeout > timeout {
		so.Timeout = timeout
	}
	f, err := func() (*Facts, error) {
		t, err := sshconn.ParseTarget(h.SSH)
		if err != nil {
			return nil, err
		}
		c, err := sshconn.Dial(hctx, t, so)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		f, err := Query(hctx, c)
		if err != nil {
			return nil, fmt.Errorf("ssh %s: %w", h.SSH, err)
		}
		return f, nil
	}()
	if err != nil {
		if hctx.Err() != nil && ctx.Err() == nil && !strings.Contains(err.Error(), "deadline") {
			err = fmt.Errorf("%w (timed out after %s)", err, timeout)
		}
		return []Row{{Host: h.Name, Status: Unreachable, Error: err.Error()}}
	}
	return Check(h.Name, f, h.Packages, ix)
}
