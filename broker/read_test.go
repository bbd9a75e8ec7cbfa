package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

func TestReadTagFilterAndLongPoll(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	createTopic(t, c, "tags", 1)
	var msgs []*fsm.Message
	for i := 0; i < 300; i++ {
		tag := []string{"a", "b", "c"}[i%3]
		msgs = append(msgs, &fsm.Message{Topic: "tags", ID: []byte(fmt.Sprint(i)), Tags: tag, Body: []byte(tag)})
	}
	if _, _, err := sendRetrying(t, c, msgs); err != nil {
		t.Fatal(err)
	}
	l := c.leader(5 * time.Second)
	ctx := context.Background()
	tests := []struct {
		expr string
		want int
	}{{"a", 100}, {"a || c", 200}, {"*", 300}, {"", 300}, {"zzz", 0}}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			got, off := 0, uint64(0)
			for off < 300 {
				res, err := l.Read(ctx, ReadRequest{Topic: "tags", Offset: off, MaxMessages: 7, Filter: ParseTagFilter(tc.expr)})
				if err != nil {
					t.Fatal(err)
				}
				if res.NextOffset <= off {
					t.Fatalf("NextOffset %d did not advance from %d", res.NextOffset, off)
				}
				for _, m := range res.Messages {
					if f := ParseTagFilter(tc.expr); !f.matchMessage(&m.Message) {
						t.Fatalf("filter %q returned tag %q", tc.expr, m.Tags)
					}
				}
				got += len(res.Messages)
				off = res.NextOffset
			}
			if got != tc.want {
				t.Fatalf("filter %q: got %d messages, want %d", tc.expr, got, tc.want)
			}
		})
	}
	// A long poll at the end of the queue wakes when a message commits.
	done := make(chan ReadResult, 1)
	start := time.Now()
	go func() {
		res, _ := l.Read(ctx, ReadRequest{Topic: "tags", Offset: 300, Wait: 10 * time.Second})
		done <- res
	}()
	if _, _, err := sendRetrying(t, c, []*fsm.Message{{Topic: "tags", Body: []byte("late")}}); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if len(res.Messages) != 1 || string(res.Messages[0].Body) != "late" {
		t.Fatalf("long poll got %+v, want the late message", res.Messages)
	}
	t.Logf("long poll woke %s after it started", time.Since(start))
}
