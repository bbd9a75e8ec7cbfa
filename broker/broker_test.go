package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// sendRetrying sends msgs to whichever node leads, retrying through leader
// changes as a client would. It reports whether any attempt had an unknown
// outcome (so duplicates are possible).
func sendRetrying(t testing.TB, c *testCluster, msgs []*fsm.Message) (res []SendResult, maybeDup bool, err error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n *Node
		for _, cand := range c.live() {
			if cand.Status().Serving {
				n = cand
				break
			}
		}
		if n == nil {
			time.Sleep(5 * time.Millisecond) // polling for a leader
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err = n.Send(ctx, msgs)
		cancel()
		if err == nil {
			return res, maybeDup, nil
		}
		switch {
		case errors.Is(err, ErrIndeterminate):
			maybeDup = true
		case errors.Is(err, ErrNotLeader), errors.Is(err, ErrLeaderNotReady), errors.Is(err, ErrClosed):
		default:
			return nil, maybeDup, err
		}
	}
	return nil, maybeDup, fmt.Errorf("no leader accepted the send within 30s: %w", err)
}

func createTopic(t testing.TB, c *testCluster, name string, queues uint32) {
	t.Helper()
	l := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.CreateTopic(ctx, TopicSpec{Name: name, Queues: queues}); err != nil {
		t.Fatalf("create topic: %v", err)
	}
}

// readQueue reads a whole queue from one node.
func readQueue(t testing.TB, n *Node, topic string, q uint32) []StoredMessage {
	t.Helper()
	min, next, err := n.QueueRange(topic, q)
	if err != nil {
		t.Fatalf("%s queue range %s/%d: %v", n.cfg.NodeID, topic, q, err)
	}
	var out []StoredMessage
	for off := min; off < next; {
		res, err := n.Read(context.Background(), ReadRequest{Topic: topic, QueueID: q, Offset: off, MaxMessages: 512})
		if err != nil {
			t.Fatalf("%s read %s/%d@%d: %v", n.cfg.NodeID, topic, q, off, err)
		}
		if len(res.Messages) == 0 {
			t.Fatalf("%s read %s/%d@%d: no messages below next %d", n.cfg.NodeID, topic, q, off, next)
		}
		out = append(out, res.Messages...)
		off = res.NextOffset
	}
	return out
}

func msgKey(m StoredMessage) string { return string(m.ID) }

// TestLeaderKilledMidStream is the durability proof: 100 000 messages over
// 8 queues while the leader is killed without warning. Every acknowledged
// message must be on every survivor, in per-queue order, at identical
// offsets.
func TestLeaderKilledMidStream(t *testing.T) {
	const (
		total     = 100_000
		queues    = 8
		producers = 8
		batch     = 50
		bodySize  = 256
	)
	// Every message is deduplicated (the node API sends no producer's
	// Idempotent mark), so the resent batch is stored once.
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.DedupAll = true })
	createTopic(t, c, "orders", queues)

	var next, acked, retriedDup atomic.Int64
	var killAt = int64(total / 3)
	var killOnce sync.Once
	var killNanos atomic.Int64         // when the leader was killed, unix nanos
	var firstAckAfterKill atomic.Int64 // unix nanos
	ackedIDs := make([][]string, producers)
	body := strings.Repeat("x", bodySize)

	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := next.Add(batch) - batch
				if start >= total {
					return
				}
				var msgs []*fsm.Message
				for s := start; s < start+batch && s < total; s++ {
					id := "m" + strconv.FormatInt(s, 10)
					msgs = append(msgs, &fsm.Message{Topic: "orders", QueueID: uint32(s % queues), ID: []byte(id), Body: []byte(body)})
				}
				_, dup, err := sendRetrying(t, c, msgs)
				if err != nil {
					errs <- err
					return
				}
				if dup {
					retriedDup.Add(1)
				}
				for _, m := range msgs {
					ackedIDs[p] = append(ackedIDs[p], string(m.ID))
				}
				if killNanos.Load() != 0 {
					firstAckAfterKill.CompareAndSwap(0, time.Now().UnixNano())
				}
				if acked.Add(int64(len(msgs))) >= killAt {
					killOnce.Do(func() {
						for _, n := range c.live() {
							if n.Status().Serving {
								t.Logf("killing leader %s after %d acks", n.cfg.NodeID, acked.Load())
								killNanos.Store(time.Now().UnixNano())
								c.kill(n.cfg.NodeID)
								return
							}
						}
					})
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if killNanos.Load() == 0 {
		t.Fatal("leader was never killed")
	}
	t.Logf("acked %d messages; %d batches retried after an unknown outcome; first ack %s after the kill",
		acked.Load(), retriedDup.Load(), time.Duration(firstAckAfterKill.Load()-killNanos.Load()))

	l := c.leader(10 * time.Second)
	c.waitApplied(l.Status().StateIndex, 30*time.Second)
	survivors := c.live()
	if len(survivors) != 2 {
		t.Fatalf("got %d survivors, want 2", len(survivors))
	}
	found := map[string]bool{}
	dups := 0
	for q := uint32(0); q < queues; q++ {
		a := readQueue(t, survivors[0], "orders", q)
		b := readQueue(t, survivors[1], "orders", q)
		if len(a) != len(b) {
			t.Fatalf("queue %d: %s has %d messages, %s has %d", q, survivors[0].cfg.NodeID, len(a), survivors[1].cfg.NodeID, len(b))
		}
		for i := range a {
			if a[i].QueueOffset != b[i].QueueOffset || msgKey(a[i]) != msgKey(b[i]) {
				t.Fatalf("queue %d index %d: replicas differ: %d/%s vs %d/%s", q, i, a[i].QueueOffset, a[i].ID, b[i].QueueOffset, b[i].ID)
			}
			if a[i].QueueOffset != uint64(i) {
				t.Fatalf("queue %d: offset %d at position %d; offsets must be dense from 0", q, a[i].QueueOffset, i)
			}
			k := msgKey(a[i])
			if found[k] {
				dups++
				continue
			}
			found[k] = true
			seq, _ := strconv.ParseInt(k[1:], 10, 64)
			if seq%queues != int64(q) {
				t.Fatalf("message %s in queue %d", k, q)
			}
		}
	}
	lost := 0
	for _, ids := range ackedIDs {
		for _, id := range ids {
			if !found[id] {
				lost++
			}
		}
	}
	// Per-queue order: each producer's first occurrences in a queue must
	// follow its send order, because it sends one batch at a time.
	checkProducerOrder(t, survivors[0], queues, ackedIDs)
	t.Logf("lost %d acknowledged messages, %d duplicates", lost, dups)
	if lost != 0 {
		t.Fatalf("lost %d acknowledged messages", lost)
	}
	if dups != 0 { // resends carry the same IDs: producer dedup (dedup.go)
		t.Fatalf("%d messages stored twice", dups)
	}
}

func checkProducerOrder(t *testing.T, n *Node, queues uint32, ackedIDs [][]string) {
	t.Helper()
	rank := map[string][2]int{} // id -> producer, position in its ack order
	for p, ids := range ackedIDs {
		for i, id := range ids {
			rank[id] = [2]int{p, i}
		}
	}
	for q := uint32(0); q < queues; q++ {
		last := map[int]int{}
		seen := map[string]bool{}
		for _, m := range readQueue(t, n, "orders", q) {
			k := msgKey(m)
			if seen[k] {
				continue
			}
			seen[k] = true
			r, ok := rank[k]
			if !ok {
				continue // sent but never acknowledged
			}
			if prev, ok := last[r[0]]; ok && r[1] < prev {
				t.Fatalf("queue %d: producer %d's message %s is out of order", q, r[0], k)
			}
			last[r[0]] = r[1]
		}
	}
}
