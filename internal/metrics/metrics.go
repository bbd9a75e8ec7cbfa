package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// RocketMQ 5 label names (BrokerMetricsConstant, RemotingMetricsConstant).
const (
	LabelCluster       = "cluster"
	LabelNodeType      = "node_type"
	LabelNodeID        = "node_id"
	LabelTopic         = "topic"
	LabelConsumerGroup = "consumer_group"
	LabelMessageType   = "message_type"
	LabelProtocolType  = "protocol_type"
	LabelRequestCode   = "request_code"
	LabelResponseCode  = "response_code"
	LabelStorageType   = "storage_type"
	LabelStorageMedium = "storage_medium"
)

// Node types, the values of LabelNodeType.
const (
	NodeTypeBroker     = "broker"
	NodeTypeNameServer = "nameserver"
)

// Protocol types, the values of LabelProtocolType: rmq's own wire protocol
// and RocketMQ remoting, which share a client port.
const (
	ProtocolRMQ      = "rmq"
	ProtocolRemoting = "remoting"
)

// RPCLatencyBuckets are rocketmq_rpc_latency's bucket bounds in
// milliseconds (RocketMQ's 1, 3, 5, 10, 100 ms, 1 s, 3 s).
func RPCLatencyBuckets() []float64 { return []float64{1, 3, 5, 10, 100, 1000, 3000} }

// MessageSizeBuckets are rocketmq_message_size's bucket bounds in bytes
// (RocketMQ's 1 KiB, 4 KiB, 512 KiB, 1, 2 and 4 MiB).
func MessageSizeBuckets() []float64 {
	return []float64{1 << 10, 4 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20}
}

// NewRegistry returns a fresh registry holding the Go runtime and process
// collectors (go_*, process_*).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// ServerConfig configures Serve.
type ServerConfig struct {
	// Logf, if set, receives errors met while gathering a scrape
	// (hclog's Warn fits: msg, then key-value pairs).
	Logf func(msg string, kv ...any)
}

// Serve answers GET /metrics on ln from g until ctx ends, then shuts the
// HTTP server down, waits for scrapes under way, closes ln and returns
// nil. Other paths answer 404. An accept error ends it early with that
// error.
func Serve(ctx context.Context, ln net.Listener, g prometheus.Gatherer, cfg ServerConfig) error {
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Timeout: 10 * time.Second}
	if cfg.Logf != nil {
		opts.ErrorLog = logger(cfg.Logf)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, opts))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stopped, down := make(chan struct{}), make(chan struct{})
	go func() { // ends when ctx does or Serve returns early
		defer close(down)
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	close(stopped)
	<-down // Shutdown has waited for scrapes under way
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("metrics: serve %s: %w", ln.Addr(), err)
}

// logger adapts a Logf to promhttp's Println.
type logger func(msg string, kv ...any)

func (l logger) Println(v ...any) { l("metrics scrape error", "error", fmt.Sprint(v...)) }
