package client

import (
	"context"
	"crypto/tls"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// dialTimeout bounds one connection attempt. A crashed host (or a killed
// container behind a published port) drops SYNs instead of refusing them,
// so a failover waits this long before the client looks for the new
// leader: measured with compose, 2s gave write pauses of 2.1s, 1s gives
// 1.1s. A SYN retransmit happens at 1s, so a live peer answers well within.
const dialTimeout = 1 * time.Second

// pool holds one wire.Conn per address and redials dead ones. It is safe
// for concurrent use; each address has its own dial lock so a slow dial
// does not block calls to other nodes.
type pool struct {
	mu     sync.Mutex
	conns  map[string]*poolEntry
	closed bool
	// onConn, if set, runs on each new connection before its first use:
	// a producer that answers check-backs or takes replies installs its
	// handler and says hello there (wire.CodeProducerHello).
	onConn func(ctx context.Context, c *wire.Conn) error
	// creds, if set, sign every request (auth.go); set before the first get.
	creds wire.Credentials
	tls   *tls.Config // nil: plaintext
}

// setOnConn installs the new-connection hook (before the first get).
func (p *pool) setOnConn(f func(ctx context.Context, c *wire.Conn) error) {
	p.mu.Lock()
	p.onConn = f
	p.mu.Unlock()
}

type poolEntry struct {
	mu   sync.Mutex // held while dialing
	conn *wire.Conn
}

// newPool dials with tlsCfg (nil: plaintext).
func newPool(tlsCfg *tls.Config) *pool {
	return &pool{conns: make(map[string]*poolEntry), tls: tlsCfg}
}

func (p *pool) get(ctx context.Context, addr string) (*wire.Conn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	e := p.conns[addr]
	if e == nil {
		e = &poolEntry{}
		p.conns[addr] = e
	}
	p.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil && e.conn.Err() == nil {
		return e.conn, nil
	}
	if e.conn != nil {
		_ = e.conn.Close()
		e.conn = nil
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := wire.DialTLS(dctx, addr, 0, p.tls)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &dialError{addr: addr, err: err}
	}
	p.mu.Lock()
	closed, onConn := p.closed, p.onConn
	p.mu.Unlock()
	if closed {
		_ = c.Close()
		return nil, ErrClosed
	}
	c.SetCredentials(p.creds) // no-op without an access key
	if onConn != nil {
		if err := onConn(dctx, c); err != nil {
			_ = c.Close()
			return nil, fromWire(err)
		}
	}
	e.conn = c
	return c, nil
}

// call performs one request on addr. Errors answered by the server come
// back as *Error.
func (p *pool) call(ctx context.Context, addr string, code uint16, req, resp any) error {
	c, err := p.get(ctx, addr)
	if err != nil {
		return err
	}
	return fromWire(c.Call(ctx, code, req, resp))
}

// start writes a request on addr's connection and returns without its
// answer (wire.Conn.Start): requests started one after another reach the
// node in that order.
func (p *pool) start(ctx context.Context, addr string, code uint16, req any) (*wire.Pending, error) {
	c, err := p.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	pc, err := c.Start(ctx, code, req)
	return pc, fromWire(err)
}

// send performs a one-way request on addr.
func (p *pool) send(ctx context.Context, addr string, code uint16, req any) error {
	c, err := p.get(ctx, addr)
	if err != nil {
		return err
	}
	return c.Send(code, req)
}

// close closes every connection; later gets fail with ErrClosed.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	entries := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		if e.conn != nil {
			_ = e.conn.Close()
			e.conn = nil
		}
		e.mu.Unlock()
	}
}
