package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rmq-dev/rmq/fsm"
)

// produce sends count messages round-robin over queues in batches and
// returns the ids in send order.
func produce(t testing.TB, c *testCluster, topic string, queues uint32, count, batch, bodySize int, prefix string) []string {
	t.Helper()
	body := []byte(strings.Repeat("b", bodySize))
	var ids []string
	for start := 0; start < count; start += batch {
		var msgs []*fsm.Message
		for s := start; s < start+batch && s < count; s++ {
			id := fmt.Sprintf("%s%d", prefix, s)
			ids = append(ids, id)
			msgs = append(msgs, &fsm.Message{Topic: topic, QueueID: uint32(s) % queues, ID: []byte(id), Body: body, Tags: "tagA"})
		}
		if _, _, err := sendRetrying(t, c, msgs); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	return ids
}

type queueDump map[uint32][]string

func dumpTopic(t testing.TB, n *Node, topic string, queues uint32) queueDump {
	d := queueDump{}
	for q := uint32(0); q < queues; q++ {
		for _, m := range readQueue(t, n, topic, q) {
			d[q] = append(d[q], fmt.Sprintf("%d:%s", m.QueueOffset, m.ID))
		}
	}
	return d
}

// TestRestartAllNodes stops the whole group and starts it again: messages,
// offsets, topics and consumer offsets must all come back.
func TestRestartAllNodes(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SegmentSize = 256 << 10
		cfg.SnapshotThreshold = 16
	})
	createTopic(t, c, "a", 4)
	createTopic(t, c, "b", 2)
	produce(t, c, "a", 4, 3000, 100, 200, "a")
	produce(t, c, "b", 2, 500, 50, 100, "b")
	l := c.leader(5 * time.Second)
	ctx := context.Background()
	if err := l.CommitOffsets(ctx, "g1", []fsm.OffsetEntry{{Topic: "a", QueueID: 1, Offset: 77}, {Topic: "b", QueueID: 0, Offset: 5}}, 0); err != nil {
		t.Fatal(err)
	}
	c.waitApplied(l.Status().StateIndex, 10*time.Second)
	before := dumpTopic(t, l, "a", 4)
	beforeB := dumpTopic(t, l, "b", 2)
	topics := l.Topics()

	for _, id := range c.ids {
		c.stop(id)
	}
	start := time.Now()
	for _, id := range c.ids {
		c.start(id)
	}
	l = c.leader(10 * time.Second)
	t.Logf("group serving %s after restart", time.Since(start))
	c.waitApplied(l.Status().StateIndex, 10*time.Second)
	for _, n := range c.live() {
		if diff := cmp.Diff(topics, n.Topics()); diff != "" {
			t.Errorf("%s topics (-before +after):\n%s", n.cfg.NodeID, diff)
		}
		if diff := cmp.Diff(before, dumpTopic(t, n, "a", 4)); diff != "" {
			t.Errorf("%s topic a (-before +after):\n%s", n.cfg.NodeID, diff)
		}
		if diff := cmp.Diff(beforeB, dumpTopic(t, n, "b", 2)); diff != "" {
			t.Errorf("%s topic b (-before +after):\n%s", n.cfg.NodeID, diff)
		}
		if off, ok := n.ConsumerOffset("g1", "a", 1); !ok || off != 77 {
			t.Errorf("%s: group offset a/1 = %d,%v; want 77", n.cfg.NodeID, off, ok)
		}
	}
	// Writing continues at the right offsets.
	produce(t, c, "a", 4, 8, 8, 10, "after")
	min, next, err := l.QueueRange("a", 0)
	if err != nil || min != 0 || next != 752 {
		t.Fatalf("queue a/0 range = %d..%d (%v); want 0..752", min, next, err)
	}
}

// TestFreshNodeAfterRetention: retention purges the oldest segments, a node
// is replaced by one with an empty data directory, leadership moves to it,
// and it serves every retained message. Stock raft would give it only the
// FSM snapshot and no history.
func TestFreshNodeAfterRetention(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SegmentSize = 128 << 10
		cfg.SnapshotThreshold = 8
		cfg.SnapshotInterval = 200 * time.Millisecond
		cfg.MaintenanceInterval = 50 * time.Millisecond
		cfg.Retention = RetentionConfig{MaxDiskBytes: 600 << 10, CheckInterval: 50 * time.Millisecond}
		// A 600 KiB budget is mostly consume queues, index, snapshots
		// and the active segment, which retention cannot release: the
		// disk guard would rightly refuse sends (diskguard.go).
		cfg.DiskLimit = DiskLimitConfig{HighWater: -1}
	})
	createTopic(t, c, "logs", 4)
	produce(t, c, "logs", 4, 4000, 40, 500, "x")
	l := c.leader(5 * time.Second)
	// Retention must have moved every queue's minimum and purged segments.
	eventually(t, 20*time.Second, func() error {
		for _, n := range c.live() {
			st := n.Status()
			if st.FirstIndex <= 1 {
				return fmt.Errorf("%s still holds index 1", st.NodeID)
			}
		}
		if min, _, _ := l.QueueRange("logs", 0); min == 0 {
			return fmt.Errorf("queue minimum not moved")
		}
		return nil
	})
	var victim string
	for _, n := range c.live() {
		if n != l {
			victim = n.cfg.NodeID
			break
		}
	}
	c.kill(victim)
	c.wipe(victim)
	produce(t, c, "logs", 4, 200, 40, 500, "y") // more writes while it is gone
	fresh := c.start(victim)
	target := l.Status().StateIndex
	caughtUp := func() error {
		if st := fresh.Status(); st.StateIndex < target {
			return fmt.Errorf("fresh %s applied %d, want %d", st.NodeID, st.StateIndex, target)
		}
		return nil
	}
	// The leader ships its latest snapshot, which never needs entries it
	// has purged (purgeReleased snapshots first): the install works at
	// once, without more writes.
	eventually(t, 20*time.Second, caughtUp)
	st := fresh.Status()
	t.Logf("fresh node holds log [%d..%d], leader %+v", st.FirstIndex, st.LastIndex, l.Status())
	if st.FirstIndex > st.RetainFrom || st.RetainFrom <= 1 {
		t.Fatalf("fresh node's log starts at %d, after the retention floor %d: history missing", st.FirstIndex, st.RetainFrom)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.TransferLeadership(ctx, victim); err != nil {
		t.Fatalf("transfer to fresh node: %v", err)
	}
	eventually(t, 5*time.Second, func() error {
		if !fresh.Status().Serving {
			return fmt.Errorf("fresh node not serving")
		}
		return nil
	})
	want := dumpTopic(t, l, "logs", 4)
	got := dumpTopic(t, fresh, "logs", 4)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("fresh node's messages differ (-old leader +fresh):\n%s", diff)
	}
	n := 0
	for _, q := range got {
		n += len(q)
	}
	t.Logf("fresh leader serves %d retained messages", n)
	// And it accepts writes as leader.
	produce(t, c, "logs", 4, 40, 40, 10, "z")
}
