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

// fakeSendNode is a wire server answering SendRequests; hold, if set,
// decides per request (numbered from 1 in arrival order) whether its
// answer waits for release.
type fakeSendNode struct {
	addr              string
	mu                sync.Mutex
	arrived, inflight int
	maxInflight       int
	answered          []int
	release           chan struct{}
	hold              func(n int) bool
}

func startFakeSendNode(t *testing.T, hold func(n int) bool) *fakeSendNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSendNode{addr: ln.Addr().String(), release: make(chan struct{}), hold: hold}
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
			f.maxInflight = max(f.maxInflight, f.inflight)
			f.mu.Unlock()
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
			f.answered = append(f.answered, n)
			f.mu.Unlock()
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

func (f *fakeSendNode) state() (arrived, inflight, maxInflight int, answered []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.arrived, f.inflight, f.maxInflight, append([]int(nil), f.answered...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // poll interval, not a wait for state
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
// exactly MaxInflightRequests requests reach the node; the rest wait in
// the queue and go out as answers come back.
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
		waitFor(t, "the first requests", func() bool { a, _, _, _ := f.state(); return a >= limit })
		close(f.release)
		wg.Wait()
		arrived, _, maxIn, _ := f.state()
		if failed.Load() != 0 || arrived != sends {
			t.Errorf("limit %d: %d requests arrived, %d sends failed; want %d and 0", limit, arrived, failed.Load(), sends)
		}
		if maxIn != limit {
			t.Errorf("limit %d: at most %d requests were in flight at once, want %d", limit, maxIn, limit)
		}
	}
}

// TestBatcherOutcomesInRequestOrder: the node answers the second request
// before the first; its callbacks still run after the first request's.
func TestBatcherOutcomesInRequestOrder(t *testing.T) {
	f := startFakeSendNode(t, func(n int) bool { return n == 1 })
	b := newTestBatcher(t, f.addr, 4)
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
				if out.err != nil {
					order = append(order, 0)
					return
				}
				order = append(order, out.res.QueueOffset)
			}})
		waitFor(t, "the request at the node", func() bool { a, _, _, _ := f.state(); return a == i+1 })
	}
	waitFor(t, "the second answer", func() bool { _, _, _, ans := f.state(); return len(ans) == 1 && ans[0] == 2 })
	// A callback for request 2 now would be out of order; give a wrong
	// implementation a moment to show it.
	for range 50 {
		mu.Lock()
		n := len(order)
		mu.Unlock()
		if n != 0 {
			t.Fatalf("callbacks %v ran before the first request was answered", order)
		}
		time.Sleep(2 * time.Millisecond) // a bounded window for a wrong outcome to show
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
