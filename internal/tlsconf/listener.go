package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// recordHandshake is the first byte of a TLS connection (a handshake
// record holding the ClientHello).
const recordHandshake = 0x16

// alertUnexpected is a fatal unexpected_message alert in a TLS 1.0
// record (the version any TLS client parses before it negotiated one):
// what a TLS server answers to bytes that are no TLS.
var alertUnexpected = []byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x0a}

// httpRefusal answers a plaintext HTTP request on a TLS port, as Go's
// net/http does.
const httpRefusal = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" +
	"Client sent an HTTP request to an HTTPS server.\n"

// ErrPlaintext is matched by the error a server connection's Read returns
// when the peer sent plaintext to a TLS port (it matches io.EOF as well,
// as does a failed handshake's: see connError).
var ErrPlaintext = errors.New("tlsconf: plaintext connection on a TLS port")

// ListenerConfig tunes NewListener; the zero value is fine.
type ListenerConfig struct {
	// OnPlaintext, if set, is told of each plaintext connection refused
	// (for a log line); it must not block.
	OnPlaintext func(remote net.Addr, first byte)
	// OnHandshakeError, if set, is told of each failed handshake (a
	// refused certificate, a peer that hung up); it must not block.
	OnHandshakeError func(remote net.Addr, err error)
	// HandshakeTimeout bounds a handshake run while the connection has no
	// read deadline. Default 10s.
	HandshakeTimeout time.Duration
}

// NewListener returns a listener whose connections speak TLS with cfg
// over ln's. See the package documentation for when the handshake runs
// and how plaintext peers are refused. Closing it closes ln.
func NewListener(ln net.Listener, cfg *tls.Config, lc ListenerConfig) net.Listener {
	if lc.HandshakeTimeout <= 0 {
		lc.HandshakeTimeout = 10 * time.Second
	}
	return &listener{Listener: ln, cfg: cfg, lc: lc}
}

type listener struct {
	net.Listener
	cfg *tls.Config
	lc  ListenerConfig
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{raw: nc, cfg: l.cfg, lc: &l.lc}, nil
}

// serverConn is one accepted connection: raw until its first Read or
// Write has checked the first byte and run the handshake.
type serverConn struct {
	raw net.Conn
	cfg *tls.Config
	lc  *ListenerConfig

	once sync.Once
	err  error // the handshake's outcome, once done

	mu       sync.Mutex
	tc       *tls.Conn // set once the first byte was a handshake record
	deadline bool      // a read deadline was set on the connection
}

// ConnectionState is the TLS state after the handshake (zero before).
func (c *serverConn) ConnectionState() tls.ConnectionState {
	c.mu.Lock()
	tc := c.tc
	c.mu.Unlock()
	if tc == nil {
		return tls.ConnectionState{}
	}
	return tc.ConnectionState()
}

func (c *serverConn) handshake() error {
	c.once.Do(func() { c.err = c.doHandshake() })
	return c.err
}

func (c *serverConn) doHandshake() error {
	c.mu.Lock()
	own := !c.deadline // no deadline of the caller's: bound the handshake ourselves
	c.mu.Unlock()
	if own {
		_ = c.raw.SetReadDeadline(time.Now().Add(c.lc.HandshakeTimeout))
		defer func() { _ = c.raw.SetReadDeadline(time.Time{}) }()
	}
	var first [1]byte
	if _, err := io.ReadFull(c.raw, first[:]); err != nil {
		return err
	}
	if first[0] != recordHandshake {
		if c.lc.OnPlaintext != nil {
			c.lc.OnPlaintext(c.raw.RemoteAddr(), first[0])
		}
		refuse(c.raw, first[0])
		return &connError{err: fmt.Errorf("%w (from %s)", ErrPlaintext, c.raw.RemoteAddr())}
	}
	tc := tls.Server(&prefixConn{Conn: c.raw, prefix: first[:]}, c.cfg)
	c.mu.Lock()
	c.tc = tc
	c.mu.Unlock()
	if err := tc.Handshake(); err != nil {
		c.raw.Close()
		if c.lc.OnHandshakeError != nil {
			c.lc.OnHandshakeError(c.raw.RemoteAddr(), err)
		}
		return &connError{err: fmt.Errorf("tls handshake with %s: %w", c.raw.RemoteAddr(), err)}
	}
	return nil
}

// connError is why a connection ended before its first byte of data (a
// plaintext peer, a failed handshake). It also matches io.EOF: the
// listener reported it already (OnPlaintext, OnHandshakeError), so servers
// that read the connection may treat it as a peer that hung up.
type connError struct{ err error }

func (e *connError) Error() string   { return e.err.Error() }
func (e *connError) Unwrap() []error { return []error{e.err, io.EOF} }

// refuse answers a plaintext peer and closes nc: the answer, then a
// half-close, then what the peer sent is drained (for at most a second)
// so that the close does not reset the connection before the peer read
// the answer.
func refuse(nc net.Conn, first byte) {
	_ = nc.SetDeadline(time.Now().Add(time.Second))
	if first >= 'A' && first <= 'Z' {
		_, _ = io.WriteString(nc, httpRefusal)
	} else {
		_, _ = nc.Write(alertUnexpected)
	}
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
	nc.Close()
}

func (c *serverConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.tc.Read(p)
}

func (c *serverConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.tc.Write(p)
}

// Close sends close_notify after a completed handshake, else just closes.
func (c *serverConn) Close() error {
	c.mu.Lock()
	tc := c.tc
	c.mu.Unlock()
	if tc != nil {
		return tc.Close()
	}
	return c.raw.Close()
}

func (c *serverConn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *serverConn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

func (c *serverConn) SetDeadline(t time.Time) error {
	c.noteDeadline(t)
	return c.raw.SetDeadline(t)
}

func (c *serverConn) SetReadDeadline(t time.Time) error {
	c.noteDeadline(t)
	return c.raw.SetReadDeadline(t)
}

func (c *serverConn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

func (c *serverConn) noteDeadline(t time.Time) {
	c.mu.Lock()
	c.deadline = !t.IsZero()
	c.mu.Unlock()
}

// prefixConn replays bytes already read before reading the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
