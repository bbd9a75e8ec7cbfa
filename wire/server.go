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
	Conn   *ServerConn
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
}

// ServerConn is the server side of one connection.
type ServerConn struct {
	nc     net.Conn
	cancel context.CancelFunc
	wmu    sync.Mutex
	bw     *bufio.Writer
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
		c := &ServerConn{nc: nc, cancel: ccancel, bw: bufio.NewWriterSize(nc, 64<<10)}
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
		wg.Wait()
		if cfg.OnClose != nil {
			cfg.OnClose(c)
		}
	}()
	go func() { <-ctx.Done(); c.nc.Close() }() // unblocks the reader at shutdown; ends with ctx
	sem := make(chan struct{}, cfg.MaxInflight)
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
			cfg.Logf("closing connection: client sent a response frame", "remote", c.RemoteAddr())
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			handle(ctx, c, h, &Request{Code: f.Code, ID: f.ID, Oneway: f.IsOneway(), Body: f.Body, Conn: c})
		}()
	}
}

func handle(ctx context.Context, c *ServerConn, h Handler, r *Request) {
	resp, err := h(ctx, r)
	if r.Oneway {
		return
	}
	code, body := CodeOK, []byte(nil)
	if err != nil {
		var we *Error
		if !errors.As(err, &we) {
			we = &Error{Code: CodeInternal, ErrorBody: ErrorBody{Message: err.Error()}}
		}
		code = we.Code
		body, _ = msgpack.Marshal(&we.ErrorBody)
	} else {
		eb, merr := encode(resp)
		if merr != nil {
			code = CodeInternal
			body, _ = msgpack.Marshal(&ErrorBody{Message: "encode response: " + merr.Error()})
		} else {
			defer eb.release() // after respond has written the bytes
			body = eb.bytes()
		}
	}
	if err := c.respond(r.ID, code, body); err != nil {
		c.nc.Close()
	}
}
