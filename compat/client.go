package compat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Client is a small remoting client for rmq's own tests of the adapters
// and for tools; it is not a RocketMQ client. Its methods are safe for
// concurrent use. One goroutine reads the connection; each
// server-initiated request runs in its own goroutine.
type Client struct {
	c       *conn
	handler atomic.Pointer[func(*Command) *Command]
	wg      sync.WaitGroup // the read loop and request handlers
}

// Dial connects to a remoting server at addr ("host:port").
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("compat: dial %s: %w", addr, err)
	}
	return NewClient(nc), nil
}

// NewClient is a Client on a connection the caller dialed (a TLS one, say);
// the Client owns nc from then on.
func NewClient(nc net.Conn) *Client {
	cl := &Client{c: newConn(nc, DefaultMaxFrame, nil)}
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		err := cl.c.readLoop(0, func(req *Command) bool {
			cl.wg.Add(1)
			go func() {
				defer cl.wg.Done()
				cl.serve(req)
			}()
			return true
		})
		if err == nil {
			err = errClosedLocally
		}
		cl.c.close(err)
	}()
	return cl
}

func (cl *Client) serve(req *Command) {
	var resp *Command
	if h := cl.handler.Load(); h != nil {
		resp = (*h)(req)
	} else {
		resp = NewResponse(req, RespRequestCodeNotSupported, fmt.Sprintf("compat: client does not serve %s", RequestName(req.Code)))
	}
	if resp == nil || req.IsOneway() {
		return
	}
	resp.Opaque = req.Opaque
	resp.Flag |= FlagResponse
	resp.Serialize = req.Serialize
	_ = cl.c.send(resp) // a failed write closes the connection; nothing else to do
}

// Call sends a copy of req with a fresh Opaque and waits for the response,
// ctx, or the connection closing.
func (cl *Client) Call(ctx context.Context, req *Command) (*Command, error) {
	return cl.c.invoke(ctx, req, false)
}

// Oneway sends a copy of req with FlagOneway and does not wait.
func (cl *Client) Oneway(req *Command) error {
	_, err := cl.c.invoke(context.Background(), req, true)
	return err
}

// OnRequest sets the handler of server-initiated requests; set it before
// they arrive. Without one, requests are answered with
// REQUEST_CODE_NOT_SUPPORTED. A nil response sends none.
func (cl *Client) OnRequest(h func(req *Command) *Command) {
	if h == nil {
		cl.handler.Store(nil)
		return
	}
	cl.handler.Store(&h)
}

// Close closes the connection and waits for the read loop and the
// request handlers. Do not call it from an OnRequest handler.
func (cl *Client) Close() error {
	err := cl.c.close(errClosedLocally)
	cl.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
