package wire

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestInOrderRequestsKeepFrameOrder: requests pipelined on one connection
// with Start take their turn (between Order.Wait and Done) in the order
// their frames arrived, although the first one's handler is the last to
// get there; a handler that fails without calling Done holds nobody up,
// and other codes never wait.
func TestInOrderRequestsKeepFrameOrder(t *testing.T) {
	const n = 10
	const ordered, failing, other = 7, 8, 9
	var mu sync.Mutex
	var turns []int
	var waiting atomic.Int32
	release := make(chan struct{})
	addr := startServer(t, func(ctx context.Context, r *Request) (any, error) {
		var req echoReq
		if err := r.Decode(&req); err != nil {
			return nil, err
		}
		switch r.Code {
		case other:
			if OrderOf(ctx) != nil {
				return nil, errors.New("an unordered code got an Order")
			}
			return req, nil
		case failing:
			return nil, errors.New("refused before its turn") // never calls Wait or Done
		}
		o := OrderOf(ctx)
		if o == nil {
			return nil, errors.New("no Order for an in-order code")
		}
		if req.N == 0 {
			<-release // the first request is slow to get to its turn
		} else {
			waiting.Add(1)
		}
		if err := o.Wait(ctx); err != nil {
			return nil, err
		}
		mu.Lock()
		turns = append(turns, req.N)
		mu.Unlock()
		o.Done()
		return req, nil
	}, ServerConfig{InOrder: func(code uint16) bool { return code == ordered || code == failing }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var calls []*Pending
	for i := range n {
		code := uint16(ordered)
		if i == 3 {
			code = failing
		}
		p, err := c.Start(ctx, code, echoReq{N: i})
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, p)
	}
	// Every later request is at its turn, behind the first.
	for waiting.Load() < n-2 {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d requests reached their turn", waiting.Load(), n-2)
		case <-time.After(time.Millisecond):
		}
	}
	if err := c.Call(ctx, other, echoReq{N: 99}, nil); err != nil {
		t.Fatalf("an unordered request waited behind the ordered ones: %v", err)
	}
	mu.Lock()
	if len(turns) != 0 {
		t.Errorf("turns %v taken before the first request's", turns)
	}
	mu.Unlock()
	close(release)
	for i, p := range calls {
		var resp echoReq
		err := p.Wait(ctx, &resp)
		if i == 3 {
			if err == nil {
				t.Error("the failing request succeeded")
			}
			continue
		}
		if err != nil || resp.N != i {
			t.Fatalf("request %d: %+v, %v", i, resp, err)
		}
	}
	want := []int{0, 1, 2, 4, 5, 6, 7, 8, 9}
	if !slices.Equal(turns, want) {
		t.Errorf("turns taken in order %v, want %v", turns, want)
	}
}

func TestOrderWaitEndsWithContext(t *testing.T) {
	var chain OrderChain
	first, second := chain.Next(), chain.Next()
	if err := first.Wait(context.Background()); err != nil {
		t.Fatalf("the first in order waited: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := second.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait behind an unfinished request with a done ctx: %v", err)
	}
	first.Done()
	first.Done() // twice is fine
	if err := second.Wait(context.Background()); err != nil {
		t.Error(err)
	}
	var none *Order
	none.Done()
	if err := none.Wait(ctx); err != nil {
		t.Errorf("nil Order: %v", err)
	}
}
