package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/rmq-dev/rmq/wire"
)

// Requests a broker sends a producer over the producer's own
// connections: transaction check-backs (tx.go) and pushed replies
// (request-reply). A producer that takes any of them installs a handler
// on each new connection and says hello (wire.CodeProducerHello with
// its Group and ClientID), so the broker node can find the connection;
// a producer that takes none opens plain connections, as before.
type serverRequests struct {
	mu       sync.Mutex
	handlers map[uint16]func(ctx context.Context, body []byte) (any, error)
}

// takeServerRequest makes p answer broker requests with code by fn. It
// must be called before p's first connection (NewProducer, or the
// first Request) for the hello to reach every node p talks to.
func (p *Producer) takeServerRequest(code uint16, fn func(ctx context.Context, body []byte) (any, error)) {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	first := p.srv.handlers == nil
	if first {
		p.srv.handlers = map[uint16]func(ctx context.Context, body []byte) (any, error){}
	}
	p.srv.handlers[code] = fn
	if first {
		p.pool.setOnConn(p.hello)
	}
}

// hello installs the dispatcher on a new connection and registers it.
// A server that does not know the hello (a NameServer: the pool holds
// its connections too; a broker before this) just never asks.
func (p *Producer) hello(ctx context.Context, c *wire.Conn) error {
	c.SetHandler(p.serveRequest)
	err := c.Call(ctx, wire.CodeProducerHello, wire.ProducerHello{Group: p.cfg.Group, ClientID: p.cfg.ClientID}, nil)
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeUnknownRequest {
		return nil
	}
	return err
}

func (p *Producer) serveRequest(ctx context.Context, code uint16, body []byte) (any, error) {
	p.srv.mu.Lock()
	fn := p.srv.handlers[code]
	p.srv.mu.Unlock()
	if fn == nil {
		return nil, wire.Errorf(wire.CodeUnknownRequest, "producer %s takes no request %d", p.cfg.ClientID, code)
	}
	return fn(ctx, body)
}

// sayHelloEverywhere repeats the hello on the current leader of every
// broker group p has sent to, so a new leader can reach p before p's
// next send (called by the producer's heartbeat loop).
func (p *Producer) sayHelloEverywhere(ctx context.Context) error {
	groups := p.router.knownGroups()
	var first error
	for _, g := range groups {
		addr := p.router.leaderAddr(g)
		if addr == "" {
			continue
		}
		if err := p.pool.call(ctx, addr, wire.CodeProducerHello, wire.ProducerHello{Group: p.cfg.Group, ClientID: p.cfg.ClientID}, nil); err != nil && first == nil {
			first = fmt.Errorf("hello to %s (%s): %w", g, addr, err)
		}
	}
	return first
}
