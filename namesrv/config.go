package namesrv

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/wire"
)

// Limits on what a registration may announce.
const (
	// DefaultHeartbeat is assumed for a registration whose HeartbeatMillis
	// is 0 (RocketMQ's registerNameServerPeriod, 30s).
	DefaultHeartbeat = 30 * time.Second
	// MaxHeartbeat is the largest accepted HeartbeatMillis (one hour).
	MaxHeartbeat = time.Hour
	// maxExpiryFactor keeps ExpiryFactor x MaxHeartbeat far from overflow.
	maxExpiryFactor = 1000
)

// Config configures a NameServer. Zero fields take the defaults of
// DefaultConfig when passed to New.
type Config struct {
	// Listen is the TCP address to bind. Default "127.0.0.1:9876"
	// (RocketMQ's NameServer port). Ignored when Listener is set.
	Listen string
	// Listener, if set, is used instead of binding Listen (tests pre-bind
	// 127.0.0.1:0). Run closes it when it returns.
	Listener net.Listener
	// MetricsListen is the address of the HTTP listener serving Prometheus
	// metrics on /metrics (metrics.go). Empty (and no MetricsListener)
	// means off.
	MetricsListen string
	// MetricsListener, if set, is used instead of binding MetricsListen.
	// Run closes it when it returns.
	MetricsListener net.Listener
	// ExpiryFactor: a node expires after ExpiryFactor x its announced
	// heartbeat interval without a registration. Default 3.
	ExpiryFactor int
	// MinExpiry is the floor of a node's expiry time. Default 2s.
	MinExpiry time.Duration
	// DownRetention is how long the cluster query keeps listing a node
	// that stopped registering (expired, disconnected or unregistered) as
	// down, counted from its last registration. Default 10m. A node that
	// registers again is listed as live at once.
	DownRetention time.Duration
	// SweepInterval is how often expired nodes are removed. Default 500ms.
	// Queries also drop overdue nodes, so it bounds only how late an
	// expiry is logged, never what a client sees.
	SweepInterval time.Duration
	// TLS, if set, serves the port over TLS (rmq's protocol and RocketMQ
	// remoting alike, told apart after the handshake); its ClientAuth
	// says whether clients need certificates. Nil: plaintext.
	TLS *tls.Config
	// HTTPTLS is for an HTTP listener of the NameServer (metrics), wrapped
	// with tlsconf.NewListener; rmq namesrv sets it to TLS. Nil: plaintext.
	HTTPTLS *tls.Config
	// MaxFrame is the largest accepted frame in bytes. Default
	// wire.DefaultMaxFrame (16 MiB).
	MaxFrame int
	// Logger is the parent logger; default: a null logger.
	Logger hclog.Logger
	// Now is the clock (a seam for tests). Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults for every optional field.
func DefaultConfig() Config {
	return Config{
		Listen:        "127.0.0.1:9876",
		ExpiryFactor:  3,
		MinExpiry:     2 * time.Second,
		DownRetention: 10 * time.Minute,
		SweepInterval: 500 * time.Millisecond,
		MaxFrame:      wire.DefaultMaxFrame,
		Now:           time.Now,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.ExpiryFactor == 0 {
		c.ExpiryFactor = d.ExpiryFactor
	}
	if c.MinExpiry == 0 {
		c.MinExpiry = d.MinExpiry
	}
	if c.DownRetention == 0 {
		c.DownRetention = d.DownRetention
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = d.SweepInterval
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = d.MaxFrame
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Validate reports every problem with c, not only the first. Zero
// fields are problems here; New fills them with defaults first.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" && c.Listener == nil {
		bad("Listen (or Listener) is required")
	}
	if c.ExpiryFactor < 1 || c.ExpiryFactor > maxExpiryFactor {
		bad("ExpiryFactor %d must be in 1..%d", c.ExpiryFactor, maxExpiryFactor)
	}
	if c.MinExpiry <= 0 {
		bad("MinExpiry %s must be positive", c.MinExpiry)
	}
	if c.DownRetention <= 0 {
		bad("DownRetention %s must be positive", c.DownRetention)
	}
	if c.SweepInterval <= 0 {
		bad("SweepInterval %s must be positive", c.SweepInterval)
	}
	if c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil {
		bad("TLS has no certificate to serve")
	}
	if c.MaxFrame < 4<<10 {
		bad("MaxFrame %d must be at least 4KiB", c.MaxFrame)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}
