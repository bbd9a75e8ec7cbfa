package client

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// fakeSendNode is a wire server answering SendRequests, numbered from 1 in
// arrival order; hold decides per request whether its answer waits for
// release. Every arrival and every answer is also sent on a channel.
type fakeSendNode struct {
	addr              string
	release           chan struct{}
	hold              func(n int) bool
	arrivals, answers chan int // buffered: the tests send fewer than 64 requests

	mu                         sync.Mutex
	arrived, inflight, maxSeen int
}

func startFakeSendNode(t *testing.T, hold func(n int) bool) *fakeSendNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSendNode{addr: ln.Addr().String(), release: make(chan struct{}), hold: hold,
		arrivals: make(chan int, 64), answers: make(chan int, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- wire.Serve(ctx, ln, func(ctx context.Context, r *wire.Request) (any, error) {
			var req wire.SendRequest
			if err := r.Decode(&req); err != nil {
				return nil, err
			}
			f.mu.Lock()
			f.arrived++
			n := f.arrived
			f.inflight++
			f.maxSeen = max(f.maxSeen, f.inflight)
			f.mu.Unlock()
			f.arrivals <- n
			if f.hold(n) {
				select {
				case <-f.release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			resp := wire.SendResponse{Results: make([]wire.SendResult, len(req.Messages))}
			for i := range resp.Results {
				resp.Results[i].QueueOffset = uint64(n)
			}
			f.mu.Lock()
			f.inflight--
			f.mu.Unlock()
			f.answers <- n
			return &resp, nil
		}, wire.ServerConfig{})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return f
}

// next receives from ch within 10s.
func next(t *testing.T, ch <-chan int, what string) int {
	t.Helper()
	select {
	case n := <-ch:
		return n
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return 0
	}
}

func newTestBatcher(t *testing.T, addr string, inflight int) *batcher {
	t.Helper()
	p, err := NewProducer(ProducerConfig{NameServers: []string{"127.0.0.1:1"}, MaxInflightRequests: inflight, MaxBatchMessages: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	b, err := p.batcher(addr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBatcherPipelinesUpToMaxInflightRequests: with every answer held,
// MaxInflightRequests requests reach the node, never more; the rest wait
// in the queue and go out as answers come back.
func TestBatcherPipelinesUpToMaxInflightRequests(t *testing.T) {
	for _, limit := range []int{1, 3} {
		f := startFakeSendNode(t, func(int) bool { return true })
		b := newTestBatcher(t, f.addr, limit)
		const sends = 8
		var wg sync.WaitGroup
		var failed atomic.Int32
		for range sends {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if _, err := b.submit(ctx, &sendItem{msg: wire.Message{Topic: "t", Body: []byte("x")}, size: 1, done: make(chan sendOutcome, 1)}); err != nil {
					failed.Add(1)
				}
			}()
		}
		for range limit { // all of them held at once
			next(t, f.arrivals, "the first requests")
		}
		close(f.release)
		wg.Wait()
		f.mu.Lock()
		arrived, maxSeen := f.arrived, f.maxSeen
		f.mu.Unlock()
		if failed.Load() != 0 || arrived != sends {
			t.Errorf("limit %d: %d requests arrived, %d sends failed; want %d and 0", limit, arrived, failed.Load(), sends)
		}
		if maxSeen != limit {
			t.Errorf("limit %d: at most %d requests were in flight at once, want %d", limit, maxSeen, limit)
		}
	}
}

// TestBatcherOutcomesInRequestOrder: the node answers the second request
// while the first is held; the second's callback still runs after the
// first's.
func TestBatcherOutcomesInRequestOrder(t *testing.T) {
	f := startFakeSendNode(t, func(n int) bool { return n == 1 })
	b := newTestBatcher(t, f.addr, 4)
	answered := make(chan uint64, 2)
	b.answered = func(resp *wire.SendResponse, err error) {
		if err == nil && len(resp.Results) == 1 {
			answered <- resp.Results[0].QueueOffset
		}
	}
	var mu sync.Mutex
	var order []uint64
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		b.enqueue(&sendItem{msg: wire.Message{Topic: "t", Body: []byte("x")}, size: 1, ctx: context.Background(),
			cb: func(out sendOutcome) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				order = append(order, out.res.QueueOffset) // 0 for a failure
			}})
		if n := next(t, f.arrivals, "the request at the node"); n != i+1 {
			t.Fatalf("request %d arrived as %d", i+1, n)
		}
	}
	select { // the second's outcome is known; it now waits for the first's
	case off := <-answered:
		if off != 2 {
			t.Fatalf("answer for request %d first, want 2", off)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the second request")
	}
	close(f.release)
	wg.Wait()
	if len(order) != 2 || order[0] != 1 || order[1] != 2 {
		t.Errorf("callbacks saw requests %v, want [1 2]", order)
	}
}

func TestMaxInflightRequestsValidation(t *testing.T) {
	_, err := NewProducer(ProducerConfig{NameServers: []string{"127.0.0.1:1"}, MaxInflightRequests: -1})
	if err == nil || !strings.Contains(err.Error(), "in-flight") {
		t.Errorf("MaxInflightRequests -1: %v, want an error about in-flight limits", err)
	}
}
