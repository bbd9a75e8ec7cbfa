package broker

import (
	"errors"
	"fmt"
)

var (
	// ErrNotLeader means this node cannot accept writes; the error is a
	// *NotLeaderError carrying the current leader when one is known.
	ErrNotLeader = errors.New("broker: not the leader")
	// ErrLeaderNotReady means this node just won an election and has not
	// yet applied everything committed before it (Barrier). Retry shortly.
	ErrLeaderNotReady = errors.New("broker: leader not ready")
	// ErrIndeterminate means leadership was lost or the node stopped after
	// the write was proposed: it may or may not be committed. Retrying can
	// duplicate the message (at-least-once).
	ErrIndeterminate = errors.New("broker: write outcome unknown")
	// ErrTopicNotFound means the topic does not exist.
	ErrTopicNotFound = errors.New("broker: topic not found")
	// ErrTopicExists means a create named an existing topic.
	ErrTopicExists = errors.New("broker: topic already exists")
	// ErrInvalidArgument covers malformed names, queue ids and sizes.
	ErrInvalidArgument = errors.New("broker: invalid argument")
	// ErrMessageTooLarge means a message body exceeds MaxMessageSize.
	ErrMessageTooLarge = errors.New("broker: message too large")
	// ErrNoPermission means the topic does not allow the operation.
	ErrNoPermission = errors.New("broker: no permission")
	// ErrOffsetMoved means a read asked for an offset outside the queue's
	// range: below its minimum (retention removed it) or, on the leader,
	// above its max offset. The error is an *OffsetMovedError carrying the
	// valid range (RocketMQ PULL_OFFSET_MOVED).
	ErrOffsetMoved = errors.New("broker: offset moved")
	// ErrOffsetIllegal means a commit named an offset above the queue's max
	// offset; the error is an *OffsetIllegalError (RocketMQ OFFSET_ILLEGAL).
	ErrOffsetIllegal = errors.New("broker: offset illegal")
	// ErrGroupModeMismatch means a consumer's heartbeat asked for another
	// consumption mode than the group's live members use.
	ErrGroupModeMismatch = errors.New("broker: group mode mismatch")
	// ErrDiskFull means the group refuses sends and topic creation while
	// a node's disk is above the high-water mark (DiskLimitConfig); the
	// error is a *DiskFullError naming the node. Nothing was written:
	// retry on another broker group.
	ErrDiskFull = errors.New("broker: disk full")
	// ErrClosed means the node is shut down.
	ErrClosed = errors.New("broker: closed")
)

// NotLeaderError is returned for writes sent to a follower.
type NotLeaderError struct {
	LeaderID   string // empty when no leader is known
	LeaderAddr string // the leader's Raft address
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "broker: not the leader (no leader known)"
	}
	return fmt.Sprintf("broker: not the leader (leader is %s at %s)", e.LeaderID, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// OffsetMovedError is returned by reads outside a queue's offsets: below
// Min, or above Max on the leader. Valid read offsets are Min to Max (a
// read at Max waits for the next message).
type OffsetMovedError struct {
	Topic     string
	QueueID   uint32
	Requested uint64
	Min, Max  uint64
}

func (e *OffsetMovedError) Error() string {
	return fmt.Sprintf("broker: offset %d of %s/%d is out of range: valid offsets are %d to %d",
		e.Requested, e.Topic, e.QueueID, e.Min, e.Max)
}

// Is makes errors.Is(err, ErrOffsetMoved) true.
func (e *OffsetMovedError) Is(target error) bool { return target == ErrOffsetMoved }

// OffsetIllegalError is returned for a commit above a queue's max offset
// (Max itself is legal: everything consumed). Others counts further
// illegal entries of the same commit.
type OffsetIllegalError struct {
	Topic    string
	QueueID  uint32
	Offset   uint64
	Min, Max uint64
	Others   int
}

func (e *OffsetIllegalError) Error() string {
	s := fmt.Sprintf("broker: commit offset %d of %s/%d is above the queue's max offset %d (valid offsets are %d to %d)",
		e.Offset, e.Topic, e.QueueID, e.Max, e.Min, e.Max)
	if e.Others > 0 {
		s += fmt.Sprintf(", and %d more entries of the commit are", e.Others)
	}
	return s
}

// Is makes errors.Is(err, ErrOffsetIllegal) true.
func (e *OffsetIllegalError) Is(target error) bool { return target == ErrOffsetIllegal }
