package broker

import (
	"context"
	"fmt"

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

// CreateTopic creates a topic through Raft, registers it with the
// NameServers at once and returns it as applied. It is refused with
// ErrDiskFull while the group is short of disk (diskguard.go).
func (n *Node) CreateTopic(ctx context.Context, spec TopicSpec) (fsm.Topic, error) {
	return n.createTopic(ctx, spec, true)
}

// createTopic is CreateTopic; guard false skips the disk guard, for the
// retry and dead-letter topics that nacks need (they must work on a full
// disk, as acks do).
func (n *Node) createTopic(ctx context.Context, spec TopicSpec, guard bool) (fsm.Topic, error) {
	if err := spec.normalize(); err != nil {
		return fsm.Topic{}, err
	}
	if err := n.checkWritable(); err != nil {
		return fsm.Topic{}, err
	}
	if guard {
		if err := n.checkDiskRoom(); err != nil {
			return fsm.Topic{}, err
		}
	}
	cmd := &fsm.CreateTopic{Name: spec.Name, Queues: spec.Queues, Perm: spec.Perm, Time: n.cfg.Now().UnixMilli()}
	if err := n.proposeCommand(ctx, cmd); err != nil {
		return fsm.Topic{}, err
	}
	n.pokeRegistration() // NameServers route to the new topic at once
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
	if err := n.proposeCommand(ctx, &fsm.UpdateTopic{Name: u.Name, Queues: u.Queues, Perm: u.Perm}); err != nil {
		return fsm.Topic{}, err
	}
	n.notify.wakeTopic(u.Name) // long polls on this node re-check the perm now
	n.pokeRegistration()
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
		n.pokeRegistration()
	}
	return err
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

// QueueStatus is one queue's offsets and its newest message's store time.
type QueueStatus struct {
	QueueID       uint32
	MinOffset     uint64
	MaxOffset     uint64 // next offset to be assigned
	LastStoreTime int64  // unix ms; 0 when the queue is empty
	Delayed       int    // delayed messages (or retries) stored for it, not yet due
}

// TopicStatus is a topic and the state of each of its queues.
type TopicStatus struct {
	Topic  fsm.Topic
	Queues []QueueStatus
}

// TopicStatus reports a topic's queues from this node's applied state.
func (n *Node) TopicStatus(name string) (TopicStatus, error) {
	t, ok := n.fsm.Topic(name)
	if !ok {
		return TopicStatus{}, fmt.Errorf("%w: %q", ErrTopicNotFound, name)
	}
	st := TopicStatus{Topic: t}
	delayed := n.fsm.PendingTimersByQueue(t.ID)
	for q := uint32(0); q < t.Queues; q++ {
		min, next, err := n.QueueRange(t.Name, q)
		if err != nil {
			return TopicStatus{}, err
		}
		qs := QueueStatus{QueueID: q, MinOffset: min, MaxOffset: next, Delayed: delayed[q]}
		if next > min {
			if u, err := n.fsm.Units(t.Name, q, next-1, 1, nil); err == nil && len(u) == 1 {
				qs.LastStoreTime = u[0].StoreTime
			}
		}
		st.Queues = append(st.Queues, qs)
	}
	return st, nil
}
