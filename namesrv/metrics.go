package namesrv

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/internal/metrics"
	"github.com/rmq-dev/rmq/wire"
)

// Prometheus metrics, served on Config.MetricsListen. A server without a
// metrics listener has s.metrics == nil and every method below is a
// no-op on nil. The request histogram is updated per request from cached
// children; the registry gauges are read when scraped.

// serverMetrics is a NameServer's registry. Safe for concurrent use.
type serverMetrics struct {
	reg  *prometheus.Registry
	rpc  *prometheus.HistogramVec // protocol_type, request_code, response_code
	mu   sync.RWMutex
	rpcs map[uint64]prometheus.Observer
}

var wireRequestNames = map[uint16]string{
	wire.CodeRegisterBroker: "register_broker", wire.CodeUnregisterBroker: "unregister_broker",
	wire.CodeGetRoute: "get_route", wire.CodeGetCluster: "get_cluster",
}

var remotingServed = map[int32]bool{
	compat.ReqGetRouteInfoByTopic: true, compat.ReqGetBrokerClusterInfo: true, compat.ReqGetAllTopicListFromNameServer: true,
	compat.ReqGetTopicsByCluster: true, compat.ReqGetKVConfig: true,
}

func newServerMetrics(s *Server) *serverMetrics {
	labels := prometheus.Labels{metrics.LabelNodeType: metrics.NodeTypeNameServer, metrics.LabelNodeID: s.Addr()}
	m := &serverMetrics{
		reg: metrics.NewRegistry(),
		rpc: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rocketmq_rpc_latency", Help: "Time in milliseconds to serve a request.",
			ConstLabels: labels, Buckets: metrics.RPCLatencyBuckets(),
		}, []string{metrics.LabelProtocolType, metrics.LabelRequestCode, metrics.LabelResponseCode}),
		rpcs: map[uint64]prometheus.Observer{},
	}
	m.reg.MustRegister(m.rpc, &registryCollector{
		s:      s,
		nodes:  prometheus.NewDesc("rmq_namesrv_broker_nodes", "Registered broker nodes.", nil, labels),
		groups: prometheus.NewDesc("rmq_namesrv_broker_groups", "Broker groups with a registered node.", nil, labels),
		topics: prometheus.NewDesc("rmq_namesrv_topics", "Topics some registered group serves.", nil, labels),
	})
	return m
}

func (m *serverMetrics) start() time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}

// served observes one request served since start.
func (m *serverMetrics) served(proto string, req, resp int32, start time.Time) {
	if m == nil {
		return
	}
	if requestLabel(proto, req) == "unknown" {
		req = -1 // one series (and one cache entry) for every code not served
	}
	p := uint64(0)
	if proto == metrics.ProtocolRemoting {
		p = 1
	}
	k := p<<63 | uint64(uint32(req))<<31 | uint64(uint32(resp))&(1<<31-1)
	m.mu.RLock()
	o := m.rpcs[k]
	m.mu.RUnlock()
	if o == nil {
		o = m.rpc.WithLabelValues(proto, requestLabel(proto, req), responseLabel(proto, resp))
		m.mu.Lock()
		m.rpcs[k] = o
		m.mu.Unlock()
	}
	o.Observe(float64(time.Since(start).Microseconds()) / 1000)
}

func requestLabel(proto string, req int32) string {
	if proto == metrics.ProtocolRMQ {
		if n, ok := wireRequestNames[uint16(req)]; ok && req >= 0 && req <= 0xffff {
			return n
		}
		return "unknown"
	}
	if remotingServed[req] {
		return strings.ToLower(compat.RequestName(req))
	}
	return "unknown"
}

func responseLabel(proto string, resp int32) string {
	if proto == metrics.ProtocolRMQ {
		if resp == int32(wire.CodeOK) {
			return "success"
		}
		return strings.ReplaceAll(wire.Info(uint16(resp)).Name, " ", "_")
	}
	return strings.ReplaceAll(strings.ToLower(compat.ResponseName(resp)), " ", "_")
}

// registryCollector reads the route registry when scraped.
type registryCollector struct {
	s                     *Server
	nodes, groups, topics *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *registryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.nodes
	ch <- c.groups
	ch <- c.topics
}

// Collect implements prometheus.Collector.
func (c *registryCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.s.cfg.Now()
	groups, nodes := c.s.reg.counts(now)
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(nodes))
	ch <- prometheus.MustNewConstMetric(c.groups, prometheus.GaugeValue, float64(groups))
	ch <- prometheus.MustNewConstMetric(c.topics, prometheus.GaugeValue, float64(len(c.s.reg.topicNames("", now))))
}

// counts returns the number of groups with a node and of nodes, after
// expiring overdue ones.
func (r *registry) counts(now time.Time) (groups, nodes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	for _, g := range r.groups {
		if len(g.nodes) > 0 {
			groups++
			nodes += len(g.nodes)
		}
	}
	return groups, nodes
}

// MetricsAddr is the address /metrics is served on, or "" when off.
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

func (s *Server) serveMetrics(ctx context.Context, ln net.Listener) error {
	return metrics.Serve(ctx, ln, s.metrics.reg, metrics.ServerConfig{Logf: s.log.Named("metrics").Warn})
}
