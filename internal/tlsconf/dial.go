package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// HandshakeError is a failed TLS handshake with the server at Addr; its
// message adds what is most likely wrong.
type HandshakeError struct {
	Addr string
	Err  error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("tls handshake with %s: %v%s", e.Addr, e.Err, Hint(e.Err))
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// Hint says in a few words what a handshake error most likely means
// ("" when it has nothing to add); it starts with " (".
func Hint(err error) string {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	switch {
	case errors.As(err, &ua):
		return " (the server's certificate is not signed by the CA given: check --tls-ca)"
	case errors.As(err, &hn):
		return " (the server's certificate does not name the address dialed)"
	case errors.As(err, &rh):
		return " (the server does not speak TLS: is TLS off on that port?)"
	case errors.As(err, &ae) || isRemoteAlert(err):
		return " (the server refused this client's certificate, or it needs one: check --tls-cert/--tls-key)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return " (the server closed the connection: is TLS off on that port?)"
	}
	return ""
}

// isRemoteAlert reports whether err is an alert the peer sent (crypto/tls
// keeps that type unexported; its text starts "remote error: tls:").
func isRemoteAlert(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s := e.Error(); len(s) >= 17 && s[:17] == "remote error: tls" {
			return true
		}
	}
	return false
}

// Dial connects to addr over TCP and completes a TLS handshake with cfg
// before returning. An empty cfg.ServerName is set to addr's host. ctx
// bounds the dial and the handshake.
func Dial(ctx context.Context, addr string, cfg *tls.Config) (*tls.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return Client(ctx, nc, addr, cfg)
}

// Client runs a client handshake on nc, dialed to addr; it closes nc if
// the handshake fails.
func Client(ctx context.Context, nc net.Conn, addr string, cfg *tls.Config) (*tls.Conn, error) {
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, &HandshakeError{Addr: addr, Err: err}
	}
	return tc, nil
}
