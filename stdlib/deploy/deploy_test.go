package deploy

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upds/upds/stdlib/sshconn"
)

// TestRolloutOrder: which servers a rollout starts after a failure, with --keep-going,
// --canary and after Ctrl-C. The servers are unreachable (a closed port on 127.0.0.1), so
// each fails at once; the setup itself runs in cmd/upds's fleet tests on real servers.
func TestRolloutOrder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	servers := []Server{{Name: "a", SSH: "root@" + closed}, {Name: "b", SSH: "root@" + closed}, {Name: "c", SSH: "root@" + closed}}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		opt  Options
		want string
	}{
		{"stop at the first failure", Options{}, "failed skipped skipped"},
		{"keep going", Options{KeepGoing: true}, "failed failed failed"},
		{"keep going, in parallel", Options{KeepGoing: true, Parallel: 3}, "failed failed failed"},
		{"canary stops even with keep going", Options{Canary: true, KeepGoing: true}, "failed skipped skipped"},
		{"interrupted before the start", Options{Stop: stopped}, "interrupted interrupted interrupted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var started []string
			c.opt.SSH = sshconn.Options{ConfigFile: sshconn.ConfigNone, Identity: nil, NoAgent: true, Home: t.TempDir()}
			c.opt.ConnectTimeout = 2 * time.Second
			c.opt.Started = func(s Server) { mu.Lock(); started = append(started, s.Name); mu.Unlock() }
			reps := Rollout(context.Background(), servers, c.opt)
			var got []string
			for i, r := range reps {
				got = append(got, string(r.Status))
				if r.Server != servers[i].Name || r.Changes == nil || (r.Status == Failed) != (r.Error != "") {
					t.Errorf("report %d: %+v", i, r)
				}
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("statuses %v, want %s", got, c.want)
			}
			if n := strings.Count(c.want, "failed"); len(started) != n {
				t.Errorf("started %v, want %d", started, n)
			}
		})
	}
}
