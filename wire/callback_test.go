package wire

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestServerCallsClient: a handler calls the client back on the same
// connection (a check-back); the client's handler answers, or refuses
// with its error code; a client without a handler answers
// CodeUnknownRequest; a connection that ends fails the waiting call.
func TestServerCallsClient(t *testing.T) {
	conns := make(chan *ServerConn, 4)
	addr := startServer(t, func(ctx context.Context, r *Request) (any, error) {
		var req echoReq
		if err := r.Decode(&req); err != nil {
			return nil, err
		}
		if r.Code == 9 {
			conns <- r.Conn
			return req, nil
		}
		var back echoReq
		err := r.Conn.Call(ctx, 77, echoReq{S: "check " + req.S}, &back)
		if err != nil {
			return nil, err
		}
		return echoReq{S: "client said " + back.S, N: back.N}, nil
	}, ServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := Dial(ctx, addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got echoReq
	err = c.Call(ctx, 1, echoReq{S: "x"}, &got)
	var we *Error
	if !errors.As(err, &we) || we.Code != CodeUnknownRequest {
		t.Fatalf("callback to a client without a handler: %v", err)
	}
	c.SetHandler(func(_ context.Context, code uint16, body []byte) (any, error) {
		var req echoReq
		if err := Unmarshal(body, &req); err != nil {
			return nil, err
		}
		if req.S == "check no" {
			return nil, Errorf(CodeInvalidArgument, "refused %d", code)
		}
		return echoReq{S: req.S + " ok", N: int(code)}, nil
	})
	if err := c.Call(ctx, 1, echoReq{S: "tx1"}, &got); err != nil || got.S != "client said check tx1 ok" || got.N != 77 {
		t.Fatalf("callback: %+v, %v", got, err)
	}
	if err := c.Call(ctx, 1, echoReq{S: "no"}, &got); !errors.As(err, &we) || we.Code != CodeInvalidArgument {
		t.Fatalf("refused callback: %v", err)
	}
	// A call from the server to a client that goes away fails.
	if err := c.Call(ctx, 9, echoReq{}, nil); err != nil {
		t.Fatal(err)
	}
	sc := <-conns
	c2, err := Dial(ctx, addr, 0)
	if err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	c2.SetHandler(func(context.Context, uint16, []byte) (any, error) { <-block; return nil, nil })
	if err := c2.Call(ctx, 9, echoReq{}, nil); err != nil {
		t.Fatal(err)
	}
	sc2 := <-conns
	errc := make(chan error, 1)
	go func() { errc <- sc2.Call(ctx, 5, echoReq{}, nil) }()
	c2.Close()
	close(block)
	if err := <-errc; !errors.Is(err, ErrConnClosed) {
		t.Fatalf("call to a closed client: %v", err)
	}
	select {
	case <-sc2.Done():
	case <-ctx.Done():
		t.Fatal("server connection not done after the client closed")
	}
	if err := sc.Notify(ctx, 78, echoReq{S: "oneway"}); err != nil {
		t.Fatalf("notify: %v", err)
	}
}
