package fsm

import (
	"errors"
	"os"
	"testing"
)

// TestSyncFailureIsSticky: once an fsync of a consume-queue file fails,
// every later Sync and every snapshot's Persist fail too, even with the
// file healthy again (the kernel may have dropped the pages a retried
// fsync would report as written), and Err reports it.
func TestSyncFailureIsSticky(t *testing.T) {
	h := newHarness(t, 4)
	h.mustCmd(CreateTopic{Name: "a", Queues: 1})
	h.send(1, msg("a", h.topicID("a"), 0, "x"))
	if h.f.Err() != nil {
		t.Fatalf("Err before any failure: %v", h.f.Err())
	}
	// Fail the dirty file's fsync: swap its descriptor for a closed one.
	q := h.f.topics["a"].queues[0]
	c := q.files[0]
	good := c.f
	bad, err := openClosed(c.path)
	if err != nil {
		t.Fatal(err)
	}
	c.f = bad
	err = h.f.Sync()
	c.f = good
	if !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("Sync with a failing fsync got %v, want ErrSyncFailed", err)
	}
	h.send(2, msg("a", h.topicID("a"), 0, "y"))
	if err := h.f.Sync(); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("Sync after the failure got %v, want the sticky ErrSyncFailed", err)
	}
	if !errors.Is(h.f.Err(), ErrSyncFailed) {
		t.Fatalf("Err got %v, want ErrSyncFailed", h.f.Err())
	}
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); !errors.Is(err, ErrSyncFailed) || !sink.canceled {
		t.Fatalf("Persist got %v (canceled %v), want ErrSyncFailed and Cancel", err, sink.canceled)
	}
}

// openClosed returns a closed *os.File for path: every call on it fails.
func openClosed(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return f, f.Close()
}
