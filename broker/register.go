package broker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmq-dev/rmq/wire"
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
// every role or topic change, when it learns the commit index and when it
// has caught up with it after start, and every RegisterInterval; it unregisters
// on shutdown. Each NameServer has its own goroutine (registerLoop), so a
// slow or black-holed one delays only its own registrations: the live
// ones hear of a new leader at once and never expire a healthy node
// because another NameServer does not answer. A NameServer that is down
// is retried on the next tick.
func (n *Node) runRegistration() {
	defer n.wg.Done()
	var latest atomic.Pointer[wire.RegisterBrokerRequest]
	running, cancel := context.WithCancel(context.Background())
	kicks := make([]chan struct{}, len(n.cfg.NameServers))
	var wg sync.WaitGroup
	for i, addr := range n.cfg.NameServers {
		kicks[i] = make(chan struct{}, 1) // "register the latest now"; a pending kick is enough
		wg.Add(1)
		go func() { // stopped by stopCh, waited for below
			defer wg.Done()
			n.registerLoop(running, addr, kicks[i], &latest)
		}()
	}
	defer wg.Wait()
	defer cancel() // runs before wg.Wait
	t := time.NewTicker(n.cfg.RegisterInterval)
	defer t.Stop()
	// Until the node has learned the commit index and applied up to it,
	// each step is registered at once rather than a RegisterInterval
	// later (see startupPhase).
	poll := time.NewTicker(startupPoll)
	defer poll.Stop()
	pollC := poll.C
	for {
		latest.Store(n.registration())
		sent := n.startupPhase()
		if sent == phaseCaughtUp && pollC != nil {
			poll.Stop()
			pollC = nil
		}
		for _, k := range kicks {
			select {
			case k <- struct{}{}:
			default:
			}
		}
	wait:
		for {
			select {
			case <-n.stopCh:
				return
			case <-t.C:
				break wait
			case <-n.registerNow:
				break wait
			case <-pollC:
				if n.startupPhase() != sent {
					break wait
				}
			}
		}
	}
}

// startupPoll is how often a starting node checks whether it has learned
// the commit index or caught up with it.
const startupPoll = 20 * time.Millisecond

// Steps of a node's start-up that its registration shows: a restarted
// follower's commit index is unknown until the leader's first
// AppendEntries, which raft's replication back-off can delay by seconds
// after an outage; then it applies up to it.
const (
	phaseCommitUnknown = iota
	phaseApplying
	phaseCaughtUp
)

func (n *Node) startupPhase() int {
	commit := n.raft.CommitIndex()
	switch {
	case commit == 0:
		return phaseCommitUnknown
	case n.raft.AppliedIndex() < commit:
		return phaseApplying
	default:
		return phaseCaughtUp
	}
}

// registerLoop registers the latest registration with addr on every kick
// and unregisters when the node stops. The NameServer expires a node
// after a few missed heartbeats, so one registration may take at most
// max(RegisterInterval, 1s): a later kick then sends a fresher one.
// running ends when the node stops, cutting a registration in progress.
func (n *Node) registerLoop(running context.Context, addr string, kick <-chan struct{}, latest *atomic.Pointer[wire.RegisterBrokerRequest]) {
	var conn *wire.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		select {
		case <-n.stopCh:
			ctx, done := context.WithTimeout(context.Background(), max(n.cfg.RegisterInterval, time.Second))
			err := n.registerOne(ctx, &conn, addr, wire.CodeUnregisterBroker, &wire.UnregisterBrokerRequest{Group: n.cfg.Group, NodeID: n.cfg.NodeID})
			done()
			if err != nil {
				n.log.Debug("namesrv unregistration failed", "namesrv", addr, "error", err)
			}
			return
		case <-kick:
		}
		ctx, done := context.WithTimeout(running, max(n.cfg.RegisterInterval, time.Second))
		err := n.registerOne(ctx, &conn, addr, wire.CodeRegisterBroker, latest.Load())
		done()
		if err != nil {
			n.log.Debug("namesrv registration failed", "namesrv", addr, "error", err)
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

// registerOne sends one request to addr on *conn, dialing it first if it
// is missing or dead.
func (n *Node) registerOne(ctx context.Context, conn **wire.Conn, addr string, code uint16, req any) error {
	c := *conn
	if c != nil && c.Err() != nil {
		c.Close()
		c, *conn = nil, nil
	}
	if c == nil {
		var err error
		if c, err = wire.DialTLS(ctx, addr, 0, n.cfg.NameServerTLS); err != nil {
			return err
		}
		*conn = c
	}
	return c.Call(ctx, code, req, nil)
}
