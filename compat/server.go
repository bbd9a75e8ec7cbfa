package compat

import (
	"context"
	"errors"
	"net"
	"time"
)

// Handler handles one request and returns its response; nil sends none.
type Handler func(ctx context.Context, c *ServerConn, req *Command) *Command

// ServerConfig configures Serve.
type ServerConfig struct {
	MaxFrame    int                              // default DefaultMaxFrame
	MaxInflight int                              // concurrently handled requests per connection, default 1024
	IdleTimeout time.Duration                    // close a connection silent this long; default 120 s
	Logf        func(msg string, keyvals ...any) // connection-level problems; default none
	OnOpen      func(c *ServerConn)
	OnClose     func(c *ServerConn) // once, after the connection closed and all its handlers returned
}

// ServerConn is one accepted remoting connection.
type ServerConn struct{}

// Serve accepts on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, h Handler, cfg ServerConfig) error {
	return errors.New("compat: Serve not implemented yet")
}

// RemoteAddr is the peer's address.
func (c *ServerConn) RemoteAddr() string { return "" }

// ID is unique per server process.
func (c *ServerConn) ID() uint64 { return 0 }

// Close closes the connection.
func (c *ServerConn) Close() error { return nil }

// Done is closed when the connection has closed.
func (c *ServerConn) Done() <-chan struct{} { return nil }

// Invoke sends a server-initiated request and waits for the response.
func (c *ServerConn) Invoke(ctx context.Context, req *Command) (*Command, error) {
	return nil, errors.New("compat: not implemented yet")
}

// InvokeOneway sends a oneway request.
func (c *ServerConn) InvokeOneway(req *Command) error { return errors.New("compat: not implemented yet") }
