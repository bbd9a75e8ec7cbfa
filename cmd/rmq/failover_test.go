package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/rmq-dev/rmq/drill"
	"github.com/rmq-dev/rmq/e2e"
	"github.com/rmq-dev/rmq/wire"
)

func TestNodeAndFailoverCommands(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	h := &harness{t: t, ns: c.NamesrvAddr()}
	leader := c.LeaderID(10 * time.Second)

	st := decode[wire.NodeStatus](t, h.ok("node", "status", "--addr", c.ClientAddr(leader), "-o", "json"))
	if st.NodeID != leader || st.Role != "leader" || !st.Serving {
		t.Fatalf("node status of the leader: %+v", st)
	}
	if out := h.ok("node", "status", "--addr", c.ClientAddr(leader)); !strings.Contains(out, "SERVING") || !strings.Contains(out, leader) {
		t.Fatalf("node status table:\n%s", out)
	}
	h.fails("broker at 127.0.0.1:1", "--timeout", "2s", "node", "status", "--addr", "127.0.0.1:1")

	r := decode[drill.Report](t, h.ok("failover", "transfer", "-o", "json"))
	if r.Lost != 0 || len(r.Disruptions) != 1 || r.Disruptions[0].Unavailable < 0 {
		t.Fatalf("failover transfer report: %+v", r)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		if now := c.LeaderID(10 * time.Second); now == leader {
			return fmt.Errorf("%s still leads after the transfer", now)
		}
		return nil
	})
	t.Logf("transfer paused writes for %s", r.Disruptions[0].Unavailable)

	out := h.ok("failover", "drill", "--changes", "2", "--interval", "200ms")
	for _, want := range []string{"lost          0", "change 2", "unavailability p50"} {
		if !strings.Contains(out, want) {
			t.Fatalf("failover drill output lacks %q:\n%s", want, out)
		}
	}
	h.fails("broker group \"nope\" is not registered", "failover", "transfer", "--broker-group", "nope")
}

// freeBase finds a port p such that p, p+1, p+10, p+11, p+20 and p+21 are
// free (rmq dev's broker layout).
func freeBase(t *testing.T) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		base := 20000 + rand.IntN(30000)
		ok := true
		for _, off := range []int{0, 1, 10, 11, 20, 21} {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range for rmq dev")
	return 0
}

// TestDevCommand starts rmq dev, uses the group it prints, and stops it
// the way Ctrl-C does; a second run reuses the data.
func TestDevCommand(t *testing.T) {
	// The data records the group's Raft addresses, so both runs use the
	// same ports, as re-running rmq dev does.
	dir := t.TempDir()
	nsAddr := strings.TrimPrefix(freeAddrCLI(t), "127.0.0.1:")
	base := freeBase(t)
	for round := 0; round < 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"rmq", "--log-level", "warn", "dev", "--dir", dir,
				"--namesrv-port", nsAddr, "--broker-port", fmt.Sprint(base), "--flush", "async"}, &stdout, &stderr)
		}()
		e2e.Eventually(t, 20*time.Second, func() error {
			if !strings.Contains(stdout.String(), "Press Ctrl-C") {
				return fmt.Errorf("dev has not printed its addresses yet: %q", stdout.String())
			}
			return nil
		})
		h := &harness{t: t, ns: "127.0.0.1:" + nsAddr}
		e2e.Eventually(t, 20*time.Second, func() error {
			out, _, err := h.run("cluster", "status")
			if err != nil || strings.Count(out, "broker-a") != 3 || !strings.Contains(out, "leader *") {
				return fmt.Errorf("cluster status: %v\n%s\ndev stderr:\n%s", err, out, stderr.String())
			}
			return nil
		})
		if round == 0 {
			h.ok("send", "dev-topic", "kept across runs")
		} else if out := h.ok("consume", "dev-topic", "--group", "g", "--from", "first", "--count", "1"); !strings.Contains(out, "kept across runs") {
			t.Fatalf("second run lost the data: %s", out)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("rmq dev round %d: %v\nstderr:\n%s", round, err, stderr.String())
		}
	}
}

func freeAddrCLI(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestNodeStatusTableShowsDiskAndLastPurge(t *testing.T) {
	st := wire.NodeStatus{NodeID: "n1", Group: "broker-a", Role: "follower", DiskUsed: 84 << 30, DiskTotal: 100 << 30, DataBytes: 15 << 30,
		LastPurge: &wire.PurgeStatus{AtMillis: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).UnixMilli(), Reason: "disk ratio: n2's file system is 90.0% full, force-clean ratio 85.0%",
			Segments: 5, Bytes: 5 << 30, FromIndex: 1, ToIndex: 500}}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	nodeStatusView(st).table(tw)
	tw.Flush()
	for _, want := range []string{"DISK", "84.0%", "16106127360",
		"last purge: 2026-12-01T09:00:00.000Z: 5 segments, 5368709120 bytes, entries 1-500: disk ratio: n2's file system is 90.0% full"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
