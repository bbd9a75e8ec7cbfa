package rocketmq_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// Throughput of rocketmq-client-go v2.1.2 against `rmq dev`, with 1 KiB
// messages. Neither is run by default and neither asserts on timing:
//
//	RMQ_BENCH=1 go test -v -run Throughput ./...
//	go test -run XXX -bench . -benchtime 20000x ./...
//
// RMQ_BENCH_MESSAGES (default 20000), RMQ_BENCH_GOROUTINES (default 16)
// and RMQ_BENCH_WINDOW (async sends in flight, default 1024) tune the
// env-gated test.

const benchBodySize = 1024

func benchBody() []byte {
	b := make([]byte, benchBodySize)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

func envInt(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// benchResult is one measured run.
type benchResult struct {
	ok, failed int64
	elapsed    time.Duration
	firstErr   error
}

func (r benchResult) String() string {
	rate := float64(r.ok) / r.elapsed.Seconds()
	s := fmt.Sprintf("%d msgs in %v = %.0f msgs/s (%.1f MiB/s), %d failed", r.ok, r.elapsed.Round(time.Millisecond),
		rate, rate*benchBodySize/(1<<20), r.failed)
	if r.firstErr != nil {
		s += fmt.Sprintf(" (first: %v)", r.firstErr)
	}
	return s
}

// sendSyncN sends n messages with SendSync from goroutines goroutines.
func sendSyncN(p *rocketProducer, topic string, n, goroutines int) benchResult {
	body := benchBody()
	var ok, failed, next atomic.Int64
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				ctx, cancel := sendCtx()
				res, err := p.SendSync(ctx, primitive.NewMessage(topic, body))
				cancel()
				if err == nil && res.Status != primitive.SendOK {
					err = fmt.Errorf("status %d", res.Status)
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return benchResult{ok: ok.Load(), failed: failed.Load(), elapsed: time.Since(start), firstErr: firstErr}
}

// sendAsyncN sends n messages with SendAsync, at most window in flight.
// Each send has a 3s timeout inside the client, so it always completes.
func sendAsyncN(p *rocketProducer, topic string, n, window int) benchResult {
	body := benchBody()
	var ok, failed atomic.Int64
	var errOnce sync.Once
	var firstErr error
	fail := func(err error) {
		failed.Add(1)
		errOnce.Do(func() { firstErr = err })
	}
	slots := make(chan struct{}, window)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		slots <- struct{}{}
		wg.Add(1)
		done := func() { <-slots; wg.Done() }
		err := p.SendAsync(context.Background(), func(_ context.Context, res *primitive.SendResult, err error) {
			defer done()
			if err == nil && res.Status != primitive.SendOK {
				err = fmt.Errorf("status %d", res.Status)
			}
			if err != nil {
				fail(err)
				return
			}
			ok.Add(1)
		}, primitive.NewMessage(topic, body))
		if err != nil {
			done()
			fail(err)
		}
	}
	wg.Wait()
	return benchResult{ok: ok.Load(), failed: failed.Load(), elapsed: time.Since(start), firstErr: firstErr}
}

// benchSetup starts rmq dev, an 8-queue topic and a producer.
func benchSetup(t testing.TB) (*rocketProducer, string) {
	d := startDev(t)
	topic := uniqueName(t, "bench")
	createTopic(t, d.ns, topic, 8)
	p := newProducer(t, d.ns)
	mustSendSync(t, p, primitive.NewMessage(topic, benchBody())) // connects, and fails fast if sending is broken
	return p, topic
}

func TestThroughput(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("set RMQ_BENCH=1 to measure rocketmq-client-go throughput against rmq dev")
	}
	n := envInt(t, "RMQ_BENCH_MESSAGES", 20000)
	goroutines := envInt(t, "RMQ_BENCH_GOROUTINES", 16)
	window := envInt(t, "RMQ_BENCH_WINDOW", 1024)
	p, topic := benchSetup(t)
	t.Logf("rocketmq-client-go -> rmq dev, 1 KiB, SendSync x %d goroutines: %s", goroutines, sendSyncN(p, topic, n, goroutines))
	t.Logf("rocketmq-client-go -> rmq dev, 1 KiB, SendAsync, %d in flight: %s", window, sendAsyncN(p, topic, n, window))
}

func BenchmarkSendSync(b *testing.B) {
	p, topic := benchSetup(b)
	b.SetBytes(benchBodySize)
	b.ResetTimer()
	r := sendSyncN(p, topic, b.N, 16)
	b.ReportMetric(float64(r.ok)/r.elapsed.Seconds(), "msgs/s")
	if r.failed > 0 {
		b.Errorf("%d of %d sends failed, first: %v", r.failed, b.N, r.firstErr)
	}
}

func BenchmarkSendAsync(b *testing.B) {
	p, topic := benchSetup(b)
	b.SetBytes(benchBodySize)
	b.ResetTimer()
	r := sendAsyncN(p, topic, b.N, 1024)
	b.ReportMetric(float64(r.ok)/r.elapsed.Seconds(), "msgs/s")
	if r.failed > 0 {
		b.Errorf("%d of %d sends failed, first: %v", r.failed, b.N, r.firstErr)
	}
}
