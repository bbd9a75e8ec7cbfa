package fsm

import (
	"errors"
	"fmt"
)

// Sentinel errors. Compare with errors.Is: most are returned wrapped with
// context (the topic, the queue, the offending field).
var (
	// ErrUnknownCommand is returned by Decode (and Apply) for a command type
	// byte this version does not know.
	ErrUnknownCommand = errors.New("fsm: unknown command type")
	// ErrUnknownVersion is returned for a known command type whose encoding
	// version byte this version does not know.
	ErrUnknownVersion = errors.New("fsm: unknown command encoding version")
	// ErrCorrupt is returned when an encoded command, message record,
	// snapshot or consume-queue file is malformed.
	ErrCorrupt = errors.New("fsm: corrupt data")
	// ErrChecksum is returned by DecodeMessage when the record CRC does not match.
	ErrChecksum = errors.New("fsm: message checksum mismatch")
	// ErrInvalidMessage is returned by BatchEncoder.Add for a message that
	// breaks a limit (empty topic, oversized id, separator in a property...).
	ErrInvalidMessage = errors.New("fsm: invalid message")
	// ErrInvalidCommand is returned by Encode and Apply for a control command
	// with invalid fields (bad topic name, zero queues, unknown perm bits...).
	ErrInvalidCommand = errors.New("fsm: invalid command")
	// ErrTopicExists is the Apply result of CreateTopic for an existing name.
	ErrTopicExists = errors.New("fsm: topic already exists")
	// ErrTopicNotFound is returned for an unknown topic name.
	ErrTopicNotFound = errors.New("fsm: topic not found")
	// ErrQueueNotFound is returned for a queue id >= the topic's queue count.
	ErrQueueNotFound = errors.New("fsm: queue not found")
	// ErrQueueShrink is the Apply result of UpdateTopic asking for fewer queues.
	ErrQueueShrink = errors.New("fsm: queue count may only grow")
	// ErrGroupNotFound is the Apply result of DeleteGroup for an unknown group.
	ErrGroupNotFound = errors.New("fsm: consumer group not found")
	// ErrOffsetTooSmall is matched by *OffsetTooSmallError.
	ErrOffsetTooSmall = errors.New("fsm: offset below queue minimum")
	// ErrNoLog is returned by Restore when consume queues must be rebuilt but
	// Config.Log is nil.
	ErrNoLog = errors.New("fsm: consume queue rebuild needs Config.Log")
	// ErrLogShort is returned by Restore when the retained raft log does not
	// reach back far enough to rebuild a queue's units [min, next).
	ErrLogShort = errors.New("fsm: raft log does not cover consume queue range")
	// ErrStaleEpoch is the Apply result of a CommitOffsets whose Epoch is
	// older than the group's reset epoch.
	ErrStaleEpoch = errors.New("fsm: commit predates an offset reset")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("fsm: closed")
	// ErrSyncFailed is matched by Sync's (and Err's) sticky error after an
	// fsync of a consume-queue or index file failed.
	ErrSyncFailed = errors.New("fsm: sync failed, restart required")
	// ErrSnapshotVersion is returned by Restore for an unknown snapshot format.
	ErrSnapshotVersion = errors.New("fsm: unknown snapshot format version")
)

// OffsetTooSmallError is returned by Units when the requested offset has
// already been removed by retention (TruncatePrefix). Min is the smallest
// offset still readable; consumers should reset to it (RocketMQ
// PULL_OFFSET_MOVED).
type OffsetTooSmallError struct {
	Topic   string
	QueueID uint32
	Offset  uint64
	Min     uint64
}

func (e *OffsetTooSmallError) Error() string {
	return fmt.Sprintf("fsm: offset %d of %s/%d below queue minimum %d", e.Offset, e.Topic, e.QueueID, e.Min)
}

// Is makes errors.Is(err, ErrOffsetTooSmall) true.
func (e *OffsetTooSmallError) Is(target error) bool { return target == ErrOffsetTooSmall }
