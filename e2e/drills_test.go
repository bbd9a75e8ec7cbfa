package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/drill"
)

func startDrill(t *testing.T, c *procCluster) *drill.Workload {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := drill.Start(ctx, drill.Config{NameServers: []string{c.nsAddr}, TLS: c.tls, Producers: 4, Interval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitMore(t, w, 200)
	return w
}

// waitMore waits until n more messages are acknowledged.
func waitMore(t *testing.T, w *drill.Workload, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WaitAcked(ctx, w.Acked()+n); err != nil {
		t.Fatal(err)
	}
}

func finishDrill(t *testing.T, w *drill.Workload) drill.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := w.Stop(ctx, 30*time.Second)
	if err != nil {
		t.Errorf("stop workload: %v", err)
	}
	var b strings.Builder
	r.Print(&b)
	t.Logf("drill report:\n%s", b.String())
	if r.Lost != 0 {
		t.Errorf("lost %d acknowledged messages", r.Lost)
	}
	if len(r.OrderErrors) != 0 {
		t.Errorf("per-queue order broken: %v", r.OrderErrors)
	}
	if r.Acked == 0 {
		t.Error("nothing was acknowledged")
	}
	return r
}

// TestDrillKillLeaderTenTimes SIGKILLs the leader process ten times in a
// row under continuous produce and consume, restarting each victim.
func TestDrillKillLeaderTenTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process drill")
	}
	c := startProcCluster(t)
	w := startDrill(t, c)
	for i := 0; i < 10; i++ {
		leader := c.leaderID(20 * time.Second)
		w.Mark("SIGKILL leader " + leader)
		c.kill(leader)
		newLeader := c.leaderID(20 * time.Second)
		if newLeader == leader {
			t.Fatalf("kill %d: %s still leads", i+1, leader)
		}
		waitMore(t, w, 100)
		c.start(leader)
		c.waitCaughtUp(leader, 30*time.Second)
	}
	r := finishDrill(t, w)
	if len(r.Disruptions) != 10 {
		t.Fatalf("got %d disruptions, want 10", len(r.Disruptions))
	}
	// Retried sends carry their first attempt's message id; the broker's
	// dedup window stores each once.
	if r.StoredDuplicates > 0 {
		t.Errorf("%d messages stored twice (%d resends, %d answered as duplicates)", r.StoredDuplicates, r.Resends, r.Deduplicated)
	}
}

// TestDrillGracefulTransfer moves leadership with LeadershipTransfer under
// load, three times.
func TestDrillGracefulTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process drill")
	}
	c := startProcCluster(t)
	w := startDrill(t, c)
	a := c.admin()
	defer a.Close()
	for i := 0; i < 3; i++ {
		old := c.leaderID(10 * time.Second)
		w.Mark("transfer from " + old)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.TransferLeadership(ctx, "broker-a", "")
		cancel()
		if err != nil {
			t.Fatalf("transfer %d: %v", i+1, err)
		}
		Eventually(t, 10*time.Second, func() error {
			if id := c.leaderID(10 * time.Second); id == old {
				return errorf("%s still leads", id)
			}
			return nil
		})
		waitMore(t, w, 100)
	}
	finishDrill(t, w)
}

// TestDrillFollowerCatchUp stops a follower, keeps writing, restarts it
// and checks that it catches up.
func TestDrillFollowerCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process drill")
	}
	c := startProcCluster(t)
	w := startDrill(t, c)
	f := c.follower(c.leaderID(10 * time.Second))
	c.stop(f)
	waitMore(t, w, 1000)
	c.start(f)
	start := time.Now()
	c.waitCaughtUp(f, 30*time.Second)
	t.Logf("follower %s caught up %s after restart", f, time.Since(start))
	finishDrill(t, w)
}

// TestDrillReplaceNodeWithEmptyDir wipes a follower's data, lets it rejoin,
// moves leadership to it and checks it serves the whole history.
func TestDrillReplaceNodeWithEmptyDir(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process drill")
	}
	c := startProcCluster(t)
	w := startDrill(t, c)
	leader := c.leaderID(10 * time.Second)
	f := c.follower(leader)
	c.kill(f)
	c.wipe(f)
	waitMore(t, w, 300)
	c.start(f)
	c.waitCaughtUp(f, 30*time.Second)
	a := c.admin()
	defer a.Close()
	w.Mark("transfer to rebuilt " + f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.TransferLeadership(ctx, "broker-a", f); err != nil {
		t.Fatalf("transfer to %s: %v", f, err)
	}
	Eventually(t, 10*time.Second, func() error {
		if id := c.leaderID(10 * time.Second); id != f {
			return errorf("leader is %s, want %s", id, f)
		}
		return nil
	})
	waitMore(t, w, 100)
	r := finishDrill(t, w)
	// A new group reads everything from the rebuilt leader.
	got := consumeAll(t, c.nsAddr, "drill", "history-check", r.Acked)
	if got < r.Acked {
		t.Fatalf("rebuilt leader served %d messages, want at least %d", got, r.Acked)
	}
}

// consumeAll reads topic from the first offset with a new group until at
// least want distinct messages arrived (or 30s pass) and returns the count.
func consumeAll(t *testing.T, ns, topic, group string, want int) int {
	t.Helper()
	cons, err := client.NewConsumer(client.ConsumerConfig{NameServers: []string{ns}, Group: group,
		From: client.FromFirst, Subscriptions: map[string]string{topic: "*"}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // the handler runs concurrently for different queues
	seen := map[string]bool{}
	done := make(chan struct{})
	var once bool
	ctx := context.Background()
	err = cons.Start(ctx, func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			seen[m.Properties["drill-producer"]+"-"+m.Properties["drill-seq"]] = true
		}
		if len(seen) >= want && !once {
			once = true
			close(done)
		}
		return client.ConsumeSuccess
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons.Close(cctx)
	mu.Lock()
	defer mu.Unlock()
	return len(seen)
}
