package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Error is an error response decoded from the wire, or one a handler
// returns to be sent as such.
type Error struct {
	Code uint16
	ErrorBody
}

func (e *Error) Error() string {
	name := Info(e.Code).Name
	if e.Message == "" {
		return fmt.Sprintf("%s (code %d)", name, e.Code)
	}
	return fmt.Sprintf("%s (code %d): %s", name, e.Code, e.Message)
}

// Errorf builds an *Error with a formatted message.
func Errorf(code uint16, format string, args ...any) *Error {
	return &Error{Code: code, ErrorBody: ErrorBody{Message: fmt.Sprintf(format, args...)}}
}

// ErrConnClosed means the connection closed before a response arrived.
var ErrConnClosed = errors.New("wire: connection closed")

// ErrNotRMQ: the peer's first bytes are not an rmq frame header, so it is
// some other server (HTTP, a RocketMQ remoting port, ...). The connection
// is closed; retrying the same address cannot help.
var ErrNotRMQ = errors.New("wire: not the rmq protocol")

// NotRMQError names the server and what it sent instead of a frame.
type NotRMQError struct {
	Addr   string
	Prefix []byte // its first bytes
}

func (e *NotRMQError) Error() string {
	return fmt.Sprintf("the server at %s does not speak the rmq protocol (it sent %q)", e.Addr, e.Prefix)
}

func (e *NotRMQError) Unwrap() error { return ErrNotRMQ }

// Conn is the client side of a connection: many concurrent Calls share it,
// matched to responses by request ID. A reader goroutine, started by Dial
// and ended by Close or a connection error, owns the read side.
type Conn struct {
	nc       net.Conn
	maxFrame int

	wmu chan struct{} // a one-slot semaphore guarding bw, so waiting for it can end with a ctx
	bw  *bufio.Writer

	mu      sync.Mutex
	pending map[uint64]chan Frame
	err     error // set once the connection is dead

	nextID atomic.Uint64
	done   chan struct{}

	// creds, if set, sign every request (SetCredentials).
	creds atomic.Pointer[signer]

	// handler answers requests the server sends on this connection
	// (transaction check-backs, pushed replies); nil answers them
	// CodeUnknownRequest.
	handler atomic.Pointer[ClientHandler]
}

// ClientHandler answers a request a server sent to a client: its result
// is encoded as the response body (an error as an error response, a
// *Error with its code). It runs on its own goroutine per request.
type ClientHandler func(ctx context.Context, code uint16, body []byte) (any, error)

// SetHandler installs the handler for server-initiated requests. Set it
// before telling the server this connection takes them.
func (c *Conn) SetHandler(h ClientHandler) { c.handler.Store(&h) }

// signer is a Conn's credentials, with the secret as bytes.
type signer struct {
	accessKey string
	s         *Signer
}

// SetCredentials makes c sign every request it sends from now on (an
// empty AccessKey stops signing). Call it after Dial, before the first
// request.
func (c *Conn) SetCredentials(cr Credentials) {
	if cr.AccessKey == "" {
		c.creds.Store(nil)
		return
	}
	c.creds.Store(&signer{accessKey: cr.AccessKey, s: NewSigner([]byte(cr.SecretKey))})
}

// auth signs a request, or returns nil when c has no credentials.
func (c *Conn) auth(code uint16, body []byte) *Auth {
	s := c.creds.Load()
	if s == nil {
		return nil
	}
	ts := time.Now().UnixMilli()
	return &Auth{AccessKey: s.accessKey, Timestamp: ts, Signature: s.s.Sign(code, ts, body)}
}

// Dial connects to addr. maxFrame <= 0 means DefaultMaxFrame.
func Dial(ctx context.Context, addr string, maxFrame int) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return newConn(nc, maxFrame), nil
}

// newConn starts the reader of a dialed connection.
func newConn(nc net.Conn, maxFrame int) *Conn {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	c := &Conn{
		nc:       nc,
		maxFrame: maxFrame,
		bw:       bufio.NewWriterSize(nc, 64<<10),
		pending:  make(map[uint64]chan Frame),
		done:     make(chan struct{}),
		wmu:      make(chan struct{}, 1),
	}
	go c.readLoop()
	return c
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() string { return c.nc.RemoteAddr().String() }

// Done is closed when the connection is dead.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection died (nil while alive).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection; pending calls fail with ErrConnClosed.
func (c *Conn) Close() error {
	c.fail(ErrConnClosed)
	<-c.done
	return nil
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		c.nc.Close()
	}
	c.mu.Unlock()
}

func (c *Conn) readLoop() {
	defer close(c.done)
	br := bufio.NewReaderSize(c.nc, 64<<10)
	first := true
	for {
		if first {
			first = false
			if err := c.checkPeer(br); err != nil {
				c.fail(err)
				break
			}
		}
		f, err := ReadFrame(br, c.maxFrame)
		if err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrConnClosed, err))
			break
		}
		if !f.IsResponse() {
			go c.serve(f) // a server-initiated request; ends when answered
			continue
		}
		c.mu.Lock()
		ch, ok := c.pending[f.ID]
		delete(c.pending, f.ID)
		c.mu.Unlock()
		if ok {
			ch <- f
		}
	}
	c.mu.Lock()
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// serve answers one server-initiated request with the handler.
func (c *Conn) serve(f Frame) {
	var resp any
	err := error(&Error{Code: CodeUnknownRequest, ErrorBody: ErrorBody{Message: fmt.Sprintf("this client takes no request %d", f.Code)}})
	if h := c.handler.Load(); h != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err = (*h)(ctx, f.Code, f.Body)
		cancel()
	}
	if f.IsOneway() {
		return
	}
	code, body := responseBody(resp, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.write(ctx, Frame{Flags: FlagResponse, Code: code, ID: f.ID, Body: body})
}

// checkPeer looks at the server's first bytes: an rmq frame starts with a
// length within the frame limit and the version byte. Anything else (an
// HTTP status line, a RocketMQ remoting frame) is another protocol, which
// gets an error naming the server instead of "frame too large". A peer
// that closes or fails before sending 5 bytes is left to ReadFrame.
func (c *Conn) checkPeer(br *bufio.Reader) error {
	b, err := br.Peek(4 + 1)
	if err != nil {
		return nil
	}
	n := binary.BigEndian.Uint32(b)
	if n >= HeaderSize && uint64(n) <= uint64(c.maxFrame) && b[4] == Version {
		return nil
	}
	if tlsRequired(br) {
		return &tlsRequiredError{addr: c.nc.RemoteAddr().String()}
	}
	prefix, _ := br.Peek(min(br.Buffered(), 16))
	return &NotRMQError{Addr: c.nc.RemoteAddr().String(), Prefix: append([]byte(nil), prefix...)}
}

// Call sends a request and decodes the response into resp (which may be
// nil). An error response is returned as *Error. If ctx ends first the
// call returns ctx.Err() and the late response is dropped.
func (c *Conn) Call(ctx context.Context, code uint16, req, resp any) error {
	p, err := c.Start(ctx, code, req)
	if err != nil {
		return err
	}
	return p.Wait(ctx, resp)
}

// Pending is a request Start wrote whose response is not yet read.
type Pending struct {
	c  *Conn
	id uint64
	ch chan Frame
}

// Start writes a request and returns without waiting for its response,
// which Wait then reads: a client pipelines requests this way, and
// requests started one after the other reach the server in that order.
// Every Pending must be waited for (or its Wait's ctx ended), or its
// response slot stays until the connection closes.
func (c *Conn) Start(ctx context.Context, code uint16, req any) (*Pending, error) {
	eb, err := encode(req)
	if err != nil {
		return nil, fmt.Errorf("wire: encode request %d: %w", code, err)
	}
	id := c.nextID.Add(1)
	ch := make(chan Frame, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		eb.release()
		return nil, err
	}
	c.pending[id] = ch
	c.mu.Unlock()
	err = c.write(ctx, Frame{Code: code, ID: id, Body: eb.bytes(), Auth: c.auth(code, eb.bytes())})
	eb.release() // write copied or sent the bytes
	if err != nil {
		c.forget(id)
		return nil, err
	}
	return &Pending{c: c, id: id, ch: ch}, nil
}

// Wait decodes the response of p's request into resp (which may be nil),
// as Call does. If ctx ends first it returns ctx.Err() and the late
// response is dropped.
func (p *Pending) Wait(ctx context.Context, resp any) error {
	select {
	case f, ok := <-p.ch:
		if !ok {
			return p.c.Err()
		}
		return decodeResponse(f, resp)
	case <-ctx.Done():
		p.c.forget(p.id)
		return ctx.Err()
	}
}

// Send sends a one-way request: no response will come.
func (c *Conn) Send(code uint16, req any) error {
	eb, err := encode(req)
	if err != nil {
		return fmt.Errorf("wire: encode request %d: %w", code, err)
	}
	defer eb.release()
	return c.write(context.Background(), Frame{Flags: FlagOneway, Code: code, ID: c.nextID.Add(1), Body: eb.bytes(), Auth: c.auth(code, eb.bytes())})
}

func (c *Conn) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// write sends f. It waits for the connection's writer no longer than ctx
// allows, and bounds the write itself by ctx's deadline (at most 30 s): a
// write that does not finish in time fails the connection (a partial
// frame would corrupt the stream), so a peer that stopped reading costs a
// caller its own deadline, not 30 s.
func (c *Conn) write(ctx context.Context, f Frame) error {
	if f.Auth != nil && len(f.Auth.AccessKey) > MaxAccessKey {
		return fmt.Errorf("wire: access key of %d bytes, limit %d", len(f.Auth.AccessKey), MaxAccessKey)
	}
	if n := len(f.Body) + HeaderSize + authLen(f.Auth); n > c.maxFrame {
		return fmt.Errorf("%w: request of %d bytes, limit %d", ErrFrameTooLarge, n, c.maxFrame)
	}
	if err := ctx.Err(); err != nil {
		return err // nothing written: the connection stays usable
	}
	select {
	case c.wmu <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wire: waiting to write: %w", ctx.Err())
	case <-c.done:
		return c.Err()
	}
	defer func() { <-c.wmu }()
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetWriteDeadline(deadline)
	if err := writeFrame(c.bw, f); err != nil {
		c.fail(fmt.Errorf("%w: %w", ErrConnClosed, err))
		return c.Err()
	}
	return nil
}

// writeFrame writes f and flushes, without copying the body.
func writeFrame(bw *bufio.Writer, f Frame) error {
	h := header(f)
	if _, err := bw.Write(h[:]); err != nil {
		return err
	}
	if f.Auth != nil {
		var ab [1 + MaxAccessKey + 8 + SignatureSize]byte
		if _, err := bw.Write(appendAuth(ab[:0], f.Auth)); err != nil {
			return err
		}
	}
	if _, err := bw.Write(f.Body); err != nil {
		return err
	}
	return bw.Flush()
}

func decodeResponse(f Frame, resp any) error {
	if f.Code != CodeOK {
		e := &Error{Code: f.Code}
		if err := Unmarshal(f.Body, &e.ErrorBody); err != nil {
			e.Message = "undecodable error body"
		}
		return e
	}
	if resp == nil {
		return nil
	}
	if err := Unmarshal(f.Body, resp); err != nil {
		return fmt.Errorf("wire: decode response: %w", err)
	}
	return nil
}
