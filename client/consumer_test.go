package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

func sendN(t *testing.T, p *client.Producer, topic, prefix string, n int, tag string) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < n; i++ {
		wg.Add(1)
		p.SendAsync(ctx, &client.Message{Topic: topic, Tags: tag, Body: fmt.Appendf(nil, "%s-%d", prefix, i)}, func(_ client.SendResult, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("send: %v", firstErr)
	}
}

func pushInto(r *recorder, who string) client.Handler {
	return func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		r.add(who, msgs)
		return client.ConsumeSuccess
	}
}

func TestConsumerTwoGroupsIndependent(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "shared", 4)
	p := newProducer(t, c, nil)
	sendN(t, p, "shared", "m", 300, "")
	ctx := ctxT(t, 30*time.Second)
	r1, r2 := newRecorder(), newRecorder()
	c1 := newConsumer(t, c, "g1", map[string]string{"shared": "*"}, nil)
	c2 := newConsumer(t, c, "g2", map[string]string{"shared": "*"}, nil)
	if err := c1.Start(ctx, pushInto(r1, "g1")); err != nil {
		t.Fatal(err)
	}
	if err := c2.Start(ctx, pushInto(r2, "g2")); err != nil {
		t.Fatal(err)
	}
	r1.waitDistinct(t, 300, 15*time.Second)
	r2.waitDistinct(t, 300, 15*time.Second)
	if d1, d2 := r1.dups(), r2.dups(); d1+d2 != 0 {
		t.Errorf("duplicates: g1 %d, g2 %d, want 0", d1, d2)
	}
}

func TestConsumerBroadcast(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "bcast", 4)
	p := newProducer(t, c, nil)
	ctx := ctxT(t, 30*time.Second)
	dir := t.TempDir()
	ra, rb := newRecorder(), newRecorder()
	mode := func(cfg *client.ConsumerConfig) { cfg.Mode = client.Broadcasting; cfg.OffsetDir = dir }
	ca := newConsumer(t, c, "bg", map[string]string{"bcast": "*"}, mode)
	cb := newConsumer(t, c, "bg", map[string]string{"bcast": "*"}, func(cfg *client.ConsumerConfig) {
		mode(cfg)
		cfg.OffsetDir = t.TempDir()
	})
	if err := ca.Start(ctx, pushInto(ra, "a")); err != nil {
		t.Fatal(err)
	}
	if err := cb.Start(ctx, pushInto(rb, "b")); err != nil {
		t.Fatal(err)
	}
	sendN(t, p, "bcast", "m", 200, "")
	ra.waitDistinct(t, 200, 15*time.Second)
	rb.waitDistinct(t, 200, 15*time.Second)

	// Offsets survive in OffsetDir: a restarted member resumes, no replay.
	if err := ca.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ra2 := newRecorder()
	ca2 := newConsumer(t, c, "bg", map[string]string{"bcast": "*"}, mode)
	if err := ca2.Start(ctx, pushInto(ra2, "a2")); err != nil {
		t.Fatal(err)
	}
	sendN(t, p, "bcast", "n", 10, "")
	ra2.waitDistinct(t, 10, 15*time.Second)
	if got := ra2.distinct(); got != 10 {
		t.Errorf("restarted broadcast member consumed %d messages, want the 10 new ones", got)
	}
}

func TestConsumerTagFilter(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "tagged", 2)
	p := newProducer(t, c, nil)
	sendN(t, p, "tagged", "a", 50, "TagA")
	sendN(t, p, "tagged", "b", 50, "TagB")
	sendN(t, p, "tagged", "c", 50, "TagC")
	ctx := ctxT(t, 30*time.Second)
	r := newRecorder()
	var mu sync.Mutex
	tags := map[string]int{}
	cons := newConsumer(t, c, "tg", map[string]string{"tagged": "TagA || TagC"}, nil)
	if err := cons.Start(ctx, func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		mu.Lock()
		for _, m := range msgs {
			tags[m.Tags]++
		}
		mu.Unlock()
		r.add("x", msgs)
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}
	r.waitDistinct(t, 100, 15*time.Second)
	// The group's committed offsets reach the end although TagB was skipped.
	a := newAdmin(t, c)
	e2e.Eventually(t, 10*time.Second, func() error {
		d, err := a.DescribeGroup(ctx, "tg")
		if err != nil {
			return err
		}
		for _, q := range d.Queues {
			if q.Lag != 0 {
				return fmt.Errorf("queue %v lag %d", q.Queue, q.Lag)
			}
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if tags["TagB"] != 0 || tags["TagA"] != 50 || tags["TagC"] != 50 {
		t.Errorf("tags consumed %v, want TagA:50 TagC:50", tags)
	}
}

func TestConsumerLongPollWakeup(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "lp", 1)
	p := newProducer(t, c, nil)
	ctx := ctxT(t, 30*time.Second)
	got := make(chan time.Time, 1)
	cons := newConsumer(t, c, "lpg", map[string]string{"lp": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.LongPollWait = 15 * time.Second
		cfg.From = client.FromLast
	})
	if err := cons.Start(ctx, func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		select {
		case got <- time.Now():
		default:
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}
	// Wait until the consumer owns the queue (and is thus long-polling).
	e2e.Eventually(t, 10*time.Second, func() error {
		if len(cons.Stats().Owned) != 1 {
			return fmt.Errorf("owns %v", cons.Stats().Owned)
		}
		return nil
	})
	before := time.Now()
	if _, err := p.Send(ctx, &client.Message{Topic: "lp", Body: []byte("wake")}); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	select {
	case at := <-got:
		t.Logf("long-poll wake-up: delivered %v after Send was called, %v after it returned", at.Sub(before), at.Sub(sent))
	case <-ctx.Done():
		t.Fatal("message sent during a long poll was not delivered")
	}
}

func TestConsumerResetByTimestamp(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "rst", 2)
	p := newProducer(t, c, nil)
	ctx := ctxT(t, 40*time.Second)
	sendN(t, p, "rst", "old", 50, "")
	mid := time.Now()
	// The broker stamps store times in ms; step past mid so old and new
	// messages fall on different sides of it (a time-based condition).
	time.Sleep(5 * time.Millisecond)
	sendN(t, p, "rst", "new", 50, "")

	r := newRecorder()
	cons := newConsumer(t, c, "rg", map[string]string{"rst": "*"}, nil)
	if err := cons.Start(ctx, pushInto(r, "x")); err != nil {
		t.Fatal(err)
	}
	r.waitDistinct(t, 100, 15*time.Second)
	a := newAdmin(t, c)
	e2e.Eventually(t, 10*time.Second, func() error { // committed
		d, err := a.DescribeGroup(ctx, "rg")
		if err != nil {
			return err
		}
		for _, q := range d.Queues {
			if q.Lag != 0 {
				return fmt.Errorf("queue %v lag %d", q.Queue, q.Lag)
			}
		}
		return nil
	})
	offs, err := a.ResetOffsets(ctx, "rg", "rst", mid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reset offsets: %v", offs)
	e2e.Eventually(t, 15*time.Second, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i := 0; i < 50; i++ {
			if r.count[fmt.Sprintf("new-%d", i)] < 2 {
				return fmt.Errorf("new-%d consumed %d times, want 2 (replay)", i, r.count[fmt.Sprintf("new-%d", i)])
			}
		}
		return nil
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < 50; i++ {
		if n := r.count[fmt.Sprintf("old-%d", i)]; n != 1 {
			t.Errorf("old-%d consumed %d times, want 1 (before the reset time)", i, n)
		}
	}
	t.Logf("redelivered counter: %d", cons.Stats().Redelivered)
}

func TestConsumerPollCommit(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "pull", 4)
	p := newProducer(t, c, nil)
	sendN(t, p, "pull", "m", 100, "")
	ctx := ctxT(t, 30*time.Second)
	cons := newConsumer(t, c, "pg", map[string]string{"pull": "*"}, nil)
	r := newRecorder()
	for b, err := range cons.Batches(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		r.add("x", b.Messages())
		if err := cons.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		if r.distinct() == 100 {
			break
		}
	}
	if err := cons.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A new member of the group starts after the committed offsets.
	cons2 := newConsumer(t, c, "pg", map[string]string{"pull": "*"}, nil)
	sendN(t, p, "pull", "n", 5, "")
	got := 0
	for got < 5 {
		b, err := cons2.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range b.Messages() {
			if string(m.Body[:2]) != "n-" {
				t.Fatalf("replayed %q after commit", m.Body)
			}
		}
		got += b.Len()
		if err := cons2.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
}
