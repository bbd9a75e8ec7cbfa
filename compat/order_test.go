package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// TestInOrderSendsKeepFrameOrder: sends written back to back on one
// connection take their turn (wire.Order) in frame order although the
// first one's handler is the last to get there; other codes get no Order.
func TestInOrderSendsKeepFrameOrder(t *testing.T) {
	const n = 6
	var mu sync.Mutex
	var turns []int32
	var waiting atomic.Int32
	release := make(chan struct{})
	ts := startServer(t, func(ctx context.Context, _ *ServerConn, req *Command) *Command {
		o := wire.OrderOf(ctx)
		if req.Code != ReqSendMessage {
			if o != nil {
				return NewResponse(req, RespSystemError, "an unordered code got an Order")
			}
			return NewResponse(req, RespSuccess, "")
		}
		if o == nil {
			return NewResponse(req, RespSystemError, "no Order for a send")
		}
		if req.Opaque == 1 {
			<-release
		} else {
			waiting.Add(1)
		}
		if err := o.Wait(ctx); err != nil {
			return NewResponse(req, RespSystemError, err.Error())
		}
		mu.Lock()
		turns = append(turns, req.Opaque)
		mu.Unlock()
		o.Done()
		return NewResponse(req, RespSuccess, "")
	}, ServerConfig{InOrder: func(code int32) bool { return code == ReqSendMessage }})
	nc := rawConn(t, ts.addr)
	var frames bytes.Buffer
	for i := int32(1); i <= n; i++ {
		c := NewRequest(ReqSendMessage, nil, []byte("m"))
		c.Opaque = i
		writeCmd(t, &frames, c)
	}
	if _, err := nc.Write(frames.Bytes()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if w := waiting.Load(); w != n-1 {
			return fmt.Errorf("%d of %d later sends at their turn", w, n-1)
		}
		return nil
	})
	// An unordered request is served meanwhile.
	cl := dial(t, ts.addr)
	if resp, err := cl.Call(callCtx(t), NewRequest(ReqHeartBeat, nil, nil)); err != nil || resp.Code != RespSuccess {
		t.Fatalf("heartbeat behind blocked sends: %+v, %v", resp, err)
	}
	close(release)
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(turns) < n {
			return errors.New("sends still waiting")
		}
		return nil
	})
	if want := []int32{1, 2, 3, 4, 5, 6}; !slices.Equal(turns, want) {
		t.Errorf("turns taken in order %v, want %v", turns, want)
	}
}
