package compat

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// echo answers every request with its ext fields and body.
func echo(ctx context.Context, c *ServerConn, req *Command) *Command {
	resp := NewResponse(req, RespSuccess, "echo "+RequestName(req.Code))
	resp.Ext = req.Ext
	resp.Body = req.Body
	return resp
}

func TestServerRequestResponse(t *testing.T) {
	ts := startServer(t, echo, ServerConfig{})
	cl := dial(t, ts.addr)
	for _, ser := range []byte{SerializeJSON, SerializeBinary} {
		req := NewRequest(ReqGetRouteInfoByTopic, map[string]string{"topic": "T"}, []byte("body"))
		req.Serialize = ser
		resp, err := cl.Call(callCtx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Code != RespSuccess || resp.Serialize != ser || !resp.IsResponse() || resp.Ext["topic"] != "T" ||
			string(resp.Body) != "body" || resp.Remark != "echo GET_ROUTEINFO_BY_TOPIC" {
			t.Fatalf("serialize %d: response %+v", ser, resp)
		}
		if req.Opaque != 0 {
			t.Fatal("Call modified the caller's request")
		}
	}
	// Concurrent calls are matched by opaque.
	errc := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			body := []byte{byte(i)}
			resp, err := cl.Call(callCtx(t), NewRequest(ReqHeartBeat, nil, body))
			if err == nil && !bytes.Equal(resp.Body, body) {
				err = errors.New("response for another call")
			}
			errc <- err
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// rawConn is a bare TCP connection for writing hand-made frames.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second)) // bound on a broken test, not an assertion
	return nc
}

func writeCmd(t *testing.T, w io.Writer, c *Command) {
	t.Helper()
	f, err := AppendCommand(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(f); err != nil {
		t.Fatal(err)
	}
}

func TestServerOnewayGetsNoResponse(t *testing.T) {
	called := make(chan int32, 2)
	h := func(ctx context.Context, c *ServerConn, req *Command) *Command {
		called <- req.Opaque
		return NewResponse(req, RespSuccess, "")
	}
	// With one handler slot, the second request is read only after the
	// first handler returned and its (non-)response was written.
	ts := startServer(t, h, ServerConfig{MaxInflight: 1})
	nc := rawConn(t, ts.addr)
	writeCmd(t, nc, &Command{Code: ReqUpdateConsumerOffset, Opaque: 1, Flag: FlagOneway})
	writeCmd(t, nc, &Command{Code: ReqHeartBeat, Opaque: 2})
	resp, err := ReadCommand(nc, 0)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Opaque != 2 {
		t.Fatalf("first response has opaque %d, want 2 (the oneway got a response)", resp.Opaque)
	}
	if a, b := <-called, <-called; a != 1 || b != 2 {
		t.Fatalf("handlers saw %d, %d", a, b)
	}
	// Client.Oneway sets the flag too.
	cl := dial(t, ts.addr)
	if err := cl.Oneway(NewRequest(ReqUpdateConsumerOffset, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if op := <-called; op != 1 {
		t.Fatalf("oneway opaque %d", op)
	}
}

func TestServerInvokeClient(t *testing.T) {
	h := func(ctx context.Context, c *ServerConn, req *Command) *Command {
		ask := NewRequest(ReqCheckTransactionState, map[string]string{"msgId": "M"}, nil)
		ans, err := c.Invoke(ctx, ask)
		if err != nil {
			return NewResponse(req, RespSystemError, err.Error())
		}
		if err := c.InvokeOneway(NewRequest(ReqNotifyConsumerIDsChanged, nil, nil)); err != nil {
			return NewResponse(req, RespSystemError, err.Error())
		}
		return NewResponse(req, RespSuccess, "client said "+ans.Remark)
	}
	ts := startServer(t, h, ServerConfig{})
	cl := dial(t, ts.addr)
	notified := make(chan *Command, 1)
	cl.OnRequest(func(req *Command) *Command {
		switch req.Code {
		case ReqCheckTransactionState:
			return NewResponse(req, RespSuccess, "commit "+req.Ext["msgId"])
		case ReqNotifyConsumerIDsChanged:
			notified <- req
		}
		return nil
	})
	resp, err := cl.Call(callCtx(t), NewRequest(ReqEndTransaction, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Remark != "client said commit M" {
		t.Fatalf("remark %q", resp.Remark)
	}
	if n := <-notified; !n.IsOneway() {
		t.Fatal("InvokeOneway did not set the oneway flag")
	}
}

func TestClientWithoutHandlerAnswersNotSupported(t *testing.T) {
	h := func(ctx context.Context, c *ServerConn, req *Command) *Command {
		ans, err := c.Invoke(ctx, NewRequest(ReqGetConsumerRunningInfo, nil, nil))
		if err != nil {
			return NewResponse(req, RespSystemError, err.Error())
		}
		return NewResponse(req, ans.Code, ans.Remark)
	}
	ts := startServer(t, h, ServerConfig{})
	cl := dial(t, ts.addr)
	resp, err := cl.Call(callCtx(t), NewRequest(ReqHeartBeat, nil, nil))
	if err != nil || resp.Code != RespRequestCodeNotSupported {
		t.Fatalf("got %+v, %v", resp, err)
	}
}

func TestMalformedFrameClosesOnlyThatConnection(t *testing.T) {
	ts := startServer(t, echo, ServerConfig{})
	good := dial(t, ts.addr)
	bad := rawConn(t, ts.addr)
	if _, err := bad.Write([]byte{0, 0, 0, 6, 9, 0, 0, 2, '{', '}'}); err != nil { // serialize type 9
		t.Fatal(err)
	}
	waitClosed(t, bad)
	eventually(t, 5*time.Second, func() error { return ts.log.has("unknown serialize type 9") })

	big := rawConn(t, ts.addr)
	if _, err := big.Write([]byte{0x7F, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, big)
	eventually(t, 5*time.Second, func() error { return ts.log.has("frame too large") })

	if _, err := good.Call(callCtx(t), NewRequest(ReqHeartBeat, nil, nil)); err != nil {
		t.Fatalf("other connection broken: %v", err)
	}
}

func TestServerDropsUnknownOpaque(t *testing.T) {
	ts := startServer(t, echo, ServerConfig{})
	nc := rawConn(t, ts.addr)
	writeCmd(t, nc, &Command{Code: RespSuccess, Opaque: 12345, Flag: FlagResponse})
	writeCmd(t, nc, &Command{Code: ReqHeartBeat, Opaque: 1})
	if resp, err := ReadCommand(nc, 0); err != nil || resp.Opaque != 1 {
		t.Fatalf("got %+v, %v", resp, err)
	}
	eventually(t, 5*time.Second, func() error { return ts.log.has("unknown opaque") })
}

func TestServerHandlerPanic(t *testing.T) {
	h := func(ctx context.Context, c *ServerConn, req *Command) *Command { panic("boom") }
	ts := startServer(t, h, ServerConfig{})
	cl := dial(t, ts.addr)
	resp, err := cl.Call(callCtx(t), NewRequest(ReqHeartBeat, nil, nil))
	if err != nil || resp.Code != RespSystemError || !strings.Contains(resp.Remark, "panicked") {
		t.Fatalf("got %+v, %v", resp, err)
	}
	eventually(t, 5*time.Second, func() error { return ts.log.has("boom") })
}

func TestServerIdleTimeout(t *testing.T) {
	ts := startServer(t, echo, ServerConfig{IdleTimeout: 20 * time.Millisecond})
	nc := rawConn(t, ts.addr)
	waitClosed(t, nc)
	eventually(t, 5*time.Second, func() error { return ts.log.has("idle") })
}

func TestServeStopsEverything(t *testing.T) {
	opened := make(chan *ServerConn, 1)
	closed := make(chan *ServerConn, 1)
	inHandler := make(chan struct{})
	h := func(ctx context.Context, c *ServerConn, req *Command) *Command {
		close(inHandler)
		<-ctx.Done() // a long poll, ended by shutdown
		return nil
	}
	ts := startServer(t, h, ServerConfig{
		OnOpen:  func(c *ServerConn) { opened <- c },
		OnClose: func(c *ServerConn) { closed <- c },
	})
	cl := dial(t, ts.addr)
	sc := <-opened
	if sc.ID() == 0 || !strings.HasPrefix(sc.RemoteAddr(), "127.0.0.1:") {
		t.Fatalf("conn id %d addr %q", sc.ID(), sc.RemoteAddr())
	}
	callErr := make(chan error, 1)
	go func() {
		_, err := cl.Call(context.Background(), NewRequest(ReqPullMessage, nil, nil))
		callErr <- err
	}()
	<-inHandler
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if c := <-closed; c != sc {
		t.Fatal("OnClose got another connection")
	}
	if err := <-callErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending call: got %v, want ErrClosed", err)
	}
	select {
	case <-sc.Done():
	default:
		t.Fatal("Done not closed")
	}
	if _, err := sc.Invoke(context.Background(), NewRequest(ReqNotifyConsumerIDsChanged, nil, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Invoke on a closed connection: got %v", err)
	}
	if err := sc.InvokeOneway(NewRequest(ReqNotifyConsumerIDsChanged, nil, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("InvokeOneway on a closed connection: got %v", err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoGoroutines(t)
}

func TestInvokeErrors(t *testing.T) {
	opened := make(chan *ServerConn, 1)
	ts := startServer(t, echo, ServerConfig{OnOpen: func(c *ServerConn) { opened <- c }})
	cl := dial(t, ts.addr)
	release := make(chan struct{})
	cl.OnRequest(func(req *Command) *Command {
		<-release
		return NewResponse(req, RespSuccess, "")
	})
	sc := <-opened

	// ctx ends first: the error says so.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := sc.Invoke(ctx, NewRequest(ReqConsumeMessageDirectly, nil, nil))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "CONSUME_MESSAGE_DIRECTLY") {
		t.Fatalf("got %v", err)
	}

	// The connection closes first: the error says so.
	errc := make(chan error, 1)
	go func() {
		_, err := sc.Invoke(context.Background(), NewRequest(ReqConsumeMessageDirectly, nil, nil))
		errc <- err
	}()
	eventually(t, 5*time.Second, func() error {
		sc.c.mu.Lock()
		defer sc.c.mu.Unlock()
		if len(sc.c.pending) == 0 {
			return errors.New("invoke not pending yet")
		}
		return nil
	})
	if err := sc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
	if err := sc.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	close(release)

	// The client notices too.
	_, err = cl.Call(callCtx(t), NewRequest(ReqHeartBeat, nil, nil))
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("client call after server close: got %v", err)
	}
}
