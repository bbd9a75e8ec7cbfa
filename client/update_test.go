package client_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestUpdateTopicKeepsUnsetFields: an update changes only the fields it
// sets; a smaller queue count is refused, naming the current one.
func TestUpdateTopicKeepsUnsetFields(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	a := newAdmin(t, c)
	ctx := ctxT(t, 30*time.Second)
	for _, spec := range []client.TopicSpec{{Name: "wide", Queues: 16}, {Name: "narrow", Queues: 2}} {
		if _, err := a.CreateTopic(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step string, got []client.TopicInfo, err error, queues uint32, perm uint8) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if len(got) != 1 || got[0].Queues != queues || got[0].Perm != perm {
			t.Errorf("%s: got %+v, want %d queues perm %d", step, got, queues, perm)
		}
		listed, err := a.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range listed {
			if ti.Name == got[0].Name && (ti.Queues != queues || ti.Perm != perm) {
				t.Errorf("%s: listed %+v, want %d queues perm %d", step, ti, queues, perm)
			}
		}
	}

	got, err := a.UpdateTopic(ctx, client.TopicUpdate{Name: "wide", Perm: new(uint8(4))})
	check("perm-only update of 16 queues", got, err, 16, 4)
	got, err = a.UpdateTopic(ctx, client.TopicUpdate{Name: "narrow", Perm: new(uint8(4))})
	check("perm-only update of 2 queues", got, err, 2, 4)
	got, err = a.UpdateTopic(ctx, client.TopicUpdate{Name: "narrow", Queues: new(uint32(3))})
	check("queue-only update of a read-only topic", got, err, 3, 4)
	got, err = a.UpdateTopic(ctx, client.TopicUpdate{Name: "narrow", Queues: new(uint32(5)), Perm: new(uint8(6))})
	check("update of both", got, err, 5, 6)

	_, err = a.UpdateTopic(ctx, client.TopicUpdate{Name: "wide", Queues: new(uint32(8))})
	if !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), `topic "wide" has 16 queues, asked for 8`) {
		t.Errorf("shrink: got %v, want ErrInvalidArgument naming 16 and 8", err)
	}
	for _, tc := range []struct {
		u    client.TopicUpdate
		want string
	}{
		{client.TopicUpdate{Name: "wide"}, `update of topic "wide" changes nothing`},
		{client.TopicUpdate{Name: "wide", Queues: new(uint32(0))}, "queue count 0: want 1 to 1024"},
		{client.TopicUpdate{Name: "wide", Perm: new(uint8(1))}, "perm 1: want 2 (write), 4 (read) or 6"},
	} {
		if _, err := a.UpdateTopic(ctx, tc.u); !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("UpdateTopic(%+v): got %v, want ErrInvalidArgument containing %q", tc.u, err, tc.want)
		}
	}
	if _, err := a.UpdateTopic(ctx, client.TopicUpdate{Name: "nosuch", Perm: new(uint8(6))}); !errors.Is(err, client.ErrTopicNotFound) {
		t.Errorf("update of a missing topic: got %v, want ErrTopicNotFound", err)
	}
}
