package namesrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/internal/metrics"
	"github.com/rmq-dev/rmq/wire"
)

// Server is one NameServer: a listener, the registry and a sweeper.
type Server struct {
	cfg     Config
	log     hclog.Logger
	ln      net.Listener
	reg     *registry
	running atomic.Bool

	// metricsLn and metrics are nil without a metrics listener (metrics.go).
	metricsLn net.Listener
	metrics   *serverMetrics

	// afterClose, if set (tests only, before Run), runs after a closed
	// connection's nodes have been removed.
	afterClose func(*wire.ServerConn)
}

// New validates cfg and binds the listener (or adopts cfg.Listener).
// The caller must then call Run, which owns and closes the listener.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("namesrv: listen: %w", err)
		}
	}
	log := cfg.Logger.Named("namesrv")
	if cfg.TLS != nil {
		ln = tlsListener(ln, cfg.TLS, log) // tls.go
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		ln:        ln,
		reg:       newRegistry(log, cfg.ExpiryFactor, cfg.MinExpiry, cfg.DownRetention),
		metricsLn: cfg.MetricsListener,
	}
	if s.metricsLn == nil && cfg.MetricsListen != "" {
		var err error
		if s.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			ln.Close()
			return nil, fmt.Errorf("namesrv: metrics listen %s: %w", cfg.MetricsListen, err)
		}
	}
	if s.metricsLn != nil {
		if cfg.HTTPTLS != nil {
			s.metricsLn = tlsListener(s.metricsLn, cfg.HTTPTLS, log) // HTTPS
		}
		s.metrics = newServerMetrics(s)
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then closes the listener and every
// connection and returns after all its goroutines (the sweeper and
// wire.Serve's) have stopped. It returns nil after a clean shutdown and
// may be called only once.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.log.Info("namesrv started", "addr", s.Addr())

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.sweepLoop(ctx)
	}()
	// rmq's protocol and RocketMQ remoting share the port, told apart per
	// connection (remoting_adapter.go).
	mux := compat.NewMux(s.ln, compat.MuxConfig{MaxFrame: s.cfg.MaxFrame, Logf: s.log.Named("mux").Warn})
	servers := 3
	errs := make(chan error, 4)
	if s.metricsLn != nil {
		servers++
		go func() { errs <- s.serveMetrics(ctx, s.metricsLn) }()
	}
	go func() { errs <- mux.Run(ctx) }()
	go func() {
		errs <- wire.Serve(ctx, mux.Listener(compat.ProtoRMQ), s.handle, wire.ServerConfig{
			MaxFrame: s.cfg.MaxFrame,
			Logf:     s.log.Warn,
			OnClose:  s.onClose,
		})
	}()
	go func() { errs <- s.serveRemoting(ctx, mux.Listener(compat.ProtoRemoting)) }()
	var err error
	for range servers {
		if e := <-errs; e != nil && err == nil && ctx.Err() == nil {
			err = e
		}
		cancel() // one ended (an accept error, or ctx): end the others and the sweeper
	}
	wg.Wait()
	s.log.Info("namesrv stopped")
	if err != nil {
		return fmt.Errorf("namesrv: %w", err)
	}
	return nil
}

// sweepLoop expires overdue nodes every SweepInterval until ctx ends.
func (s *Server) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep expires overdue nodes now (the sweeper's body; tests call it
// directly with an injected clock).
func (s *Server) sweep() { s.reg.expire(s.cfg.Now()) }

func (s *Server) onClose(c *wire.ServerConn) {
	s.reg.connClosed(c)
	if s.afterClose != nil {
		s.afterClose(c)
	}
}

// handle dispatches one request.
func (s *Server) handle(ctx context.Context, r *wire.Request) (any, error) {
	start := s.metrics.start()
	resp, err := s.dispatch(ctx, r)
	if s.metrics != nil {
		code := wire.CodeOK
		var we *wire.Error
		if errors.As(err, &we) {
			code = we.Code
		} else if err != nil {
			code = wire.CodeInternal
		}
		s.metrics.served(metrics.ProtocolRMQ, int32(r.Code), int32(code), start)
	}
	return resp, err
}

func (s *Server) dispatch(_ context.Context, r *wire.Request) (any, error) {
	switch r.Code {
	case wire.CodeRegisterBroker:
		var req wire.RegisterBrokerRequest
		if err := r.Decode(&req); err != nil {
			return nil, err
		}
		if err := validateRegistration(&req); err != nil {
			return nil, err
		}
		if err := s.reg.register(&req, r.Conn, s.cfg.Now()); err != nil {
			return nil, err
		}
		return wire.Empty{}, nil
	case wire.CodeUnregisterBroker:
		var req wire.UnregisterBrokerRequest
		if err := r.Decode(&req); err != nil {
			return nil, err
		}
		if req.Group == "" || req.NodeID == "" {
			return nil, wire.Errorf(wire.CodeInvalidArgument, "unregister broker: group and node id are required")
		}
		s.reg.unregister(req.Group, req.NodeID, s.cfg.Now())
		return wire.Empty{}, nil
	case wire.CodeGetRoute:
		var req wire.RouteRequest
		if err := r.Decode(&req); err != nil {
			return nil, err
		}
		if req.Topic == "" {
			return nil, wire.Errorf(wire.CodeInvalidArgument, "route: topic is required")
		}
		return s.reg.route(&req, s.cfg.Now())
	case wire.CodeGetCluster:
		var req wire.ClusterRequest
		if len(r.Body) > 0 { // an absent body is as good as an empty one
			if err := r.Decode(&req); err != nil {
				return nil, err
			}
		}
		return s.reg.cluster(req.Cluster, s.cfg.Now()), nil
	default:
		return nil, wire.Errorf(wire.CodeUnknownRequest, "request code %d is not served by the NameServer", r.Code)
	}
}
