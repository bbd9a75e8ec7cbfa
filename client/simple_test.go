package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

func newSimple(t *testing.T, c *e2e.Cluster, group string, subs map[string]string, mod func(*client.SimpleConsumerConfig)) *client.SimpleConsumer {
	t.Helper()
	cfg := client.SimpleConsumerConfig{NameServers: []string{c.NamesrvAddr()}, Group: group, Subscriptions: subs,
		From: client.FromFirst, AwaitDuration: 2 * time.Second, Logger: e2e.TestLogger(t)}
	if mod != nil {
		mod(&cfg)
	}
	sc, err := client.NewSimpleConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sc.Close() })
	return sc
}

func sendBodies(t *testing.T, p *client.Producer, topic string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := p.Send(ctxT(t, 10*time.Second), &client.Message{Topic: topic, Body: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSimpleConsumerInvisibleTime: received messages (4 s invisible) are invisible to
// the group until acked or until their invisible time passes; the
// unacked come back with ReconsumeTimes 1, the acked never; a changed
// invisible time holds the message longer and supersedes its handle.
func TestSimpleConsumerInvisibleTime(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "pop", 2)
	sendBodies(t, newProducer(t, c, nil), "pop", 20)
	sc := newSimple(t, c, "pg", map[string]string{"pop": "*"}, nil)
	other := newSimple(t, c, "pg", map[string]string{"pop": "*"}, nil)

	got := map[string]*client.ReceivedMessage{}
	e2e.Eventually(t, 20*time.Second, func() error {
		ms, err := sc.Receive(ctxT(t, 5*time.Second), 7, 4*time.Second)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if got[string(m.Body)] != nil {
				t.Errorf("message %s received twice within its invisible time", m.Body)
			}
			got[string(m.Body)] = m
		}
		if len(got) < 20 {
			return fmt.Errorf("%d of 20 received", len(got))
		}
		return nil
	})
	if ms, err := other.Receive(ctxT(t, time.Second), 32, time.Second); err != nil || len(ms) != 0 {
		t.Fatalf("another member received %d messages while all were invisible (err %v)", len(ms), err)
	}
	// Ack the even ones (one of them twice), hold "1" for 10 s longer.
	var acks []client.ReceiptHandle
	for i := 0; i < 20; i += 2 {
		acks = append(acks, got[strconv.Itoa(i)].Handle)
	}
	acks = append(acks, got["0"].Handle)
	errs, err := sc.AckAll(ctxT(t, 5*time.Second), acks)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			t.Errorf("ack %d: %v", i, e)
		}
	}
	held, until, err := sc.ChangeInvisibleDuration(ctxT(t, 5*time.Second), got["1"].Handle, 10*time.Second)
	if err != nil || time.Until(until) < 8*time.Second {
		t.Fatalf("change invisible: %v (until %v)", err, until)
	}
	if err := sc.Ack(ctxT(t, 5*time.Second), got["1"].Handle); !errors.Is(err, client.ErrReceiptHandle) {
		t.Fatalf("ack by a superseded handle: %v", err)
	}
	// The other nine odd ones come back, to any member, reconsumed once.
	back := map[string]int{}
	e2e.Eventually(t, 20*time.Second, func() error {
		ms, err := other.Receive(ctxT(t, 5*time.Second), 32, 5*time.Second)
		if err != nil {
			return err
		}
		for _, m := range ms {
			n, _ := strconv.Atoi(string(m.Body))
			if n%2 == 0 || n == 1 {
				t.Errorf("message %d redelivered (acked or held)", n)
			}
			if m.ReconsumeTimes != 1 {
				t.Errorf("redelivery of %d has ReconsumeTimes %d, want 1", n, m.ReconsumeTimes)
			}
			back[string(m.Body)]++
			if err := other.Ack(ctxT(t, 5*time.Second), m.Handle); err != nil {
				t.Errorf("ack of redelivery %d: %v", n, err)
			}
		}
		if len(back) < 9 {
			return fmt.Errorf("%d of 9 redelivered", len(back))
		}
		return nil
	})
	if err := sc.Ack(ctxT(t, 5*time.Second), got["3"].Handle); !errors.Is(err, client.ErrReceiptHandle) {
		t.Fatalf("ack of a redelivered message by its first handle: %v", err)
	}
	if err := sc.Ack(ctxT(t, 5*time.Second), held); err != nil {
		t.Fatalf("ack by the changed handle: %v", err)
	}
	if err := sc.Ack(ctxT(t, 5*time.Second), "not a handle"); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("ack of garbage: %v", err)
	}
	if _, err := sc.Receive(ctxT(t, 5*time.Second), 2000, 0); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("receive of 2000: %v", err)
	}
}

// TestSimpleConsumerDeadLetter: a message never acked is received
// MaxReconsume+1 times (counts 0..MaxReconsume), then lands in the
// group's dead-letter queue with its failure count and origin.
func TestSimpleConsumerDeadLetter(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{Broker: func(cfg *broker.Config) { cfg.TimerPoll = 20 * time.Millisecond }})
	createTopic(t, c, "poison", 1)
	sendBodies(t, newProducer(t, c, nil), "poison", 1)
	sc := newSimple(t, c, "dg", map[string]string{"poison": "*"}, func(cfg *client.SimpleConsumerConfig) { cfg.MaxReconsume = 2 })
	var counts []int
	e2e.Eventually(t, 30*time.Second, func() error {
		ms, err := sc.Receive(ctxT(t, 5*time.Second), 1, time.Second)
		if err != nil {
			return err
		}
		for _, m := range ms {
			counts = append(counts, m.ReconsumeTimes)
		}
		if len(counts) < 3 {
			return fmt.Errorf("%d deliveries", len(counts))
		}
		return nil
	})
	if fmt.Sprint(counts) != "[0 1 2]" {
		t.Fatalf("reconsume counts %v, want [0 1 2]", counts)
	}
	a := newAdmin(t, c)
	var dl []client.DeadLetter
	e2e.Eventually(t, 10*time.Second, func() error {
		var err error
		dl, err = a.DeadLetters(ctxT(t, 5*time.Second), "dg", 10)
		if err == nil && len(dl) == 0 {
			err = errors.New("no dead letters yet")
		}
		return err
	})
	if len(dl) != 1 || dl[0].Failures != 3 || dl[0].RetryOf == nil || dl[0].RetryOf.Topic != "poison" {
		t.Fatalf("dead letters %+v", dl)
	}
	if ms, err := sc.Receive(ctxT(t, 5*time.Second), 1, time.Second); err != nil || len(ms) != 0 {
		t.Fatalf("after dead-lettering: %d messages, %v", len(ms), err)
	}
}

// TestSimpleConsumersShareAQueueAcrossLeaderKill: three members share one
// queue; each first delivery of 1 % of the messages is not acked; the
// leader is killed midway. In the end every message was acked exactly
// once (successful acks counted per message), none is missing, and the
// unacked ones came back after their invisible time (2 s).
// RMQ_POP_MESSAGES sets the count (default 20 000; the run is 100 000).
func TestSimpleConsumersShareAQueueAcrossLeaderKill(t *testing.T) {
	total := 20_000
	if v, err := strconv.Atoi(os.Getenv("RMQ_POP_MESSAGES")); err == nil && v > 0 {
		total = v
	}
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "shared", 1)
	p := newProducer(t, c, nil)
	ctx := ctxT(t, 300*time.Second)
	// Everything is stored before consuming starts, so the kill tests
	// the pop state, not the producer's at-least-once (a batch resent
	// across a failover is stored twice).
	for i := 0; i < total; i += 100 {
		batch := make([]*client.Message, 0, 100)
		for j := i; j < min(i+100, total); j++ {
			batch = append(batch, &client.Message{Topic: "shared", Body: []byte(strconv.Itoa(j))})
		}
		if _, err := p.SendBatch(ctx, batch); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	survivor := ""
	for _, id := range c.NodeIDs() {
		if id != c.LeaderID(10*time.Second) {
			survivor = id // a follower: it outlives the kill below
			break
		}
	}
	logBefore := c.Node(survivor).Status().LogBytes
	start := time.Now()
	var mu sync.Mutex
	acked := make([]int, total)     // successful acks per message
	delivered := make([]int, total) // deliveries per message
	skipped := map[int]time.Time{}  // 1 %: first delivery not acked, and when it became visible again
	var lateBack []time.Duration    // how long after its skipped delivery a message came back
	skips, lostReplies := 0, 0      // first deliveries not acked on purpose; first seen deliveries that were redeliveries
	var ackedTotal atomic.Int64
	var stale atomic.Int64 // acks refused as superseded (redelivered during a failover)
	var wg sync.WaitGroup
	consumerCtx, stop := context.WithCancel(ctx)
	defer stop()
	for k := 0; k < 3; k++ {
		sc := newSimple(t, c, "share", map[string]string{"shared": "*"}, func(cfg *client.SimpleConsumerConfig) {
			cfg.AwaitDuration = time.Second
		})
		wg.Add(1)
		go func() { // ends with consumerCtx
			defer wg.Done()
			for consumerCtx.Err() == nil {
				ms, err := sc.Receive(consumerCtx, 32, 2*time.Second)
				if err != nil {
					continue // failover; the client retried what it could
				}
				var hs []client.ReceiptHandle
				var ids []int
				mu.Lock()
				for _, m := range ms {
					n, _ := strconv.Atoi(string(m.Body))
					delivered[n]++
					at, wasSkipped := skipped[n]
					switch {
					case wasSkipped && m.ReconsumeTimes > 0:
						lateBack = append(lateBack, time.Until(at)) // negative: received after its deadline
						delete(skipped, n)
					case n%100 == 7 && m.ReconsumeTimes == 0 && !wasSkipped:
						skipped[n] = m.InvisibleUntil
						skips++
						continue
					case m.ReconsumeTimes > 0 && delivered[n] == 1:
						lostReplies++ // a receive whose answer a failover lost took it first
					}
					hs = append(hs, m.Handle)
					ids = append(ids, n)
				}
				mu.Unlock()
				if len(hs) == 0 {
					continue
				}
				// Acks are idempotent: one whose outcome is unknown (a
				// failover, a loaded machine) is sent again.
				errs, err := sc.AckAll(consumerCtx, hs)
				for tries := 0; err != nil && consumerCtx.Err() == nil && tries < 20; tries++ {
					errs, err = sc.AckAll(consumerCtx, hs)
				}
				if err != nil {
					continue
				}
				mu.Lock()
				for i, e := range errs {
					switch {
					case e == nil:
						acked[ids[i]]++
						ackedTotal.Add(1)
					case errors.Is(e, client.ErrReceiptHandle):
						stale.Add(1)
					default:
						t.Errorf("ack of %d: %v", ids[i], e)
					}
				}
				mu.Unlock()
			}
		}()
	}
	// Kill the leader once a third is acked.
	e2e.Eventually(t, 120*time.Second, func() error {
		if n := ackedTotal.Load(); n < int64(total/3) {
			return fmt.Errorf("%d acked", n)
		}
		return nil
	})
	killed := c.LeaderID(10 * time.Second)
	c.Kill(killed)
	t.Logf("killed leader %s after %d acks", killed, ackedTotal.Load())
	e2e.Eventually(t, 240*time.Second, func() error {
		if n := ackedTotal.Load(); n < int64(total) {
			return fmt.Errorf("%d of %d acked", n, total)
		}
		return nil
	})
	stop()
	wg.Wait()
	elapsed := time.Since(start)
	logGrowth := c.Node(survivor).Status().LogBytes - logBefore
	mu.Lock()
	defer mu.Unlock()
	extra := 0
	for n := range acked {
		if acked[n] != 1 {
			t.Errorf("message %d acked %d times (delivered %d)", n, acked[n], delivered[n])
		}
		extra += delivered[n] - 1
	}
	skippedN := total/100 + boolInt(total%100 > 7)
	if len(lateBack) != skips || skips+lostReplies < skippedN {
		t.Errorf("%d of %d unacked messages came back (%d of the %d to skip were first seen as redeliveries)", len(lateBack), skips, lostReplies, skippedN)
	}
	if len(skipped) != 0 {
		t.Errorf("%d skipped messages never came back", len(skipped))
	}
	for _, d := range lateBack {
		if d > 5*time.Millisecond { // the broker's clock is this machine's; allow rounding to ms
			t.Errorf("an unacked message came back %v before its invisible time ended", d)
			break
		}
	}
	t.Logf("%d messages, 3 pop consumers on 1 queue, leader killed: every one acked once; %d redeliveries seen (%d after a skipped ack); %d messages first seen as a redelivery (the answer of the receive that took them was lost in the failover); %d acks refused as superseded; %v (%.0f msgs/s); CommitLog growth for receiving and acking %.1f bytes per message",
		total, extra, len(lateBack), lostReplies, stale.Load(), elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), float64(logGrowth)/float64(total))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
