package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rmq-dev/rmq/wire"
)

func lockQueuesOf(ids ...uint32) []wire.QueueOffset {
	out := []wire.QueueOffset{}
	for _, id := range ids {
		out = append(out, wire.QueueOffset{Topic: "t", QueueID: id})
	}
	return out
}

// lockVia heartbeats client on n and asks it for queues ids of topic t in
// group g; it returns the queues granted.
func lockVia(t *testing.T, n *Node, client string, ids ...uint32) []wire.QueueOffset {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := n.handleHeartbeat(ctx, &wire.HeartbeatRequest{Group: "g", ClientID: client, Mode: wire.ModeClustering, Topics: []string{"t"}}); err != nil {
		t.Fatalf("heartbeat %s: %v", client, err)
	}
	resp, err := n.handleLock(ctx, &wire.LockRequest{Group: "g", ClientID: client, Queues: lockQueuesOf(ids...)})
	if err != nil {
		t.Fatalf("lock for %s: %v", client, err)
	}
	got := resp.(*wire.LockResponse).Locked
	if got == nil {
		got = []wire.QueueOffset{}
	}
	return got
}

// TestLocksSurviveLeaderKill: queue locks granted by a leader are honoured
// by the next one. Before, the lock table was leader-local, so the new
// leader handed a's queues to b while a still trusted its lock.
func TestLocksSurviveLeaderKill(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	createTopic(t, c, "t", 4)
	old := c.leader(10 * time.Second)
	if diff := cmp.Diff(lockQueuesOf(0, 1), lockVia(t, old, "a", 0, 1)); diff != "" {
		t.Fatalf("a's locks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(lockQueuesOf(2), lockVia(t, old, "b", 1, 2)); diff != "" {
		t.Fatalf("b must not take a's queue 1 (-want +got):\n%s", diff)
	}
	c.kill(old.cfg.NodeID)
	nl := c.leader(15 * time.Second)
	t.Logf("killed leader %s; new leader %s", old.cfg.NodeID, nl.cfg.NodeID)

	// b reaches the new leader first; a has not heartbeated there yet.
	if diff := cmp.Diff(lockQueuesOf(2, 3), lockVia(t, nl, "b", 0, 1, 2, 3)); diff != "" {
		t.Fatalf("b on the new leader must get only its own and free queues (-want +got):\n%s", diff)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := nl.handleDescribeGroup(ctx, &wire.DescribeGroupRequest{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	owners := map[uint32]string{}
	for _, q := range d.(*wire.GroupDescription).Queues {
		owners[q.QueueID] = q.Owner
	}
	if diff := cmp.Diff(map[uint32]string{0: "a", 1: "a", 2: "b", 3: "b"}, owners); diff != "" {
		t.Errorf("owners on the new leader (-want +got):\n%s", diff)
	}
	// a renews on the new leader.
	if diff := cmp.Diff(lockQueuesOf(0, 1), lockVia(t, nl, "a", 0, 1)); diff != "" {
		t.Fatalf("a renews its locks on the new leader (-want +got):\n%s", diff)
	}
}

func owners(n *Node) map[uint32]string {
	out := map[uint32]string{}
	for q, o := range n.queueOwners("g") {
		out[q.QueueID] = o
	}
	return out
}

// TestLockRelease: unlock, leave and the departed-member release, and
// that a lock request granting nothing writes no Raft entry.
func TestLockRelease(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	createTopic(t, c, "t", 4)
	n := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lockVia(t, n, "a", 0, 1)
	lockVia(t, n, "b", 2)

	before := n.Status().StateIndex
	if got := lockVia(t, n, "b", 0, 1); len(got) != 0 {
		t.Fatalf("b got a's queues: %v", got)
	}
	if after := n.Status().StateIndex; after != before {
		t.Errorf("a refused lock request wrote entries: state index %d -> %d", before, after)
	}

	if err := n.UnlockQueues(ctx, "g", "a", queueRefs(lockQueuesOf(1)), false); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lockQueuesOf(1), lockVia(t, n, "b", 1)); diff != "" {
		t.Fatalf("b after a unlocked queue 1 (-want +got):\n%s", diff)
	}
	if err := n.LeaveGroup(ctx, "g", "b"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[uint32]string{0: "a"}, owners(n)); diff != "" {
		t.Fatalf("owners after b left (-want +got):\n%s", diff)
	}
	if _, err := n.handleLock(ctx, &wire.LockRequest{Group: "g", ClientID: "b", Queues: lockQueuesOf(2)}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("lock by a departed member: got %v, want ErrInvalidArgument (heartbeat first)", err)
	}

	// c takes queue 3 and then stops heartbeating (it expires).
	lockVia(t, n, "c", 3)
	n.groups.leave("g", "c")
	n.releaseDeparted(ctx, time.Now())
	if diff := cmp.Diff(map[uint32]string{0: "a", 3: "c"}, owners(n)); diff != "" {
		t.Fatalf("c may still trust its lock: it must stay (-want +got):\n%s", diff)
	}
	n.releaseDeparted(ctx, time.Now().Add(wire.LockTrust+time.Second))
	if diff := cmp.Diff(map[uint32]string{0: "a"}, owners(n)); diff != "" {
		t.Fatalf("after LockTrust c's lock is released, a (a live member) keeps its own (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(lockQueuesOf(3), lockVia(t, n, "a", 3)); diff != "" {
		t.Fatalf("a takes the departed member's queue (-want +got):\n%s", diff)
	}
}
