package namesrv

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rmq-dev/rmq/wire"
)

func scrape(t *testing.T, s *Server) string {
	t.Helper()
	resp, err := http.Get("http://" + s.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %v, status %d", err, resp.StatusCode)
	}
	return string(b)
}

// TestMetricsRegistryAndRequests: /metrics reports the registered nodes,
// groups and topics, and counts every request by code and outcome.
func TestMetricsRegistryAndRequests(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MetricsListen = "127.0.0.1:0" })
	c := dial(t, s)
	topic := wire.TopicInfo{Name: "orders", Queues: 4, Perm: 6}
	register(t, c, regReq(status("broker-a", "n0", "leader", 1), topic))
	register(t, c, regReq(status("broker-a", "n1", "follower", 1), topic))
	mustRoute(t, c, "orders")
	if _, err := route(t, c, "missing", false); err == nil {
		t.Fatal("route of a missing topic: no error")
	}
	text := scrape(t, s)
	for _, want := range []string{
		`rmq_namesrv_broker_nodes{node_id="` + s.Addr() + `",node_type="nameserver"} 2`,
		`rmq_namesrv_broker_groups{node_id="` + s.Addr() + `",node_type="nameserver"} 1`,
		`rmq_namesrv_topics{node_id="` + s.Addr() + `",node_type="nameserver"} 1`,
		`rocketmq_rpc_latency_count{node_id="` + s.Addr() + `",node_type="nameserver",protocol_type="rmq",request_code="register_broker",response_code="success"} 2`,
		`rocketmq_rpc_latency_count{node_id="` + s.Addr() + `",node_type="nameserver",protocol_type="rmq",request_code="get_route",response_code="success"} 1`,
		`rocketmq_rpc_latency_count{node_id="` + s.Addr() + `",node_type="nameserver",protocol_type="rmq",request_code="get_route",response_code="topic_not_found"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in:\n%s", want, text)
		}
	}
}

// TestMetricsOffByDefault: no listener without MetricsListen; a bad
// address fails New naming it.
func TestMetricsOffByDefault(t *testing.T) {
	s := newTestServer(t, nil)
	if s.MetricsAddr() != "" || s.metrics != nil {
		t.Fatalf("metrics on by default: addr %q", s.MetricsAddr())
	}
	s.ln.Close()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, addr := range []string{"127.0.0.1:notaport", busy.Addr().String()} {
		cfg := DefaultConfig()
		cfg.Listen = "127.0.0.1:0"
		cfg.MetricsListen = addr
		s, err := New(cfg)
		if err == nil {
			s.ln.Close()
			s.metricsLn.Close()
			t.Fatalf("New with MetricsListen %q: no error", addr)
		}
		if want := "namesrv: metrics listen " + addr; !strings.Contains(err.Error(), want) {
			t.Errorf("New with MetricsListen %q: got %q, want it to contain %q", addr, err, want)
		}
	}
}
