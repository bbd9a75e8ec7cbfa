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

func benchSend(b *testing.B, mode raftlog.FlushMode, clients, batch int) {
	c := newTestCluster(b, 3, func(cfg *Config) { cfg.FlushMode = mode })
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
