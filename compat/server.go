package compat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// Handler handles one request and returns its response; nil sends none.
// It runs in its own goroutine; ctx ends when the connection closes or
// the server stops.
type Handler func(ctx context.Context, c *ServerConn, req *Command) *Command

// ServerConfig configures Serve.
type ServerConfig struct {
	MaxFrame    int                              // default DefaultMaxFrame
	MaxInflight int                              // concurrently handled requests per connection, default 1024 (back-pressure)
	IdleTimeout time.Duration                    // close a connection silent this long; default 120 s (RocketMQ's channel idle)
	Logf        func(msg string, keyvals ...any) // connection-level problems; default none
	OnOpen      func(c *ServerConn)
	OnClose     func(c *ServerConn) // once, after the connection closed and all its handlers returned
	// InOrder, if set, names the request codes whose handlers get a
	// wire.Order (wire.OrderOf on their context) in frame order, as
	// wire.ServerConfig.InOrder: a RocketMQ producer's pipelined sends on
	// one channel are stored in the order sent (the Java broker gets that
	// from its single send thread). Default: none.
	InOrder func(code int32) bool
}

func (cfg ServerConfig) withDefaults() ServerConfig {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 1024
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	return cfg
}

// ServerConn is one accepted remoting connection. Its methods are safe
// for concurrent use.
type ServerConn struct {
	c        *conn
	id       uint64
	remote   string
	ctx      context.Context // handlers' context; ends when the connection closes
	cancel   context.CancelFunc
	handlers sync.WaitGroup
}

var connIDs atomic.Uint64

var errServerStopped = errors.New("server stopped")

// Serve accepts on ln until ctx ends, then closes ln and every connection
// and waits for every goroutine it started. It returns nil when ctx
// ended, else the accept error.
//
// Each connection has one reader goroutine; each request runs in its own
// goroutine (at most MaxInflight per connection; the reader waits for a
// slot), so a long poll never blocks the others. A response is written
// with the request's Serialize, Opaque and FlagResponse set; a request
// with FlagOneway gets none. A malformed or oversized frame, or
// IdleTimeout without a frame, closes only that connection (logged with
// the reason). Responses from the client complete pending Invoke calls by
// opaque; an unknown opaque is dropped and logged. A handler that panics
// is logged and answered with SYSTEM_ERROR.
func Serve(ctx context.Context, ln net.Listener, h Handler, cfg ServerConfig) error {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var (
		mu    sync.Mutex
		conns = make(map[*ServerConn]struct{})
		wg    sync.WaitGroup
		err   error
	)
	for {
		nc, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil && !errors.Is(aerr, net.ErrClosed) {
				err = fmt.Errorf("compat: accept: %w", aerr)
			}
			break
		}
		cctx, ccancel := context.WithCancel(ctx)
		sc := &ServerConn{
			c:      newConn(nc, cfg.MaxFrame, cfg.Logf),
			id:     connIDs.Add(1),
			remote: nc.RemoteAddr().String(),
			ctx:    cctx,
			cancel: ccancel,
		}
		mu.Lock()
		conns[sc] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc.serve(h, cfg)
			mu.Lock()
			delete(conns, sc)
			mu.Unlock()
		}()
	}
	ln.Close()
	mu.Lock()
	for sc := range conns {
		sc.c.close(errServerStopped)
	}
	mu.Unlock()
	wg.Wait()
	return err
}

// workerIdle is how long a connection's request worker waits for the
// next request before it ends.
const workerIdle = 10 * time.Second

// serve runs the connection's read loop, then closes it, waits for its
// handlers and calls OnClose.
func (sc *ServerConn) serve(h Handler, cfg ServerConfig) {
	if cfg.OnOpen != nil {
		cfg.OnOpen(sc)
	}
	// Each request runs in a goroutine of its own (a long poll never
	// blocks the others), taken from the connection's idle workers when
	// one waits: a fresh goroutine per request would grow (copy) its
	// stack on every send. A worker idle for workerIdle ends.
	sem := make(chan struct{}, cfg.MaxInflight)
	var chain wire.OrderChain
	work := make(chan job) // unbuffered: handed only to a waiting worker
	worker := func(req job) {
		defer sc.handlers.Done()
		idle := time.NewTimer(workerIdle)
		defer idle.Stop()
		for {
			sc.handle(h, req, cfg.Logf)
			<-sem
			idle.Reset(workerIdle)
			select {
			case req = <-work:
			case <-idle.C:
				return
			case <-sc.c.done:
				return
			}
		}
	}
	err := sc.c.readLoop(cfg.IdleTimeout, func(cmd *Command) bool {
		select {
		case sem <- struct{}{}:
		case <-sc.c.done:
			return false
		}
		req := job{cmd: cmd}
		if cfg.InOrder != nil && cfg.InOrder(cmd.Code) {
			req.order = chain.Next() // in frame order: this goroutine reads them
		}
		select {
		case work <- req:
		default:
			sc.handlers.Add(1)
			go worker(req)
		}
		return true
	})
	sc.logReadErr(err, cfg)
	if err == nil {
		err = errClosedLocally
	}
	sc.c.close(err)
	sc.cancel()
	sc.handlers.Wait()
	if cfg.OnClose != nil {
		cfg.OnClose(sc)
	}
}

func (sc *ServerConn) logReadErr(err error, cfg ServerConfig) {
	select {
	case <-sc.c.done:
		return // closed by us (Close, shutdown, failed write); nothing to add
	default:
	}
	switch {
	case err == nil, errors.Is(err, io.EOF), isClosedErr(err):
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrFrameTooLarge):
		cfg.Logf("closing connection after a bad frame", "remote", sc.remote, "error", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		cfg.Logf("closing idle connection", "remote", sc.remote, "idle", cfg.IdleTimeout)
	default:
		cfg.Logf("closing connection after a read error", "remote", sc.remote, "error", err)
	}
}

// job is a request for a worker, with its place among the connection's
// in-order requests (nil for other codes).
type job struct {
	cmd   *Command
	order *wire.Order
}

func (sc *ServerConn) handle(h Handler, j job, logf func(string, ...any)) {
	req := j.cmd
	ctx := sc.ctx
	if j.order != nil {
		ctx = wire.WithOrder(ctx, j.order)
	}
	defer j.order.Done() // if the handler did not: the next in-order request goes on
	resp := func() (resp *Command) {
		defer func() {
			if r := recover(); r != nil {
				logf("handler panicked", "remote", sc.remote, "code", req.Code, "panic", r)
				resp = NewResponse(req, RespSystemError, fmt.Sprintf("compat: handler for %s panicked", RequestName(req.Code)))
			}
		}()
		return h(ctx, sc, req)
	}()
	if resp == nil || req.IsOneway() {
		return
	}
	resp.Opaque = req.Opaque
	resp.Flag |= FlagResponse
	resp.Serialize = req.Serialize
	frame, err := AppendCommand(nil, resp)
	if err != nil {
		logf("cannot encode a response", "remote", sc.remote, "code", req.Code, "error", err)
		frame, err = AppendCommand(nil, NewResponse(req, RespSystemError, "compat: encode response: "+err.Error()))
		if err != nil {
			return
		}
	}
	if err := sc.c.writeFrame(frame); err != nil && !errors.Is(err, ErrClosed) {
		logf("cannot write a response", "remote", sc.remote, "error", err)
	}
}

// RemoteAddr is the peer's address.
func (c *ServerConn) RemoteAddr() string { return c.remote }

// ID is unique among the connections of this process, for maps.
func (c *ServerConn) ID() uint64 { return c.id }

// Close closes the connection; its handlers' context ends. It is
// idempotent.
func (c *ServerConn) Close() error { return c.c.close(errClosedLocally) }

// Done is closed once the connection has closed.
func (c *ServerConn) Done() <-chan struct{} { return c.c.done }

// Invoke sends a server-initiated request (a copy of req with an Opaque
// from the connection's own counter) and waits for the client's response,
// ctx, or the connection closing; the error names which.
func (c *ServerConn) Invoke(ctx context.Context, req *Command) (*Command, error) {
	return c.c.invoke(ctx, req, false)
}

// InvokeOneway sends a copy of req with FlagOneway set and does not wait.
func (c *ServerConn) InvokeOneway(req *Command) error {
	_, err := c.c.invoke(context.Background(), req, true)
	return err
}
