package client

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rmq-dev/rmq/wire"
)

// A broker group short of disk answers CodeDiskFull: the client's error
// is ErrDiskFull, retriable (on another group), and the call returns at
// once instead of retrying the same group until its deadline.
func TestDiskFullError(t *testing.T) {
	err := fromWire(fmt.Errorf("send: %w", &wire.Error{Code: wire.CodeDiskFull,
		ErrorBody: wire.ErrorBody{Message: "broker: disk full, writes refused: n1's file system is 91.0% full"}}))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrDiskFull) || !e.Retriable {
		t.Fatalf("got %#v, want a retriable *Error that is ErrDiskFull", err)
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotLeader) {
		t.Errorf("%v matches another sentinel", err)
	}
	if got := classify(err); got != failFatal {
		t.Errorf("classify: got %v, want failFatal (retry elsewhere, not on this group)", got)
	}
	if want := "client: disk full: broker: disk full, writes refused: n1's file system is 91.0% full"; err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
	if !wire.RetryElsewhere(wire.CodeDiskFull) || wire.RetryElsewhere(wire.CodeNotLeader) {
		t.Error("RetryElsewhere: want true for CodeDiskFull only")
	}
	if wire.CodeDiskFull != 24 {
		t.Errorf("CodeDiskFull = %d, want 24 (stable)", wire.CodeDiskFull)
	}
}
