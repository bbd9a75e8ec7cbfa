package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
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

// freeBase finds a port p such that rmq dev's layout around it is free:
// clients at p, p+10, p+20, Raft one above, metrics two above, and the
// NameServer's ports at p+5 and p+6.
func freeBase(t *testing.T) int {
	t.Helper()
	return freePorts(t, 0, 1, 2, 5, 6, 10, 11, 12, 20, 21, 22)
}

// TestDevCommand starts rmq dev, uses the group it prints, and stops it
// the way Ctrl-C does; a second run reuses the data.
func TestDevCommand(t *testing.T) {
	// The data records the group's Raft addresses, so both runs use the
	// same ports, as re-running rmq dev does.
	dir := t.TempDir()
	base := freeBase(t)
	nsAddr := fmt.Sprint(base + 5) // its metrics on base+6
	for round := 0; round < 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"rmq", "--log-level", "warn", "dev", "--dir", dir,
				"--namesrv-port", nsAddr, "--broker-port", fmt.Sprint(base), "--flush", "async",
				"--dashboard", "127.0.0.1:0"}, &stdout, &stderr)
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
		checkDevDashboard(t, stdout.String())
		if round == 0 {
			h.ok("send", "dev-topic", "kept across runs")
			checkDevMetrics(t, stdout.String(), base, nsAddr)
		} else if out := h.ok("consume", "dev-topic", "--group", "g", "--from", "first", "--count", "1"); !strings.Contains(out, "kept across runs") {
			t.Fatalf("second run lost the data: %s", out)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("rmq dev round %d: %v\nstderr:\n%s", round, err, stderr.String())
		}
	}
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

// checkDevMetrics checks that rmq dev printed a metrics URL for every
// process and that each answers with its node's series.
func checkDevMetrics(t *testing.T, out string, base int, nsPort string) {
	t.Helper()
	urls := []string{fmt.Sprintf("http://127.0.0.1:%d/metrics", mustAtoi(t, nsPort)+1)}
	for i := 0; i < 3; i++ {
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d/metrics", base+10*i+2))
	}
	for i, u := range urls {
		if !strings.Contains(out, u) {
			t.Fatalf("rmq dev did not print %s:\n%s", u, out)
		}
		want := "rmq_raft_term"
		if i == 0 {
			want = "rmq_namesrv_broker_nodes"
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %v, status %d, no %s in:\n%.2000s", u, err, resp.StatusCode, want, body)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFailoverDrillMarksSIGUSR1: with --changes 0, each SIGUSR1 the drill
// receives is a disruption of its report (scripts/failover-drill.sh sends
// one before each kill).
func TestFailoverDrillMarksSIGUSR1(t *testing.T) {
	// Registered first, so that a signal sent before the drill's own
	// registration is caught here instead of ending the test binary.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGUSR1)
	defer signal.Stop(guard)
	h := newCLI(t)
	type result struct {
		out, errOut string
		err         error
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, err := h.run("failover", "drill", "--changes", "0", "--duration", "3s")
		done <- result{out, errOut, err}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var r result
	for sent := 0; ; sent++ {
		if sent > 600 {
			t.Fatal("the drill did not end within 60s")
		}
		select {
		case r = <-done:
		case <-tick.C:
			if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			continue
		}
		break
	}
	if r.err != nil {
		t.Fatalf("drill: %v\nstderr:\n%s", r.err, r.errOut)
	}
	if !strings.Contains(r.out, "external disruption 1 ") || !strings.Contains(r.out, "unavailability p50") {
		t.Fatalf("drill report lacks the marked disruptions:\n%s", r.out)
	}
}
