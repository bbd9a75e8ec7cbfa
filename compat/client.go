package compat

import (
	"context"
	"errors"
)

// Client is a small remoting client for rmq's own tests and tools.
type Client struct{}

// Dial connects to addr.
func Dial(ctx context.Context, addr string) (*Client, error) {
	return nil, errors.New("compat: not implemented yet")
}

// Call sends req and waits for its response.
func (c *Client) Call(ctx context.Context, req *Command) (*Command, error) {
	return nil, errors.New("compat: not implemented yet")
}

// Oneway sends req without waiting.
func (c *Client) Oneway(req *Command) error { return errors.New("compat: not implemented yet") }

// OnRequest sets the handler of server-initiated requests.
func (c *Client) OnRequest(h func(req *Command) *Command) {}

// Close closes the client.
func (c *Client) Close() error { return nil }
