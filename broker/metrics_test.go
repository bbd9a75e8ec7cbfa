package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/internal/metrics"
	"github.com/rmq-dev/rmq/wire"
)

// scrape GETs a node's /metrics and returns its text.
func scrape(t testing.TB, n *Node) string {
	t.Helper()
	s, err := scrapeErr(n.MetricsAddr())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func scrapeErr(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("node has no metrics listener")
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s: %s", resp.Status, b)
	}
	return string(b), nil
}

// metricSum sums the samples of name in a text exposition whose labels
// include every pair of want ("k", "v", ...). Histograms are read through
// their _count and _sum series.
func metricSum(text, name string, want ...string) float64 {
	total := 0.0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		metric, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		mname, labels, _ := strings.Cut(metric, "{")
		if mname != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			if !strings.Contains(labels, want[i]+`="`+want[i+1]+`"`) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err == nil {
			total += v
		}
	}
	return total
}

func metricsCluster(t *testing.T, size int) *testCluster {
	return newTestCluster(t, size, func(c *Config) {
		c.MetricsListen = "127.0.0.1:0"
		c.ClientListen = "127.0.0.1:0"
	})
}

// wireCall sends one request to the serving leader, retrying on another
// leader when it answers not-leader (nothing was done) or outcome unknown
// (the test's sends are idempotent, so a retry stores nothing twice), so
// that a leadership change on a loaded machine does not fail the test.
// Each outcome-unknown answer adds one to unknown.
func wireCall(ctx context.Context, c *testCluster, conns map[string]*wire.Conn, code uint16, req, resp any, unknown *atomic.Int64) error {
	var err error
	for ctx.Err() == nil {
		l := c.leader(10 * time.Second)
		conn := conns[l.cfg.NodeID]
		if conn == nil {
			if conn, err = wire.Dial(ctx, l.ClientAddr(), 0); err != nil {
				return err
			}
			conns[l.cfg.NodeID] = conn
		}
		err = conn.Call(ctx, code, req, resp)
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.CodeIndeterminate {
			unknown.Add(1)
			continue
		}
		if !errors.As(err, &we) || we.Code != wire.CodeNotLeader && we.Code != wire.CodeLeaderNotReady {
			return err
		}
	}
	return errors.Join(err, ctx.Err())
}

// sumAll sums a metric over every live node's scrape.
func sumAll(t *testing.T, c *testCluster, name string, labels ...string) float64 {
	total := 0.0
	for _, n := range c.live() {
		total += metricSum(scrape(t, n), name, labels...)
	}
	return total
}

// TestMetricsCountSendsAndConsumes scrapes /metrics while clients send
// and consume over the wire protocol: messages in and out (summed over
// the nodes, in case leadership moves on a loaded machine) move by
// exactly the messages stored and read, throughput by their bytes, and
// the scrape-time gauges (topics, groups, lag, storage, Raft) are there.
func TestMetricsCountSendsAndConsumes(t *testing.T) {
	c := metricsCluster(t, 3)
	leader := c.leader(10 * time.Second)
	createTopic(t, c, "mt", 4)
	if got := sumAll(t, c, "rocketmq_messages_in_total", "topic", "mt"); got != 0 {
		t.Fatalf("messages in before sending: got %v, want 0", got)
	}

	const senders, batches, perBatch, bodyLen = 4, 25, 10, 100
	const total = senders * batches * perBatch
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// A scraper runs for as long as the load does.
	stopScrape := make(chan struct{})
	scrapeErrs := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopScrape:
				scrapeErrs <- nil
				return
			default:
			}
			if _, err := scrapeErr(leader.MetricsAddr()); err != nil {
				scrapeErrs <- fmt.Errorf("scrape %d under load: %w", i, err)
				return
			}
		}
	}()

	var wg sync.WaitGroup
	var unknown atomic.Int64 // sends answered "outcome unknown", then retried
	errs := make(chan error, senders)
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns := map[string]*wire.Conn{}
			defer func() {
				for _, conn := range conns {
					conn.Close()
				}
			}()
			for b := 0; b < batches; b++ {
				req := wire.SendRequest{}
				for m := 0; m < perBatch; m++ {
					req.Messages = append(req.Messages, wire.Message{
						Topic: "mt", QueueID: uint32((s + m) % 4), Body: make([]byte, bodyLen),
						ID: fmt.Appendf(nil, "%04d-%04d-%04d", s, b, m), BornTimestamp: time.Now().UnixMilli(),
						Properties: map[string]string{fsm.PropIdempotent: "1"},
					})
				}
				var resp wire.SendResponse
				if err := wireCall(ctx, c, conns, wire.CodeSend, req, &resp, &unknown); err != nil {
					errs <- err
					return
				}
				for _, r := range resp.Results {
					if r.Error != "" {
						errs <- errors.New(r.Error)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Consume everything with one group, over the wire as well.
	conns := map[string]*wire.Conn{}
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	consumed := 0
	for q := uint32(0); q < 4; q++ {
		off := uint64(0)
		for {
			var resp wire.PullResponse
			req := wire.PullRequest{Topic: "mt", QueueID: q, Offset: off, MaxMessages: 64, ConsumerGroup: "g1"}
			if err := wireCall(ctx, c, conns, wire.CodePull, req, &resp, new(atomic.Int64)); err != nil {
				t.Fatal(err)
			}
			if len(resp.Messages) == 0 && off >= resp.MaxOffset {
				break
			}
			consumed += len(resp.Messages)
			off = resp.NextOffset
		}
		// Commit half of the queue so the group has a lag to report.
		commit := wire.CommitOffsetsRequest{Group: "g1", Offsets: []wire.QueueOffset{{Topic: "mt", QueueID: q, Offset: off / 2}}}
		if err := wireCall(ctx, c, conns, wire.CodeCommitOffsets, commit, nil, new(atomic.Int64)); err != nil {
			t.Fatal(err)
		}
	}
	close(stopScrape)
	if err := <-scrapeErrs; err != nil {
		t.Fatal(err)
	}
	if consumed != total {
		t.Fatalf("consumed %d messages, want %d", consumed, total)
	}

	// A pop consumer takes a few (in flight until acked), and one message
	// goes straight to g1's dead-letter queue.
	var popped []ReceivedMessage
	eventually(t, 20*time.Second, func() error {
		var err error
		popped, err = c.leader(10*time.Second).Receive(ctx, ReceiveRequest{Group: "pg", Topic: "mt", QueueID: -1, Max: 7, FromFirst: true})
		if err == nil && len(popped) == 0 {
			err = errors.New("received nothing")
		}
		return err
	})
	eventually(t, 20*time.Second, func() error {
		_, err := c.leader(10*time.Second).SendBack(ctx, SendBackRequest{Group: "g1", Topic: "mt", QueueID: 0, Offset: 0, DelayLevel: -1})
		return err
	})

	// A send answered "outcome unknown" may have been stored by a leader
	// that could not say so: its messages are counted nowhere (the retry
	// finds them stored and is a duplicate). Without such answers, the
	// usual case, the counts are exact.
	if u := unknown.Load(); u > 0 {
		in := sumAll(t, c, "rocketmq_messages_in_total", "topic", "mt", "message_type", "normal")
		if in < float64(total-u*perBatch) || in > total {
			t.Errorf("messages in after %d outcome-unknown sends: got %v, want %d..%d", u, in, total-u*perBatch, total)
		}
		t.Logf("%d sends had an unknown outcome; messages in %v of %d", u, in, total)
	} else {
		for _, ck := range []struct {
			name string
			got  float64
			want float64
		}{
			{"messages in", sumAll(t, c, "rocketmq_messages_in_total", "topic", "mt", "message_type", "normal"), total},
			{"throughput in", sumAll(t, c, "rocketmq_throughput_in_total", "topic", "mt"), total * bodyLen},
			{"message size count", sumAll(t, c, "rocketmq_message_size_count", "topic", "mt"), total},
			{"message size sum", sumAll(t, c, "rocketmq_message_size_sum", "topic", "mt"), total * bodyLen},
		} {
			if ck.got != ck.want {
				t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
			}
		}
	}
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"messages out", sumAll(t, c, "rocketmq_messages_out_total", "topic", "mt", "consumer_group", "g1"), total},
		{"throughput out", sumAll(t, c, "rocketmq_throughput_out_total", "topic", "mt", "consumer_group", "g1"), total * bodyLen},
		{"send requests", sumAll(t, c, "rocketmq_rpc_latency_count", "protocol_type", "rmq", "request_code", "send", "response_code", "success"), senders * batches},
		{"popped out", sumAll(t, c, "rocketmq_messages_out_total", "topic", "mt", "consumer_group", "pg"), float64(len(popped))},
		{"dead-lettered", sumAll(t, c, "rocketmq_send_to_dlq_messages_total", "topic", "mt", "consumer_group", "g1"), 1},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	// The serving leader reports lag, in-flight messages and groups; the
	// followers report none of it.
	eventually(t, 10*time.Second, func() error {
		l := c.leader(10 * time.Second)
		text := scrape(t, l)
		for _, ck := range []struct {
			name string
			got  float64
			want float64
		}{
			{"lag", metricSum(text, "rocketmq_consumer_lag_messages", "topic", "mt", "consumer_group", "g1"), total - total/2},
			{"popped in flight", metricSum(text, "rocketmq_consumer_inflight_messages", "topic", "mt", "consumer_group", "pg"), float64(len(popped))},
			{"groups", metricSum(text, "rocketmq_consumer_group_number"), 2},
			{"serving", metricSum(text, "rmq_raft_serving"), 1},
			{"leader state", metricSum(text, "rmq_raft_state", "state", "leader"), 1},
		} {
			if ck.got != ck.want {
				return fmt.Errorf("%s on %s: got %v, want %v", ck.name, l.cfg.NodeID, ck.got, ck.want)
			}
		}
		for _, name := range []string{"rocketmq_topic_number", "rocketmq_storage_size", "rmq_raft_term", "rmq_raft_commit_index",
			"rmq_raft_applied_index", "rmq_raftlog_fsync_duration_seconds_count", "rmq_raft_leader_changes_total", "go_goroutines", "process_cpu_seconds_total"} {
			if metricSum(text, name) <= 0 {
				return fmt.Errorf("%s on %s: got %v, want > 0", name, l.cfg.NodeID, metricSum(text, name))
			}
		}
		for _, f := range c.live() {
			if f == l {
				continue
			}
			text := scrape(t, f)
			if strings.Contains(text, "rocketmq_consumer_lag_messages{") {
				return fmt.Errorf("%s reports consumer lag; only the serving leader should", f.cfg.NodeID)
			}
			if got := metricSum(text, "rmq_raft_state", "state", "follower"); got != 1 {
				return fmt.Errorf("%s follower state: got %v, want 1", f.cfg.NodeID, got)
			}
		}
		return nil
	})
}

// TestMetricsShowLeaderChange: after a leadership transfer every node
// counts one more leader change, the new leader reports itself leader
// and the term moved.
func TestMetricsShowLeaderChange(t *testing.T) {
	c := metricsCluster(t, 3)
	old := c.leader(10 * time.Second)
	changes := map[string]float64{}
	for _, n := range c.live() {
		// A follower may not have heard of the first leader yet: wait.
		eventually(t, 10*time.Second, func() error {
			if v := metricSum(scrape(t, n), "rmq_raft_leader_changes_total"); v < 1 {
				return fmt.Errorf("%s: no leader seen yet", n.cfg.NodeID)
			}
			return nil
		})
		changes[n.cfg.NodeID] = metricSum(scrape(t, n), "rmq_raft_leader_changes_total")
	}
	term := metricSum(scrape(t, old), "rmq_raft_term")
	// On a loaded machine leadership may move on its own before the
	// transfer: then transfer from whoever leads now.
	eventually(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return c.leader(10*time.Second).TransferLeadership(ctx, "")
	})
	var nl *Node
	eventually(t, 10*time.Second, func() error {
		if nl = c.leader(10 * time.Second); nl == old {
			return fmt.Errorf("leadership is on %s again", old.cfg.NodeID)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		for _, n := range c.live() {
			text := scrape(t, n)
			if got, was := metricSum(text, "rmq_raft_leader_changes_total"), changes[n.cfg.NodeID]; got < was+1 {
				return fmt.Errorf("%s leader changes: got %v, want at least %v", n.cfg.NodeID, got, was+1)
			}
			if got := metricSum(text, "rmq_raft_term"); got <= term {
				return fmt.Errorf("%s term: got %v, want > %v", n.cfg.NodeID, got, term)
			}
		}
		text := scrape(t, nl)
		if metricSum(text, "rmq_raft_state", "state", "leader") != 1 || metricSum(text, "rmq_raft_serving") != 1 {
			return fmt.Errorf("%s does not report itself serving leader", nl.cfg.NodeID)
		}
		if got := metricSum(scrape(t, old), "rmq_raft_state", "state", "follower"); got != 1 {
			return fmt.Errorf("old leader %s follower state: got %v, want 1", old.cfg.NodeID, got)
		}
		return nil
	})
}

// TestMetricsOffByDefault: without MetricsListen a node binds no metrics
// listener and keeps no registry; a bad address fails New with an error
// naming the listener and the address.
func TestMetricsOffByDefault(t *testing.T) {
	n, err := New(singleNodeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	if n.metrics != nil || n.MetricsAddr() != "" {
		t.Fatalf("metrics on by default: registry %v, addr %q", n.metrics != nil, n.MetricsAddr())
	}
	for _, l := range n.lns {
		if l.name == "metrics" {
			t.Fatal("a metrics listener was bound by default")
		}
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, addr := range []string{"127.0.0.1:notaport", busy.Addr().String()} {
		cfg := singleNodeConfig(t)
		cfg.MetricsListen = addr
		n, err := New(cfg)
		if err == nil {
			n.Shutdown()
			t.Fatalf("New with MetricsListen %q: no error", addr)
		}
		if want := "broker: metrics listen " + addr; !strings.Contains(err.Error(), want) {
			t.Errorf("New with MetricsListen %q: got %q, want it to contain %q", addr, err, want)
		}
	}
}

// TestMetricsTransactions: halves count as transaction messages in, open
// ones per topic, and commits and rollbacks in the group's counters.
func TestMetricsTransactions(t *testing.T) {
	c := metricsCluster(t, 1)
	createTopic(t, c, "orders", 1)
	l := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := l.Send(ctx, []*fsm.Message{halfMessage("pay"), halfMessage("refund"), halfMessage("ship")})
	if err != nil || res[0].Err != nil || !res[0].Half {
		t.Fatalf("send halves: %+v, %v", res, err)
	}
	for i, state := range []TxState{TxCommit, TxRollback} {
		if _, err := l.EndTransaction(ctx, EndTransactionRequest{ProducerGroup: "pg", Half: Position{Index: res[i].RaftIndex, Pos: res[i].Pos}, State: state}); err != nil {
			t.Fatal(err)
		}
	}
	text := scrape(t, l)
	for _, ck := range []struct {
		name string
		got  float64
		want float64
	}{
		{"transaction messages in", metricSum(text, "rocketmq_messages_in_total", "topic", "orders", "message_type", "transaction"), 3},
		{"open halves", metricSum(text, "rocketmq_half_messages", "topic", "orders"), 1},
		{"committed", metricSum(text, "rocketmq_commit_messages_total"), 1},
		{"rolled back", metricSum(text, "rocketmq_rollback_messages_total"), 1},
	} {
		if ck.got != ck.want {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

// TestMetricsBoundRequestCodes: request codes the node does not serve
// share one "unknown" series, so clients cannot grow the label set or the
// cache.
func TestMetricsBoundRequestCodes(t *testing.T) {
	c := metricsCluster(t, 1)
	m := c.leader(10 * time.Second).metrics
	for code := int32(1000); code < 1200; code++ {
		m.served(metrics.ProtocolRemoting, code, 3, time.Now())
		m.served(metrics.ProtocolRMQ, code, int32(wire.CodeUnknownRequest), time.Now())
	}
	m.mu.RLock()
	cached := len(m.rpcs)
	m.mu.RUnlock()
	if cached != 2 {
		t.Fatalf("cached series after 400 unknown requests: got %d, want 2", cached)
	}
	text := scrape(t, c.leader(time.Second))
	if got := metricSum(text, "rocketmq_rpc_latency_count", "request_code", "unknown"); got != 400 {
		t.Fatalf("unknown requests: got %v, want 400", got)
	}
}

// BenchmarkMetricsStored is the per-send cost of counting a batch of 32
// messages of one topic (the produce hot path with metrics on).
func BenchmarkMetricsStored(b *testing.B) {
	n := &Node{cfg: Config{Cluster: "rmq", NodeID: "n0", Group: "broker-a"}}
	m := newNodeMetrics(n)
	msgs := make([]*fsm.Message, 32)
	for i := range msgs {
		msgs[i] = &fsm.Message{Topic: "bench", Body: make([]byte, 1024)}
	}
	out := make([]SendResult, len(msgs))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m.stored(msgs, out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
}

// TestMessageSizeBucketsAgree: the broker's own size histogram uses the
// shared RocketMQ bounds, and a body on a bound falls into that bucket.
func TestMessageSizeBucketsAgree(t *testing.T) {
	want := metrics.MessageSizeBuckets()
	if len(want) != len(sizeBounds) {
		t.Fatalf("bounds: got %v, want %v", sizeBounds, want)
	}
	for i, b := range want {
		if sizeBounds[i] != int(b) {
			t.Fatalf("bounds: got %v, want %v", sizeBounds, want)
		}
		if got := sizeBucket(int(b)); got != i {
			t.Errorf("sizeBucket(%d): got %d, want %d", int(b), got, i)
		}
	}
	if got := sizeBucket(4<<20 + 1); got != len(sizeBounds) {
		t.Errorf("sizeBucket(4 MiB + 1): got %d, want the +Inf bucket %d", got, len(sizeBounds))
	}
}
