package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rmq-dev/rmq/client/wire"
)

func TestGroupManager(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newGroupManager(10*time.Second, 60*time.Second)
	g.now = func() time.Time { return now }
	hb := func(client, mode string) ([]string, error) {
		return g.heartbeat(&wire.HeartbeatRequest{Group: "g", ClientID: client, Mode: mode, Topics: []string{"t"}})
	}
	q := func(ids ...uint32) []wire.QueueOffset {
		var out []wire.QueueOffset
		for _, id := range ids {
			out = append(out, wire.QueueOffset{Topic: "t", QueueID: id})
		}
		return out
	}
	lock := func(client string, ids ...uint32) []wire.QueueOffset {
		t.Helper()
		held, err := g.lock(&wire.LockRequest{Group: "g", ClientID: client, Queues: q(ids...)})
		if err != nil {
			t.Fatal(err)
		}
		return held
	}
	if _, err := hb("b", wire.ModeClustering); err != nil {
		t.Fatal(err)
	}
	members, _ := hb("a", wire.ModeClustering)
	if diff := cmp.Diff([]string{"a", "b"}, members); diff != "" {
		t.Fatalf("members (-want +got):\n%s", diff)
	}
	var we *wire.Error
	if _, err := hb("c", wire.ModeBroadcasting); !errors.As(err, &we) || we.Code != wire.CodeGroupModeMismatch {
		t.Fatalf("mode mismatch: got %v, want CodeGroupModeMismatch", err)
	}
	if diff := cmp.Diff(q(0, 1), lock("a", 0, 1)); diff != "" {
		t.Fatalf("a's locks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(q(2), lock("b", 1, 2)); diff != "" {
		t.Fatalf("b must not take a's queue 1 (-want +got):\n%s", diff)
	}
	g.unlock(&wire.LockRequest{Group: "g", ClientID: "a", Queues: q(1)})
	if diff := cmp.Diff(q(1), lock("b", 1)); diff != "" {
		t.Fatalf("b after a released queue 1 (-want +got):\n%s", diff)
	}
	// a stops heartbeating: it expires and its locks go with it.
	now = now.Add(5 * time.Second)
	hb("b", wire.ModeClustering)
	now = now.Add(6 * time.Second)
	members, _ = hb("b", wire.ModeClustering)
	if diff := cmp.Diff([]string{"b"}, members); diff != "" {
		t.Fatalf("members after a expired (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(q(0), lock("b", 0)); diff != "" {
		t.Fatalf("b takes the expired member's queue (-want +got):\n%s", diff)
	}
	g.leave("g", "b")
	if _, err := g.lock(&wire.LockRequest{Group: "g", ClientID: "b", Queues: q(0)}); err == nil {
		t.Fatal("a departed member could lock")
	}
	// The last member may switch modes.
	if _, err := hb("c", wire.ModeBroadcasting); err != nil {
		t.Fatalf("new group in broadcasting mode: %v", err)
	}
}
