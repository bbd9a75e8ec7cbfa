package broker

import (
	"context"
	"fmt"
	"net"
)

// Everything a node runs, in one place: the loops every node runs, and
// the listeners that serve clients. New builds the node (storage, Raft,
// bound listeners); Run starts what is listed here. Leader-only services
// are listed in leader_services.go, the operations in node_api.go.

// loop is a goroutine every node runs from Run until the node stops
// (stopCh). Each loop defers n.wg.Done().
type loop struct {
	name string
	run  func()
}

// loops lists the node's goroutines.
func (n *Node) loops() []loop {
	out := []loop{
		{name: "batcher", run: n.runBatcher},         // batcher.go: packs sends into entries
		{name: "completer", run: n.runCompleter},     // batcher.go: answers senders in order
		{name: "leadership", run: n.watchLeadership}, // leader.go: leader sessions and services
		{name: "maintenance", run: n.runMaintenance}, // retention.go: CQ sync, segment purge
	}
	if len(n.cfg.NameServers) > 0 {
		out = append(out, loop{name: "registration", run: n.runRegistration}) // register.go
	}
	if n.guard != nil {
		out = append(out, loop{name: "rejoin", run: n.runRejoin}) // rejoin.go: ends once the guard is off
	}
	return out
}

// listener is one client-facing server: a listener New bound and the
// protocol adapter that serves it until ctx ends (the node stops).
type listener struct {
	name  string
	ln    net.Listener
	serve func(ctx context.Context, ln net.Listener) error
}

// listeners lists the node's client-facing servers. Adding a protocol
// (RocketMQ remoting, the HTTP admin API) is one entry here, with its
// listener bound in open and closed in closeStores.
func (n *Node) listeners() []listener {
	var out []listener
	if n.clientLn != nil {
		out = append(out, listener{name: "rmq", ln: n.clientLn, serve: n.serveWire}) // wire_adapter.go
	}
	return out
}

// Run starts every loop and every listener, then waits until ctx is done,
// the node is stopped (Close, Shutdown or Abort) or a listener fails, and
// returns (the listener's error, or nil). It does not stop the node: the
// node keeps serving until Close(ctx), the graceful path (leadership
// transfer first), or Shutdown or Abort. Run may be called once; after the
// node was stopped it returns ErrClosed.
func (n *Node) Run(ctx context.Context) error {
	n.runMu.Lock()
	if n.stopped {
		n.runMu.Unlock()
		return ErrClosed
	}
	if n.started {
		n.runMu.Unlock()
		return fmt.Errorf("%w: Run called twice", ErrInvalidArgument)
	}
	n.started = true
	for _, l := range n.loops() {
		n.wg.Add(1)
		go l.run()
	}
	lns := n.listeners()
	failed := make(chan error, len(lns))
	lctx, cancel := context.WithCancel(context.Background())
	n.wg.Add(1 + len(lns))
	go func() { defer n.wg.Done(); <-n.stopCh; cancel() }() // listeners end with the node
	for _, l := range lns {
		go func() {
			defer n.wg.Done()
			if err := l.serve(lctx, l.ln); err != nil && lctx.Err() == nil {
				n.log.Error("listener stopped", "listener", l.name, "addr", l.ln.Addr(), "error", err)
				failed <- fmt.Errorf("broker: %s listener on %s: %w", l.name, l.ln.Addr(), err)
			}
		}()
	}
	n.runMu.Unlock()
	select {
	case <-ctx.Done():
	case <-n.stopCh:
	case err := <-failed:
		return err
	}
	return nil
}
