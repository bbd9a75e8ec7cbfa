package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// Consumption modes of a consumer group (RocketMQ MessageModel).
const (
	ModeClustering   = "clustering"   // each queue is consumed by one member
	ModeBroadcasting = "broadcasting" // every member consumes every queue
)

// HeartbeatRequest registers or refreshes one member of a consumer group.
type HeartbeatRequest struct {
	Group    string
	ClientID string
	Mode     string   // ModeClustering or ModeBroadcasting
	Topics   []string // the topics the member subscribes to
	// TTL, if > 0, is how long this member stays live without another
	// heartbeat, instead of the node's MemberTimeout (RocketMQ clients
	// heartbeat every 30 s and are expired after 120 s).
	TTL time.Duration
	// AnyNode records the member on a follower too, instead of answering
	// *NotLeaderError: RocketMQ clients heartbeat every node of a group,
	// so a follower that becomes leader already knows the live members.
	AnyNode bool
}

// HeartbeatResult is the group as the leader sees it after a heartbeat.
type HeartbeatResult struct {
	Members    []string // sorted client IDs of the live members
	ResetEpoch uint64   // bumped by every ResetOffsets of the group
}

// Heartbeat registers or refreshes a member on the leader (members are
// leader-local soft state) and returns the group's live members, so the
// client can rebalance. A member whose mode differs from the group's is
// refused with ErrGroupModeMismatch unless it is the only member.
func (n *Node) Heartbeat(_ context.Context, req HeartbeatRequest) (HeartbeatResult, error) {
	if err := ValidateGroupName(req.Group); err != nil {
		return HeartbeatResult{}, err
	}
	if err := n.checkWritable(); err != nil && !req.AnyNode {
		return HeartbeatResult{}, err
	}
	members, err := n.groups.heartbeat(req)
	if err != nil {
		return HeartbeatResult{}, err
	}
	return HeartbeatResult{Members: members, ResetEpoch: n.fsm.GroupResetEpoch(req.Group)}, nil
}

// GroupMembers returns the sorted client IDs of group's live members as
// this node knows them (the leader knows every member; a follower those
// that heartbeat it with AnyNode).
func (n *Node) GroupMembers(group string) []string {
	_, members := n.groups.describe(group)
	return members
}

// ListGroups lists the groups with committed offsets or live members.
func (n *Node) ListGroups() []string {
	seen := map[string]bool{}
	for _, g := range n.fsm.Groups() {
		seen[g] = true
	}
	for _, g := range n.groups.liveGroups() {
		seen[g] = true
	}
	return sortedKeys(seen)
}

// GroupQueue is a group's progress on one queue.
type GroupQueue struct {
	Topic          string
	QueueID        uint32
	BrokerOffset   uint64 // the queue's max offset
	ConsumerOffset uint64 // the group's committed offset (0 if none)
	Lag            uint64
	Owner          string // holder of the queue's unexpired lock, if any
	// Pop consumers' messages (pop.go): received and not yet acked
	// (InFlight), expired and waiting to be received again (Visible).
	InFlight, Visible int
}

// GroupDescription is a group's mode, live members and per-queue progress.
type GroupDescription struct {
	Group   string
	Mode    string // "" when no member is live
	Members []string
	Queues  []GroupQueue
	// PendingRetries are sent-back messages waiting for their backoff;
	// DeadLetters the messages in the group's dead-letter queue.
	PendingRetries int
	DeadLetters    uint64
}

// DescribeGroup reports a group's progress on every queue of every topic
// it has offsets for or that a live member subscribes to. A group with
// neither is refused with ErrInvalidArgument.
func (n *Node) DescribeGroup(group string) (GroupDescription, error) {
	mode, members := n.groups.describe(group)
	owners := n.queueOwners(group)
	topics := map[string]bool{}
	for _, o := range n.fsm.GroupOffsets(group) {
		topics[o.Topic] = true
	}
	for _, t := range n.groups.memberTopics(group) {
		topics[t] = true
	}
	if len(topics) == 0 && len(members) == 0 {
		return GroupDescription{}, fmt.Errorf("%w: group %q has no offsets and no live members", ErrInvalidArgument, group)
	}
	d := GroupDescription{Group: group, Mode: mode, Members: members}
	if t, ok := n.fsm.Topic(RetryTopic(group)); ok {
		d.PendingRetries = n.fsm.PendingTimersTo(t.ID)
	}
	if min, next, err := n.fsm.QueueRange(DLQTopic(group), 0); err == nil {
		d.DeadLetters = next - min
	}
	for _, name := range sortedKeys(topics) {
		t, ok := n.fsm.Topic(name)
		if !ok {
			continue
		}
		pops := n.fsm.PopStatsOf(group, t.ID, n.cfg.Now().UnixMilli())
		for q := uint32(0); q < t.Queues; q++ {
			_, next, err := n.QueueRange(name, q)
			if err != nil {
				return GroupDescription{}, err
			}
			off, _ := n.ConsumerOffset(group, name, q)
			gq := GroupQueue{Topic: name, QueueID: q, BrokerOffset: next, ConsumerOffset: off,
				Owner: owners[fsm.QueueRef{Topic: name, QueueID: q}], InFlight: pops[q].InFlight, Visible: pops[q].Visible + pops[q].Dead}
			if next > off {
				gq.Lag = next - off
			}
			d.Queues = append(d.Queues, gq)
		}
	}
	return d, nil
}

// ValidateGroupName applies RocketMQ's rule for consumer groups: the topic
// name characters and at most 120 of them, so that "%RETRY%"+group is a
// valid topic name.
func ValidateGroupName(name string) error {
	if len(name) > 120 {
		return fmt.Errorf("%w: group name is %d characters, limit 120", ErrInvalidArgument, len(name))
	}
	if err := fsm.ValidateTopicName(name); err != nil {
		return fmt.Errorf("%w: group name: %w", ErrInvalidArgument, err)
	}
	return nil
}

// groupManager tracks live consumer-group members, like RocketMQ's
// ConsumerManager. This state is local to each node on purpose: it is
// soft (clients re-heartbeat), and replicating heartbeats through Raft
// would cost a log entry per client per heartbeat. rmq's clients
// heartbeat the leader every second, so after failover they reach the
// new leader within one interval; RocketMQ clients heartbeat every node
// every 30 s (HeartbeatRequest.AnyNode), so every node knows them and
// keeps them across leadership changes. Queue locks are not kept here: they are replicated (fsm
// LockQueues, see locks.go), so a new leader honours every lease the old
// one granted.
type groupManager struct {
	mu      sync.Mutex // leaf lock
	now     func() time.Time
	timeout time.Duration // member expiry
	groups  map[string]*liveGroup
}

type liveGroup struct {
	mode    string
	members map[string]*member
}

type member struct {
	lastSeen time.Time
	ttl      time.Duration // 0: the manager's timeout
	anyNode  bool          // recorded on every node (kept by reset)
	topics   []string
}

func newGroupManager(timeout time.Duration, now func() time.Time) *groupManager {
	return &groupManager{now: now, timeout: timeout, groups: map[string]*liveGroup{}}
}

// heartbeat registers or refreshes a member and returns the sorted ids of
// the group's live members.
func (g *groupManager) heartbeat(req HeartbeatRequest) ([]string, error) {
	if req.Mode != ModeClustering && req.Mode != ModeBroadcasting {
		return nil, fmt.Errorf("%w: mode %q; use %q or %q", ErrInvalidArgument, req.Mode, ModeClustering, ModeBroadcasting)
	}
	if req.ClientID == "" {
		return nil, fmt.Errorf("%w: empty client id", ErrInvalidArgument)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.expireLocked(now)
	lg := g.groups[req.Group]
	if lg == nil {
		lg = &liveGroup{mode: req.Mode, members: map[string]*member{}}
		g.groups[req.Group] = lg
	}
	if lg.mode != req.Mode {
		if _, alone := lg.members[req.ClientID]; !(alone && len(lg.members) == 1) {
			return nil, fmt.Errorf("%w: group %q is consumed in %s mode by %d member(s); this client asked for %s",
				ErrGroupModeMismatch, req.Group, lg.mode, len(lg.members), req.Mode)
		}
		lg.mode = req.Mode // the only member switched modes
	}
	lg.members[req.ClientID] = &member{lastSeen: now, ttl: req.TTL, anyNode: req.AnyNode, topics: slices.Clone(req.Topics)}
	return sortedKeys(lg.members), nil
}

// leave removes a member (its locks are released by the caller).
func (g *groupManager) leave(group, client string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if lg := g.groups[group]; lg != nil {
		delete(lg.members, client)
		if len(lg.members) == 0 {
			delete(g.groups, group)
		}
	}
}

// isMember reports whether client is a live member of group.
func (g *groupManager) isMember(group, client string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(g.now())
	lg := g.groups[group]
	return lg != nil && lg.members[client] != nil
}

// expireLocked drops members that stopped heartbeating.
func (g *groupManager) expireLocked(now time.Time) {
	for name, lg := range g.groups {
		for id, m := range lg.members {
			ttl := g.timeout
			if m.ttl > 0 {
				ttl = m.ttl
			}
			if now.Sub(m.lastSeen) > ttl {
				delete(lg.members, id)
			}
		}
		if len(lg.members) == 0 {
			delete(g.groups, name)
		}
	}
}

// describe returns a live group's mode and sorted members.
func (g *groupManager) describe(group string) (mode string, members []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(g.now())
	if lg := g.groups[group]; lg != nil {
		return lg.mode, sortedKeys(lg.members)
	}
	return "", nil
}

func (g *groupManager) liveGroups() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(g.now())
	return sortedKeys(g.groups)
}

// reset forgets the members that heartbeat only the leader (leadership
// lost: they move to the next leader); those that heartbeat every node
// stay.
func (g *groupManager) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, lg := range g.groups {
		for id, m := range lg.members {
			if !m.anyNode {
				delete(lg.members, id)
			}
		}
		if len(lg.members) == 0 {
			delete(g.groups, name)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// memberTopics returns the topics live members of group subscribe to.
func (g *groupManager) memberTopics(group string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	set := map[string]bool{}
	if lg := g.groups[group]; lg != nil {
		for _, m := range lg.members {
			for _, t := range m.topics {
				set[t] = true
			}
		}
	}
	return sortedKeys(set)
}
