package broker

import (
	"context"
	"math/rand/v2"
	"sync"

	"github.com/rmq-dev/rmq/wire"
)

// Producers that take server-initiated requests on the rmq protocol: a
// producer says hello (wire.CodeProducerHello) with its producer group
// and client ID on each connection it wants asked over, on every node it
// talks to, and repeats it as leaders change. Transaction check-backs
// pick a connection by producer group; pushed replies (request-reply)
// find one by client ID. A connection leaves the registry when it ends.
// RocketMQ producers are tracked by the remoting adapter from their
// heartbeats (remoting_clients.go).
type rmqProducers struct {
	mu       sync.Mutex
	byGroup  map[string]map[*wire.ServerConn]string // producer group -> connection -> client ID
	byClient map[string]*wire.ServerConn            // client ID -> its latest connection
	watched  map[*wire.ServerConn]bool
}

func newRMQProducers() *rmqProducers {
	return &rmqProducers{byGroup: map[string]map[*wire.ServerConn]string{}, byClient: map[string]*wire.ServerConn{},
		watched: map[*wire.ServerConn]bool{}}
}

// register records c for group and clientID (either may be empty).
func (p *rmqProducers) register(c *wire.ServerConn, group, clientID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if group != "" {
		if p.byGroup[group] == nil {
			p.byGroup[group] = map[*wire.ServerConn]string{}
		}
		p.byGroup[group][c] = clientID
	}
	if clientID != "" {
		p.byClient[clientID] = c
	}
	if !p.watched[c] {
		p.watched[c] = true
		go func() { // ends with the connection
			<-c.Done()
			p.drop(c)
		}()
	}
}

func (p *rmqProducers) drop(c *wire.ServerConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.watched, c)
	for g, cs := range p.byGroup {
		delete(cs, c)
		if len(cs) == 0 {
			delete(p.byGroup, g)
		}
	}
	for id, cc := range p.byClient {
		if cc == c {
			delete(p.byClient, id)
		}
	}
}

// pick returns a live connection of a producer group, at random, or nil.
func (p *rmqProducers) pick(group string) *wire.ServerConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.byGroup[group]
	if len(cs) == 0 {
		return nil
	}
	k := rand.IntN(len(cs))
	for c := range cs {
		if k == 0 {
			return c
		}
		k--
	}
	return nil
}

// client returns the latest connection of a client ID, or nil.
func (p *rmqProducers) client(id string) *wire.ServerConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byClient[id]
}

func (n *Node) handleProducerHello(_ context.Context, r *wire.Request, req *wire.ProducerHello) (any, error) {
	if req.Group != "" {
		if err := ValidateGroupName(req.Group); err != nil {
			return nil, err
		}
	}
	n.producers.register(r.Conn, req.Group, req.ClientID)
	return wire.Empty{}, nil
}
