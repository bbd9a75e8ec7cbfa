package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// topicMax is the sum of a topic's queue max offsets.
func topicMax(t *testing.T, c *e2e.Cluster, topic string) uint64 {
	t.Helper()
	st, err := newAdmin(t, c).TopicStatus(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, q := range st {
		n += q.MaxOffset
	}
	return n
}

// TestConsumerProgress: a queue is caught up only after its messages were
// consumed, tag-filtered messages count as read, and a consumer that has
// not started is not caught up.
func TestConsumerProgress(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "prog", 4)
	p := newProducer(t, c, nil)
	sendN(t, p, "prog", "keep", 3, "keep")
	sendN(t, p, "prog", "skip", 7, "skip")
	if n := topicMax(t, c, "prog"); n != 10 {
		t.Fatalf("topic holds %d messages, want 10", n)
	}

	r := newRecorder()
	var open atomic.Bool
	cons := newConsumer(t, c, "pg", map[string]string{"prog": "keep"}, func(cfg *client.ConsumerConfig) {
		cfg.LongPollWait = 500 * time.Millisecond
		cfg.RetryBackoff = 50 * time.Millisecond
		cfg.LocalRetry = true // the refused messages stay in their queues
	})
	if pr := cons.Progress(); pr.Settled || pr.CaughtUp() || len(pr.Queues) != 0 {
		t.Fatalf("before Start: got %+v, want not settled, not caught up, no queues", pr)
	}
	if err := cons.Start(ctxT(t, 10*time.Second), func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		if !open.Load() {
			return client.ConsumeRetryLater
		}
		r.add("c", msgs)
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}

	// While the handler refuses the 3 matching messages, every queue gets
	// a pull answer but the consumer is never caught up: not before the
	// first answers either (Next 0, Max unknown).
	var early *client.Progress
	e2e.Eventually(t, 15*time.Second, func() error {
		pr := cons.Progress()
		if pr.CaughtUp() && early == nil {
			early = &pr
		}
		if !pr.Settled || len(pr.Queues) != 4 {
			return fmt.Errorf("settled %v with %d queues, want settled with 4", pr.Settled, len(pr.Queues))
		}
		for _, q := range pr.Queues {
			if !q.Pulled {
				return fmt.Errorf("queue %v not pulled yet", q.Queue)
			}
		}
		return nil
	})
	if early != nil {
		t.Errorf("caught up while the handler refused every message: %+v", *early)
	}
	pr := cons.Progress()
	behind := 0
	for _, q := range pr.Queues {
		if q.Next < q.Max {
			behind++
			if q.CaughtUp {
				t.Errorf("queue %+v: caught up with next < max", q)
			}
		}
	}
	if behind == 0 || pr.CaughtUp() {
		t.Fatalf("handler refusing: got %+v, want queues behind and not caught up", pr)
	}

	open.Store(true)
	e2e.Eventually(t, 15*time.Second, func() error {
		if pr := cons.Progress(); !pr.CaughtUp() {
			return fmt.Errorf("not caught up: %+v", pr)
		}
		return nil
	})
	pr = cons.Progress()
	var next, max uint64
	for _, q := range pr.Queues {
		if q.Next != q.Max || !q.CaughtUp {
			t.Errorf("queue %+v: want next == max and caught up", q)
		}
		next += q.Next
		max += q.Max
	}
	if next != 10 || max != 10 {
		t.Errorf("caught up at next %d / max %d summed over queues, want 10 / 10 (filtered messages read)", next, max)
	}
	if d := r.distinct(); d != 3 {
		t.Errorf("handler got %d distinct messages, want the 3 tagged keep", d)
	}
}

// TestConsumerProgressWaitsForQueues: a member whose allocated queues are
// still locked by another member is not settled, so not caught up, even
// though it owns nothing it has not read.
func TestConsumerProgressWaitsForQueues(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "handoff", 4)
	p := newProducer(t, c, nil)
	sendN(t, p, "handoff", "m", 10, "")
	ra, rb := newRecorder(), newRecorder()
	// a rebalances only at Start within this test, so it keeps all four
	// queues locked while b joins.
	a := newConsumer(t, c, "hg", map[string]string{"handoff": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.HeartbeatInterval = time.Minute
		cfg.LongPollWait = 500 * time.Millisecond
	})
	if err := a.Start(ctxT(t, 10*time.Second), pushInto(ra, "a")); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, 15*time.Second, func() error {
		if pr := a.Progress(); !pr.CaughtUp() || len(pr.Queues) != 4 {
			return fmt.Errorf("a: %+v, want caught up on 4 queues", pr)
		}
		return nil
	})
	b := newConsumer(t, c, "hg", map[string]string{"handoff": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.LongPollWait = 500 * time.Millisecond
	})
	if err := b.Start(ctxT(t, 10*time.Second), pushInto(rb, "b")); err != nil {
		t.Fatal(err)
	}
	if pr := b.Progress(); pr.Settled || pr.CaughtUp() || len(pr.Queues) != 0 {
		t.Fatalf("b while a holds every lock: got %+v, want not settled, not caught up, no queues", pr)
	}
	if err := a.Close(ctxT(t, 10*time.Second)); err != nil && !errors.Is(err, client.ErrClosed) {
		t.Fatal(err)
	}
	e2e.Eventually(t, 20*time.Second, func() error {
		if pr := b.Progress(); !pr.CaughtUp() || len(pr.Queues) != 4 {
			return fmt.Errorf("b: %+v, want caught up on 4 queues", pr)
		}
		return nil
	})
	if da, db := ra.distinct(), rb.distinct(); da != 10 || db != 0 {
		t.Errorf("a consumed %d, b %d distinct messages; want 10 and 0 (a committed all on Close)", da, db)
	}
}
