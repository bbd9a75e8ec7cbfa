package rocketmq_test

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// TestFailoverLeaderKill produces and consumes with the RocketMQ clients
// against a three-process group and SIGKILLs the leader midway. The
// clients learn the new leader (brokerId 0 in the route) only from a
// NameServer route refresh, which rocketmq-client-go v2.1.2 does every
// 30s and offers no option to shorten, so the outage seen by the clients
// lasts up to about that long. Counted and logged: acknowledged sends,
// failed sends (and how many of those were stored all the same), lost
// acknowledged sends (must be 0) and duplicate deliveries.
func TestFailoverLeaderKill(t *testing.T) {
	skipUnderRace(t)
	const (
		workers     = 4
		beforeKill  = 300 // acknowledged sends before the kill
		afterKill   = 300 // ... and after it
		maxMessages = 20000
	)
	g := startGroup(t)
	topic := uniqueName(t, "T")
	createTopic(t, g.ns, topic, 4)
	col := newCollector()
	newPushConsumer(t, g.ns, uniqueName(t, "G"), topic, subAll, col.handle)
	p := newProducer(t, g.ns, producer.WithRetry(2))
	run := uniqueName(t, "m")
	mustSendSync(t, p, primitive.NewMessage(topic, []byte(run+"/probe")))

	var (
		mu     sync.Mutex
		acked  = map[string]time.Time{}
		failed = map[string]error{}
		next   atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	ackedSince := func(t0 time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, at := range acked {
			if !at.Before(t0) {
				n++
			}
		}
		return n
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// While the old leader is gone sends fail at once (connection
			// refused); a failed send waits a little so the outage is not
			// a busy loop. This paces the load; it waits for no condition.
			backoff := time.NewTimer(0)
			defer backoff.Stop()
			for {
				select {
				case <-stop:
					return
				case <-backoff.C:
				}
				i := next.Add(1)
				if i > maxMessages {
					return
				}
				body := fmt.Sprintf("%s/%05d", run, i)
				ctx, cancel := sendCtx()
				res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body)))
				cancel()
				if err == nil && res.Status != primitive.SendOK {
					err = fmt.Errorf("status %d", res.Status)
				}
				mu.Lock()
				if err == nil {
					acked[body] = time.Now()
				} else {
					failed[body] = err
				}
				mu.Unlock()
				if err == nil {
					backoff.Reset(0)
				} else {
					backoff.Reset(100 * time.Millisecond)
				}
			}
		}()
	}
	stopSenders := sync.OnceFunc(func() { close(stop); waitGroup(t, &wg, 30*time.Second, "senders") })
	t.Cleanup(stopSenders)

	eventually(t, 30*time.Second, "sends before the kill", func() error {
		if n := ackedSince(time.Time{}); n < beforeKill {
			return fmt.Errorf("%d of %d acknowledged", n, beforeKill)
		}
		return nil
	})
	old := g.Leader(5 * time.Second)
	now := time.Now()
	g.Kill(old)
	leader := g.Leader(30 * time.Second)
	electedIn := time.Since(now)
	eventually(t, 90*time.Second, "sends after the kill", func() error {
		if n := ackedSince(now); n < afterKill {
			return fmt.Errorf("%d of %d acknowledged since the kill of %s (new leader %s)", n, afterKill, old, leader)
		}
		return nil
	})
	stopSenders()

	mu.Lock()
	var ackedBodies []string
	firstAfter := time.Time{}
	for b, at := range acked {
		ackedBodies = append(ackedBodies, b)
		if !at.Before(now) && (firstAfter.IsZero() || at.Before(firstAfter)) {
			firstAfter = at
		}
	}
	var failedBodies []string
	var failSample []string
	for b, err := range failed {
		failedBodies = append(failedBodies, b)
		if len(failSample) < 3 {
			failSample = append(failSample, err.Error())
		}
	}
	mu.Unlock()
	sort.Strings(failSample)

	// Every acknowledged message must arrive; wait for them (the
	// consumer, too, needs a route refresh to find the new leader).
	err := waitFor(90*time.Second, func() error {
		if missing := col.missing(ackedBodies); len(missing) > 0 {
			return fmt.Errorf("%d acknowledged messages not consumed (e.g. %s)", len(missing), sample(missing))
		}
		return nil
	})
	lost := len(col.missing(ackedBodies))
	storedAnyway := len(failedBodies) - len(col.missing(failedBodies))
	t.Logf("failover: killed leader %s, new leader %s elected within %v; first acknowledged send %v after the kill",
		old, leader, electedIn.Round(time.Millisecond), firstAfter.Sub(now).Round(time.Millisecond))
	t.Logf("failover: %d acknowledged sends, %d failed sends (%d of them stored all the same), %d lost acknowledged sends, %d duplicate deliveries",
		len(ackedBodies), len(failedBodies), storedAnyway, lost, col.duplicates())
	if len(failSample) > 0 {
		t.Logf("failover: failed sends said e.g. %v", failSample)
	}
	if err != nil {
		t.Errorf("lost %d acknowledged sends: %v", lost, err)
	}
}
