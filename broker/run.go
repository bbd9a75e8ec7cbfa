package broker

import (
	"context"
	"crypto/tls"
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
	if n.acl != nil {
		out = append(out, loop{name: "acl-reload", run: n.runACLReload}) // acl.go: reloads the rules file
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
	addr  string       // bound by open unless ln is preset
	ln    net.Listener // preset (tests pre-bind 127.0.0.1:0) or bound by open
	tls   *tls.Config  // if set, open wraps ln with TLS (wrapTLS, raft_tls.go); serve sees plaintext
	serve func(ctx context.Context, ln net.Listener) error
}

// listeners lists the node's client-facing servers. Adding a protocol
// (RocketMQ remoting, the HTTP admin API) is one entry here: open binds
// every entry with an address or a preset listener, Run serves it, and
// closeStores closes it. An entry without either is off. An entry with
// tls set (an HTTP listener: tls: n.cfg.HTTPTLS) is served over TLS.
func (n *Node) listeners() []listener {
	return []listener{
		// The client port: rmq's protocol and RocketMQ remoting, told apart
		// per connection (remoting_adapter.go).
		{name: "rmq", addr: n.cfg.ClientListen, ln: n.cfg.ClientListener, tls: n.cfg.ClientTLS, serve: n.serveClientPort},
		// Prometheus /metrics over HTTP (metrics.go), HTTPS with HTTPTLS.
		{name: "metrics", addr: n.cfg.MetricsListen, ln: n.cfg.MetricsListener, tls: n.cfg.HTTPTLS, serve: n.serveMetrics},
	}
}

// bindListeners binds the listed listeners into n.lns (the rmq one is also
// n.clientLn, whose address the node registers).
func (n *Node) bindListeners() error {
	for _, l := range n.listeners() {
		if l.ln == nil && l.addr == "" {
			continue
		}
		if l.ln == nil {
			ln, err := net.Listen("tcp", l.addr)
			if err != nil {
				return fmt.Errorf("broker: %s listen %s: %w", l.name, l.addr, err)
			}
			l.ln = ln
		}
		if l.tls != nil {
			l.ln = n.wrapTLS(l.name, l.ln, l.tls)
		}
		n.lns = append(n.lns, l)
		if l.name == "rmq" {
			n.clientLn = l.ln
		}
	}
	return nil
}

// Run starts every loop and every listener, then waits until ctx is done,
// the node is stopped (Close, Shutdown or Abort), a listener fails or the
// CommitLog fails (a write or fsync error such as ENOSPC), and returns
// (the listener's or the CommitLog's error, or nil). It does not stop the node: the
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
	lns := n.lns
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
	case err := <-n.storeFailed: // retention.go, checkStore
		return err
	}
	return nil
}
