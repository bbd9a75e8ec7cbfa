package broker

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/raftlog"
)

// TestRestartWith1GiBLog measures how long a three-node group takes from
// process start to serving writes with 1 GiB of CommitLog per node. It
// writes 1 GiB, so it runs only when RMQ_LONG=1 (numbers go in the issue
// notes and BENCHMARKS.md).
func TestRestartWith1GiBLog(t *testing.T) {
	if os.Getenv("RMQ_LONG") == "" {
		t.Skip("set RMQ_LONG=1 to write 1 GiB and measure restart time")
	}
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.FlushMode = raftlog.FlushAsync })
	createTopic(t, c, "big", 8)
	l := c.leader(10 * time.Second)
	body := make([]byte, 1024)
	const total = 1 << 20 // 1 Mi messages of 1 KiB
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s := next.Add(64) - 64
				if s >= total {
					return
				}
				msgs := make([]*fsm.Message, 64)
				for j := range msgs {
					msgs[j] = &fsm.Message{Topic: "big", QueueID: uint32(s+int64(j)) % 8, Body: body}
				}
				if _, err := l.Send(context.Background(), msgs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("wrote %d messages in %s; log %d MiB on the leader", total, time.Since(start), l.Status().LogBytes>>20)
	c.waitApplied(l.Status().StateIndex, time.Minute)
	for _, id := range c.ids {
		c.stop(id)
	}
	start = time.Now()
	var swg sync.WaitGroup
	for _, id := range c.ids {
		swg.Add(1)
		go func() { defer swg.Done(); c.start(id) }()
	}
	swg.Wait()
	opened := time.Since(start)
	l = c.leader(30 * time.Second)
	t.Logf("restart: nodes opened in %s, leader serving after %s", opened, time.Since(start))
	var n uint64
	for q := uint32(0); q < 8; q++ {
		_, next, err := l.QueueRange("big", q)
		if err != nil {
			t.Fatal(err)
		}
		n += next
	}
	if n != total {
		t.Fatalf("got %d messages after restart, want %d", n, total)
	}
	// The same after a crash of every node: the restart replays what was
	// written since the last snapshot (at most SnapshotThreshold entries).
	produceMore := func() {
		msgs := make([]*fsm.Message, 64)
		for j := range msgs {
			msgs[j] = &fsm.Message{Topic: "big", QueueID: uint32(j) % 8, Body: body}
		}
		for i := 0; i < 2000; i++ {
			if _, _, err := sendRetrying(t, c, msgs); err != nil {
				t.Fatal(err)
			}
		}
	}
	produceMore()
	for _, id := range c.ids {
		c.kill(id)
	}
	start = time.Now()
	for _, id := range c.ids {
		swg.Add(1)
		go func() { defer swg.Done(); c.start(id) }()
	}
	swg.Wait()
	opened = time.Since(start)
	l = c.leader(30 * time.Second)
	t.Logf("crash restart: nodes opened in %s, leader serving after %s", opened, time.Since(start))
}
