package wire

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

type echoReq struct {
	S string `msgpack:"s"`
	N int    `msgpack:"n"`
}

func startServer(t *testing.T, h Handler, cfg ServerConfig) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestConnCallsAndErrors(t *testing.T) {
	release := make(chan struct{})
	var oneway sync.WaitGroup
	oneway.Add(1)
	addr := startServer(t, func(ctx context.Context, r *Request) (any, error) {
		var req echoReq
		if err := r.Decode(&req); err != nil {
			return nil, err
		}
		switch r.Code {
		case 1:
			return req, nil
		case 2:
			return nil, &Error{Code: CodeNotLeader, ErrorBody: ErrorBody{Message: "go away", Leader: "10.0.0.1:1"}}
		case 3:
			<-release // a long poll: must not block other requests
			return req, nil
		case 4:
			oneway.Done()
			return nil, nil
		case 5:
			<-ctx.Done() // never answers; ends when the connection closes
			return nil, ctx.Err()
		}
		return nil, errors.New("boom")
	}, ServerConfig{})
	ctx := context.Background()
	c, err := Dial(ctx, addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	slow := make(chan error, 1)
	go func() {
		var out echoReq
		slow <- c.Call(ctx, 3, echoReq{S: "slow"}, &out)
	}()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out echoReq
			if err := c.Call(ctx, 1, echoReq{S: "x", N: i}, &out); err != nil || out.N != i {
				t.Errorf("call %d: got %+v, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("slow call: %v", err)
	}
	var we *Error
	if err := c.Call(ctx, 2, echoReq{}, nil); !errors.As(err, &we) || we.Code != CodeNotLeader || we.Leader != "10.0.0.1:1" {
		t.Fatalf("got %v, want a not-leader *Error with the leader", err)
	}
	if err := c.Call(ctx, 9, echoReq{}, nil); !errors.As(err, &we) || we.Code != CodeInternal {
		t.Fatalf("got %v, want CodeInternal", err)
	}
	if err := c.Send(4, echoReq{}); err != nil {
		t.Fatal(err)
	}
	oneway.Wait()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := c.Call(cctx, 5, echoReq{}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
}

// TestBadFrameClosesOnlyThatConnection: a malformed or oversized frame is
// logged and closes its connection; the server keeps serving others.
func TestBadFrameClosesOnlyThatConnection(t *testing.T) {
	logged := make(chan string, 4)
	addr := startServer(t, func(ctx context.Context, r *Request) (any, error) { return echoReq{S: "ok"}, nil },
		ServerConfig{MaxFrame: 1 << 10, Logf: func(msg string, kv ...any) { logged <- msg }})
	for _, bad := range [][]byte{
		{0xff, 0xff, 0xff, 0xff},                          // oversized
		{0, 0, 0, 12, 9, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, // bad version
	} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(bad); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil {
			t.Fatal("server answered a bad frame instead of closing")
		}
		nc.Close()
		select {
		case <-logged:
		case <-time.After(5 * time.Second):
			t.Fatal("bad frame was not logged")
		}
	}
	c, err := Dial(context.Background(), addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out echoReq
	if err := c.Call(context.Background(), 1, echoReq{}, &out); err != nil || out.S != "ok" {
		t.Fatalf("server stopped serving after bad frames: %+v, %v", out, err)
	}
	// A request too large for the client's own limit fails locally.
	small, err := Dial(context.Background(), addr, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if err := small.Call(context.Background(), 1, echoReq{S: string(make([]byte, 100))}, nil); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
}
