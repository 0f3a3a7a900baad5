package audit

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/upds/upds/stdlib/repo"
	"github.com/upds/upds/stdlib/sshconn"
	"github.com/upds/upds/stdlib/sshconn/sshtest"
)

// installedVersion asks dpkg for the version of an installed package.
func installedVersion(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", name).Output()
	if err != nil {
		t.Fatalf("dpkg-query %s: %v", name, err)
	}
	return string(out)
}

// TestRunSSH audits this machine over a real sshd on 127.0.0.1: the known host is
// audited, a host whose key is not in known_hosts is refused, a closed port and a
// server that never answers are unreachable, and none of them stalls the others.
func TestRunSSH(t *testing.T) {
	srv := sshtest.Start(t)
	dpkgVer := installedVersion(t, "dpkg")
	ix := &repo.Index{Packages: []repo.Package{
		{Name: "dpkg", Version: dpkgVer, Architecture: "amd64"},
		{Name: "dpkg", Version: dpkgVer, Architecture: "arm64"},
		{Name: "sed", Version: "999:1.0", Architecture: "amd64"},
		{Name: "sed", Version: "999:1.0", Architecture: "arm64"},
	}}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never speaks SSH
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	good := srv.User + "@" + srv.Addr()
	unknown := srv.User + "@localhost:" + strings.Split(srv.Addr(), ":")[1] // not the name in known_hosts
	hosts := []string{good, unknown, srv.User + "@" + closedAddr, srv.User + "@" + silent.Addr().String()}
	start := time.Now()
	rows := Run(context.Background(), hosts, ix, Options{
		SSH:     sshconn.Options{Identity: []string{srv.Identity}, KnownHosts: []string{srv.KnownHosts}, NoAgent: true},
		Timeout: 2 * time.Second,
	})
	elapsed := time.Since(start)
	if elapsed > 6*time.Second {
		t.Errorf("audit of 4 hosts took %s with a 2s timeout per host", elapsed)
	}
	byHost := map[string][]Row{}
	for _, r := range rows {
		byHost[r.Host] = append(byHost[r.Host], r)
	}
	g := byHost[good]
	if len(g) != 2 || g[0].Package != "dpkg" || g[0].Status != Current || g[0].Installed != dpkgVer ||
		g[1].Package != "sed" || g[1].Status != Outdated || g[1].Latest != "999:1.0" {
		t.Errorf("known host rows: %+v", g)
	}
	for _, c := range []struct{ host, want string }{
		{unknown, "host key unknown"},
		{hosts[2], "connection refused"},
		{hosts[3], ""},
	} {
		r := byHost[c.host]
		if len(r) != 1 || r[0].Status != Unreachable || !strings.Contains(r[0].Error, c.want) {
			t.Errorf("%s: %+v, want unreachable with %q", c.host, r, c.want)
		}
	}
	if OK(rows) {
		t.Error("OK with unreachable hosts")
	}
}

func TestRunLocalStatusFile(t *testing.T) {
	rows := Run(context.Background(), nil, testIndex(), Options{StatusFile: "testdata/status"})
	if len(rows) != 5 || rows[0].Host != LocalHost {
		t.Errorf("rows %+v", rows)
	}
	rows = Run(context.Background(), nil, testIndex(), Options{StatusFile: "testdata/nonexistent"})
	if len(rows) != 1 || rows[0].Status != Unreachable || !strings.Contains(rows[0].Error, "nonexistent") {
		t.Errorf("missing status file: %+v", rows)
	}
}
