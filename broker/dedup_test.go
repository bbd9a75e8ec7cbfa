package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/wire"
)

// TestSendDedup: a message resent with the same ID is stored once, and
// the resend gets the first send's answer (its queue, even if the resend
// named another, offset, entry, position and store time), through the Go
// API and rmq's protocol; every replica keeps the same window.
func TestSendDedup(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.DedupAll = true })
	l := c.leader(10 * time.Second)
	createTopic(t, c, "orders", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := []byte("0123456789abcdef")
	first, err := l.Send(ctx, []*fsm.Message{{Topic: "orders", QueueID: 1, ID: id, Body: []byte("a")}})
	if err != nil || first[0].Err != nil || first[0].Duplicate {
		t.Fatalf("first send: %+v, %v", first, err)
	}
	again, err := l.Send(ctx, []*fsm.Message{
		{Topic: "orders", QueueID: 0, ID: id, Body: []byte("a")},
		{Topic: "orders", QueueID: 0, ID: []byte("fedcba9876543210"), Body: []byte("b")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := first[0]
	want.Duplicate = true
	if again[0] != want {
		t.Errorf("resend got %+v, want %+v", again[0], want)
	}
	if again[1].Duplicate || again[1].QueueID != 0 || again[1].QueueOffset != 0 {
		t.Errorf("new message got %+v, want stored at queue 0 offset 0", again[1])
	}
	resp, err := l.handleSend(ctx, &wire.SendRequest{Messages: []wire.Message{{Topic: "orders", QueueID: 0, ID: id, Body: []byte("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*wire.SendResponse).Results[0]
	if w := (wire.SendResult{QueueID: 1, QueueOffset: 0, RaftIndex: first[0].RaftIndex, StoreTime: first[0].StoreTime, Duplicate: true}); r != w {
		t.Errorf("wire resend got %+v, want %+v", r, w)
	}
	for q, n := range []int{1, 1} {
		if got := readQueue(t, l, "orders", uint32(q)); len(got) != n {
			t.Errorf("queue %d holds %d messages, want %d", q, len(got), n)
		}
	}
	c.waitApplied(l.Status().StateIndex, 10*time.Second)
	for _, n := range c.live() {
		if got, want := n.fsm.Dedup(), (fsm.DedupInfo{Window: fsm.DefaultDedupWindow, Max: fsm.DefaultDedupMax, All: true, Entries: 2, Retained: 2}); got != want {
			t.Errorf("%s: dedup state %+v, want %+v", n.cfg.NodeID, got, want)
		}
	}
}

// TestSendDedupDelayed: a resent delayed message is answered with the
// original's due time, though its relative delay resolves later now.
func TestSendDedupDelayed(t *testing.T) {
	clock := &testClock{now: time.UnixMilli(1_700_000_000_000)}
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.Now, cfg.DedupAll = clock.Now, true })
	l := c.leader(10 * time.Second)
	createTopic(t, c, "later", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m := func() *fsm.Message {
		return &fsm.Message{Topic: "later", ID: []byte("0123456789abcdef"), Body: []byte("x"), Properties: map[string]string{PropDelayMS: "60000"}}
	}
	first, err := l.Send(ctx, []*fsm.Message{m()})
	if err != nil || !first[0].Delayed {
		t.Fatalf("first send: %+v, %v", first, err)
	}
	clock.Add(time.Second)
	again, err := l.Send(ctx, []*fsm.Message{m()})
	if err != nil {
		t.Fatal(err)
	}
	want := first[0]
	want.Duplicate = true
	if again[0] != want {
		t.Errorf("resend got %+v, want %+v", again[0], want)
	}
	if n := l.fsm.PendingTimers(); n != 1 {
		t.Errorf("pending timers %d, want 1", n)
	}
}

// TestDedupSettingsAreTheLeaders: the window is group state that a
// leader sets from its own configuration when it starts leading.
func TestDedupSettingsAreTheLeaders(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.DedupWindow, cfg.DedupMaxEntries, cfg.DedupAll = time.Minute, 10, true })
	l := c.leader(10 * time.Second)
	if got := l.fsm.Dedup(); got.Window != 60_000 || got.Max != 10 {
		t.Fatalf("dedup settings %+v, want 1m and 10", got)
	}
	createTopic(t, c, "t", 1)
	send := func(l *Node) SendResult {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := l.Send(ctx, []*fsm.Message{{Topic: "t", ID: []byte("0123456789abcdef"), Body: []byte("x")}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	send(l)
	if !send(l).Duplicate {
		t.Fatal("resend stored")
	}
	c.stop("n0")
	cfg := c.cfgs["n0"]
	cfg.DedupWindow = -1
	c.cfgs["n0"] = cfg
	c.start("n0")
	l = c.leader(10 * time.Second)
	if got := l.fsm.Dedup(); got.Window != 0 || got.Entries != 0 {
		t.Fatalf("dedup state after a restart with dedup off: %+v", got)
	}
	if r := send(l); r.Duplicate || r.QueueOffset != 1 {
		t.Fatalf("send with dedup off: %+v, want stored at offset 1", r)
	}
}

// TestRemotingSendDedup: a RocketMQ producer's retry (the same UNIQ_KEY,
// possibly to another queue) is stored once and answered like the first
// send: the same msgId (CommitLog position), queue and offset. Also for a
// batch, and for rocketmq-client-go's partly lower-case UNIQ_KEY.
func TestRemotingSendDedup(t *testing.T) {
	_, c := remotingNodeWith(t, func(cfg *Config) { cfg.DedupAll = true })
	for _, uniq := range []string{"0A0B0C0D000000000000000000000001", "0a0b0c0d0000000000000000000000AB"} {
		props := map[string]string{compat.PropUniqKey: uniq, compat.PropTags: "t"}
		first := sendV1(t, c, "orders", 1, props, []byte("hello"), 0)
		wantCode(t, first, compat.RespSuccess)
		again := sendV1(t, c, "orders", 2, props, []byte("hello"), 0)
		wantCode(t, again, compat.RespSuccess)
		for _, k := range []string{"msgId", "queueId", "queueOffset"} {
			if again.Ext[k] != first.Ext[k] {
				t.Errorf("%s: resend %s %q, first send %q", uniq, k, again.Ext[k], first.Ext[k])
			}
		}
	}
	for q, want := range []int{0, 2, 0} {
		if _, msgs := pull(t, c, "g", "orders", q, 0, 0); len(msgs) != want {
			t.Errorf("queue %d holds %d messages, want %d", q, len(msgs), want)
		}
	}
	batch := func() *compat.Command {
		var body []byte
		for i := range 3 {
			body = compat.AppendBatchEntry(body, compat.BatchEntry{Body: []byte(fmt.Sprintf("m%d", i)),
				Properties: map[string]string{compat.PropUniqKey: fmt.Sprintf("%032X", 100+i)}})
		}
		return call(t, c, compat.ReqSendBatchMessage, map[string]string{
			"a": "pg", "b": "batch", "c": "TBW102", "d": "4", "e": "1", "f": "0", "g": "1", "h": "0", "i": "", "j": "0", "m": "true",
		}, body)
	}
	first, again := batch(), batch()
	wantCode(t, again, compat.RespSuccess)
	if again.Ext["msgId"] != first.Ext["msgId"] || again.Ext["queueOffset"] != "0" {
		t.Errorf("batch resend answered %v, first %v", again.Ext, first.Ext)
	}
	if _, msgs := pull(t, c, "g", "batch", 1, 0, 0); len(msgs) != 3 {
		t.Errorf("batch queue holds %d messages, want 3", len(msgs))
	}
	// Without a UNIQ_KEY (or with one that is not 32 hex digits) there is
	// no ID and nothing is deduplicated.
	for range 2 {
		wantCode(t, sendV1(t, c, "plain", 0, map[string]string{compat.PropUniqKey: "not-hex"}, []byte("x"), 0), compat.RespSuccess)
	}
	if _, msgs := pull(t, c, "g", "plain", 0, 0, 0); len(msgs) != 2 {
		t.Errorf("plain queue holds %d messages, want 2", len(msgs))
	}
}
