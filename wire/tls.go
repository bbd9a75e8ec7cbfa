package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/rmq-dev/rmq/internal/tlsconf"
)

// ErrTLSRequired: the server answered the first request with a TLS
// alert, so its port takes TLS only and this client dialed in plaintext.
// A *NotRMQError for it also matches ErrNotRMQ (retrying cannot help).
var ErrTLSRequired = errors.New("wire: the server requires TLS")

// ErrTLSHandshake wraps every failed TLS handshake of DialTLS (wrong CA,
// a plaintext server, a refused client certificate); the error is a
// *tlsconf.HandshakeError whose message says what is likely wrong.
var ErrTLSHandshake = errors.New("wire: TLS handshake failed")

// DialTLS is Dial over TLS with cfg; a nil cfg dials in plaintext, as
// Dial. The handshake completes before it returns (ctx bounds both), so
// a certificate problem is the dial's error, matching ErrTLSHandshake.
// An empty cfg.ServerName is the host of addr.
func DialTLS(ctx context.Context, addr string, maxFrame int, cfg *tls.Config) (*Conn, error) {
	if cfg == nil {
		return Dial(ctx, addr, maxFrame)
	}
	tc, err := tlsconf.Dial(ctx, addr, cfg)
	if err != nil {
		var he *tlsconf.HandshakeError
		if errors.As(err, &he) {
			return nil, fmt.Errorf("%w: %w", ErrTLSHandshake, err)
		}
		return nil, err
	}
	return newConn(tc, maxFrame), nil
}

// tlsRequired reports whether the first bytes from a server are a TLS
// alert record (content type 21, version 3.x): what a TLS port answers a
// plaintext client (see internal/tlsconf).
func tlsRequired(br *bufio.Reader) bool {
	b, err := br.Peek(3)
	return err == nil && b[0] == 0x15 && b[1] == 0x03 && b[2] <= 0x04
}

// tlsRequiredError is checkPeer's answer to a TLS alert.
type tlsRequiredError struct{ addr string }

func (e *tlsRequiredError) Error() string {
	return fmt.Sprintf("the server at %s requires TLS (it answered with a TLS alert): give the client the CA "+
		"(rmq --tls-ca or RMQ_TLS_CA; the client config's TLS)", e.addr)
}

func (e *tlsRequiredError) Unwrap() []error { return []error{ErrTLSRequired, ErrNotRMQ} }
