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
	// ErrOffsetMoved means the requested offset is below the queue's
	// minimum (retention removed it); the error is an *OffsetMovedError.
	ErrOffsetMoved = errors.New("broker: offset moved")
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

// OffsetMovedError is returned by reads below a queue's minimum offset.
type OffsetMovedError struct {
	Requested, Min uint64
}

func (e *OffsetMovedError) Error() string {
	return fmt.Sprintf("broker: offset %d moved, queue starts at %d", e.Requested, e.Min)
}

// Is makes errors.Is(err, ErrOffsetMoved) true.
func (e *OffsetMovedError) Is(target error) bool { return target == ErrOffsetMoved }
