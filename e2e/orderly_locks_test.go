package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
)

// run is one stretch of a member processing a queue: from the start of
// the first delivery to the end of the last one, over contiguous offsets.
// A member that loses a queue and gets it back resumes at the offset the
// other member committed, so its next delivery starts a new run.
type run struct {
	start, end time.Time
	first      uint64
	last       uint64
}

// runLog records, per queue, the runs of one consumer-group member.
type runLog struct {
	name      string
	mu        sync.Mutex
	runs      map[int][]run // queue id -> runs, the last one open
	delivered atomic.Int64
}

func newRunLog(name string) *runLog { return &runLog{name: name, runs: map[int][]run{}} }

func (l *runLog) handler(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
	start := time.Now()
	q := int(msgs[0].Queue.QueueID)
	first, last := msgs[0].QueueOffset, msgs[len(msgs)-1].QueueOffset
	l.delivered.Add(int64(len(msgs)))
	end := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	rs := l.runs[q]
	if n := len(rs); n > 0 && rs[n-1].last+1 == first {
		rs[n-1].end, rs[n-1].last = end, last
		return client.ConsumeSuccess
	}
	l.runs[q] = append(rs, run{start: start, end: end, first: first, last: last})
	return client.ConsumeSuccess
}

// overlap returns the first pair of runs of a and b on one queue that
// overlap in time.
func overlap(a, b *runLog) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for q, ras := range a.runs {
		for _, ra := range ras {
			for _, rb := range b.runs[q] {
				if ra.start.Before(rb.end) && rb.start.Before(ra.end) {
					errs = append(errs, fmt.Errorf("queue %d: %s processed offsets [%d, %d] during %s..%s while %s processed [%d, %d] during %s..%s",
						q, a.name, ra.first, ra.last, ra.start.Format("15:04:05.000"), ra.end.Format("15:04:05.000"),
						b.name, rb.first, rb.last, rb.start.Format("15:04:05.000"), rb.end.Format("15:04:05.000")))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (l *runLog) count() (runs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rs := range l.runs {
		runs += len(rs)
	}
	return runs
}

// TestOrderlyLocksSurviveLeaderKill: an Orderly group of two members
// consumes an 8-queue topic while the group leader is SIGKILLed three
// times (each victim restarted). Member a rebalances every 200ms, member
// b every 2.5s, so after each failover a reaches the new leader well
// before b and, for a moment, sees itself as the only member. Queue locks
// must survive the failover, so a's attempt to take b's queues is refused
// while b still trusts its locks: no queue is processed by both members
// at once.
func TestOrderlyLocksSurviveLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process failover test")
	}
	const topic, group, queues = "orderly", "og", 8
	c := startProcCluster(t)
	adm := c.admin()
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, client.TopicSpec{Name: topic, Queues: queues}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, func() error {
		_, err := adm.TopicStatus(ctx, topic)
		return err
	})

	p, err := client.NewProducer(client.ProducerConfig{NameServers: []string{c.nsAddr}, Logger: TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	pctx, stopProducing := context.WithCancel(ctx)
	var sent atomic.Int64
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() { // ends with stopProducing
		defer pwg.Done()
		tick := time.NewTicker(5 * time.Millisecond) // paces the workload
		defer tick.Stop()
		for i := 0; pctx.Err() == nil; i++ {
			select {
			case <-tick.C:
			case <-pctx.Done():
				return
			}
			m := &client.Message{Topic: topic, ShardingKey: fmt.Sprintf("key%d", i%32), Body: fmt.Appendf(nil, "%d", i)}
			sctx, scancel := context.WithTimeout(pctx, 3*time.Second)
			if _, err := p.Send(sctx, m); err == nil {
				sent.Add(1)
			}
			scancel()
		}
	}()
	defer func() { stopProducing(); pwg.Wait() }()

	logs := map[string]*runLog{"a": newRunLog("a"), "b": newRunLog("b")}
	cons := map[string]*client.Consumer{}
	for name, hb := range map[string]time.Duration{"a": 200 * time.Millisecond, "b": 2500 * time.Millisecond} {
		cc, err := client.NewConsumer(client.ConsumerConfig{
			NameServers: []string{c.nsAddr}, Group: group, Subscriptions: map[string]string{topic: "*"},
			From: client.FromFirst, Orderly: true, ClientID: name, HeartbeatInterval: hb,
			LongPollWait: time.Second, Logger: TestLogger(t).Named(name),
		})
		if err != nil {
			t.Fatal(err)
		}
		cons[name] = cc
		if err := cc.Start(ctx, logs[name].handler); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, cc := range cons {
			cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
			_ = cc.Close(cctx)
			ccancel()
		}
	}()

	// balanced waits until the members own disjoint halves of the topic and
	// each delivered more than since[name].
	balanced := func(since map[string]int64) {
		t.Helper()
		Eventually(t, 45*time.Second, func() error {
			seen := map[client.Queue]string{}
			for name, cc := range cons {
				owned := cc.Stats().Owned
				if len(owned) != queues/2 {
					return fmt.Errorf("%s owns %d queues", name, len(owned))
				}
				for _, q := range owned {
					if other, dup := seen[q]; dup {
						return fmt.Errorf("%s and %s both own %s", other, name, q)
					}
					seen[q] = name
				}
				if d := logs[name].delivered.Load(); d <= since[name] {
					return fmt.Errorf("%s delivered nothing new (%d)", name, d)
				}
			}
			return nil
		})
	}
	counts := func() map[string]int64 {
		return map[string]int64{"a": logs["a"].delivered.Load(), "b": logs["b"].delivered.Load()}
	}
	balanced(counts())

	const kills = 3
	for i := 0; i < kills; i++ {
		leader := c.leaderID(20 * time.Second)
		before := counts()
		c.kill(leader)
		killed := time.Now()
		newLeader := c.leaderID(20 * time.Second)
		// Both members are registered with the new leader: the window in
		// which a could see itself alone is over.
		Eventually(t, 30*time.Second, func() error {
			d, err := adm.DescribeGroup(ctx, group)
			if err != nil {
				return err
			}
			if !slices.Contains(d.Members, "a") || !slices.Contains(d.Members, "b") {
				return fmt.Errorf("members %v", d.Members)
			}
			return nil
		})
		balanced(before)
		t.Logf("kill %d: %s -> %s, balanced again %v after the kill", i+1, leader, newLeader, time.Since(killed).Round(time.Millisecond))
		c.start(leader)
		c.waitCaughtUp(leader, 30*time.Second)
	}
	stopProducing()
	pwg.Wait()
	t.Logf("sent %d; a delivered %d in %d runs, b delivered %d in %d runs", sent.Load(),
		logs["a"].delivered.Load(), logs["a"].count(), logs["b"].delivered.Load(), logs["b"].count())
	if err := overlap(logs["a"], logs["b"]); err != nil {
		t.Errorf("a queue was processed by two members at once:\n%v", err)
	}
}
