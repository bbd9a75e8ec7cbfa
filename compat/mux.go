package compat

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// Protocol is what Sniff found at the start of a connection.
type Protocol int

// Protocols a Mux tells apart.
const (
	ProtoUnknown Protocol = iota
	ProtoRMQ
	ProtoRemoting
)

func (p Protocol) String() string {
	switch p {
	case ProtoRMQ:
		return "rmq"
	case ProtoRemoting:
		return "remoting"
	default:
		return "unknown"
	}
}

// SniffLen is how many leading bytes Sniff looks at.
const SniffLen = 10

// wireHeaderSize is the fixed part of an rmq frame after its length.
const wireHeaderSize = 12

// Sniff classifies the first SniffLen bytes of a connection (fewer bytes
// give ProtoUnknown). See the package documentation for the rule.
func Sniff(b []byte) Protocol {
	if len(b) < SniffLen {
		return ProtoUnknown
	}
	total := binary.BigEndian.Uint32(b[0:])
	hl := uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7])
	idHigh := binary.BigEndian.Uint16(b[8:])
	switch {
	case b[4] == SerializeJSON && b[8] == '{' && hl >= 2 && uint64(hl)+4 <= uint64(total):
		return ProtoRemoting
	case b[4] == SerializeBinary && idHigh != 0 && hl >= binaryFixedLen && uint64(hl)+4 <= uint64(total):
		return ProtoRemoting
	case b[4] == wire.Version && idHigh == 0 && total >= wireHeaderSize:
		return ProtoRMQ
	}
	return ProtoUnknown
}

// MuxConfig configures a Mux.
type MuxConfig struct {
	SniffTimeout time.Duration        // default 10 s: a connection that sends nothing this long is closed
	MaxFrame     int                  // a first frame claiming more is refused at once; default DefaultMaxFrame
	Logf         func(string, ...any) // unknown protocols and sniff failures; default none
}

// ruledOut reports whether the first bytes b (fewer than SniffLen) already
// rule out both protocols, so the connection can be closed without
// waiting for the rest: a length prefix no frame of either protocol has
// (below the smallest, 6 bytes, or above maxFrame) or a fifth byte that is
// neither a serialize type nor wire.Version.
func ruledOut(b []byte, maxFrame int) bool {
	if len(b) >= 4 {
		if total := binary.BigEndian.Uint32(b); total < 6 || uint64(total) > uint64(maxFrame) {
			return true
		}
	}
	return len(b) >= 5 && b[4] != SerializeJSON && b[4] != SerializeBinary && b[4] != wire.Version
}

// Mux serves rmq's own protocol and RocketMQ remoting on one listener,
// handing each connection to the sub-listener of the protocol its first
// bytes show.
type Mux struct {
	ln   net.Listener
	cfg  MuxConfig
	subs [3]*subListener // indexed by Protocol; [ProtoUnknown] unused
}

// NewMux returns a Mux over ln. Call Run to start it.
func NewMux(ln net.Listener, cfg MuxConfig) *Mux {
	if cfg.SniffTimeout <= 0 {
		cfg.SniffTimeout = 10 * time.Second
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	m := &Mux{ln: ln, cfg: cfg}
	for _, p := range []Protocol{ProtoRMQ, ProtoRemoting} {
		m.subs[p] = &subListener{addr: ln.Addr(), conns: make(chan net.Conn), closed: make(chan struct{})}
	}
	return m
}

// Listener returns the listener whose Accept yields p's connections
// (ProtoRMQ or ProtoRemoting; nil for anything else). The bytes read for
// sniffing are replayed to the connection's reader. Its Addr is the
// Mux's listener's; its Close makes its Accept return net.ErrClosed and
// closes later connections of p.
func (m *Mux) Listener(p Protocol) net.Listener {
	if p != ProtoRMQ && p != ProtoRemoting {
		return nil
	}
	return m.subs[p]
}

// Run accepts on the listener until ctx ends or it fails, sniffing each
// connection in its own goroutine (so a silent client does not block
// others), then closes the listener and both sub-listeners and waits for
// the sniffing goroutines. Unknown protocols are closed and logged with
// their first bytes. It returns nil when ctx ended, else the accept error.
func (m *Mux) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { m.ln.Close() })
	defer stop()
	var (
		wg  sync.WaitGroup
		err error
	)
	for {
		nc, aerr := m.ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil && !errors.Is(aerr, net.ErrClosed) {
				err = fmt.Errorf("compat: mux accept: %w", aerr)
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.route(ctx, nc)
		}()
	}
	m.ln.Close()
	cancel()
	wg.Wait()
	for _, p := range []Protocol{ProtoRMQ, ProtoRemoting} {
		m.subs[p].Close()
	}
	return err
}

// route sniffs nc and hands it to its sub-listener, or closes it.
func (m *Mux) route(ctx context.Context, nc net.Conn) {
	stop := context.AfterFunc(ctx, func() { nc.Close() }) // unblocks the sniff read at shutdown
	buf := make([]byte, SniffLen)
	_ = nc.SetReadDeadline(time.Now().Add(m.cfg.SniffTimeout))
	n, err := 0, error(nil)
	for n < SniffLen && err == nil && !ruledOut(buf[:n], m.cfg.MaxFrame) {
		var k int
		k, err = nc.Read(buf[n:])
		n += k
	}
	if n < SniffLen && err == nil {
		err = fmt.Errorf("the first %d bytes are no frame of either protocol", n)
	} else if n < SniffLen && errors.Is(err, io.EOF) && n > 0 {
		err = io.ErrUnexpectedEOF
	}
	_ = nc.SetReadDeadline(time.Time{})
	if !stop() {
		nc.Close()
		return
	}
	if err != nil && n >= 3 && buf[0] == 0x16 && buf[1] == 0x03 { // a TLS handshake record
		m.cfg.Logf("closing a TLS connection: TLS is off on this port", "remote", nc.RemoteAddr().String())
		nc.Close()
		return
	}
	if err != nil {
		if n > 0 || !errors.Is(err, io.EOF) {
			m.cfg.Logf("closing connection before its protocol was known", "remote", nc.RemoteAddr().String(),
				"first-bytes", hex.EncodeToString(buf[:n]), "error", err)
		}
		nc.Close()
		return
	}
	p := Sniff(buf)
	if p == ProtoUnknown {
		m.cfg.Logf("closing connection of unknown protocol", "remote", nc.RemoteAddr().String(),
			"first-bytes", hex.EncodeToString(buf))
		nc.Close()
		return
	}
	sub := m.subs[p]
	sc := &sniffedConn{Conn: nc, prefix: buf}
	select {
	case sub.conns <- sc:
	case <-sub.closed:
		nc.Close()
	case <-ctx.Done():
		nc.Close()
	}
}

// subListener is one protocol's share of a Mux.
type subListener struct {
	addr      net.Addr
	conns     chan net.Conn // unbuffered: a connection is handed over only to a waiting Accept
	closeOnce sync.Once
	closed    chan struct{}
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *subListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *subListener) Addr() net.Addr { return l.addr }

// sniffedConn replays the sniffed prefix before reading the connection.
type sniffedConn struct {
	net.Conn
	mu     sync.Mutex
	prefix []byte
}

func (c *sniffedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}
