package compat

import (
	"context"
	"errors"
	"net"
	"time"
)

// Protocol is what Sniff found on a connection.
type Protocol int

// Protocols.
const (
	ProtoUnknown Protocol = iota
	ProtoRMQ
	ProtoRemoting
)

// SniffLen is how many bytes Sniff needs.
const SniffLen = 10

// Sniff classifies the first SniffLen bytes of a connection.
func Sniff(b []byte) Protocol { return ProtoUnknown }

// MuxConfig configures a Mux.
type MuxConfig struct {
	SniffTimeout time.Duration // default 10 s: a connection that sends nothing is closed
	Logf         func(string, ...any)
}

// Mux splits one listener into rmq and remoting listeners.
type Mux struct{}

// NewMux returns a Mux over ln.
func NewMux(ln net.Listener, cfg MuxConfig) *Mux { return &Mux{} }

// Listener returns the sub-listener of p.
func (m *Mux) Listener(p Protocol) net.Listener { return nil }

// Run accepts on ln until ctx ends or ln fails.
func (m *Mux) Run(ctx context.Context) error { return errors.New("compat: not implemented yet") }
