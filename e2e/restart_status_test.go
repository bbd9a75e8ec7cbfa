package e2e

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/wire"
)

// registrations is a second NameServer endpoint that only records, in
// order of arrival, the node statuses brokers register with it (the real
// NameServer keeps only the latest). Stopped by t.Cleanup.
type registrations struct {
	mu   sync.Mutex
	regs []wire.NodeStatus
}

func recordRegistrations(t *testing.T) (string, *registrations) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &registrations{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { // ends with cancel
		done <- wire.Serve(ctx, ln, func(_ context.Context, req *wire.Request) (any, error) {
			if req.Code == wire.CodeRegisterBroker {
				var rb wire.RegisterBrokerRequest
				if err := req.Decode(&rb); err != nil {
					return nil, err
				}
				r.mu.Lock()
				r.regs = append(r.regs, rb.Node)
				r.mu.Unlock()
			}
			return wire.Empty{}, nil
		}, wire.ServerConfig{})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), r
}

// of returns node id's registrations from the from-th on.
func (r *registrations) of(id string, from int) []wire.NodeStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wire.NodeStatus
	for _, st := range r.regs[from:] {
		if st.NodeID == id {
			out = append(out, st)
		}
	}
	return out
}

func (r *registrations) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.regs)
}

// TestRestartedNodeRegistersTrueIndexes: a node restarted after a clean
// stop registers at once with the applied index it restored from its
// snapshot (not 0) and with its commit index marked unknown (not 0 posing
// as a value) until a leader tells it; once it has learned the commit
// index and caught up it registers again without waiting for its next
// heartbeat (RegisterInterval is a minute here).
func TestRestartedNodeRegistersTrueIndexes(t *testing.T) {
	rec, regs := recordRegistrations(t)
	c := StartCluster(t, Options{Broker: func(cfg *broker.Config) {
		cfg.NameServers = append(cfg.NameServers, rec)
		cfg.RegisterInterval = time.Minute
	}})
	ctx := context.Background()
	leader := c.Leader(10 * time.Second)
	for i := 0; i < 20; i++ {
		if _, err := leader.CreateTopic(ctx, brokerTopic(fmt.Sprintf("t%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	victim := ""
	for _, id := range c.NodeIDs() {
		if id != leader.Status().NodeID {
			victim = id
		}
	}
	want := leader.Status().AppliedIndex
	Eventually(t, 10*time.Second, func() error {
		if got := c.Node(victim).Status().AppliedIndex; got < want {
			return fmt.Errorf("%s applied %d, want %d", victim, got, want)
		}
		return nil
	})
	applied := c.Node(victim).Status().AppliedIndex
	c.Stop(victim) // a clean stop snapshots: the restart restores applied
	for _, id := range c.NodeIDs() {
		c.Stop(id)
	}
	// The victim comes back alone: with no leader to hear from it cannot
	// learn the commit index, as after a long outage when the leader's
	// replication back-off delays its first AppendEntries by seconds.
	from := regs.count()
	c.Restart(victim)

	var first wire.NodeStatus
	Eventually(t, 10*time.Second, func() error {
		got := regs.of(victim, from)
		if len(got) == 0 {
			return fmt.Errorf("no registration of restarted %s yet", victim)
		}
		first = got[0]
		return nil
	})
	if first.AppliedIndex != applied {
		t.Errorf("first registration after restart: applied %d, want %d (restored from the snapshot)", first.AppliedIndex, applied)
	}
	if first.CommitIndex != 0 {
		t.Errorf("first registration after restart: commit %d, want 0 (unknown: no leader yet)", first.CommitIndex)
	}
	if !first.CommitUnknown {
		t.Errorf("first registration after restart: CommitUnknown false, want true (no leader has told it the commit index)")
	}
	for _, id := range c.NodeIDs() {
		if id != victim {
			c.Restart(id)
		}
	}

	Eventually(t, 15*time.Second, func() error {
		got := regs.of(victim, from)
		last := got[len(got)-1]
		if last.CommitUnknown || last.CommitIndex == 0 || last.AppliedIndex < last.CommitIndex || last.CommitIndex < applied {
			return fmt.Errorf("%d registrations of %s since restart, latest commit %d (unknown %v) applied %d: want commit >= %d known and applied up to it",
				len(got), victim, last.CommitIndex, last.CommitUnknown, last.AppliedIndex, applied)
		}
		return nil
	})
}
