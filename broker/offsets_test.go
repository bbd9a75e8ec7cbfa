package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/wire"
)

// TestOffsetsOutOfRange: on the leader a pull above the queue's max offset
// is answered with an offset-moved error carrying [min, max] (a long poll
// too, at once), and a commit above the max offset is refused whole with
// an offset-illegal error; offset == max is fine for both.
func TestOffsetsOutOfRange(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	createTopic(t, c, "q", 2)
	var msgs []*fsm.Message
	for i := range 5 {
		msgs = append(msgs, &fsm.Message{Topic: "q", ID: []byte(fmt.Sprint(i)), Body: []byte("x")})
	}
	if _, _, err := sendRetrying(t, c, msgs); err != nil { // queue 0: offsets 0-4
		t.Fatal(err)
	}
	l := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if res, err := l.Read(ctx, ReadRequest{Topic: "q", Offset: 5}); err != nil || len(res.Messages) != 0 {
		t.Errorf("read at max offset 5: got %d messages, %v; want none and no error", len(res.Messages), err)
	}
	start := time.Now()
	_, err := l.Read(ctx, ReadRequest{Topic: "q", Offset: 9, Wait: 30 * time.Second})
	var om *OffsetMovedError
	if !errors.As(err, &om) || om.Min != 0 || om.Max != 5 || om.Requested != 9 {
		t.Fatalf("read at 9 > max 5: got %v, want *OffsetMovedError with range [0, 5]", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("long poll above max was held %v, want an answer without waiting", d)
	}
	if !strings.Contains(err.Error(), "offset 9 of q/0 is out of range: valid offsets are 0 to 5") {
		t.Errorf("error %q, want it to name the offset, queue and range", err)
	}
	_, err = l.handlePull(ctx, &wire.PullRequest{Topic: "q", Offset: 6})
	var we *wire.Error
	if !errors.As(l.wireError(err), &we) || we.Code != wire.CodeOffsetMoved || we.MinOffset != 0 || we.MaxOffset != 5 {
		t.Errorf("pull at 6: got %+v, want CodeOffsetMoved with MinOffset 0, MaxOffset 5", we)
	}
	// An empty queue: 0 is its end, 1 is beyond it.
	if _, err := l.Read(ctx, ReadRequest{Topic: "q", QueueID: 1, Offset: 1}); !errors.As(err, &om) || om.Max != 0 {
		t.Errorf("read at 1 of an empty queue: got %v, want *OffsetMovedError with max 0", err)
	}
	// A follower may lag the leader: it waits instead of correcting.
	c.waitApplied(l.Status().StateIndex, 10*time.Second)
	for _, n := range c.live() {
		if n != l {
			if _, err := n.Read(ctx, ReadRequest{Topic: "q", Offset: 9}); err != nil {
				t.Errorf("follower %s read above max: got %v, want an empty answer", n.cfg.NodeID, err)
			}
		}
	}

	commit := func(offs ...fsm.OffsetEntry) error { return l.CommitOffsets(ctx, "g", offs, 0) }
	if err := commit(fsm.OffsetEntry{Topic: "q", QueueID: 0, Offset: 5}); err != nil {
		t.Fatalf("commit at max offset 5: %v", err)
	}
	err = commit(fsm.OffsetEntry{Topic: "q", QueueID: 1, Offset: 0}, fsm.OffsetEntry{Topic: "q", QueueID: 0, Offset: 6},
		fsm.OffsetEntry{Topic: "q", QueueID: 1, Offset: 3})
	var oi *OffsetIllegalError
	if !errors.As(err, &oi) || !errors.Is(err, ErrOffsetIllegal) || oi.QueueID != 0 || oi.Offset != 6 || oi.Min != 0 || oi.Max != 5 || oi.Others != 1 {
		t.Fatalf("commit of 6 > max 5 (and 3 > max 0): got %v, want *OffsetIllegalError for q/0 with range [0, 5] and 1 more", err)
	}
	if !strings.Contains(err.Error(), "commit offset 6 of q/0 is above the queue's max offset 5 (valid offsets are 0 to 5)") {
		t.Errorf("error %q, want it to name the offset, queue and range", err)
	}
	if !errors.As(l.wireError(err), &we) || we.Code != wire.CodeOffsetIllegal || we.MaxOffset != 5 || wire.Info(we.Code).Retriable {
		t.Errorf("commit above max on the wire: got %+v, want non-retriable CodeOffsetIllegal with MaxOffset 5", we)
	}
	if off, _ := l.ConsumerOffset("g", "q", 0); off != 5 {
		t.Errorf("committed offset after the refused commit: got %d, want 5 (nothing stored)", off)
	}
	if _, ok := l.ConsumerOffset("g", "q", 1); ok {
		t.Errorf("queue 1 has a committed offset, want none: the refused commit stores nothing")
	}
}
