package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/rmq-dev/rmq/wire"
)

// Error is an error answered by a broker or NameServer, or a local check
// that matches one of the wire error codes. errors.Is compares codes, so
// errors.Is(err, ErrNotLeader) holds for every "not leader" answer.
type Error struct {
	// Code is the wire error code (wire.CodeNotLeader, ...).
	Code uint16
	// Retriable reports whether the request may succeed if retried,
	// possibly on another node. wire.CodeIndeterminate is retriable but a
	// retry may duplicate a message.
	Retriable bool
	// Message is the server's (or the local check's) explanation.
	Message string
	// LeaderHint is the client address of the group leader, set on
	// CodeNotLeader when the answering node knows it.
	LeaderHint string
	// MinOffset and MaxOffset are the queue's valid offsets (MaxOffset is
	// the next offset to be written), set on CodeOffsetMoved and
	// CodeOffsetIllegal.
	MinOffset, MaxOffset uint64
}

func (e *Error) Error() string {
	name := wire.Info(e.Code).Name
	s := "client: " + name
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.LeaderHint != "" {
		s += " (leader " + e.LeaderHint + ")"
	}
	return s
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func sentinel(code uint16) *Error {
	return &Error{Code: code, Retriable: wire.Info(code).Retriable}
}

// ErrNoNameServer: no NameServer could be reached. When every NameServer
// refused the connection (or its host does not exist) and none has ever
// answered this client, the error is final at once instead of being
// retried until the caller's deadline.
var ErrNoNameServer = errors.New("client: no NameServer reachable")

// Sentinels for errors.Is. Each matches any *Error with the same code.
var (
	ErrNotLeader         = sentinel(wire.CodeNotLeader)
	ErrLeaderNotReady    = sentinel(wire.CodeLeaderNotReady)
	ErrIndeterminate     = sentinel(wire.CodeIndeterminate)
	ErrUnavailable       = sentinel(wire.CodeUnavailable)
	ErrTimeout           = sentinel(wire.CodeTimeout)
	ErrTopicNotFound     = sentinel(wire.CodeTopicNotFound)
	ErrTopicExists       = sentinel(wire.CodeTopicExists)
	ErrInvalidArgument   = sentinel(wire.CodeInvalidArgument)
	ErrMessageTooLarge   = sentinel(wire.CodeMessageTooLarge)
	ErrNoPermission      = sentinel(wire.CodeNoPermission)
	ErrOffsetMoved       = sentinel(wire.CodeOffsetMoved)
	ErrGroupModeMismatch = sentinel(wire.CodeGroupModeMismatch)
	ErrQueueLocked       = sentinel(wire.CodeQueueLocked)
	ErrStaleEpoch        = sentinel(wire.CodeStaleEpoch)
	ErrOffsetIllegal     = sentinel(wire.CodeOffsetIllegal)
	ErrInternal          = sentinel(wire.CodeInternal)
	// ErrDiskFull: the broker group refuses sends while a node's disk is
	// above its high-water mark; nothing was stored. It is retriable on
	// another broker group (wire.RetryElsewhere), not on the same one.
	ErrDiskFull = sentinel(wire.CodeDiskFull)
)

// Local sentinels that have no wire code.
var (
	// ErrClosed means the Producer, Consumer or Admin was closed.
	ErrClosed = errors.New("client: closed")
	// ErrNoLeader means no leader of a broker group could be reached
	// before the deadline.
	ErrNoLeader = errors.New("client: no leader reachable")
)

// invalidf builds a local ErrInvalidArgument.
func invalidf(format string, args ...any) *Error {
	return &Error{Code: wire.CodeInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// fromWire converts a *wire.Error anywhere in err's chain to *Error and
// passes every other error through unchanged.
func fromWire(err error) error {
	var we *wire.Error
	if err == nil || !errors.As(err, &we) {
		return err
	}
	return &Error{
		Code:       we.Code,
		Retriable:  wire.Info(we.Code).Retriable,
		Message:    we.Message,
		LeaderHint: we.Leader,
		MinOffset:  we.MinOffset,
		MaxOffset:  we.MaxOffset,
	}
}

// dialError marks a failure to connect: the request never left.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return fmt.Sprintf("client: dial %s: %v", e.addr, e.err) }
func (e *dialError) Unwrap() error { return e.err }

// failure classifies an error for the retry loops.
type failure int

const (
	failFatal    failure = iota // return to the caller
	failNotSent                 // the request was not stored: retry freely
	failMaybe                   // a real attempt that may have been stored
	failRedirect                // not leader: go elsewhere, free retry
)

func classify(err error) failure {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return failFatal
	}
	var de *dialError
	if errors.As(err, &de) {
		return failNotSent
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Code {
		case wire.CodeNotLeader:
			return failRedirect
		case wire.CodeLeaderNotReady, wire.CodeQueueLocked:
			return failNotSent
		}
		if wire.RetryElsewhere(e.Code) {
			return failFatal // the same group would refuse again: the caller may pick another
		}
		if e.Retriable {
			return failMaybe
		}
		return failFatal
	}
	if errors.Is(err, wire.ErrConnClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return failMaybe
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return failMaybe
	}
	return failFatal
}

// isTransport reports whether err means the node could not be talked to.
func isTransport(err error) bool {
	var de *dialError
	if errors.As(err, &de) {
		return true
	}
	var e *Error
	if errors.As(err, &e) {
		return false
	}
	if errors.Is(err, wire.ErrConnClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}
