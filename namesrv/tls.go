package namesrv

import (
	"crypto/tls"
	"net"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/internal/tlsconf"
)

// tlsListener serves ln over TLS (Config.TLS). Handshakes run in the
// goroutine that sniffs each connection's protocol (compat.Mux), so the
// protocol is told apart after the handshake and a silent client blocks
// no other; plaintext clients get a TLS alert and are closed.
func tlsListener(ln net.Listener, cfg *tls.Config, log hclog.Logger) net.Listener {
	log = log.Named("tls")
	return tlsconf.NewListener(ln, cfg, tlsconf.ListenerConfig{
		OnPlaintext: func(remote net.Addr, _ byte) {
			log.Warn("refused a plaintext connection on a TLS port", "remote", remote.String())
		},
		OnHandshakeError: func(remote net.Addr, err error) {
			log.Warn("tls handshake failed", "remote", remote.String(), "error", err)
		},
	})
}
