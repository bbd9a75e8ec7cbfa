package compat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// WriteTimeout bounds every frame write, so a client that stops reading
// cannot block a handler (or the server's shutdown) forever. A write that
// times out closes the connection.
const WriteTimeout = 10 * time.Second

// conn is the part shared by ServerConn and Client: serialized writes,
// the read loop, and the pending map that matches responses to Invoke
// calls by opaque. Requests in both directions share one connection; the
// opaques of requests a side sends come from its own counter.
type conn struct {
	nc       net.Conn
	maxFrame int
	logf     func(string, ...any)

	wmu     sync.Mutex    // serializes frame writes
	bw      *bufio.Writer // under wmu
	writers atomic.Int32  // frame writes started and not yet done: the last one flushes

	opaque atomic.Int32

	mu       sync.Mutex
	pending  map[int32]chan *Command // by opaque; each chan has room for the one response
	closed   bool
	closeErr error // why the connection closed

	closeOnce sync.Once
	done      chan struct{} // closed by close
}

func newConn(nc net.Conn, maxFrame int, logf func(string, ...any)) *conn {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &conn{nc: nc, maxFrame: maxFrame, logf: logf, bw: bufio.NewWriterSize(nc, 64<<10),
		pending: make(map[int32]chan *Command), done: make(chan struct{})}
}

var errClosedLocally = errors.New("closed locally")

// close closes the connection once, recording reason, and fails every
// pending call. It returns the net.Conn's Close error the first time.
func (c *conn) close(reason error) error {
	err := error(nil)
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.closeErr = reason
		c.mu.Unlock()
		err = c.nc.Close()
		close(c.done)
	})
	return err
}

// errClosed is the error calls return once the connection closed.
func (c *conn) errClosed() error {
	c.mu.Lock()
	reason := c.closeErr
	c.mu.Unlock()
	if reason == nil || errors.Is(reason, errClosedLocally) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, reason)
}

// writeFrame writes one encoded frame under the write lock with
// WriteTimeout. Frames written concurrently (the answers to a batch of
// sends committed together) share system calls: each goes into the
// buffer, and the last writer, the one no other is waiting behind,
// flushes. A failed write closes the connection (a partial frame would
// corrupt the stream).
func (c *conn) writeFrame(frame []byte) error {
	c.writers.Add(1)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	last := c.writers.Add(-1) == 0
	select {
	case <-c.done:
		return c.errClosed()
	default:
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(WriteTimeout))
	_, err := c.bw.Write(frame)
	if err == nil && last {
		err = c.bw.Flush()
	}
	if err != nil {
		c.close(fmt.Errorf("write: %w", err))
		return c.errClosed()
	}
	return nil
}

// send encodes and writes cmd.
func (c *conn) send(cmd *Command) error {
	frame, err := AppendCommand(nil, cmd)
	if err != nil {
		return err
	}
	return c.writeFrame(frame)
}

// invoke sends a copy of req as a request with a fresh opaque and, unless
// oneway, waits for the response, ctx, or the connection closing.
func (c *conn) invoke(ctx context.Context, req *Command, oneway bool) (*Command, error) {
	r := *req
	r.Flag &^= FlagResponse | FlagOneway
	r.Opaque = c.opaque.Add(1)
	if oneway {
		r.Flag |= FlagOneway
		return nil, c.send(&r)
	}
	ch := make(chan *Command, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, c.errClosed()
	}
	c.pending[r.Opaque] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, r.Opaque)
		c.mu.Unlock()
	}()
	if err := c.send(&r); err != nil {
		return nil, fmt.Errorf("compat: %s (opaque %d): %w", RequestName(r.Code), r.Opaque, err)
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("compat: %s (opaque %d): waiting for the response: %w", RequestName(r.Code), r.Opaque, ctx.Err())
	case <-c.done:
		return nil, fmt.Errorf("compat: %s (opaque %d): %w", RequestName(r.Code), r.Opaque, c.errClosed())
	}
}

// deliver completes the pending call a response answers.
func (c *conn) deliver(resp *Command) {
	c.mu.Lock()
	ch := c.pending[resp.Opaque]
	delete(c.pending, resp.Opaque)
	c.mu.Unlock()
	if ch == nil {
		c.logf("dropping a response with an unknown opaque", "remote", c.nc.RemoteAddr().String(),
			"opaque", resp.Opaque, "code", resp.Code)
		return
	}
	ch <- resp // room for one; the opaque was just removed, so never twice
}

// readLoop reads frames until an error: responses go to deliver, requests
// to onRequest, which returns false to stop. idle > 0 sets a read
// deadline before each frame.
func (c *conn) readLoop(idle time.Duration, onRequest func(*Command) bool) error {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		if idle > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		cmd, err := ReadCommand(br, c.maxFrame)
		if err != nil {
			return err
		}
		if cmd.IsResponse() {
			c.deliver(cmd)
			continue
		}
		if !onRequest(cmd) {
			return nil
		}
	}
}

// isClosedErr reports errors that just mean the connection went away.
func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, errClosedLocally)
}
