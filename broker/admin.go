package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/fsm"
)

// RocketMQ permission bits (PermName).
const (
	permWrite uint8 = 2
	permRead  uint8 = 4
	// PermReadWrite is the default topic permission.
	PermReadWrite = permRead | permWrite
)

// ValidateTopicName applies RocketMQ's rule: 1-127 characters from
// [a-zA-Z0-9_%|-].
func ValidateTopicName(name string) error {
	if err := fsm.ValidateTopicName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return nil
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

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name   string
	Queues uint32 // default 8 (RocketMQ mqadmin updateTopic)
	Perm   uint8  // default read+write
}

func (s *TopicSpec) normalize() error {
	if err := ValidateTopicName(s.Name); err != nil {
		return err
	}
	if s.Queues == 0 {
		s.Queues = 8
	}
	if s.Queues > 1024 {
		return fmt.Errorf("%w: %d queues; at most 1024", ErrInvalidArgument, s.Queues)
	}
	if s.Perm == 0 {
		s.Perm = PermReadWrite
	}
	if s.Perm&^(permRead|permWrite) != 0 {
		return fmt.Errorf("%w: perm %d; use 2 (write), 4 (read) or 6", ErrInvalidArgument, s.Perm)
	}
	return nil
}

// CreateTopic creates a topic through Raft and returns it as applied.
func (n *Node) CreateTopic(ctx context.Context, spec TopicSpec) (fsm.Topic, error) {
	if err := spec.normalize(); err != nil {
		return fsm.Topic{}, err
	}
	cmd := &fsm.CreateTopic{Name: spec.Name, Queues: spec.Queues, Perm: spec.Perm, Time: time.Now().UnixMilli()}
	if err := n.applyCommand(ctx, cmd); err != nil {
		return fsm.Topic{}, err
	}
	t, _ := n.fsm.Topic(spec.Name)
	return t, nil
}

// TopicUpdate names the settings of a topic to change; a zero field keeps
// the topic's current value (0 is never a valid queue count or perm).
type TopicUpdate struct {
	Name   string
	Queues uint32 // new queue count, grow only; 0 keeps it
	Perm   uint8  // new permission (2, 4 or 6); 0 keeps it
}

// UpdateTopic changes only the fields u sets and returns the topic as
// applied. The queue count can only grow: RocketMQ shrinks a topic by
// lowering writeQueueNums, draining, then lowering readQueueNums, but a
// topic here has one queue count, and dropping queues would orphan their
// messages and consumer offsets, so a smaller count is refused with
// ErrInvalidArgument naming the current count.
func (n *Node) UpdateTopic(ctx context.Context, u TopicUpdate) (fsm.Topic, error) {
	if err := ValidateTopicName(u.Name); err != nil {
		return fsm.Topic{}, err
	}
	if u.Queues == 0 && u.Perm == 0 {
		return fsm.Topic{}, fmt.Errorf("%w: update of topic %q changes nothing: give a queue count or a perm", ErrInvalidArgument, u.Name)
	}
	if u.Queues > fsm.MaxQueues {
		return fsm.Topic{}, fmt.Errorf("%w: %d queues; at most %d", ErrInvalidArgument, u.Queues, fsm.MaxQueues)
	}
	if u.Perm&^(permRead|permWrite) != 0 {
		return fsm.Topic{}, fmt.Errorf("%w: perm %d; use 2 (write), 4 (read) or 6", ErrInvalidArgument, u.Perm)
	}
	if err := n.checkWritable(); err != nil {
		return fsm.Topic{}, err // before the look-up: a lagging follower may not know the topic
	}
	t, ok := n.fsm.Topic(u.Name)
	if !ok {
		return fsm.Topic{}, fmt.Errorf("%w: %q", ErrTopicNotFound, u.Name)
	}
	if u.Queues != 0 && u.Queues < t.Queues {
		return fsm.Topic{}, fmt.Errorf("%w: topic %q has %d queues, asked for %d: queues can be added, not removed",
			ErrInvalidArgument, u.Name, t.Queues, u.Queues)
	}
	if err := n.applyCommand(ctx, &fsm.UpdateTopic{Name: u.Name, Queues: u.Queues, Perm: u.Perm}); err != nil {
		return fsm.Topic{}, err
	}
	n.notify.wakeTopic(u.Name) // long polls on this node re-check the perm now
	t, _ = n.fsm.Topic(u.Name)
	return t, nil
}

// DeleteTopic removes a topic, its consume queues and its group offsets.
func (n *Node) DeleteTopic(ctx context.Context, name string) error {
	if err := ValidateTopicName(name); err != nil {
		return err
	}
	err := n.applyCommand(ctx, &fsm.DeleteTopic{Name: name})
	if err == nil {
		n.notify.wakeTopic(name) // long polls on this node answer "not found" now
	}
	return err
}

// CommitOffsets stores a consumer group's offsets through Raft, so they
// survive failover exactly (DLedger copied them every 10 s). epoch is the
// group's reset epoch the committer knows; a commit older than the latest
// reset fails with fsm.ErrStaleEpoch. An offset above its queue's max
// offset fails the whole commit with *OffsetIllegalError (nothing
// stored): no consumer can have consumed past the end. Max itself means
// "everything consumed" and is fine; below min is fine too (retention
// overtook the group). Entries for unknown topics or queues are skipped,
// as the fsm does.
func (n *Node) CommitOffsets(ctx context.Context, group string, offsets []fsm.OffsetEntry, epoch uint64) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if err := n.checkWritable(); err != nil {
		return err // the leader's table is the one that knows every queue's end
	}
	var bad *OffsetIllegalError
	for _, o := range offsets {
		min, next, err := n.fsm.QueueRange(o.Topic, o.QueueID)
		if err != nil || o.Offset <= next {
			continue
		}
		if bad == nil {
			bad = &OffsetIllegalError{Topic: o.Topic, QueueID: o.QueueID, Offset: o.Offset, Min: min, Max: next}
		} else {
			bad.Others++
		}
	}
	if bad != nil {
		return bad
	}
	return n.applyCommand(ctx, &fsm.CommitOffsets{Group: group, Offsets: offsets, Epoch: epoch})
}

// Topic returns a topic from this node's applied state.
func (n *Node) Topic(name string) (fsm.Topic, bool) { return n.fsm.Topic(name) }

// Topics lists topics from this node's applied state.
func (n *Node) Topics() []fsm.Topic { return n.fsm.Topics() }

// QueueRange returns a queue's min and next offsets on this node.
func (n *Node) QueueRange(topic string, queueID uint32) (min, next uint64, err error) {
	min, next, err = n.fsm.QueueRange(topic, queueID)
	return min, next, mapFSMError(err)
}

// ConsumerOffset returns a group's committed offset for a queue.
func (n *Node) ConsumerOffset(group, topic string, queueID uint32) (uint64, bool) {
	return n.fsm.ConsumerOffset(group, topic, queueID)
}

// OffsetForTime returns the first offset stored at or after ts (unix ms).
func (n *Node) OffsetForTime(topic string, queueID uint32, ts int64) (uint64, error) {
	off, err := n.fsm.OffsetForTime(topic, queueID, ts)
	return off, mapFSMError(err)
}

func (n *Node) applyCommand(ctx context.Context, cmd fsm.Command) error {
	data, err := fsm.Encode(cmd)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	_, err = n.apply(ctx, data)
	return mapFSMError(err)
}

// mapFSMError turns the state machine's errors into the broker's.
func mapFSMError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fsm.ErrTopicNotFound):
		return fmt.Errorf("%w: %w", ErrTopicNotFound, err)
	case errors.Is(err, fsm.ErrTopicExists):
		return fmt.Errorf("%w: %w", ErrTopicExists, err)
	case errors.Is(err, fsm.ErrInvalidCommand):
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return err
}

// Status is a node's view of itself and its group.
type Status struct {
	NodeID       string
	Group        string
	State        string // Leader, Follower, Candidate, Shutdown
	Serving      bool   // leader that passed its Barrier
	LeaderID     string
	LeaderAddr   string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64 // raft's applied index (includes no-op and barrier entries)
	StateIndex   uint64 // last command entry applied to this node's state machine
	FirstIndex   uint64 // oldest CommitLog entry still on this node's disk
	RetainFrom   uint64 // retention floor: entries before it are released everywhere
	LastIndex    uint64
	LogBytes     int64
	Disk         DiskUsage    // this node's disk, measured at most a few seconds ago
	LastPurge    *PurgeRecord // the last segment deletion on this node, nil if none
	// CommitUnknown: this node has not learned the commit index since it
	// started (CommitIndex is raft's 0 until the leader's first
	// AppendEntries reaches a follower, or a new leader commits its first
	// entry). AppliedIndex is known from the start: a restart restores it
	// from the latest snapshot (0 without one, when there is nothing
	// applied until the log is replayed).
	CommitUnknown bool
}

// Status reports this node's Raft and storage state.
func (n *Node) Status() Status {
	// Term is read before and after State and leader, so a node that
	// reports itself leader was leader in the term it reports (raft
	// changes the state before the term when a leader steps down).
	term, state := n.raft.CurrentTerm(), n.raft.State()
	addr, id := n.raft.LeaderWithID()
	for i := 0; i < 3; i++ {
		t := n.raft.CurrentTerm()
		if t == term {
			break
		}
		term, state = t, n.raft.State()
		addr, id = n.raft.LeaderWithID()
	}
	first, _ := n.store.FirstIndex()
	last, _ := n.store.LastIndex()
	st := Status{
		NodeID:       n.cfg.NodeID,
		Group:        n.cfg.Group,
		State:        state.String(),
		Serving:      n.serving.Load() && state == raft.Leader,
		LeaderID:     string(id),
		LeaderAddr:   string(addr),
		Term:         term,
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		StateIndex:   n.fsm.AppliedIndex(),
		FirstIndex:   first,
		RetainFrom:   n.fsm.LogStart(),
		LastIndex:    last,
		LogBytes:     n.store.DiskBytes(),
		Disk:         n.diskUsage(false),
		LastPurge:    n.lastPurge.Load(),
	}
	st.CommitUnknown = st.CommitIndex == 0
	return st
}
