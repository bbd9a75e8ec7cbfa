package client_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestOrderedAcrossLeaderKill: 10 sharding keys x 1000 messages, sent
// in per-key order, consumed Orderly in per-key order while the leader
// is killed midway. Redeliveries after the failover replay a suffix of a
// key; a key never skips ahead.
func TestOrderedAcrossLeaderKill(t *testing.T) {
	const keys, perKey = 10, 1000
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "ordered", 8)
	// Idempotent: a send retried across the kill is stored once.
	p := newProducer(t, c, func(cfg *client.ProducerConfig) { cfg.Idempotent = true })
	ctx := ctxT(t, 180*time.Second)

	var mu sync.Mutex
	maxSeq := make([]int, keys)
	for i := range maxSeq {
		maxSeq[i] = -1
	}
	var gaps, replays, storedDups int
	var firstGap string
	cons := newConsumer(t, c, "og", map[string]string{"ordered": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.Orderly = true
	})
	if err := cons.Start(ctx, func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			k, s := parseKeySeq(t, string(m.Body))
			switch {
			case s > maxSeq[k]+1:
				gaps++
				if firstGap == "" {
					firstGap = fmt.Sprintf("key%d: got %d after %d", k, s, maxSeq[k])
				}
				maxSeq[k] = s
			case s <= maxSeq[k] && m.Redelivered:
				replays++
			case s <= maxSeq[k]:
				storedDups++ // a second stored copy (send retried after an indeterminate outcome)
			default:
				maxSeq[k] = s
			}
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}

	var sent atomic.Int64
	var sendErrs atomic.Int64
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for k := 0; k < keys; k++ {
		wg.Add(1)
		go func() { // ends after perKey acknowledged sends
			defer wg.Done()
			for s := 0; s < perKey; {
				m := &client.Message{Topic: "ordered", ShardingKey: fmt.Sprintf("key%d", k), Body: fmt.Appendf(nil, "%d:%d", k, s)}
				if _, err := p.Send(ctx, m); err != nil {
					sendErrs.Add(1)
					t.Logf("send %s failed (will resend): %v", m.Body, err)
					if ctx.Err() != nil {
						return
					}
					continue
				}
				s++
				sent.Add(1)
			}
		}()
	}
	e2e.Eventually(t, 60*time.Second, func() error {
		if n := sent.Load(); n < keys*perKey/2 {
			return fmt.Errorf("%d sent", n)
		}
		return nil
	})
	old := c.LeaderID(5 * time.Second)
	killAt := time.Now()
	c.Kill(old)
	close(killed)
	t.Logf("killed leader %s after %d acknowledged sends", old, sent.Load())
	wg.Wait()
	newID := c.LeaderID(10 * time.Second)
	t.Logf("all %d sends acknowledged %v after the kill; new leader %s; send errors %d", sent.Load(), time.Since(killAt), newID, sendErrs.Load())

	e2e.Eventually(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for k, s := range maxSeq {
			if s != perKey-1 {
				return fmt.Errorf("key%d consumed up to %d", k, s)
			}
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	st := cons.Stats()
	t.Logf("ordered: redelivered %d (consumer counter %d), duplicate stored copies %d, gaps %d; producer %+v", replays, st.Redelivered, storedDups, gaps, p.Stats())
	if gaps != 0 {
		t.Errorf("per-key order broken %d times, first: %s", gaps, firstGap)
	}
	// Send retries resend the same message id: the broker stores one copy
	// (producer dedup). A send that failed was sent again as a new message.
	if storedDups != 0 && sendErrs.Load() == 0 {
		t.Errorf("%d stored duplicates; producer stats %+v", storedDups, p.Stats())
	}
}

func parseKeySeq(t *testing.T, body string) (int, int) {
	a, b, ok := strings.Cut(body, ":")
	k, err1 := strconv.Atoi(a)
	s, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		t.Errorf("bad body %q", body)
	}
	return k, s
}

// TestFailoverSendConsume: producers and a consumer run continuously
// while the leader is killed. No acknowledged message may be lost; the
// test reports duplicates, redeliveries and the unavailability window.
func TestFailoverSendConsume(t *testing.T) {
	const senders = 8
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "fo", 8)
	p := newProducer(t, c, func(cfg *client.ProducerConfig) { cfg.Idempotent = true })
	ctx := ctxT(t, 120*time.Second)
	r := newRecorder()
	cons := newConsumer(t, c, "fog", map[string]string{"fo": "*"}, nil)
	if err := cons.Start(ctx, pushInto(r, "x")); err != nil {
		t.Fatal(err)
	}

	type ack struct {
		body       string
		start, end time.Time
	}
	var mu sync.Mutex
	var acks []ack
	var failed []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() { // ends when stop closes
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("s%d-%d", g, i)
				st := time.Now()
				_, err := p.Send(ctx, &client.Message{Topic: "fo", Body: []byte(body)})
				mu.Lock()
				if err != nil {
					failed = append(failed, fmt.Sprintf("%s: %v", body, err))
				} else {
					acks = append(acks, ack{body, st, time.Now()})
				}
				mu.Unlock()
			}
		}()
	}
	// A failed wait below must still stop the senders, or they go on
	// sending through the next tests.
	stopSenders := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopSenders()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acks)
	}
	e2e.Eventually(t, 30*time.Second, func() error {
		if n := count(); n < 3000 {
			return fmt.Errorf("%d acked", n)
		}
		return nil
	})
	old := c.LeaderID(5 * time.Second)
	killAt := time.Now()
	c.Kill(old)
	before := count()
	// Keep sending until well after the failover.
	e2e.Eventually(t, 30*time.Second, func() error {
		if n := count(); n < before+3000 {
			return fmt.Errorf("%d acked since the kill", n-before)
		}
		return nil
	})
	stopSenders()

	mu.Lock()
	var firstAfter time.Time
	var maxLat time.Duration
	for _, a := range acks {
		if a.start.After(killAt) && (firstAfter.IsZero() || a.end.Before(firstAfter)) {
			firstAfter = a.end
		}
		if a.end.After(killAt) && a.start.Before(killAt.Add(5*time.Second)) {
			maxLat = max(maxLat, a.end.Sub(a.start))
		}
	}
	var gapMax time.Duration
	ends := make([]time.Time, 0, len(acks))
	for _, a := range acks {
		ends = append(ends, a.end)
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
	for i := 1; i < len(ends); i++ {
		if ends[i].After(killAt) {
			gapMax = max(gapMax, ends[i].Sub(ends[i-1]))
		}
	}
	acked := append([]ack(nil), acks...)
	nFailed := len(failed)
	mu.Unlock()
	t.Logf("failover: killed %s; first send started after the kill acknowledged %v after it; longest gap between acks %v; slowest send around the kill %v; %d acked, %d failed",
		old, firstAfter.Sub(killAt), gapMax, maxLat, len(acked), nFailed)
	for i, f := range failed {
		if i < 5 {
			t.Logf("failed send: %s", f)
		}
	}

	r.waitDistinct(t, len(acked), 60*time.Second)
	r.mu.Lock()
	lost := 0
	for _, a := range acked {
		if r.count[a.body] == 0 {
			lost++
		}
	}
	dups := 0
	for _, n := range r.count {
		dups += n - 1
	}
	r.mu.Unlock()
	redel, copies := r.dupKinds()
	t.Logf("failover: lost %d of %d acknowledged; duplicate deliveries %d = %d redeliveries of a stored message (consumer counter %d) + %d extra stored copies from retried sends; producer %+v",
		lost, len(acked), dups, redel, cons.Stats().Redelivered, copies, p.Stats())
	if lost != 0 {
		t.Errorf("%d acknowledged messages lost", lost)
	}
	if copies != 0 { // retries resend the same id: producer dedup stores one copy
		t.Errorf("%d extra stored copies; producer stats %+v", copies, p.Stats())
	}
	if nFailed != 0 {
		t.Errorf("%d sends failed during failover, want 0 (failover should be invisible within SendTimeout)", nFailed)
	}
}
