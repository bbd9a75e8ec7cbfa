package client

import (
	"context"
	"testing"

	"github.com/rmq-dev/rmq/wire"
)

// TestCorrectOffset: where a queue continues after an offset-moved answer.
func TestCorrectOffset(t *testing.T) {
	moved := func(min, max uint64) *Error {
		return &Error{Code: wire.CodeOffsetMoved, MinOffset: min, MaxOffset: max}
	}
	for _, tc := range []struct {
		name string
		from ConsumeFrom
		off  uint64
		err  *Error
		want uint64
	}{
		{"below min, FromLast", FromLast, 3, moved(10, 20), 10},
		{"below min, FromFirst", FromFirst, 3, moved(10, 20), 10},
		{"above max, FromFirst", FromFirst, 30, moved(10, 20), 10},
		{"above max, FromLast", FromLast, 30, moved(10, 20), 20},
		{"above max of an empty queue", FromLast, 30, moved(0, 0), 0},
		{"broker without MaxOffset", FromLast, 3, moved(10, 0), 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Consumer{cfg: ConsumerConfig{From: tc.from}}
			if got := c.correctOffset(context.Background(), Queue{Topic: "t"}, tc.off, tc.err); got != tc.want {
				t.Errorf("correctOffset(%d, [%d, %d]) = %d, want %d", tc.off, tc.err.MinOffset, tc.err.MaxOffset, got, tc.want)
			}
		})
	}
}
