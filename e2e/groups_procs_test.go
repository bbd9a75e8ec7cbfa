package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/drill"
)

// procGroups runs NameServers and several three-node broker groups as
// separate rmq processes (procCluster runs one group). Processes are
// named ns0, ns1, ... and broker-a.n0, broker-b.n2, ...
type procGroups struct {
	*procCluster
	nsAddrs []string
	groups  []string
	peers   map[string]string // group -> --peers
}

func startProcGroups(t testing.TB, groups, namesrvs int) *procGroups {
	t.Helper()
	c := &procGroups{
		procCluster: &procCluster{t: t, bin: rmqBinary(t), procs: map[string]*proc{}, nodes: map[string]*procNode{}},
		peers:       map[string]string{},
	}
	// As in startProcClusterWith: the first TempDir comes before
	// c.cleanup so the removal waits until the processes are gone.
	root := t.TempDir()
	t.Cleanup(c.cleanup)
	for i := 0; i < namesrvs; i++ {
		c.nsAddrs = append(c.nsAddrs, freeAddr(t))
		c.startNamesrv(i)
	}
	for g := 0; g < groups; g++ {
		group := fmt.Sprintf("broker-%c", 'a'+g)
		c.groups = append(c.groups, group)
		var peers, names []string
		for i := 0; i < 3; i++ {
			id := fmt.Sprintf("n%d", i)
			name := group + "." + id
			c.nodes[name] = &procNode{id: id, data: filepath.Join(root, group, id), client: freeAddr(t), raft: freeAddr(t)}
			c.ids = append(c.ids, name)
			names = append(names, name)
			peers = append(peers, id+"="+c.nodes[name].raft)
		}
		c.peers[group] = strings.Join(peers, ",")
		for _, name := range names {
			c.startNode(name)
		}
	}
	for _, g := range c.groups {
		start := time.Now()
		leader := c.groupLeader(g, 30*time.Second)
		t.Logf("%s registered as %s's leader after %s", leader, g, time.Since(start).Round(time.Millisecond))
	}
	return c
}

func (c *procGroups) startNamesrv(i int) {
	c.spawn(fmt.Sprintf("ns%d", i), "--log-level", "info", "namesrv", "--listen", c.nsAddrs[i])
}

// startNode launches (or relaunches) node name (group.id).
func (c *procGroups) startNode(name string) {
	n := c.nodes[name]
	group, _, _ := strings.Cut(name, ".")
	c.spawn(name, "--log-level", "info", "broker", "--namesrv", strings.Join(c.nsAddrs, ","),
		"--group", group, "--id", n.id, "--data", n.data, "--listen", n.client, "--raft", n.raft,
		"--peers", c.peers[group], "--bootstrap")
}

// groupLeader waits until some NameServer names a running leader of
// group and returns its process name.
func (c *procGroups) groupLeader(group string, timeout time.Duration) string {
	c.t.Helper()
	a, err := client.NewAdmin(client.AdminConfig{NameServers: c.nsAddrs})
	if err != nil {
		c.t.Fatal(err)
	}
	defer a.Close()
	var name string
	Eventually(c.t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		gs, err := a.ClusterStatus(ctx)
		if err != nil {
			return err
		}
		var seen []string
		for _, g := range gs {
			seen = append(seen, fmt.Sprintf("%s leader %q with %d nodes", g.Group, g.Leader, len(g.Nodes)))
			if g.Group != group || g.Leader == "" {
				continue
			}
			c.mu.Lock()
			_, running := c.procs[group+"."+g.Leader]
			c.mu.Unlock()
			if running {
				name = group + "." + g.Leader
				return nil
			}
		}
		return fmt.Errorf("no running leader of %s registered (registered: %s)", group, strings.Join(seen, "; "))
	})
	return name
}

// TestDrillKillGroupLeaderAndNameServer: two groups of three processes
// and two NameServers under unkeyed produce and consume. SIGKILL
// broker-a's leader and the first NameServer at once: sends keep
// succeeding on broker-b (the producer avoids broker-a until it has a
// new leader), the clients fail over to the second NameServer, and no
// acknowledged message is lost. The report's longest pause is the
// client's view of the outage.
func TestDrillKillGroupLeaderAndNameServer(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process drill")
	}
	c := startProcGroups(t, 2, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := drill.Start(ctx, drill.Config{NameServers: c.nsAddrs, Producers: 4, Interval: 2 * time.Millisecond,
		Queues: 4, Unkeyed: true, Logger: TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitMore(t, w, 200)
	// RMQ_GROUPS_DRILL_ROUNDS (scripts/groups-drill.sh) repeats the kill,
	// alternating groups and NameServers, restarting both victims each
	// round; the default is one round.
	rounds := 1
	if v := os.Getenv("RMQ_GROUPS_DRILL_ROUNDS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			rounds = min(n, 1000)
		}
	}
	for i := 0; i < rounds; i++ {
		group, ns := c.groups[i%2], i%2
		leader := c.groupLeader(group, 30*time.Second)
		w.Mark(fmt.Sprintf("SIGKILL %s and ns%d", leader, ns))
		var wg sync.WaitGroup
		for _, name := range []string{leader, fmt.Sprint("ns", ns)} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.signal(name, syscall.SIGKILL)
			}()
		}
		wg.Wait()
		waitMore(t, w, 300)
		if now := c.groupLeader(group, 30*time.Second); now == leader {
			t.Fatalf("%s still leads", leader)
		}
		waitMore(t, w, 200)
		if i+1 < rounds {
			c.startNamesrv(ns)
			c.startNode(leader)
			waitMore(t, w, 300)
		}
	}
	r := finishDrill(t, w)
	t.Logf("longest pause between acknowledged sends: %s (pauses over %s: %d); stored twice: %d, resends: %d",
		r.LongestGap, drill.PauseThreshold, len(r.Pauses), r.StoredDuplicates, r.Resends)
}
