package wire

import (
	"context"
	"sync"
)

// Order is a request's place among the in-order requests of its
// connection (ServerConfig.InOrder). Requests are handled concurrently,
// each on its own goroutine, so two sends a client pipelines on one
// connection could otherwise reach the broker's queue in either order; a
// handler that calls Wait before the step whose order matters (a send:
// taking its place in the commit queue) and Done after it keeps the order
// in which the frames arrived, while the steps before (decoding,
// validation) and after (waiting for the commit) still overlap.
//
// The server calls Done itself once the handler returned, so a handler
// that fails early, or never calls Wait, never holds up the requests
// behind it. The methods do nothing on a nil *Order.
type Order struct {
	prev <-chan struct{} // closed once the previous in-order request is done
	mine chan struct{}
	once sync.Once
}

// Wait blocks until every earlier in-order request of the connection is
// done, or ctx ends (its error is returned).
func (o *Order) Wait(ctx context.Context) error {
	if o == nil {
		return nil
	}
	select {
	case <-o.prev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done lets the next in-order request of the connection go on once every
// earlier one is done too: a request that fails before its turn does not
// let the ones behind it overtake those before it. It never blocks.
func (o *Order) Done() {
	if o == nil {
		return
	}
	o.once.Do(func() {
		select {
		case <-o.prev:
			close(o.mine)
		default:
			go func() { <-o.prev; close(o.mine) }() // ends when the request before is done
		}
	})
}

type orderKey struct{}

// OrderOf returns the Order of the request whose handler got ctx, or nil
// if its code is not in order (or ctx is not a handler's).
func OrderOf(ctx context.Context) *Order {
	o, _ := ctx.Value(orderKey{}).(*Order)
	return o
}

// WithOrder returns ctx carrying o, for OrderOf: a server other than
// Serve (package compat's remoting server) hands its handlers Orders so.
func WithOrder(ctx context.Context, o *Order) context.Context {
	return context.WithValue(ctx, orderKey{}, o)
}

// OrderChain hands out the Orders of one connection, in the order its
// reader calls Next (the frame order). It is not safe for concurrent use;
// the zero value is ready.
type OrderChain struct{ last chan struct{} }

// Next returns the Order of the connection's next in-order request.
func (c *OrderChain) Next() *Order {
	if c.last == nil {
		c.last = make(chan struct{})
		close(c.last)
	}
	o := &Order{prev: c.last, mine: make(chan struct{})}
	c.last = o.mine
	return o
}
