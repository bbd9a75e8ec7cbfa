package broker

import (
	"context"
	"fmt"

	"github.com/rmq-dev/rmq/fsm"
)

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
	return n.proposeCommand(ctx, &fsm.CommitOffsets{Group: group, Offsets: offsets, Epoch: epoch})
}

// ConsumerOffset returns a group's committed offset for a queue.
func (n *Node) ConsumerOffset(group, topic string, queueID uint32) (uint64, bool) {
	return n.fsm.ConsumerOffset(group, topic, queueID)
}

// GroupResetEpoch is the group's reset epoch: the number of ResetOffsets
// it has had. A commit must carry it (CommitOffsets).
func (n *Node) GroupResetEpoch(group string) uint64 { return n.fsm.GroupResetEpoch(group) }

// OffsetForTime returns the first offset stored at or after ts (unix ms).
func (n *Node) OffsetForTime(topic string, queueID uint32, ts int64) (uint64, error) {
	off, err := n.fsm.OffsetForTime(topic, queueID, ts)
	return off, mapFSMError(err)
}

// ResetOffsets moves group to the first message stored at or after ts
// (unix ms) in every queue of topic, and bumps the group's reset epoch so
// live members re-read the committed offsets instead of overwriting them.
// It returns the offsets it committed.
func (n *Node) ResetOffsets(ctx context.Context, group, topic string, ts int64) ([]fsm.OffsetEntry, error) {
	if err := ValidateGroupName(group); err != nil {
		return nil, err
	}
	if err := n.checkWritable(); err != nil {
		return nil, err // before the look-up: a lagging follower may not know the topic
	}
	t, ok := n.fsm.Topic(topic)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicNotFound, topic)
	}
	cmd := &fsm.CommitOffsets{Group: group, Reset: true}
	for q := uint32(0); q < t.Queues; q++ {
		off, err := n.OffsetForTime(t.Name, q, ts)
		if err != nil {
			return nil, err
		}
		cmd.Offsets = append(cmd.Offsets, fsm.OffsetEntry{Topic: t.Name, QueueID: q, Offset: off})
	}
	if err := n.proposeCommand(ctx, cmd); err != nil {
		return nil, err
	}
	return cmd.Offsets, nil
}
