package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/drill"
)

// TestPreferredLeadersSpreadOverMachines runs three groups of three
// nodes laid out as on three machines, one node of each group per
// machine (machine m holds the m-th node of every group), with a
// different preferred leader per group: broker-a prefers machine 0,
// broker-b machine 1, broker-c machine 2. Each machine then leads one
// group. "Machine" 1 (one node of every group) is killed: broker-b's
// leadership moves to another machine, the others keep theirs; when it
// comes back, broker-b's leadership returns to it and the leaders are
// spread again. Writes without a sharding key keep going throughout, and
// the write pause of each move is reported.
func TestPreferredLeadersSpreadOverMachines(t *testing.T) {
	if testing.Short() {
		t.Skip("nine-node cluster test")
	}
	// Node IDs run on across groups: broker-a n0-n2, broker-b n3-n5,
	// broker-c n6-n8; node n<3g+m> is group g's node on machine m.
	machineOf := func(id string) int {
		i, _ := strconv.Atoi(strings.TrimPrefix(id, "n"))
		return i % 3
	}
	preferred := map[string]string{"broker-a": "n0", "broker-b": "n4", "broker-c": "n8"}
	c := StartCluster(t, Options{Groups: 3, Broker: func(cfg *broker.Config) {
		cfg.PreferredLeader = preferred[cfg.Group]
		cfg.PreferredCheckInterval = 300 * time.Millisecond
		cfg.RegisterInterval = 200 * time.Millisecond
	}})
	spread := func() error {
		var leaders []string
		byMachine := map[int]string{}
		for _, g := range c.Groups() {
			id := ""
			for _, n := range c.GroupNodeIDs(g) {
				if node := c.Node(n); node != nil && node.Status().Serving {
					id = n
				}
			}
			if id == "" {
				return fmt.Errorf("%s has no serving leader", g)
			}
			leaders = append(leaders, g+"="+id)
			if other, ok := byMachine[machineOf(id)]; ok {
				return fmt.Errorf("machine %d leads %s and %s (leaders %v)", machineOf(id), other, g, leaders)
			}
			byMachine[machineOf(id)] = g
		}
		for g, want := range preferred {
			if !slices.Contains(leaders, g+"="+want) {
				return fmt.Errorf("leaders %v, want %v", leaders, preferred)
			}
		}
		return nil
	}
	Eventually(t, 30*time.Second, spread)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := drill.Start(ctx, drill.Config{NameServers: c.NamesrvAddrs(), Producers: 4, Interval: 2 * time.Millisecond,
		Queues: 4, Unkeyed: true, Logger: TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitMore(t, w, 300)

	victims := []string{"n1", "n4", "n7"} // machine 1
	w.Mark("kill machine 1 (n1, n4, n7)")
	for _, id := range victims {
		c.Kill(id)
	}
	Eventually(t, 30*time.Second, func() error {
		for _, n := range c.GroupNodeIDs("broker-b") {
			if node := c.Node(n); node != nil && node.Status().Serving {
				return nil
			}
		}
		return fmt.Errorf("broker-b has no leader off machine 1")
	})
	for _, g := range []string{"broker-a", "broker-c"} {
		if n := c.Node(preferred[g]); n == nil || !n.Status().Serving {
			t.Errorf("%s's leader %s lost leadership when machine 1 died", g, preferred[g])
		}
	}
	waitMore(t, w, 300)
	w.Mark("restart machine 1; broker-b returns to n4 (automatic)")
	for _, id := range victims {
		c.Restart(id)
	}
	Eventually(t, 30*time.Second, spread)
	waitMore(t, w, 300)
	r := finishDrill(t, w)
	for _, d := range r.Disruptions {
		t.Logf("FIGURE %s: first send after it acknowledged %s later, longest gap between acks %s",
			d.Name, d.Unavailable.Round(time.Millisecond), max(d.LongestGap, d.LongestPause).Round(time.Millisecond))
	}
	t.Logf("FIGURE %d acknowledged, %d lost, %d stored twice", r.Acked, r.Lost, r.StoredDuplicates)
}
