package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rmq-dev/rmq/wire"
)

func TestGroupManager(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newGroupManager(10*time.Second, func() time.Time { return now })
	// The wire's mode names go through unchanged: the broker's are the same.
	hb := func(client, mode string) ([]string, error) {
		return g.heartbeat(HeartbeatRequest{Group: "g", ClientID: client, Mode: mode, Topics: []string{"t"}})
	}
	if _, err := hb("b", wire.ModeClustering); err != nil {
		t.Fatal(err)
	}
	members, _ := hb("a", wire.ModeClustering)
	if diff := cmp.Diff([]string{"a", "b"}, members); diff != "" {
		t.Fatalf("members (-want +got):\n%s", diff)
	}
	var we *wire.Error
	if _, err := hb("c", wire.ModeBroadcasting); !errors.As(wireErrorOf(err), &we) || we.Code != wire.CodeGroupModeMismatch {
		t.Fatalf("mode mismatch: got %v, want CodeGroupModeMismatch", err)
	}
	// a stops heartbeating: it expires.
	now = now.Add(5 * time.Second)
	hb("b", wire.ModeClustering)
	now = now.Add(6 * time.Second)
	members, _ = hb("b", wire.ModeClustering)
	if diff := cmp.Diff([]string{"b"}, members); diff != "" {
		t.Fatalf("members after a expired (-want +got):\n%s", diff)
	}
	if g.isMember("g", "a") || !g.isMember("g", "b") {
		t.Fatalf("isMember: a %v, b %v; want false, true", g.isMember("g", "a"), g.isMember("g", "b"))
	}
	g.leave("g", "b")
	if g.isMember("g", "b") {
		t.Fatal("a departed member is still a member")
	}
	// The last member may switch modes.
	if _, err := hb("c", wire.ModeBroadcasting); err != nil {
		t.Fatalf("new group in broadcasting mode: %v", err)
	}
}
