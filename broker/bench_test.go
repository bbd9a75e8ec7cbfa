package broker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/raftlog"
)

// BenchmarkReplicatedSend measures three-node replicated throughput of
// 1 KiB messages through the leader with the broker's batching, in both
// flush modes. b.N is the number of messages.
func BenchmarkReplicatedSend(b *testing.B) {
	for _, mode := range []raftlog.FlushMode{raftlog.FlushAsync, raftlog.FlushSync} {
		for _, shape := range []struct{ clients, batch int }{{256, 1}, {16, 32}, {4, 64}} {
			name := fmt.Sprintf("%s/clients=%d/batch=%d", mode, shape.clients, shape.batch)
			b.Run(name, func(b *testing.B) { benchSend(b, mode, shape.clients, shape.batch) })
		}
	}
}

// BenchmarkReplicatedSendMetrics is BenchmarkReplicatedSend (async flush,
// 16 clients, batches of 32) with metrics off and on, interleaved over
// rounds so that a change of machine load hits both: the produce cost of
// the counters (the scrape-time collector does not run; nothing scrapes).
func BenchmarkReplicatedSendMetrics(b *testing.B) {
	for round := 1; round <= 3; round++ {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("round=%d/metrics=%v", round, on), func(b *testing.B) {
				benchSendWith(b, raftlog.FlushAsync, 16, 32, func(cfg *Config) {
					if on {
						cfg.MetricsListen = "127.0.0.1:0"
					}
				})
			})
		}
	}
}

func benchSend(b *testing.B, mode raftlog.FlushMode, clients, batch int) {
	benchSendWith(b, mode, clients, batch, nil)
}

func benchSendWith(b *testing.B, mode raftlog.FlushMode, clients, batch int, mutate func(*Config)) {
	c := newTestCluster(b, 3, func(cfg *Config) {
		cfg.FlushMode = mode
		if mutate != nil {
			mutate(cfg)
		}
	})
	createTopic(b, c, "bench", 8)
	l := c.leader(10 * time.Second)
	body := make([]byte, 1024)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(1024)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs := make([]*fsm.Message, batch)
			for {
				s := next.Add(int64(batch)) - int64(batch)
				if s >= int64(b.N) {
					return
				}
				for j := range msgs {
					msgs[j] = &fsm.Message{Topic: "bench", QueueID: uint32(s+int64(j)) % 8, Body: body}
				}
				if _, err := l.Send(context.Background(), msgs); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
}

// BenchmarkCommitLogBytesPerDelayed reports the CommitLog bytes written
// per 1 KiB message, plain and delayed (delivered before the figure is
// taken): a delayed message's body is written once, so the difference is
// its TIMER_DELIVER_MS property and its share of the DeliverTimers
// entries. Sends are batched 32 per call as a producer's would be.
func BenchmarkCommitLogBytesPerDelayed(b *testing.B) {
	for _, delayed := range []bool{false, true} {
		b.Run(fmt.Sprintf("delayed=%v", delayed), func(b *testing.B) {
			c := newTestCluster(b, 1, func(cfg *Config) { cfg.TimerPoll = 10 * time.Millisecond })
			createTopic(b, c, "bench", 8)
			l := c.leader(10 * time.Second)
			body := make([]byte, 1024)
			before := l.Status().LogBytes
			b.ResetTimer()
			for s := 0; s < b.N; s += 32 {
				var msgs []*fsm.Message
				for j := s; j < min(s+32, b.N); j++ {
					m := &fsm.Message{Topic: "bench", QueueID: uint32(j % 8), ID: uniqueID(j), Body: body}
					if delayed {
						m.Properties = map[string]string{PropDelayMS: "1"}
					}
					msgs = append(msgs, m)
				}
				if _, err := l.Send(context.Background(), msgs); err != nil {
					b.Fatal(err)
				}
			}
			waitTimersDelivered(b, l)
			b.StopTimer()
			b.ReportMetric(float64(l.Status().LogBytes-before)/float64(b.N), "log-bytes/msg")
		})
	}
}

// BenchmarkCommitLogBytesPerRetry reports the CommitLog bytes one retry
// of a stored 1 KiB message adds (its SendBack entry and its share of
// the DeliverTimers that delivers it), the body not being written again.
func BenchmarkCommitLogBytesPerRetry(b *testing.B) {
	c := newTestCluster(b, 1, func(cfg *Config) {
		cfg.TimerPoll = 10 * time.Millisecond
		cfg.DelayLevels = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	})
	createTopic(b, c, "bench", 8)
	l := c.leader(10 * time.Second)
	body := make([]byte, 1024)
	var stored []SendResult
	for s := 0; s < b.N; s += 32 {
		var msgs []*fsm.Message
		for j := s; j < min(s+32, b.N); j++ {
			msgs = append(msgs, &fsm.Message{Topic: "bench", QueueID: uint32(j % 8), ID: uniqueID(j), Body: body})
		}
		res, err := l.Send(context.Background(), msgs)
		if err != nil {
			b.Fatal(err)
		}
		stored = append(stored, res...)
	}
	before := l.Status().LogBytes
	b.ResetTimer()
	for _, r := range stored {
		if _, err := l.SendBack(context.Background(), SendBackRequest{Group: "g", Topic: "bench", QueueID: r.QueueID, Offset: r.QueueOffset}); err != nil {
			b.Fatal(err)
		}
	}
	waitTimersDelivered(b, l)
	b.StopTimer()
	b.ReportMetric(float64(l.Status().LogBytes-before)/float64(b.N), "log-bytes/retry")
}

// waitTimersDelivered waits (at most 30s) until n's scheduler delivered
// every pending timer.
func waitTimersDelivered(b *testing.B, n *Node) {
	b.Helper()
	if err := poll(30*time.Second, func() error {
		if p := n.fsm.PendingTimers(); p > 0 {
			return fmt.Errorf("%d timers still pending", p)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
}
