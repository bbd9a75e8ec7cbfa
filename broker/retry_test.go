package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// TestSendBackRetriesThenDeadLetters: each failed delivery is retried
// into the group's retry queue after the backoff of its count (on the
// leader's clock), carrying the count and the origin; the retries point
// at the one original record; past the maximum the message goes to the
// write-only dead-letter queue.
func TestSendBackRetriesThenDeadLetters(t *testing.T) {
	clk := &testClock{now: time.UnixMilli(1_700_000_000_000)}
	levels := []time.Duration{time.Second, 2 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second}
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.Now = clk.Now
		cfg.DelayLevels = levels
		cfg.TimerPoll = 10 * time.Millisecond
	})
	createTopic(t, c, "orders", 2)
	n := c.leader(10 * time.Second)
	orig := sendOne(t, n, &fsm.Message{Topic: "orders", QueueID: 1, ID: []byte("m1"), Body: []byte("pay")})

	topic, queue, offset := "orders", uint32(1), orig.QueueOffset
	for want := uint32(1); want <= 2; want++ {
		res, err := n.SendBack(t.Context(), SendBackRequest{Group: "g", Topic: topic, QueueID: queue, Offset: offset, MaxReconsume: 2})
		if err != nil {
			t.Fatalf("send back %d: %v", want, err)
		}
		backoff := levels[min(int(want)+2, len(levels))-1]
		if res.DLQ || res.Reconsume != want || res.DeliverAt != clk.Now().Add(backoff).UnixMilli() {
			t.Fatalf("send back %d: %+v, want a retry in %s", want, res, backoff)
		}
		retryQueue := RetryTopic("g")
		if _, next, _ := n.QueueRange(retryQueue, 0); next != uint64(want-1) {
			t.Fatalf("retry %d visible before its backoff (next %d)", want, next)
		}
		clk.Add(backoff)
		var got []StoredMessage
		eventually(t, 10*time.Second, func() error {
			if got = readQueue(t, n, retryQueue, 0); len(got) != int(want) {
				return fmt.Errorf("%d retries delivered, want %d", len(got), want)
			}
			return nil
		})
		r := got[want-1]
		if string(r.Body) != "pay" || r.Topic != "orders" || r.RaftIndex != orig.RaftIndex || r.Pos != orig.Pos ||
			r.Retry == nil || *r.Retry != (RetryView{Reconsume: want, OriginTopic: "orders", OriginQueue: 1, OriginOffset: orig.QueueOffset}) {
			t.Fatalf("retry %d delivered as %+v (retry %+v); want the original record with count %d", want, r, r.Retry, want)
		}
		topic, queue, offset = retryQueue, 0, r.QueueOffset // the next failure is of this delivery
	}
	res, err := n.SendBack(t.Context(), SendBackRequest{Group: "g", Topic: topic, QueueID: queue, Offset: offset, MaxReconsume: 2})
	if err != nil || !res.DLQ || res.Reconsume != 3 {
		t.Fatalf("third failure: %+v %v, want the DLQ", res, err)
	}
	dlq, ok := n.Topic(DLQTopic("g"))
	if !ok || dlq.Perm != fsm.PermWrite {
		t.Fatalf("dead-letter topic %+v %v, want write-only", dlq, ok)
	}
	if _, next, _ := n.QueueRange(DLQTopic("g"), 0); next != 1 {
		t.Fatalf("dead-letter queue next %d, want 1", next)
	}
	if _, err := n.Read(t.Context(), ReadRequest{Topic: DLQTopic("g")}); err == nil {
		t.Fatal("a consumer read the write-only dead-letter queue")
	}
	if n.Status().LastIndex == 0 || n.fsm.PendingTimers() != 0 {
		t.Fatalf("pending timers %d after the DLQ", n.fsm.PendingTimers())
	}
}

// TestRetriesAcrossLeaderKill: retries scheduled before a leader kill are
// all delivered by the next leader, each once.
func TestRetriesAcrossLeaderKill(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.DelayLevels = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 300 * time.Millisecond, time.Second}
		cfg.TimerPoll = 20 * time.Millisecond
	})
	createTopic(t, c, "orders", 2)
	const total = 100
	n := c.leader(10 * time.Second)
	for i := 0; i < total; i++ {
		r := sendOne(t, n, &fsm.Message{Topic: "orders", QueueID: uint32(i % 2), ID: []byte(fmt.Sprintf("m%03d", i)), Body: []byte("b")})
		if _, err := n.SendBack(t.Context(), SendBackRequest{Group: "g", Topic: "orders", QueueID: r.QueueID, Offset: r.QueueOffset}); err != nil {
			t.Fatal(err)
		}
	}
	c.kill(n.cfg.NodeID) // the first retries are due 300ms after their send-back
	var got []StoredMessage
	eventually(t, 30*time.Second, func() error {
		got = readQueue(t, c.leader(10*time.Second), RetryTopic("g"), 0)
		if len(got) < total {
			return fmt.Errorf("%d of %d retries delivered", len(got), total)
		}
		return nil
	})
	ids := map[string]int{}
	for _, m := range got {
		ids[string(m.ID)]++
		if m.Retry == nil || m.Retry.Reconsume != 1 || m.Retry.OriginTopic != "orders" {
			t.Fatalf("retry %s: %+v", m.ID, m.Retry)
		}
	}
	for id, k := range ids {
		if k != 1 {
			t.Fatalf("%s retried %d times, want once", id, k)
		}
	}
	if len(ids) != total {
		t.Fatalf("%d distinct retries, want %d", len(ids), total)
	}
}
