package broker

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/internal/metrics"
	"github.com/rmq-dev/rmq/wire"
)

// Prometheus metrics (served on Config.MetricsListen, "metrics" in
// listeners()). A node without a metrics listener has n.metrics == nil
// and counts nothing: every nodeMetrics method is a no-op on nil.
//
// Two kinds, to keep produce cost under the 3 % budget:
//   - counters and histograms on the request paths, updated once per send
//     batch, pull or request, from label children cached in typed maps
//     (no per-message allocation, no label hashing on a hit);
//   - everything else computed at scrape time by nodeCollector from state
//     the node keeps anyway (fsm, raft, the disk cache).

// msgType is RocketMQ's message_type label value.
type msgType uint8

const (
	msgNormal msgType = iota
	msgDelay
	msgTransaction
)

var msgTypeNames = [...]string{msgNormal: "normal", msgDelay: "delay", msgTransaction: "transaction"}

type inKey struct {
	topic string
	typ   msgType
}

// inSeries is one (topic, message_type)'s messages in, their bytes and
// their size histogram, as plain atomics: a send adds a run of messages
// with a few atomic adds, and inCollector turns them into const metrics
// when scraped (a prometheus Histogram's Observe per message cost about
// 100 ns, a few % of a message's produce cost).
type inSeries struct {
	topic   string
	typ     msgType
	msgs    atomic.Uint64
	bytes   atomic.Uint64
	buckets [len(sizeBounds) + 1]atomic.Uint64 // per bucket (not cumulative); the last is +Inf
}

// sizeBounds are rocketmq_message_size's bucket bounds (metrics.MessageSizeBuckets).
var sizeBounds = [...]int{1 << 10, 4 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20}

// sizeBucket is the index in inSeries.buckets of a body of size bytes.
func sizeBucket(size int) int {
	for i, b := range sizeBounds {
		if size <= b {
			return i
		}
	}
	return len(sizeBounds)
}

type outKey struct{ topic, group string }

type outSeries struct{ msgs, bytes prometheus.Counter }

// nodeMetrics is a node's registry and the series updated on its request
// paths. Safe for concurrent use.
type nodeMetrics struct {
	reg *prometheus.Registry

	msgsOut, bytesOut *prometheus.CounterVec   // topic, consumer_group
	dlq               *prometheus.CounterVec   // topic, consumer_group
	rpc               *prometheus.HistogramVec // protocol_type, request_code, response_code
	fsync             prometheus.Histogram
	leaderChanges     prometheus.Counter

	mu      sync.RWMutex // guards the caches below
	in      map[inKey]*inSeries
	out     map[outKey]*outSeries
	rpcs    map[uint64]prometheus.Observer
	leader  raft.ServerID // the last leader raft reported
	leaderM sync.Mutex    // guards leader
}

// metricsOn reports whether cfg asks for a metrics listener.
func (c Config) metricsOn() bool { return c.MetricsListen != "" || c.MetricsListener != nil }

// newNodeMetrics builds the registry of node n (whose raft, fsm and
// stores may not be open yet: the collector reads them only when
// scraped, and scrapes start with Run).
func newNodeMetrics(n *Node) *nodeMetrics {
	cfg := n.cfg
	labels := prometheus.Labels{
		metrics.LabelCluster:  cfg.Cluster,
		metrics.LabelNodeType: metrics.NodeTypeBroker,
		metrics.LabelNodeID:   cfg.NodeID,
		"broker_name":         cfg.Group,
	}
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Name: name, Help: help, ConstLabels: labels}
	}
	h := func(name, help string, buckets []float64) prometheus.HistogramOpts {
		return prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: labels, Buckets: buckets}
	}
	in := []string{metrics.LabelTopic, metrics.LabelMessageType}
	out := []string{metrics.LabelTopic, metrics.LabelConsumerGroup}
	m := &nodeMetrics{
		reg:      metrics.NewRegistry(),
		msgsOut:  prometheus.NewCounterVec(prometheus.CounterOpts(f("rocketmq_messages_out_total", "Messages delivered to consumers by pulls and pop receives.")), out),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts(f("rocketmq_throughput_out_total", "Body bytes of the messages counted by rocketmq_messages_out_total.")), out),
		dlq:      prometheus.NewCounterVec(prometheus.CounterOpts(f("rocketmq_send_to_dlq_messages_total", "Messages moved to a group's dead-letter queue (topic: where the message was first stored).")), out),
		rpc: prometheus.NewHistogramVec(h("rocketmq_rpc_latency", "Time in milliseconds to serve a request, long-poll waits included.", metrics.RPCLatencyBuckets()),
			[]string{metrics.LabelProtocolType, metrics.LabelRequestCode, metrics.LabelResponseCode}),
		fsync: prometheus.NewHistogram(h("rmq_raftlog_fsync_duration_seconds", "Time of each CommitLog fsync.",
			[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1})),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts(f("rmq_raft_leader_changes_total", "Times this node learned of a new Raft leader (itself included)."))),
		in:            map[inKey]*inSeries{},
		out:           map[outKey]*outSeries{},
		rpcs:          map[uint64]prometheus.Observer{},
	}
	m.reg.MustRegister(&inCollector{m: m,
		msgs:  prometheus.NewDesc("rocketmq_messages_in_total", "Messages stored by sends (duplicates and refused messages excluded).", in, labels),
		bytes: prometheus.NewDesc("rocketmq_throughput_in_total", "Body bytes of the messages counted by rocketmq_messages_in_total.", in, labels),
		size:  prometheus.NewDesc("rocketmq_message_size", "Body size in bytes of each stored message.", in, labels),
	})
	m.reg.MustRegister(m.msgsOut, m.bytesOut, m.dlq, m.rpc, m.fsync, m.leaderChanges,
		newNodeCollector(n, labels))
	return m
}

// observeSync is raftlog's OnSync hook.
func (m *nodeMetrics) observeSync(d time.Duration) { m.fsync.Observe(d.Seconds()) }

// watchLeader counts leader changes from raft's observations. The filter
// runs on raft's goroutine and always drops the observation, so no
// channel or goroutine is needed.
func (m *nodeMetrics) watchLeader(r *raft.Raft) {
	if m == nil {
		return
	}
	r.RegisterObserver(raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		lo, ok := o.Data.(raft.LeaderObservation)
		if !ok || lo.LeaderID == "" {
			return false
		}
		m.leaderM.Lock()
		if lo.LeaderID != m.leader {
			m.leader = lo.LeaderID
			m.leaderChanges.Inc()
		}
		m.leaderM.Unlock()
		return false
	}))
}

// inFor returns the cached series of (topic, typ).
func (m *nodeMetrics) inFor(topic string, typ msgType) *inSeries {
	k := inKey{topic, typ}
	m.mu.RLock()
	s := m.in[k]
	m.mu.RUnlock()
	if s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.in[k]; s == nil {
		s = &inSeries{topic: topic, typ: typ}
		m.in[k] = s
	}
	return s
}

// stored counts the messages of a send that were stored: out[i] is
// msgs[i]'s result. Runs of one topic and type are added at once.
func (m *nodeMetrics) stored(msgs []*fsm.Message, out []SendResult) {
	if m == nil {
		return
	}
	var (
		cur      *inSeries
		topic    string
		typ      msgType
		count, b int
		buckets  [len(sizeBounds) + 1]int
	)
	flush := func() {
		if cur != nil && count > 0 {
			cur.msgs.Add(uint64(count))
			cur.bytes.Add(uint64(b))
			for i, k := range buckets {
				if k > 0 {
					cur.buckets[i].Add(uint64(k))
				}
			}
		}
		count, b, buckets = 0, 0, [len(sizeBounds) + 1]int{}
	}
	for i, msg := range msgs {
		r := &out[i]
		if r.Err != nil || r.Duplicate {
			continue
		}
		t := msgNormal
		switch {
		case r.Half:
			t = msgTransaction
		case r.Delayed:
			t = msgDelay
		}
		if cur == nil || t != typ || msg.Topic != topic {
			flush()
			cur, topic, typ = m.inFor(msg.Topic, t), msg.Topic, t
		}
		count++
		b += len(msg.Body)
		buckets[sizeBucket(len(msg.Body))]++
	}
	flush()
}

func (m *nodeMetrics) outFor(topic, group string) *outSeries {
	k := outKey{topic, group}
	m.mu.RLock()
	s := m.out[k]
	m.mu.RUnlock()
	if s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.out[k]; s == nil {
		s = &outSeries{msgs: m.msgsOut.WithLabelValues(topic, group), bytes: m.bytesOut.WithLabelValues(topic, group)}
		m.out[k] = s
	}
	return s
}

// delivered counts messages a consumer group read from topic.
func (m *nodeMetrics) delivered(topic, group string, count, bodyBytes int) {
	if m == nil || count == 0 {
		return
	}
	s := m.outFor(topic, group)
	s.msgs.Add(float64(count))
	s.bytes.Add(float64(bodyBytes))
}

// deadLettered counts a message of topic moved to group's DLQ.
func (m *nodeMetrics) deadLettered(topic, group string) {
	if m == nil {
		return
	}
	m.dlq.WithLabelValues(topic, group).Inc()
}

// Request and response code label values. rmq's wire codes get names of
// their own (RocketMQ's are its RequestCode names, lower-cased); codes not
// in these tables are "unknown", so a client cannot grow the label set.
var wireRequestNames = map[uint16]string{
	wire.CodeSend: "send", wire.CodePull: "pull", wire.CodeCreateTopic: "create_topic",
	wire.CodeUpdateTopic: "update_topic", wire.CodeDeleteTopic: "delete_topic", wire.CodeListTopics: "list_topics",
	wire.CodeTopicStatus: "topic_status", wire.CodeCommitOffsets: "commit_offsets", wire.CodeQueryOffset: "query_offset",
	wire.CodeSearchOffset: "search_offset", wire.CodeResetOffsets: "reset_offsets", wire.CodeSendBack: "send_back",
	wire.CodeDeadLetters: "dead_letters", wire.CodeResendDead: "resend_dead", wire.CodeReceive: "receive",
	wire.CodeAck: "ack", wire.CodeChangeInvis: "change_invisible", wire.CodeHeartbeat: "heartbeat",
	wire.CodeLeaveGroup: "leave_group", wire.CodeLockQueues: "lock_queues", wire.CodeUnlockQueues: "unlock_queues",
	wire.CodeListGroups: "list_groups", wire.CodeDescribeGroup: "describe_group", wire.CodeNodeStatus: "node_status",
	wire.CodeTransfer: "transfer", wire.CodeProducerHello: "producer_hello", wire.CodeEndTx: "end_tx",
	wire.CodeListTx: "list_tx", wire.CodeQueryMessages: "query_messages", wire.CodeSendReply: "send_reply",
}

// rpcKey packs protocol, request and response code into one map key.
func rpcKey(proto string, req, resp int32) uint64 {
	p := uint64(0)
	if proto == metrics.ProtocolRemoting {
		p = 1
	}
	return p<<63 | uint64(uint32(req))<<31 | uint64(uint32(resp))&(1<<31-1)
}

// knownRequest reports whether the node serves request code req of proto.
func knownRequest(proto string, req int32) bool {
	if proto == metrics.ProtocolRMQ {
		_, ok := wireRequestNames[uint16(req)]
		return ok && req >= 0 && req <= 0xffff
	}
	return remotingHandlers[req] != nil
}

// rpcLabels names a request for the rpc histogram.
func rpcLabels(proto string, req, resp int32) (string, string) {
	if proto == metrics.ProtocolRMQ {
		rn, ok := wireRequestNames[uint16(req)]
		if !ok {
			rn = "unknown"
		}
		if resp == int32(wire.CodeOK) {
			return rn, "success"
		}
		return rn, strings.ReplaceAll(wire.Info(uint16(resp)).Name, " ", "_")
	}
	rn := "unknown"
	if remotingHandlers[req] != nil {
		rn = strings.ToLower(compat.RequestName(req))
	}
	if resp < 0 {
		return rn, "none" // a one-way request or a reply sent later
	}
	return rn, strings.ReplaceAll(strings.ToLower(compat.ResponseName(resp)), " ", "_")
}

// served observes one request served since start.
func (m *nodeMetrics) served(proto string, req, resp int32, start time.Time) {
	if m == nil {
		return
	}
	if !knownRequest(proto, req) {
		req = -1 // one series (and one cache entry) for every code not served
	}
	k := rpcKey(proto, req, resp)
	m.mu.RLock()
	o := m.rpcs[k]
	m.mu.RUnlock()
	if o == nil {
		rn, rs := rpcLabels(proto, req, resp)
		o = m.rpc.WithLabelValues(proto, rn, rs)
		m.mu.Lock()
		m.rpcs[k] = o
		m.mu.Unlock()
	}
	o.Observe(float64(time.Since(start).Microseconds()) / 1000)
}

// rpcStart is the start time of a request, or zero when metrics are off
// (so a node without them does not read the clock).
func (m *nodeMetrics) rpcStart() time.Time {
	if m == nil {
		return time.Time{}
	}
	return time.Now()
}

// serveMetrics is the metrics listener's serve func (listeners()).
func (n *Node) serveMetrics(ctx context.Context, ln net.Listener) error {
	return metrics.Serve(ctx, ln, n.metrics.reg, metrics.ServerConfig{Logf: n.log.Named("metrics").Warn})
}

// MetricsAddr is the address /metrics is served on, or "" when the node
// has no metrics listener.
func (n *Node) MetricsAddr() string {
	for _, l := range n.lns {
		if l.name == "metrics" {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// inCollector exposes the inSeries.
type inCollector struct {
	m                 *nodeMetrics
	msgs, bytes, size *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *inCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.msgs
	ch <- c.bytes
	ch <- c.size
}

// Collect implements prometheus.Collector. A scrape racing with a send
// may see a run's count before its buckets; the next scrape agrees.
func (c *inCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.RLock()
	series := make([]*inSeries, 0, len(c.m.in))
	for _, s := range c.m.in {
		series = append(series, s)
	}
	c.m.mu.RUnlock()
	for _, s := range series {
		lv := []string{s.topic, msgTypeNames[s.typ]}
		ch <- prometheus.MustNewConstMetric(c.msgs, prometheus.CounterValue, float64(s.msgs.Load()), lv...)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.bytes.Load()), lv...)
		cum, total := map[float64]uint64{}, uint64(0)
		for i, bound := range sizeBounds {
			total += s.buckets[i].Load()
			cum[float64(bound)] = total
		}
		total += s.buckets[len(sizeBounds)].Load()
		ch <- prometheus.MustNewConstHistogram(c.size, total, float64(s.bytes.Load()), cum, lv...)
	}
}

// nodeCollector computes at scrape time the gauges (and the counters raft
// or raftlog already keep) from the node's own state.
type nodeCollector struct {
	n *Node

	term, commit, applied, last, state, serving, contact *prometheus.Desc
	snapshots, installs                                  *prometheus.Desc
	topics, groups, lag, inflight, ready, members        *prometheus.Desc
	halves, committed, rolledBack                        *prometheus.Desc
	storage, logBytes, fsRatio, timers                   *prometheus.Desc
}

func newNodeCollector(n *Node, labels prometheus.Labels) *nodeCollector {
	d := func(name, help string, vars ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, vars, labels)
	}
	tg := []string{metrics.LabelTopic, metrics.LabelConsumerGroup}
	return &nodeCollector{
		n:         n,
		term:      d("rmq_raft_term", "Current Raft term."),
		commit:    d("rmq_raft_commit_index", "Raft commit index as this node knows it."),
		applied:   d("rmq_raft_applied_index", "Last Raft index applied on this node."),
		last:      d("rmq_raft_last_log_index", "Last Raft index in this node's CommitLog."),
		state:     d("rmq_raft_state", "1 for this node's Raft state, 0 for the others.", "state"),
		serving:   d("rmq_raft_serving", "1 while this node is the leader and serves writes."),
		contact:   d("rmq_raft_last_contact_seconds", "Time since this follower last heard from its leader (0 on the leader; absent before any contact)."),
		snapshots: d("rmq_raft_snapshots_total", "Local snapshots of FSM state taken since start."),
		installs:  d("rmq_raft_snapshot_installs_total", "Snapshots (with the shipped log) installed from a leader since start."),
		topics:    d("rocketmq_topic_number", "Topics, system topics (retry, DLQ) included."),
		groups:    d("rocketmq_consumer_group_number", "Consumer groups with committed offsets or live members."),
		lag:       d("rocketmq_consumer_lag_messages", "Messages after a group's committed offset (the serving leader reports it).", tg...),
		inflight:  d("rocketmq_consumer_inflight_messages", "Messages popped and not yet acked or expired (the serving leader reports it).", tg...),
		ready:     d("rocketmq_consumer_ready_messages", "Lag less inflight messages (the serving leader reports it).", tg...),
		members: d("rocketmq_consumer_connections", "Live members of a consumer group (the serving leader reports it).",
			metrics.LabelConsumerGroup, "consume_mode"),
		halves:     d("rocketmq_half_messages", "Open transactional half messages (the serving leader reports it).", metrics.LabelTopic),
		committed:  d("rocketmq_commit_messages_total", "Half messages committed in this broker group (group-wide; the serving leader reports it)."),
		rolledBack: d("rocketmq_rollback_messages_total", "Half messages rolled back in this broker group, by producers or the broker (group-wide; the serving leader reports it)."),
		storage: d("rocketmq_storage_size", "Bytes allocated to rmq's files under the data directory (CommitLog, consume queues, snapshots).",
			metrics.LabelStorageType, metrics.LabelStorageMedium),
		logBytes: d("rmq_commitlog_bytes", "Bytes of CommitLog segments on this node."),
		fsRatio:  d("rmq_disk_used_ratio", "Used fraction of the file system holding the data directory."),
		timers:   d("rmq_timer_pending_messages", "Delayed and retry messages waiting for their delivery time."),
	}
}

func (c *nodeCollector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{c.term, c.commit, c.applied, c.last, c.state, c.serving, c.contact, c.snapshots, c.installs,
		c.topics, c.groups, c.lag, c.inflight, c.ready, c.members, c.halves, c.committed, c.rolledBack, c.storage, c.logBytes, c.fsRatio, c.timers}
}

// Describe implements prometheus.Collector.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	r := n.raft
	state := r.State()
	gauge(c.term, float64(r.CurrentTerm()))
	gauge(c.commit, float64(r.CommitIndex()))
	gauge(c.applied, float64(r.AppliedIndex()))
	last, _ := n.store.LastIndex()
	gauge(c.last, float64(last))
	for _, s := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if s == state {
			v = 1
		}
		gauge(c.state, v, strings.ToLower(s.String()))
	}
	serving := n.serving.Load() && state == raft.Leader
	gauge(c.serving, b2f(serving))
	if state == raft.Leader {
		gauge(c.contact, 0)
	} else if lc := r.LastContact(); !lc.IsZero() {
		gauge(c.contact, time.Since(lc).Seconds())
	}
	st := n.snaps.Stats()
	counter(c.snapshots, st.Created)
	counter(c.installs, st.Installed)
	gauge(c.topics, float64(len(n.fsm.Topics())))
	groups := n.ListGroups()
	gauge(c.groups, float64(len(groups)))
	if serving {
		c.collectLag(ch, groups)
		c.collectTx(ch)
	}
	du := n.diskUsage(false)
	gauge(c.storage, float64(du.DataBytes), "local", "disk")
	gauge(c.logBytes, float64(n.store.DiskBytes()))
	gauge(c.fsRatio, du.Ratio())
	gauge(c.timers, float64(n.fsm.PendingTimers()))
}

// collectLag reports every group's lag and inflight messages per topic.
func (c *nodeCollector) collectLag(ch chan<- prometheus.Metric, groups []string) {
	type sums struct{ lag, inflight uint64 }
	for _, g := range groups {
		d, err := c.n.DescribeGroup(g)
		if err != nil {
			continue // the group went away meanwhile
		}
		if len(d.Members) > 0 {
			ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(len(d.Members)), g, d.Mode)
		}
		per := map[string]*sums{}
		var order []string
		for _, q := range d.Queues {
			s := per[q.Topic]
			if s == nil {
				s = &sums{}
				per[q.Topic] = s
				order = append(order, q.Topic)
			}
			s.lag += q.Lag
			s.inflight += uint64(q.InFlight)
		}
		for _, t := range order {
			s := per[t]
			ready := s.lag - min(s.lag, s.inflight)
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.lag), t, g)
			ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(s.inflight), t, g)
			ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, float64(ready), t, g)
		}
	}
}

// collectTx reports open half messages per topic and the group's
// transaction outcomes.
func (c *nodeCollector) collectTx(ch chan<- prometheus.Metric) {
	st, _ := c.n.fsm.TxInfo()
	ch <- prometheus.MustNewConstMetric(c.committed, prometheus.CounterValue, float64(st.Committed))
	ch <- prometheus.MustNewConstMetric(c.rolledBack, prometheus.CounterValue, float64(st.RolledBack))
	per := map[uint32]int{}
	for _, h := range c.n.fsm.Halves() {
		per[h.TopicID]++
	}
	for id, k := range per {
		name, ok := c.n.fsm.TopicName(id)
		if !ok {
			continue // the topic was deleted: its halves go nowhere
		}
		ch <- prometheus.MustNewConstMetric(c.halves, prometheus.GaugeValue, float64(k), name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
