// Package metrics is what every rmq server shares to expose Prometheus
// metrics: a per-node registry with the Go runtime and process collectors,
// the HTTP server behind /metrics, and the RocketMQ 5 label names and
// histogram buckets that broker and namesrv use, so their series line up
// with RocketMQ dashboards.
//
// It does not define the servers' own metrics: broker/metrics.go and
// namesrv/metrics.go do, each on a registry of its own (never the global
// prometheus.DefaultRegisterer), so several nodes in one process (tests,
// rmq dev) do not collide.
//
// Serve is synchronous: it serves until ctx ends and returns once the
// HTTP server has stopped, so the caller's goroutine owns it. A scrape
// runs in net/http's handler goroutines, which Serve waits for (via
// http.Server.Shutdown) before it returns. NewRegistry and Serve are safe
// for concurrent use.
//
// Units follow RocketMQ where a metric carries a RocketMQ name
// (rocketmq_rpc_latency is in milliseconds, rocketmq_message_size in
// bytes) and Prometheus conventions elsewhere (seconds, _total, _bytes).
package metrics
