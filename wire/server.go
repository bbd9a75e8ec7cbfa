package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Request is one request received by a Server.
type Request struct {
	Code   uint16
	ID     uint64
	Oneway bool
	Body   []byte
	// Auth is a signed request's credentials (nil if unsigned); the
	// server checks them (package acl), wire only carries them.
	Auth *Auth
	Conn *ServerConn
	// order is the request's place among the connection's in-order
	// requests (ServerConfig.InOrder); nil for other codes.
	order *Order
}

// Decode unmarshals the body; a failure is a CodeMalformed *Error.
func (r *Request) Decode(v any) error {
	if err := Unmarshal(r.Body, v); err != nil {
		return Errorf(CodeMalformed, "request %d body: %v", r.Code, err)
	}
	return nil
}

// Handler serves one request. It returns the response body or an error;
// an *Error (found with errors.As) is sent with its code, anything else as
// CodeInternal. ctx ends when the connection or the server closes.
type Handler func(ctx context.Context, r *Request) (any, error)

// ServerConfig configures Serve.
type ServerConfig struct {
	// MaxFrame is the largest accepted frame; default DefaultMaxFrame.
	MaxFrame int
	// MaxInflight bounds concurrently handled requests per connection;
	// further frames wait (back-pressure). Default 1024.
	MaxInflight int
	// Logf logs connection-level problems (malformed frames); default none.
	Logf func(msg string, keyvals ...any)
	// OnClose, if set, runs once when a connection closes.
	OnClose func(c *ServerConn)
	// InOrder, if set, names the request codes whose handlers may keep
	// the order of their frames on a connection (Order, OrderOf): each
	// such request waits, where its handler calls Wait, for the one that
	// arrived before it. Default: none.
	InOrder func(code uint16) bool
}

// ServerConn is the server side of one connection.
type ServerConn struct {
	nc     net.Conn
	cancel context.CancelFunc
	wmu    sync.Mutex
	bw     *bufio.Writer

	// Requests this server sent the client (Call), by ID.
	cmu    sync.Mutex
	nextID uint64
	calls  map[uint64]chan Frame
	gone   bool
	done   chan struct{} // closed when the connection has ended
}

// Done is closed once the connection has ended.
func (c *ServerConn) Done() <-chan struct{} { return c.done }

// Call sends a request to the client on this connection and decodes its
// response into resp (which may be nil): a server-initiated request, for
// clients that said they take them (a transaction check-back, a reply).
// An error response is returned as *Error; a connection that ends first
// fails the call with ErrConnClosed.
func (c *ServerConn) Call(ctx context.Context, code uint16, req, resp any) error {
	eb, err := encode(req)
	if err != nil {
		return fmt.Errorf("wire: encode request %d: %w", code, err)
	}
	defer eb.release()
	ch := make(chan Frame, 1)
	c.cmu.Lock()
	if c.gone {
		c.cmu.Unlock()
		return ErrConnClosed
	}
	c.nextID++
	id := c.nextID
	if c.calls == nil {
		c.calls = map[uint64]chan Frame{}
	}
	c.calls[id] = ch
	c.cmu.Unlock()
	forget := func() {
		c.cmu.Lock()
		delete(c.calls, id)
		c.cmu.Unlock()
	}
	if err := c.write(ctx, Frame{Code: code, ID: id, Body: eb.bytes()}); err != nil {
		forget()
		return fmt.Errorf("%w: %w", ErrConnClosed, err)
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return ErrConnClosed
		}
		return decodeResponse(f, resp)
	case <-ctx.Done():
		forget()
		return ctx.Err()
	}
}

// Notify sends a one-way request to the client on this connection.
func (c *ServerConn) Notify(ctx context.Context, code uint16, req any) error {
	eb, err := encode(req)
	if err != nil {
		return fmt.Errorf("wire: encode request %d: %w", code, err)
	}
	defer eb.release()
	c.cmu.Lock()
	c.nextID++
	id := c.nextID
	c.cmu.Unlock()
	return c.write(ctx, Frame{Flags: FlagOneway, Code: code, ID: id, Body: eb.bytes()})
}

func (c *ServerConn) write(ctx context.Context, f Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetWriteDeadline(deadline)
	if err := writeFrame(c.bw, f); err != nil {
		c.nc.Close()
		return err
	}
	return nil
}

// answered routes a client's response to the Call waiting for it.
func (c *ServerConn) answered(f Frame) {
	c.cmu.Lock()
	ch, ok := c.calls[f.ID]
	delete(c.calls, f.ID)
	c.cmu.Unlock()
	if ok {
		ch <- f
	}
}

// endCalls fails the Calls still waiting when the connection ends.
func (c *ServerConn) endCalls() {
	c.cmu.Lock()
	c.gone = true
	for id, ch := range c.calls {
		close(ch)
		delete(c.calls, id)
	}
	c.cmu.Unlock()
	close(c.done)
}

// RemoteAddr is the peer's address.
func (c *ServerConn) RemoteAddr() string { return c.nc.RemoteAddr().String() }

// Close closes the connection.
func (c *ServerConn) Close() error { return c.nc.Close() }

func (c *ServerConn) respond(id uint64, code uint16, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return writeFrame(c.bw, Frame{Flags: FlagResponse, Code: code, ID: id, Body: body})
}

// Serve accepts connections on ln until ctx ends, then closes ln and every
// connection and waits for all handlers to return. Each connection has a
// reader goroutine; each request runs in its own goroutine so a long poll
// never blocks the others. A malformed or oversized frame closes that
// connection with a logged reason; the server keeps serving.
func Serve(ctx context.Context, ln net.Listener, h Handler, cfg ServerConfig) error {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 1024
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { <-ctx.Done(); ln.Close() }() // ends with ctx, which Serve cancels on return
	var err error
	for {
		nc, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil && !errors.Is(aerr, net.ErrClosed) {
				err = fmt.Errorf("wire: accept: %w", aerr)
			}
			break
		}
		cctx, ccancel := context.WithCancel(ctx)
		c := &ServerConn{nc: nc, cancel: ccancel, bw: bufio.NewWriterSize(nc, 64<<10), done: make(chan struct{})}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(cctx, c, h, cfg)
		}()
	}
	cancel()
	wg.Wait()
	return err
}

func serveConn(ctx context.Context, c *ServerConn, h Handler, cfg ServerConfig) {
	var wg sync.WaitGroup
	defer func() {
		c.cancel()
		c.nc.Close()
		c.endCalls()
		wg.Wait()
		if cfg.OnClose != nil {
			cfg.OnClose(c)
		}
	}()
	go func() { <-ctx.Done(); c.nc.Close() }() // unblocks the reader at shutdown; ends with ctx
	sem := make(chan struct{}, cfg.MaxInflight)
	var chain OrderChain
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		f, err := ReadFrame(br, cfg.MaxFrame)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrMalformed) {
				cfg.Logf("closing connection after a bad frame", "remote", c.RemoteAddr(), "error", err)
			}
			return
		}
		if f.IsResponse() {
			c.answered(f) // to a request this server sent (Call); unknown IDs (a Call that gave up) are dropped
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		r := &Request{Code: f.Code, ID: f.ID, Oneway: f.IsOneway(), Body: f.Body, Auth: f.Auth, Conn: c}
		if cfg.InOrder != nil && cfg.InOrder(f.Code) {
			r.order = chain.Next() // in frame order: this goroutine reads them
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			handle(ctx, c, h, r)
		}()
	}
}

func handle(ctx context.Context, c *ServerConn, h Handler, r *Request) {
	if r.order != nil {
		ctx = WithOrder(ctx, r.order)
	}
	resp, err := h(ctx, r)
	r.order.Done() // if the handler did not: the next in-order request goes on
	if r.Oneway {
		return
	}
	code, body, release := responseFrame(resp, err)
	defer release() // after respond has written the bytes
	if err := c.respond(r.ID, code, body); err != nil {
		c.nc.Close()
	}
}

// responseFrame encodes a handler's result as a response code and body;
// release frees the body's buffer once it is written.
func responseFrame(resp any, err error) (uint16, []byte, func()) {
	if err != nil {
		var we *Error
		if !errors.As(err, &we) {
			we = &Error{Code: CodeInternal, ErrorBody: ErrorBody{Message: err.Error()}}
		}
		body, _ := msgpack.Marshal(&we.ErrorBody)
		return we.Code, body, func() {}
	}
	eb, merr := encode(resp)
	if merr != nil {
		body, _ := msgpack.Marshal(&ErrorBody{Message: "encode response: " + merr.Error()})
		return CodeInternal, body, func() {}
	}
	return CodeOK, eb.bytes(), eb.release
}

// responseBody is responseFrame with a copied body.
func responseBody(resp any, err error) (uint16, []byte) {
	code, body, release := responseFrame(resp, err)
	defer release()
	return code, append([]byte(nil), body...)
}
