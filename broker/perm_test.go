package broker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/wire"
)

// TestReadNeedsReadPermission: pulls from a topic without read permission
// are refused on every replica, long polls included (a waiting one ends
// when the perm is revoked), with a non-retriable error naming the topic.
func TestReadNeedsReadPermission(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	createTopic(t, c, "wo", 1)
	if _, _, err := sendRetrying(t, c, []*fsm.Message{{Topic: "wo", ID: []byte("1"), Body: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	l := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A long poll at the end of the queue, waiting before the change.
	const wait = 30 * time.Second
	done := make(chan error, 1)
	go func() {
		_, err := l.Read(ctx, ReadRequest{Topic: "wo", Offset: 1, Wait: wait})
		done <- err
	}()
	eventually(t, 10*time.Second, func() error {
		l.notify.mu.Lock()
		defer l.notify.mu.Unlock()
		if len(l.notify.waiters) == 0 {
			return errors.New("long poll not waiting yet")
		}
		return nil
	})
	start := time.Now()
	if _, err := l.UpdateTopic(ctx, TopicUpdate{Name: "wo", Perm: permWrite}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrNoPermission) {
			t.Errorf("waiting long poll: got %v, want ErrNoPermission", err)
		}
		t.Logf("waiting long poll refused %v after the perm change", time.Since(start))
	case <-time.After(wait / 2):
		t.Fatalf("waiting long poll still held %v after the perm change, want it refused at once", wait/2)
	}
	c.waitApplied(l.Status().StateIndex, 10*time.Second)

	for _, n := range c.live() {
		start := time.Now()
		_, err := n.Read(ctx, ReadRequest{Topic: "wo", Offset: 0, Wait: wait})
		if !errors.Is(err, ErrNoPermission) || !strings.Contains(err.Error(), `topic "wo" is not readable`) {
			t.Errorf("%s: read got %v, want ErrNoPermission naming the topic", n.cfg.NodeID, err)
		}
		if d := time.Since(start); d > wait/2 {
			t.Errorf("%s: a new long poll was held %v, want it refused without waiting", n.cfg.NodeID, d)
		}
		_, err = n.handlePull(ctx, &wire.PullRequest{Topic: "wo", Offset: 1, WaitMillis: wait.Milliseconds()})
		var we *wire.Error
		if !errors.As(n.wireError(err), &we) || we.Code != wire.CodeNoPermission || wire.Info(we.Code).Retriable {
			t.Errorf("%s: pull got %v, want non-retriable CodeNoPermission", n.cfg.NodeID, err)
		}
	}

	// Read permission back: reads work again.
	if _, err := l.UpdateTopic(ctx, TopicUpdate{Name: "wo", Perm: permRead}); err != nil {
		t.Fatal(err)
	}
	res, err := l.Read(ctx, ReadRequest{Topic: "wo", Offset: 0})
	if err != nil || len(res.Messages) != 1 {
		t.Errorf("read after perm 4: got %d messages, %v; want 1", len(res.Messages), err)
	}
}
