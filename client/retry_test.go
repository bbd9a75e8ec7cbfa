package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestRetryThroughTheBroker: a message whose handler fails three times
// and then succeeds is delivered four times, with reconsume counts 0..3,
// each retry no earlier than the backoff of its count after the failure
// and from the group's retry queue; a message that always fails goes to
// the dead-letter queue after MaxReconsume failures; neither blocks its
// queue meanwhile.
func TestRetryThroughTheBroker(t *testing.T) {
	levels := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
		80 * time.Millisecond, 110 * time.Millisecond, 140 * time.Millisecond, 170 * time.Millisecond}
	c := retryCluster(t, levels...)
	createTopic(t, c, "work", 1)
	p := newProducer(t, c, nil)
	for _, body := range []string{"flaky", "poison", "fine"} {
		if _, err := p.Send(ctxT(t, 10*time.Second), &client.Message{Topic: "work", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	type delivery struct {
		reconsume int
		fromRetry bool
		store     time.Time
		failedAt  time.Time
	}
	var mu sync.Mutex
	fixed := false // the poison message's handler bug, fixed before the resend
	seen := map[string][]delivery{}
	done := make(chan struct{})
	cons := newConsumer(t, c, "wg", map[string]string{"work": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.MaxReconsume = 4
		cfg.PullBatch = 1
		cfg.LongPollWait = 200 * time.Millisecond
	})
	err := cons.Start(ctxT(t, 10*time.Second), func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		mu.Lock()
		defer mu.Unlock()
		m := msgs[0]
		body := string(m.Body)
		d := delivery{reconsume: m.ReconsumeTimes, fromRetry: m.Queue.Topic == "%RETRY%wg", store: m.StoreTime}
		if m.Topic != "work" || (d.fromRetry && (m.RetryOf == nil || m.RetryOf.Topic != "work")) {
			t.Errorf("delivery of %s from %v: topic %q, origin %+v", body, m.Queue, m.Topic, m.RetryOf)
		}
		fail := body == "poison" && !fixed || body == "flaky" && m.ReconsumeTimes < 3
		if fail {
			d.failedAt = time.Now()
		}
		seen[body] = append(seen[body], d)
		if body == "flaky" && !fail {
			close(done)
		}
		if fail {
			return client.ConsumeRetryLater
		}
		return client.ConsumeSuccess
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("flaky was not consumed within 30s")
	}
	e2e.Eventually(t, 30*time.Second, func() error {
		if st := cons.Stats(); st.DeadLettered != 1 {
			return fmt.Errorf("stats %+v, want 1 dead-lettered", st)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for body, want := range map[string]int{"flaky": 4, "poison": 5, "fine": 1} {
		ds := seen[body]
		if len(ds) != want {
			t.Fatalf("%s delivered %d times, want %d: %+v", body, len(ds), want, ds)
		}
		for i, d := range ds {
			if d.reconsume != i || d.fromRetry != (i > 0) {
				t.Fatalf("%s delivery %d: %+v, want reconsume %d from the retry queue after the first", body, i, d, i)
			}
			if i > 0 {
				backoff := levels[min(i+2, len(levels))-1]
				if d.store.Before(ds[i-1].failedAt.Add(backoff).Truncate(time.Millisecond)) {
					t.Fatalf("%s retry %d stored %s after the failure, before its backoff %s", body, i, d.store.Sub(ds[i-1].failedAt), backoff)
				}
			}
		}
	}
	n := c.Leader(10 * time.Second)
	if _, next, err := n.QueueRange("%DLQ%wg", 0); err != nil || next != 1 {
		t.Fatalf("dead-letter queue: next %d, %v; want 1", next, err)
	}
	fixed = true
	mu.Unlock()

	// The operator lists the dead letter and resends it: consumed once.
	admin, err := client.NewAdmin(client.AdminConfig{NameServers: []string{c.NamesrvAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	dls, err := admin.DeadLetters(ctxT(t, 10*time.Second), "wg", 0)
	if err != nil || len(dls) != 1 || string(dls[0].Body) != "poison" || dls[0].Failures != 5 ||
		dls[0].RetryOf == nil || dls[0].RetryOf.Topic != "work" {
		t.Fatalf("dead letters %+v %v", dls, err)
	}
	if k, err := admin.ResendDeadLetters(ctxT(t, 10*time.Second), "wg", []string{dls[0].MsgID}, false); err != nil || k != 1 {
		t.Fatalf("resend: %d %v", k, err)
	}
	e2e.Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if got := len(seen["poison"]); got != 6 {
			return fmt.Errorf("poison delivered %d times, want 6 (5 failed, then the resend)", got)
		}
		if last := seen["poison"][5]; last.reconsume != 0 || !last.fromRetry {
			return fmt.Errorf("resent delivery %+v, want reconsume 0 from the retry queue", last)
		}
		return nil
	})
	if st := cons.Stats(); st.DeadLettered != 1 {
		t.Fatalf("stats after the resend %+v", st)
	}
	mu.Lock()
}

// TestConsumeTimeoutCountsAsFailure: a handler still running after
// ConsumeTimeout has its context cancelled and its batch retried, even
// though it returns success afterwards.
func TestConsumeTimeoutCountsAsFailure(t *testing.T) {
	c := retryCluster(t, 10*time.Millisecond, 20*time.Millisecond, 30*time.Millisecond)
	createTopic(t, c, "slow", 1)
	p := newProducer(t, c, nil)
	if _, err := p.Send(ctxT(t, 10*time.Second), &client.Message{Topic: "slow", Body: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls []int
	done := make(chan struct{})
	cons := newConsumer(t, c, "sg", map[string]string{"slow": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.ConsumeTimeout = 100 * time.Millisecond
		cfg.LongPollWait = 200 * time.Millisecond
	})
	err := cons.Start(ctxT(t, 10*time.Second), func(ctx context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		mu.Lock()
		calls = append(calls, msgs[0].ReconsumeTimes)
		first := len(calls) == 1
		mu.Unlock()
		if first {
			<-ctx.Done() // stuck until the timeout cancels it
			return client.ConsumeSuccess
		}
		close(done)
		return client.ConsumeSuccess
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the timed-out message was not redelivered")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || calls[1] != 1 {
		t.Fatalf("handler calls with reconsume counts %v, want [0 1]", calls)
	}
	if st := cons.Stats(); st.TimedOut != 1 || st.Retried != 1 {
		t.Fatalf("stats %+v, want 1 timed out and retried", st)
	}
}

// TestRetryQueueReadFromItsStart: a group that starts from the last
// offset still reads its retry queue from the start, so the first retry,
// stored before any member owned that queue, is not skipped.
func TestRetryQueueReadFromItsStart(t *testing.T) {
	c := retryCluster(t, time.Millisecond, time.Millisecond, time.Millisecond)
	createTopic(t, c, "late", 1)
	var mu sync.Mutex
	var counts []int
	done := make(chan struct{})
	cons := newConsumer(t, c, "lg", map[string]string{"late": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.From = client.FromLast
		cfg.LongPollWait = 200 * time.Millisecond
	})
	if err := cons.Start(ctxT(t, 10*time.Second), func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		mu.Lock()
		defer mu.Unlock()
		counts = append(counts, msgs[0].ReconsumeTimes)
		if len(counts) == 1 {
			return client.ConsumeRetryLater
		}
		close(done)
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		if st := cons.Stats(); len(st.Owned) != 1 {
			return fmt.Errorf("owns %v", st.Owned)
		}
		return nil
	})
	p := newProducer(t, c, nil)
	if _, err := p.Send(ctxT(t, 10*time.Second), &client.Message{Topic: "late", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the retry was not delivered")
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(counts) != "[0 1]" {
		t.Fatalf("deliveries with counts %v, want [0 1]", counts)
	}
}

// retryCluster starts a cluster whose delay levels (and so retry
// backoffs, levels 3 and up) are the given ones, with a fast scheduler.
func retryCluster(t *testing.T, levels ...time.Duration) *e2e.Cluster {
	t.Helper()
	return e2e.StartCluster(t, e2e.Options{Broker: func(cfg *broker.Config) {
		cfg.DelayLevels = levels
		cfg.TimerPoll = 10 * time.Millisecond
	}})
}
