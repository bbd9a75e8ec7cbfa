package raftlog

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt is matched (errors.Is) by every *CorruptError.
	ErrCorrupt = errors.New("raftlog: corrupt segment")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("raftlog: store closed")
	// ErrNonContiguous is returned by StoreLogs when a batch has a hole.
	ErrNonContiguous = errors.New("raftlog: non-contiguous entries")
	// ErrMiddleRange is returned by DeleteRange for a range that is neither
	// a prefix nor a suffix of the log.
	ErrMiddleRange = errors.New("raftlog: cannot delete a middle range")
	// ErrOutOfBounds is returned by ReadAt when the requested bytes lie
	// outside the entry's Data.
	ErrOutOfBounds = errors.New("raftlog: read outside entry data")
	// ErrEntryTooLarge is returned when a record would exceed MaxRecordSize.
	ErrEntryTooLarge = errors.New("raftlog: entry too large")
	// ErrIncompleteSnapshot is returned by a snapshot sink closed before the
	// whole shipped stream arrived.
	ErrIncompleteSnapshot = errors.New("raftlog: incomplete shipped snapshot")
)

// CorruptError names the file and byte offset of a record or header that
// failed validation. errors.Is(err, ErrCorrupt) is true for it.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("raftlog: corrupt segment %s at offset %d: %s", e.Path, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) work.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// FailStopError wraps the first write or sync error. Once a Store has seen
// one, every later write returns the same *FailStopError (see doc.go).
type FailStopError struct{ Err error }

func (e *FailStopError) Error() string {
	return "raftlog: store failed, restart required: " + e.Err.Error()
}

func (e *FailStopError) Unwrap() error { return e.Err }
