package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/internal/tlsconf"
)

// TLS on the node's listeners and its Raft transport. Config.ClientTLS
// wraps the client port, Config.HTTPTLS any HTTP listener, both through
// wrapTLS (run.go's listener.tls); Config.RaftTLS makes the Raft stream
// layer a mutually authenticated TLS one; Config.NameServerTLS dials the
// NameServers (register.go, namesrv_client.go). A node that starts
// without state asks its peers for their terms over the Raft transport
// (rejoin.go), so those queries are TLS too.

// streamLayer returns the Raft transport's stream layer over ln: plain
// TCP, or TLS when Config.RaftTLS is set.
func (n *Node) streamLayer(ln net.Listener, adv net.Addr) raft.StreamLayer {
	if n.cfg.RaftTLS == nil {
		return &streamLayer{Listener: ln, adv: adv}
	}
	return &tlsStreamLayer{Listener: n.wrapTLS("raft", ln, n.cfg.RaftTLS), adv: adv, cfg: n.cfg.RaftTLS}
}

// tlsStreamLayer is raft.StreamLayer over TLS with mutual authentication:
// the accepting end requires a certificate of the group's CA (ClientCAs,
// RequireAndVerifyClientCert) and the dialing end verifies the accepting
// one's against the same CA (RootCAs) and the host of the peer's Raft
// address. A node whose certificate another CA signed is refused at the
// handshake in both directions, so it can neither vote nor replicate.
type tlsStreamLayer struct {
	net.Listener // a tlsconf listener: each handshake runs in raft's per-connection goroutine
	adv          net.Addr
	cfg          *tls.Config
}

func (s *tlsStreamLayer) Addr() net.Addr { return s.adv }

// Dial connects to a peer and completes the handshake within timeout.
// With TLS 1.3 a peer that refuses this node's certificate says so on
// the connection's first read, which fails the RPC.
func (s *tlsStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return tlsconf.Dial(ctx, string(addr), s.cfg)
}

// wrapTLS serves ln over TLS with cfg, logging plaintext peers and failed
// handshakes (a refused certificate is where an operator looks first).
// Any listener of the node may use it: run.go does for every listener
// entry with tls set.
func (n *Node) wrapTLS(name string, ln net.Listener, cfg *tls.Config) net.Listener {
	log := n.log.Named("tls").With("listener", name)
	return tlsconf.NewListener(ln, cfg, tlsconf.ListenerConfig{
		OnPlaintext: func(remote net.Addr, _ byte) {
			log.Warn("refused a plaintext connection on a TLS port", "remote", remote.String())
		},
		OnHandshakeError: func(remote net.Addr, err error) {
			n.tlsRefused.Add(1)
			log.Warn("tls handshake failed", "remote", remote.String(), "error", err)
		},
	})
}

// validateTLS checks the TLS configs (Config.Validate).
func (c Config) validateTLS() []error {
	var errs []error
	hasCert := func(t *tls.Config) bool { return len(t.Certificates) > 0 || t.GetCertificate != nil }
	for _, l := range []struct {
		name string
		cfg  *tls.Config
	}{{"ClientTLS", c.ClientTLS}, {"HTTPTLS", c.HTTPTLS}} {
		if l.cfg != nil && !hasCert(l.cfg) {
			errs = append(errs, errors.New(l.name+" has no certificate to serve"))
		}
	}
	if r := c.RaftTLS; r != nil {
		if !hasCert(r) {
			errs = append(errs, errors.New("RaftTLS has no certificate: nodes authenticate each other"))
		}
		if r.ClientAuth != tls.RequireAndVerifyClientCert || r.ClientCAs == nil || r.RootCAs == nil {
			errs = append(errs, errors.New("RaftTLS must require and verify peer certificates against the group's CA "+
				"(ClientAuth RequireAndVerifyClientCert, ClientCAs and RootCAs set; tlsconf.Config.Mutual builds it)"))
		}
	}
	return errs
}
