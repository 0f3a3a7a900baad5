// Package audit compares the packages installed on machines (dpkg's status database,
// read locally or over SSH) with the newest versions in an apt repository's signed index.
package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/upds/upds/stdlib/deb/control"
	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/version"
)

// StatusFile is dpkg's status database.
const StatusFile = "/var/lib/dpkg/status"

// Installed is a package installed on a machine.
type Installed struct {
	Name    string
	Version string
	Arch    string
	Source  string // X-Upds-Source: the hash of the inputs upds built it from
	Depends string // Depends and Pre-Depends, as in the control file
}

// ParseStatus reads a dpkg status file and returns the packages whose status is
// "installed" (config-files, half-installed and the like are left out).
func ParseStatus(r io.Reader) ([]Installed, error) {
	ps, err := control.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	var out []Installed
	for _, p := range ps {
		st := strings.Fields(p.Get("Status"))
		if len(st) != 3 || st[2] != "installed" {
			continue
		}
		out = append(out, Installed{
			Name: p.Get("Package"), Version: p.Get("Version"), Arch: p.Get("Architecture"),
			Source: p.Get("X-Upds-Source"), Depends: joinDeps(p.Get("Pre-Depends"), p.Get("Depends")),
		})
	}
	return out, nil
}

// ReadStatus reads a dpkg status file (normally StatusFile).
func ReadStatus(path string) ([]Installed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ps, err := ParseStatus(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ps, nil
}

// QueryCommand is the command run on a remote host: one line per package, fields
// separated by tabs (ParseQuery reads it).
const QueryCommand = `dpkg-query -W -f='${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\t${X-Upds-Source}\t${Pre-Depends}\t${Depends}\n'`

// ParseQuery reads the output of QueryCommand.
func ParseQuery(r io.Reader) ([]Installed, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var out []Installed
	n := 0
	for sc.Scan() {
		n++
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 7 {
			return nil, fmt.Errorf("dpkg-query output line %d: %d fields, want 7", n, len(f))
		}
		if f[0] != "installed" {
			continue
		}
		out = append(out, Installed{Name: f[1], Version: f[2], Arch: f[3], Source: f[4], Depends: joinDeps(f[5], f[6])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkg-query output: %w", err)
	}
	return out, nil
}

func joinDeps(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ", " + b
}

// Status is the verdict for one package on one host.
type Status string

const (
	Current     Status = "current"     // the newest version in the repository
	Outdated    Status = "outdated"    // the repository has a newer version
	Ahead       Status = "ahead"       // newer than anything in the repository
	Missing     Status = "missing"     // a dependency of an installed role package is not installed
	Unreachable Status = "unreachable" // the host could not be queried
	Conflict    Status = "conflict"    // a conffile kept local changes: Row.File is beside it
)

// Row is one line of an audit report. The JSON keys sit beside Ansible's package_facts.
type Row struct {
	Host      string `json:"host"`
	Package   string `json:"package"`
	Installed string `json:"installed"`
	Latest    string `json:"latest"`
	Status    Status `json:"status"`
	Arch      string `json:"arch,omitempty"`
	Source    string `json:"source,omitempty"` // X-Upds-Source of the installed package
	Error     string `json:"error,omitempty"`  // why the host is unreachable
	File      string `json:"file,omitempty"`   // the .dpkg-dist or .dpkg-old file of a conflict
}

// Compare reports, for every installed package that the repository carries, whether
// it is current, outdated or ahead of the newest version for its architecture, and,
// for installed role packages (those that depend on packages of the repository), the
// dependencies that are not installed as missing. Rows are sorted by package name.
func Compare(host string, installed []Installed, ix *repo.Index) []Row {
	newest := map[string]map[string]repo.Package{} // arch -> name -> newest
	newestFor := func(arch string) map[string]repo.Package {
		m, ok := newest[arch]
		if !ok {
			m = ix.Newest(arch)
			newest[arch] = m
		}
		return m
	}
	inRepo := map[string]bool{}
	for _, p := range ix.Packages {
		inRepo[p.Name] = true
	}
	have := map[string]bool{}
	for _, p := range installed {
		have[p.Name] = true
	}
	rows := []Row{}
	missing := map[string]bool{}
	arch := serverArch(installed)
	for _, p := range installed {
		if !inRepo[p.Name] {
			continue
		}
		row := Row{Host: host, Package: p.Name, Installed: p.Version, Arch: p.Arch, Source: p.Source}
		n, ok := newestFor(p.Arch)[p.Name]
		if !ok {
			// The repository has it for other architectures only.
			row.Status = Ahead
		} else {
			row.Latest = n.Version
			row.Status = compareVersions(p.Version, n.Version)
		}
		rows = append(rows, row)

		rels, err := control.ParseRelations(p.Depends)
		if err != nil {
			continue
		}
		role := false
		for _, alt := range rels {
			for _, r := range alt {
				if inRepo[r.Name] {
					role = true
				}
			}
		}
		if !role {
			continue
		}
		for _, alt := range rels {
			ok := false
			for _, r := range alt {
				if have[r.Name] {
					ok = true
				}
			}
			if ok || len(alt) == 0 || missing[alt[0].Name] {
				continue
			}
			name := alt[0].Name
			missing[name] = true
			m := Row{Host: host, Package: name, Status: Missing}
			// Looked up for the server, not for the role: an arch:all role depends on
			// packages of the server's architecture.
			if n, ok := newestFor(arch)[name]; ok {
				m.Latest = n.Version
			}
			rows = append(rows, m)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Package < rows[j].Package })
	return rows
}

// serverArch is the architecture of the machine the packages are installed on: dpkg's own
// (dpkg is always of the native architecture), else the one most of its packages have, else
// "" (any).
func serverArch(installed []Installed) string {
	count := map[string]int{}
	for _, p := range installed {
		if p.Arch == "" || p.Arch == "all" {
			continue
		}
		if p.Name == "dpkg" {
			return p.Arch
		}
		count[p.Arch]++
	}
	best := ""
	for a, c := range count {
		if c > count[best] || c == count[best] && a < best {
			best = a
		}
	}
	return best
}

func compareVersions(installed, latest string) Status {
	a, errA := version.ParseLenient(installed)
	b, errB := version.ParseLenient(latest)
	if errA != nil || errB != nil {
		if installed == latest {
			return Current
		}
		return Outdated
	}
	switch c := version.Compare(a, b); {
	case c < 0:
		return Outdated
	case c > 0:
		return Ahead
	}
	return Current
}

// OK reports whether every row is current.
func OK(rows []Row) bool {
	for _, r := range rows {
		if r.Status != Current {
			return false
		}
	}
	return true
}

// ParseHosts reads a hosts file: one "[user@]host[:port]" per line; blank lines and
// lines starting with "#" are ignored, as is anything after " #". Errors name the line.
func ParseHosts(r io.Reader, name string) ([]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out []string
	for i, l := range strings.Split(string(data), "\n") {
		if j := strings.Index(l, "#"); j >= 0 {
			l = l[:j]
		}
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.ContainsAny(l, " \t") {
			return nil, fmt.Errorf("%s:%d: %q: one [user@]host[:port] per line", name, i+1, l)
		}
		if err := checkTarget(l); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no hosts", name)
	}
	return out, nil
}

// ReadHostsFile reads a hosts file (see ParseHosts).
func ReadHostsFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hosts file: %w", err)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("%s: binary file, want one [user@]host[:port] per line", path)
	}
	return ParseHosts(bytes.NewReader(data), path)
}

var errBadTarget = errors.New("want [user@]host[:port]")
