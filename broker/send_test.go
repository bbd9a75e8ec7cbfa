package broker

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/wire"
)

// TestSendRefusesPerMessage: one request mixing healthy messages with a
// read-only topic, a missing topic, an oversized body and a bad queue
// stores the healthy ones and refuses each bad one with its own code.
func TestSendRefusesPerMessage(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.MaxMessageSize = 1024 })
	l := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	createTopic(t, c, "ok", 1)
	if _, err := l.CreateTopic(ctx, TopicSpec{Name: "ro", Queues: 1, Perm: permRead}); err != nil {
		t.Fatal(err)
	}
	createTopic(t, c, "gone", 1)
	if err := l.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	msg := func(topic string, q uint32, body []byte) wire.Message {
		return wire.Message{Topic: topic, QueueID: q, ID: append([]byte(topic+"/"), body...), Body: body} // IDs differ: no dedup
	}
	big := bytes.Repeat([]byte("x"), 2000)
	req := &wire.SendRequest{Messages: []wire.Message{
		msg("ok", 0, []byte("a")),
		msg("ro", 0, []byte("read-only")),
		msg("ok", 0, []byte("b")),
		msg("gone", 0, []byte("deleted")),
		msg("ok", 0, big),
		msg("ok", 5, []byte("no such queue")),
		msg("ok", 0, []byte("c")),
	}}
	resp, err := l.handleSend(ctx, req)
	if err != nil {
		t.Fatalf("send: got request error %v, want per-message results", err)
	}
	results := resp.(*wire.SendResponse).Results
	want := []struct {
		code   uint16
		offset uint64
		text   string
	}{
		{wire.CodeOK, 0, ""},
		{wire.CodeNoPermission, 0, `topic "ro" is not writable`},
		{wire.CodeOK, 1, ""},
		{wire.CodeTopicNotFound, 0, `"gone"`},
		{wire.CodeMessageTooLarge, 0, "body is 2000 bytes, limit 1024"},
		{wire.CodeInvalidArgument, 0, `queue 5 of topic "ok"`},
		{wire.CodeOK, 2, ""},
	}
	if len(results) != len(want) {
		t.Fatalf("got %d results, want %d", len(results), len(want))
	}
	for i, w := range want {
		r := results[i]
		if r.ErrorCode != w.code || (w.code == wire.CodeOK && r.QueueOffset != w.offset) || !strings.Contains(r.Error, w.text) {
			t.Errorf("message %d: got code %d offset %d error %q, want code %d offset %d error containing %q",
				i, r.ErrorCode, r.QueueOffset, r.Error, w.code, w.offset, w.text)
		}
		if w.code != wire.CodeOK && wire.Info(r.ErrorCode).Retriable {
			t.Errorf("message %d: code %d is retriable, want a non-retriable refusal", i, r.ErrorCode)
		}
	}
	got := readQueue(t, l, "ok", 0)
	var bodies []string
	for _, m := range got {
		bodies = append(bodies, string(m.Body))
	}
	if fmt.Sprint(bodies) != "[a b c]" {
		t.Errorf("stored bodies %v, want [a b c]", bodies)
	}

	// Every message refused: no entry, no request error.
	resp, err = l.handleSend(ctx, &wire.SendRequest{Messages: []wire.Message{msg("ro", 0, []byte("x"))}})
	if err != nil {
		t.Fatalf("all-refused send: got request error %v, want a per-message refusal", err)
	}
	if r := resp.(*wire.SendResponse).Results[0]; r.ErrorCode != wire.CodeNoPermission {
		t.Errorf("all-refused send: got code %d, want %d", r.ErrorCode, wire.CodeNoPermission)
	}

	// Auto-creation asked for one topic does not recreate another one.
	resp, err = l.handleSend(ctx, &wire.SendRequest{
		Messages:         []wire.Message{msg("fresh", 1, []byte("new")), msg("gone", 0, []byte("deleted"))},
		AutoCreateQueues: 2, AutoTopics: []string{"fresh"},
	})
	if err != nil {
		t.Fatalf("send with auto-creation: %v", err)
	}
	rs := resp.(*wire.SendResponse).Results
	if rs[0].ErrorCode != wire.CodeOK || rs[1].ErrorCode != wire.CodeTopicNotFound {
		t.Errorf("send with auto-creation of fresh: got codes %d, %d; want %d, %d", rs[0].ErrorCode, rs[1].ErrorCode, wire.CodeOK, wire.CodeTopicNotFound)
	}
	if ft, ok := l.Topic("fresh"); !ok || ft.Queues != 2 {
		t.Errorf("topic fresh: got %+v, %v; want it auto-created with 2 queues", ft, ok)
	}
	if _, ok := l.Topic("gone"); ok {
		t.Errorf("topic gone was recreated by another message's auto-creation")
	}

	// Go API: Send reports the refusal in the result, not the error.
	res, err := l.Send(ctx, []*fsm.Message{{Topic: "ok", ID: []byte("1"), Body: []byte("d")}, {Topic: "ro", ID: []byte("2")}})
	if err != nil || res[0].Err != nil || res[0].QueueOffset != 3 || res[1].Err == nil {
		t.Errorf("Send: got %+v, %v; want offset 3 for the first, ErrNoPermission for the second", res, err)
	}
}
