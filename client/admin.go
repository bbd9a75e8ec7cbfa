package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/rmq-dev/rmq/wire"
)

// Admin manages topics, groups and the cluster. Safe for concurrent use.
type Admin struct {
	cfg    AdminConfig
	log    hclog.Logger
	pool   *pool
	router *router
}

// NewAdmin validates cfg and returns an Admin. It does no I/O.
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Admin{cfg: cfg, log: cfg.Logger.Named("admin"), pool: newPool(cfg.TLS).withCredentials(cfg.Credentials)}
	a.router = newRouter(cfg.NameServers, a.pool, a.log, 0)
	return a, nil
}

// Close closes the Admin's connections. Idempotent.
func (a *Admin) Close() error {
	a.pool.close()
	a.router.wait()
	return nil
}

func (a *Admin) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, a.cfg.Timeout)
}

// DefaultQueues is the queue count of a topic per broker group when none
// is given: for Admin.CreateTopic, `rmq topic create` and topics created
// by a producer's first send alike (RocketMQ uses 8 for mqadmin and 4 for
// auto-created topics; rmq has one default).
const DefaultQueues = 8

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name   string
	Queues uint32 // default DefaultQueues
	Perm   uint8  // RocketMQ perm bits: 4 read, 2 write; default 6
	// Group is the broker group to create the topic on; empty means every
	// group of the cluster (unless Groups is set).
	Group string
	// Groups, if set, are the broker groups to create the topic on (Group,
	// if set too, is one more). Each must be registered.
	Groups []string
}

// TopicInfo describes a topic on one broker group.
type TopicInfo struct {
	Name      string
	Group     string
	Queues    uint32
	Perm      uint8
	CreatedAt time.Time
}

func (s TopicSpec) request() (wire.TopicRequest, error) {
	if err := ValidateTopic(s.Name); err != nil {
		return wire.TopicRequest{}, err
	}
	if s.Queues == 0 {
		s.Queues = DefaultQueues
	}
	if s.Perm == 0 {
		s.Perm = permRead | permWrite
	}
	return wire.TopicRequest{Name: s.Name, Queues: s.Queues, Perm: s.Perm}, nil
}

func (a *Admin) targetGroups(ctx context.Context, group string, more ...string) ([]string, error) {
	if len(more) > 0 {
		return a.namedGroups(ctx, append([]string{group}, more...))
	}
	if group != "" {
		if _, err := a.router.clusterGroups(ctx); err != nil {
			return nil, err
		}
		return []string{group}, nil
	}
	gs, err := a.router.clusterGroups(ctx)
	if err == nil && len(gs) == 0 {
		err = errors.New("client: no broker group registered")
	}
	return gs, err
}

// CreateTopic creates a topic on one or every broker group.
func (a *Admin) CreateTopic(ctx context.Context, spec TopicSpec) ([]TopicInfo, error) {
	return a.topicOp(ctx, wire.CodeCreateTopic, spec)
}

// TopicUpdate changes some settings of an existing topic. A nil field
// keeps the topic's current value: a permission change leaves the queue
// count alone and the other way round.
type TopicUpdate struct {
	Name string
	// Queues is the new queue count, 1 to 1024. Queues can be added but not
	// removed: a smaller count is refused (see "Admin" in the package doc).
	Queues *uint32
	// Perm is the new permission: 4 read, 2 write, 6 both.
	Perm *uint8
	// Group is the broker group to update; empty means every group of
	// the cluster that holds the topic.
	Group string
}

func (u TopicUpdate) request() (wire.TopicRequest, error) {
	if err := ValidateTopic(u.Name); err != nil {
		return wire.TopicRequest{}, err
	}
	// On the wire 0 means "keep": neither is a valid new value.
	req := wire.TopicRequest{Name: u.Name}
	if u.Queues == nil && u.Perm == nil {
		return req, invalidf("update of topic %q changes nothing: set Queues or Perm", u.Name)
	}
	if u.Queues != nil {
		if *u.Queues < 1 || *u.Queues > 1024 {
			return req, invalidf("queue count %d: want 1 to 1024", *u.Queues)
		}
		req.Queues = *u.Queues
	}
	if u.Perm != nil {
		if p := *u.Perm; p&^(permRead|permWrite) != 0 || p == 0 {
			return req, invalidf("perm %d: want 2 (write), 4 (read) or 6 (read and write)", p)
		}
		req.Perm = *u.Perm
	}
	return req, nil
}

// UpdateTopic changes only the fields u sets, on every broker group
// holding the topic (or on u.Group), and returns the topic as updated.
func (a *Admin) UpdateTopic(ctx context.Context, u TopicUpdate) ([]TopicInfo, error) {
	req, err := u.request()
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	groups, err := a.targetGroups(ctx, u.Group)
	if err != nil {
		return nil, err
	}
	var out []TopicInfo
	for _, g := range groups {
		var ti wire.TopicInfo
		err := a.router.callLeader(ctx, g, 1, wire.CodeUpdateTopic, req, &ti)
		switch {
		case err == nil:
			out = append(out, topicInfo(g, ti))
		case errors.Is(err, ErrTopicNotFound) && u.Group == "":
			// not on this group
		default:
			return out, fmt.Errorf("broker group %s: %w", g, err)
		}
	}
	if len(out) == 0 {
		return nil, &Error{Code: wire.CodeTopicNotFound, Message: fmt.Sprintf("topic %q", u.Name)}
	}
	a.router.invalidate(u.Name)
	return out, nil
}

func (a *Admin) topicOp(ctx context.Context, code uint16, spec TopicSpec) ([]TopicInfo, error) {
	req, err := spec.request()
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	groups, err := a.targetGroups(ctx, spec.Group, spec.Groups...)
	if err != nil {
		return nil, err
	}
	var out []TopicInfo
	for _, g := range groups {
		var ti wire.TopicInfo
		if err := a.router.callLeader(ctx, g, 1, code, req, &ti); err != nil {
			return out, fmt.Errorf("broker group %s: %w", g, err)
		}
		out = append(out, topicInfo(g, ti))
	}
	return out, nil
}

func topicInfo(g string, ti wire.TopicInfo) TopicInfo {
	t := TopicInfo{Name: ti.Name, Group: g, Queues: ti.Queues, Perm: ti.Perm}
	if ti.CreatedAt != 0 {
		t.CreatedAt = time.UnixMilli(ti.CreatedAt)
	}
	return t
}

// DeleteTopic deletes a topic from every broker group that has it.
func (a *Admin) DeleteTopic(ctx context.Context, name string) error {
	if err := ValidateTopic(name); err != nil {
		return err
	}
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	groups, err := a.targetGroups(ctx, "")
	if err != nil {
		return err
	}
	found := false
	for _, g := range groups {
		err := a.router.callLeader(ctx, g, 1, wire.CodeDeleteTopic, wire.TopicRequest{Name: name}, nil)
		switch {
		case err == nil:
			found = true
		case errors.Is(err, ErrTopicNotFound):
		default:
			return fmt.Errorf("broker group %s: %w", g, err)
		}
	}
	if !found {
		return &Error{Code: wire.CodeTopicNotFound, Message: fmt.Sprintf("topic %q", name)}
	}
	return nil
}

// ListTopics lists every topic of every broker group.
func (a *Admin) ListTopics(ctx context.Context) ([]TopicInfo, error) {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	groups, err := a.targetGroups(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []TopicInfo
	for _, g := range groups {
		var tl wire.TopicList
		if err := a.router.callLeader(ctx, g, 1, wire.CodeListTopics, wire.Empty{}, &tl); err != nil {
			return nil, fmt.Errorf("broker group %s: %w", g, err)
		}
		for _, t := range tl.Topics {
			out = append(out, topicInfo(g, t))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Group < out[j].Group
	})
	return out, nil
}

// QueueStatus is one queue's offsets.
type QueueStatus struct {
	Queue         Queue
	MinOffset     uint64
	MaxOffset     uint64 // next offset to be assigned
	LastStoreTime time.Time
	// Delayed counts messages stored for this queue that are not due yet
	// (delayed messages, or retries waiting for their backoff); they get
	// their offsets when delivered.
	Delayed int
}

// TopicStatus returns min/max offsets of every queue of a topic.
func (a *Admin) TopicStatus(ctx context.Context, topic string) ([]QueueStatus, error) {
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	tr, err := a.router.route(ctx, topic, false, 0)
	if err != nil {
		return nil, err
	}
	var out []QueueStatus
	for _, g := range tr.groups {
		var st wire.TopicStatus
		if err := a.router.callLeader(ctx, g.Group, 1, wire.CodeTopicStatus, wire.TopicRequest{Name: topic}, &st); err != nil {
			return nil, fmt.Errorf("broker group %s: %w", g.Group, err)
		}
		for _, q := range st.Queues {
			qs := QueueStatus{Queue: Queue{Topic: topic, Group: g.Group, QueueID: q.QueueID}, MinOffset: q.MinOffset, MaxOffset: q.MaxOffset,
				Delayed: q.Delayed}
			if q.LastStoreTime != 0 {
				qs.LastStoreTime = time.UnixMilli(q.LastStoreTime)
			}
			out = append(out, qs)
		}
	}
	return out, nil
}

// ListGroups lists the consumer groups known to any broker group.
func (a *Admin) ListGroups(ctx context.Context) ([]string, error) {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	groups, err := a.targetGroups(ctx, "")
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, g := range groups {
		var gl wire.GroupList
		if err := a.router.callLeader(ctx, g, 1, wire.CodeListGroups, wire.Empty{}, &gl); err != nil {
			return nil, fmt.Errorf("broker group %s: %w", g, err)
		}
		for _, name := range gl.Groups {
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// GroupQueue is a consumer group's progress on one queue.
type GroupQueue struct {
	Queue          Queue
	BrokerOffset   uint64 // queue max offset
	ConsumerOffset uint64
	Lag            uint64
	Owner          string // client holding the queue lock, if any
	// Pop (SimpleConsumer) messages received and not acked yet, and those
	// whose invisible time passed, to be received again.
	InFlight, Visible int
}

// GroupDescription is a consumer group's members and progress.
type GroupDescription struct {
	Group   string
	Mode    string
	Members []string
	Queues  []GroupQueue
	// PendingRetries are sent-back messages waiting for their backoff
	// (then they appear in the %RETRY%group queue's lag); DeadLetters
	// are the messages in the group's dead-letter queues.
	PendingRetries int
	DeadLetters    uint64
}

// DescribeGroup returns a consumer group's members and per-queue lag,
// merged over every broker group.
func (a *Admin) DescribeGroup(ctx context.Context, group string) (GroupDescription, error) {
	if err := ValidateGroup(group); err != nil {
		return GroupDescription{}, err
	}
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	groups, err := a.targetGroups(ctx, "")
	if err != nil {
		return GroupDescription{}, err
	}
	out := GroupDescription{Group: group}
	members := map[string]bool{}
	for _, g := range groups {
		var d wire.GroupDescription
		if err := a.router.callLeader(ctx, g, 1, wire.CodeDescribeGroup, wire.DescribeGroupRequest{Group: group}, &d); err != nil {
			return GroupDescription{}, fmt.Errorf("broker group %s: %w", g, err)
		}
		if d.Mode != "" {
			out.Mode = d.Mode
		}
		out.PendingRetries += d.PendingRetries
		out.DeadLetters += d.DeadLetters
		for _, m := range d.Members {
			members[m] = true
		}
		for _, q := range d.Queues {
			out.Queues = append(out.Queues, GroupQueue{
				Queue:        Queue{Topic: q.Topic, Group: g, QueueID: q.QueueID},
				BrokerOffset: q.BrokerOffset, ConsumerOffset: q.ConsumerOffset, Lag: q.Lag, Owner: q.Owner,
				InFlight: q.InFlight, Visible: q.Visible,
			})
		}
	}
	for m := range members {
		out.Members = append(out.Members, m)
	}
	sort.Strings(out.Members)
	sort.Slice(out.Queues, func(i, j int) bool { return out.Queues[i].Queue.less(out.Queues[j].Queue) })
	return out, nil
}

// DeadLetter is a message in a group's dead-letter queue.
type DeadLetter struct {
	*MessageExt     // Queue is the dead-letter queue; RetryOf where it was first stored
	Failures    int // failed deliveries
}

// DeadLetters lists the messages in group's dead-letter queues (one per
// broker group), up to limit in all (0: every one), oldest first per
// broker group.
func (a *Admin) DeadLetters(ctx context.Context, group string, limit int) ([]DeadLetter, error) {
	if err := ValidateGroup(group); err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	tr, err := a.dlqRoute(ctx, group)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for _, g := range tr.groups {
		for off := uint64(0); limit == 0 || len(out) < limit; {
			var resp wire.PullResponse
			if err := a.router.callLeader(ctx, g.Group, 1, wire.CodeDeadLetters,
				wire.DeadLettersRequest{Group: group, Offset: off, Max: 256}, &resp); err != nil {
				var ce *Error
				if errors.As(err, &ce) && ce.Code == wire.CodeOffsetMoved && off < ce.MinOffset {
					off = ce.MinOffset // retention took the oldest
					continue
				}
				return out, fmt.Errorf("broker group %s: %w", g.Group, err)
			}
			if len(resp.Messages) == 0 {
				break
			}
			for i := range resp.Messages {
				m := fromStored(&resp.Messages[i], g.Group)
				m.Queue = Queue{Topic: "%DLQ%" + group, Group: g.Group, QueueID: 0}
				out = append(out, DeadLetter{MessageExt: m, Failures: m.ReconsumeTimes})
				if limit > 0 && len(out) == limit {
					break
				}
			}
			off = resp.NextOffset
		}
	}
	return out, nil
}

// dlqRoute returns the route of group's dead-letter topic.
func (a *Admin) dlqRoute(ctx context.Context, group string) (*topicRoute, error) {
	tr, err := a.router.route(ctx, "%DLQ%"+group, false, 0)
	if errors.Is(err, ErrTopicNotFound) {
		return nil, &Error{Code: wire.CodeTopicNotFound,
			Message: fmt.Sprintf("group %s has no dead-letter queue: nothing was dead-lettered", group)}
	}
	return tr, err
}

// ResendDeadLetters redelivers group's dead letters with the given message
// IDs (upper-case hex, as MessageExt.MsgID), or all of them, through the
// group's retry queue: only that group consumes them again, and each
// counts its failures anew. It returns how many it resent.
func (a *Admin) ResendDeadLetters(ctx context.Context, group string, ids []string, all bool) (int, error) {
	if err := ValidateGroup(group); err != nil {
		return 0, err
	}
	req := wire.ResendDeadRequest{Group: group, All: all}
	for _, id := range ids {
		b, err := hex.DecodeString(id)
		if err != nil {
			return 0, invalidf("message id %q is not hex", id)
		}
		req.IDs = append(req.IDs, b)
	}
	if !all && len(req.IDs) == 0 {
		return 0, invalidf("name the dead letters to resend, or all")
	}
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	tr, err := a.dlqRoute(ctx, group)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range tr.groups {
		var resp wire.ResendDeadResponse
		if err := a.router.callLeader(ctx, g.Group, 1, wire.CodeResendDead, req, &resp); err != nil {
			return n, fmt.Errorf("broker group %s: %w", g.Group, err)
		}
		n += resp.Resent
	}
	return n, nil
}

// ResetOffsets moves group's offsets of topic, in every queue, to the
// first message stored at or after t. Running members notice within a
// heartbeat and restart from the new offsets.
func (a *Admin) ResetOffsets(ctx context.Context, group, topic string, t time.Time) (map[Queue]uint64, error) {
	if err := ValidateGroup(group); err != nil {
		return nil, err
	}
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	tr, err := a.router.route(ctx, topic, false, 0)
	if err != nil {
		return nil, err
	}
	out := make(map[Queue]uint64)
	for _, g := range tr.groups {
		var resp wire.ResetOffsetsResponse
		err := a.router.callLeader(ctx, g.Group, 1, wire.CodeResetOffsets,
			wire.ResetOffsetsRequest{Group: group, Topic: topic, Timestamp: t.UnixMilli()}, &resp)
		if err != nil {
			return nil, fmt.Errorf("broker group %s: %w", g.Group, err)
		}
		for _, o := range resp.Offsets {
			out[Queue{Topic: o.Topic, Group: g.Group, QueueID: o.QueueID}] = o.Offset
		}
	}
	return out, nil
}

// NodeStatus is one broker node as the NameServer last heard it.
// CommitUnknown is also set for a CommitIndex of 0 from older brokers (0
// is never a real commit index: it is raft's value before it learns one).
type NodeStatus struct {
	wire.NodeStatus
	StaleLeader bool
	// Down: the node stopped registering (crashed, stopped or cut off)
	// within the NameServer's DownRetention; the rest is its last status,
	// Age the time since then. A down node never counts as a group's
	// leader.
	Down bool
	Age  time.Duration // since its last registration
	// Lag is the leader's applied index minus this node's (0 for the
	// leader, for down nodes and when no leader is known).
	Lag uint64
}

// GroupStatus is one broker group's Raft state.
type GroupStatus struct {
	Group        string
	Cluster      string // the cluster its nodes registered with
	Leader       string // node id, "" if none
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	Nodes        []NodeStatus
}

// ClusterStatus returns every broker group's leader, term, indexes and
// per-follower lag, from the NameServer, with each group's nodes sorted
// by ID: the live ones and those it lists as down.
func (a *Admin) ClusterStatus(ctx context.Context) ([]GroupStatus, error) {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	var ci wire.ClusterInfo
	if err := a.router.nsCall(ctx, wire.CodeGetCluster, wire.Empty{}, &ci); err != nil {
		return nil, err
	}
	byGroup := map[string]*GroupStatus{}
	var order []string
	for _, n := range append(ci.Nodes, ci.Down...) {
		gs := byGroup[n.Group]
		if gs == nil {
			gs = &GroupStatus{Group: n.Group, Cluster: n.Cluster}
			byGroup[n.Group] = gs
			order = append(order, n.Group)
		}
		ns := NodeStatus{NodeStatus: n.NodeStatus, StaleLeader: n.StaleLeader, Down: n.Down, Age: time.Duration(n.AgeMillis) * time.Millisecond}
		ns.CommitUnknown = ns.CommitUnknown || ns.CommitIndex == 0
		gs.Nodes = append(gs.Nodes, ns)
		if !n.Down && n.Role == "leader" && !n.StaleLeader && n.Term >= gs.Term {
			gs.Leader, gs.Term, gs.CommitIndex, gs.AppliedIndex = n.NodeID, n.Term, n.CommitIndex, n.AppliedIndex
		}
	}
	sort.Strings(order)
	out := make([]GroupStatus, 0, len(order))
	for _, g := range order {
		gs := byGroup[g]
		sort.SliceStable(gs.Nodes, func(i, j int) bool { return gs.Nodes[i].NodeID < gs.Nodes[j].NodeID })
		for i := range gs.Nodes {
			if gs.Leader != "" && !gs.Nodes[i].Down && gs.AppliedIndex > gs.Nodes[i].AppliedIndex {
				gs.Nodes[i].Lag = gs.AppliedIndex - gs.Nodes[i].AppliedIndex
			}
		}
		out = append(out, *gs)
	}
	return out, nil
}

// TransferLeadership asks group's leader to hand leadership to node id
// toNode (or the most up-to-date follower if empty).
func (a *Admin) TransferLeadership(ctx context.Context, group, toNode string) error {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	if _, err := a.router.clusterGroups(ctx); err != nil {
		return err
	}
	return a.router.callLeader(ctx, group, 0, wire.CodeTransfer, wire.TransferRequest{To: toNode}, nil)
}
