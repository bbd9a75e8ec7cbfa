package broker

import (
	"context"
	"time"

	"github.com/rmq-dev/rmq/client/wire"
)

// ClientAddr is the client address this node publishes ("" when the node
// has no client server).
func (n *Node) ClientAddr() string {
	if n.cfg.ClientAdvertise != "" {
		return n.cfg.ClientAdvertise
	}
	if n.clientLn != nil {
		return n.clientLn.Addr().String()
	}
	return ""
}

// pokeRegistration asks the registration loop to register now (role or
// topic change) instead of waiting for the next heartbeat.
func (n *Node) pokeRegistration() {
	select {
	case n.registerNow <- struct{}{}:
	default:
	}
}

// runRegistration registers this node with every NameServer on start, on
// every role or topic change, and every RegisterInterval; it unregisters
// on shutdown. A NameServer that is down is retried on the next tick.
func (n *Node) runRegistration() {
	defer n.wg.Done()
	conns := map[string]*wire.Conn{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	t := time.NewTicker(n.cfg.RegisterInterval)
	defer t.Stop()
	for {
		n.registerAll(conns, wire.CodeRegisterBroker, n.registration())
		select {
		case <-n.stopCh:
			n.registerAll(conns, wire.CodeUnregisterBroker, &wire.UnregisterBrokerRequest{Group: n.cfg.Group, NodeID: n.cfg.NodeID})
			return
		case <-t.C:
		case <-n.registerNow:
		}
	}
}

func (n *Node) registration() *wire.RegisterBrokerRequest {
	return &wire.RegisterBrokerRequest{
		Node:            *n.nodeStatus(),
		Topics:          n.listTopics().Topics,
		HeartbeatMillis: n.cfg.RegisterInterval.Milliseconds(),
	}
}

func (n *Node) registerAll(conns map[string]*wire.Conn, code uint16, req any) {
	for _, addr := range n.cfg.NameServers {
		ctx, cancel := context.WithTimeout(context.Background(), max(n.cfg.RegisterInterval, time.Second))
		err := n.registerOne(ctx, conns, addr, code, req)
		cancel()
		if err != nil {
			n.log.Debug("namesrv registration failed", "namesrv", addr, "error", err)
		}
	}
}

func (n *Node) registerOne(ctx context.Context, conns map[string]*wire.Conn, addr string, code uint16, req any) error {
	c := conns[addr]
	if c != nil && c.Err() != nil {
		c.Close()
		c = nil
	}
	if c == nil {
		var err error
		if c, err = wire.Dial(ctx, addr, 0); err != nil {
			delete(conns, addr)
			return err
		}
		conns[addr] = c
	}
	return c.Call(ctx, code, req, nil)
}
