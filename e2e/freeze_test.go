package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/drill"
)

// freeze sends SIGSTOP (or SIGCONT) to a running process without waiting
// for it to exit, as a GC pause, a VM freeze or a black-holed link would
// leave it: its sockets stay open, nothing answers.
func (c *procCluster) freeze(name string, sig syscall.Signal) {
	c.t.Helper()
	c.mu.Lock()
	p := c.procs[name]
	c.mu.Unlock()
	if p == nil {
		c.t.Fatalf("freeze %s: not running", name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %s with %v: %v", name, sig, err)
	}
}

// maxFreezePause bounds the write pause a frozen leader may cause. It
// costs about what a crash does (election + NameServer update + one
// attempt timeout: 1.1-1.5 s here, the figure the drill reports); the
// bound is twice that so that a loaded CI machine does not fail it, and
// still far below the stall it guards against (clients waiting on the
// frozen leader until their send timeout).
const maxFreezePause = 3 * time.Second

// TestDrillFreezeLeader SIGSTOPs the leader for 4s (ten election
// timeouts) three times under 8 synchronous producers and a consumer.
// The client must notice the unanswered leader, find the newer leader
// through the NameServer and resend there, so writes pause about as long
// as for a crash and no send runs out of its budget.
func TestDrillFreezeLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process drill")
	}
	const stops, frozen = 3, 4 * time.Second
	c := startProcCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	w, err := drill.Start(ctx, drill.Config{NameServers: []string{c.nsAddr}, Producers: 8, Interval: 2 * time.Millisecond})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	waitMore(t, w, 200)
	for i := 0; i < stops; i++ {
		leader := c.leaderID(20 * time.Second)
		w.Mark("SIGSTOP leader " + leader)
		c.freeze(leader, syscall.SIGSTOP)
		time.Sleep(frozen) // the freeze itself: a time-based condition
		c.freeze(leader, syscall.SIGCONT)
		if id := c.leaderID(20 * time.Second); id == leader {
			t.Fatalf("stop %d: %s still leads after a %s freeze", i+1, leader, frozen)
		}
		c.waitCaughtUp(leader, 30*time.Second)
		waitMore(t, w, 200)
	}
	r := finishDrill(t, w)
	if len(r.Disruptions) != stops {
		t.Fatalf("got %d disruptions, want %d", len(r.Disruptions), stops)
	}
	for i, d := range r.Disruptions {
		t.Logf("stop %d: first write after the stop %s, longest write pause %s",
			i+1, d.Unavailable.Round(time.Millisecond), d.LongestPause.Round(time.Millisecond))
		if d.Unavailable < 0 || d.Unavailable > maxFreezePause || d.LongestPause > maxFreezePause {
			t.Errorf("stop %d (%s): writes paused %s (longest gap %s), want at most %s",
				i+1, d.Name, d.Unavailable.Round(time.Millisecond), d.LongestPause.Round(time.Millisecond), maxFreezePause)
		}
	}
	t.Logf("duplicates delivered %d, sends resent after an unanswered attempt %d", r.Duplicates, r.Resends)
	for e, n := range r.SendErrors {
		t.Errorf("%d sends failed inside their budget: %s", n, e)
	}
}
