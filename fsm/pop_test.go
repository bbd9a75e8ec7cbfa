package fsm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

const popT0 = 1_700_000_000_000

// popHarness has topic x (1 queue) holding messages m0..m(n-1); tags
// alternate ta / tb.
func popHarness(t *testing.T, n int) (*harness, uint32) {
	t.Helper()
	h := newHarness(t, 16)
	h.mustCmd(CreateTopic{Name: "x", Queues: 1})
	id := h.topicID("x")
	for i := 0; i < n; i++ {
		m := Message{Topic: "x", TopicID: id, Body: []byte{byte('0' + i)}, Tags: []string{"ta", "tb"}[i%2]}
		h.send(popT0, m)
	}
	return h, id
}

func (h *harness) pop(c Pop) *PopResult {
	h.t.Helper()
	if c.Group == "" {
		c.Group = "g"
	}
	if c.Invisible == 0 {
		c.Invisible = 1000
	}
	if c.Queues == nil {
		c.Queues = []PopQueueRef{{Topic: "x", TopicID: h.topicID("x")}}
	}
	res, ok := h.applyLog(raft.LogCommand, mustEncode(h.t, c)).(*PopResult)
	if !ok {
		h.t.Fatalf("Pop apply did not return *PopResult")
	}
	return res
}

func (h *harness) ack(now int64, hs ...PopHandle) []PopStatus {
	h.t.Helper()
	res, ok := h.applyLog(raft.LogCommand, mustEncode(h.t, PopAck{Now: now, Group: "g", Items: hs})).(*PopAckResult)
	if !ok {
		h.t.Fatalf("PopAck apply did not return *PopAckResult")
	}
	return res.Status
}

func offsetsOf(items []PoppedItem) []uint64 {
	var out []uint64
	for _, it := range items {
		out = append(out, it.Handle.Offset)
	}
	return out
}

// TestPopReceiveAckRedeliver: items are invisible until their deadline,
// acked ones never come back, unacked ones come back in place with their
// reconsume count raised and a new handle; acks are idempotent per handle.
func TestPopReceiveAckRedeliver(t *testing.T) {
	h, id := popHarness(t, 5)
	f := h.f
	r := h.pop(Pop{Now: popT0, Max: 3, FromFirst: true, MaxReconsume: 16})
	if got := offsetsOf(r.Items); !cmp.Equal(got, []uint64{0, 1, 2}) {
		t.Fatalf("first pop offsets %v", got)
	}
	if r.Items[0].Topic != "x" || r.Items[0].Unit.Index != 2 || r.Items[0].Reconsume != 0 || r.Items[0].Deadline != popT0+1000 {
		t.Fatalf("first item %+v", r.Items[0])
	}
	if off, _ := f.ConsumerOffset("g", "x", 0); off != 3 {
		t.Fatalf("cursor %d, want 3", off)
	}
	r2 := h.pop(Pop{Now: popT0 + 10, Max: 10, MaxReconsume: 16})
	if got := offsetsOf(r2.Items); !cmp.Equal(got, []uint64{3, 4}) {
		t.Fatalf("second pop offsets %v (in-flight items must stay invisible)", got)
	}
	if r3 := h.pop(Pop{Now: popT0 + 999, Max: 10}); len(r3.Items) != 0 {
		t.Fatalf("pop before any deadline got %v", offsetsOf(r3.Items))
	}
	if ok, next := f.PopAvailable("g", PopQueueRef{Topic: "x", TopicID: id}, false, popT0+999); ok || next != popT0+1000 {
		t.Fatalf("PopAvailable before deadlines: %v next %d", ok, next)
	}
	st := h.ack(popT0+500, r.Items[0].Handle, r.Items[1].Handle, r.Items[0].Handle)
	if !cmp.Equal(st, []PopStatus{PopOK, PopOK, PopOK}) {
		t.Fatalf("ack statuses %v (a repeated ack succeeds)", st)
	}
	wrong := r.Items[2].Handle
	wrong.PopTime++
	if st := h.ack(popT0+500, wrong, PopHandle{TopicID: id, Offset: 99, PopTime: popT0}); !cmp.Equal(st, []PopStatus{PopSuperseded, PopNotFound}) {
		t.Fatalf("bad handles: %v", st)
	}
	if s := f.PopStatsOf("g", id, popT0+500)[0]; s != (PopStats{InFlight: 3, Acked: 2}) {
		t.Fatalf("stats %+v", s)
	}
	// Deadlines pass: 2, 3, 4 come back, 2 first (earliest deadline).
	if ok, _ := f.PopAvailable("g", PopQueueRef{Topic: "x", TopicID: id}, false, popT0+1000); !ok {
		t.Fatal("PopAvailable after a deadline: false")
	}
	r4 := h.pop(Pop{Now: popT0 + 1010, Max: 10, MaxReconsume: 16})
	if got := offsetsOf(r4.Items); !cmp.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("redelivered offsets %v", got)
	}
	for _, it := range r4.Items {
		if it.Reconsume != 1 || it.Handle.PopTime != popT0+1010 {
			t.Fatalf("redelivered item %+v", it)
		}
	}
	if st := h.ack(popT0+1020, r.Items[2].Handle); st[0] != PopSuperseded {
		t.Fatalf("ack of the first delivery's handle after redelivery: %v", st[0])
	}
	if st := h.ack(popT0+1020, r4.Items[0].Handle); st[0] != PopOK {
		t.Fatalf("ack of the redelivery: %v", st[0])
	}
	// Tombstones go once their deadline passed and a command sweeps.
	h.ack(popT0+3000, r4.Items[1].Handle, r4.Items[2].Handle)
	if n := len(f.pops); n != 0 {
		t.Fatalf("%d pop queues left after everything was acked and swept", n)
	}
}

// TestPopChangeInvisible: a new deadline and pop time; the old handle is
// superseded, the new one acks.
func TestPopChangeInvisible(t *testing.T) {
	h, _ := popHarness(t, 1)
	r := h.pop(Pop{Now: popT0, Max: 1, FromFirst: true, MaxReconsume: 16})
	old := r.Items[0].Handle
	res := h.applyLog(raft.LogCommand, mustEncode(t, PopChangeInvisible{Now: popT0 + 900, Group: "g", Item: old, Invisible: 5000})).(*PopChangeResult)
	if res.Status != PopOK || res.Deadline != popT0+5900 || res.Handle.PopTime != popT0+900 {
		t.Fatalf("change result %+v", res)
	}
	if got := h.pop(Pop{Now: popT0 + 2000, Max: 1}); len(got.Items) != 0 {
		t.Fatal("redelivered before the changed deadline")
	}
	if st := h.ack(popT0+2000, old, res.Handle); !cmp.Equal(st, []PopStatus{PopSuperseded, PopOK}) {
		t.Fatalf("acks %v", st)
	}
	again := h.applyLog(raft.LogCommand, mustEncode(t, PopChangeInvisible{Now: popT0 + 2100, Group: "g", Item: res.Handle, Invisible: 5000})).(*PopChangeResult)
	if again.Status != PopNotFound {
		t.Fatalf("change of an acked item: %v", again.Status)
	}
}

// TestPopDeadLetter: an item whose last allowed delivery expires is dead:
// no redelivery, its ack fails, DeadPops lists it, and a dead-letter
// SendBack naming it drops it (the DLQ unit is appended regardless).
func TestPopDeadLetter(t *testing.T) {
	h, id := popHarness(t, 1)
	f := h.f
	r := h.pop(Pop{Now: popT0, Max: 1, FromFirst: true, MaxReconsume: 1})
	r2 := h.pop(Pop{Now: popT0 + 1000, Max: 1, MaxReconsume: 1})
	if len(r2.Items) != 1 || r2.Items[0].Reconsume != 1 {
		t.Fatalf("second delivery %+v", r2.Items)
	}
	if d := f.DeadPops(popT0+1999, 10); len(d) != 0 {
		t.Fatalf("dead before the deadline: %+v", d)
	}
	if got := h.pop(Pop{Now: popT0 + 2000, Max: 1, MaxReconsume: 1}); len(got.Items) != 0 {
		t.Fatalf("a dead item was redelivered: %+v", got.Items)
	}
	if st := h.ack(popT0+2000, r2.Items[0].Handle); st[0] != PopExpired {
		t.Fatalf("ack of a dead item: %v", st[0])
	}
	dead := f.DeadPops(popT0+2000, 10)
	if len(dead) != 1 || dead[0].Reconsume != 2 || dead[0].Handle != r2.Items[0].Handle || dead[0].Record.Index != r.Items[0].Unit.Index {
		t.Fatalf("dead pops %+v", dead)
	}
	if s := f.PopStatsOf("g", id, popT0+2000)[0]; s.Dead != 1 {
		t.Fatalf("stats %+v", s)
	}
	if pin, ok := f.PinnedIndex(); !ok || pin != r.Items[0].Unit.Index {
		t.Fatalf("pinned %d %v: a dead item pins its record", pin, ok)
	}
	h.mustCmd(CreateTopic{Name: "%DLQ%g", Queues: 1, Perm: PermWrite})
	dlq := h.topicID("%DLQ%g")
	rec := dead[0].Record
	rec.TopicID = dlq
	send := SendBack{Now: popT0 + 2000, Record: rec, Retry: RetryInfo{Reconsume: 2, OriginTopicID: id}, DLQ: true, Pop: &dead[0].Handle, PopGroup: "g"}
	h.applyLog(raft.LogCommand, mustEncode(t, send))
	if d := f.DeadPops(popT0+2000, 10); len(d) != 0 {
		t.Fatalf("still dead after the send back: %+v", d)
	}
	// A repeated send back (a proposal retried after a timeout) still
	// appends: the command means the same on replay.
	h.applyLog(raft.LogCommand, mustEncode(t, send))
	if _, next, _ := f.QueueRange("%DLQ%g", 0); next != 2 {
		t.Fatalf("DLQ next %d, want 2", next)
	}
	if len(f.pops) != 0 {
		t.Fatal("pop state left after the dead letter")
	}
}

// TestPopFilterAndStart: tag hashes filter (the cursor passes over the
// rest); a group without a cursor starts at the end unless FromFirst;
// an offset reset moves the cursor but never re-delivers an in-flight
// item.
func TestPopFilterAndStart(t *testing.T) {
	h, id := popHarness(t, 6)
	if r := h.pop(Pop{Now: popT0, Max: 10, Group: "late", MaxReconsume: 16}); len(r.Items) != 0 {
		t.Fatalf("a new group without FromFirst got %v", offsetsOf(r.Items))
	}
	if off, ok := h.f.ConsumerOffset("late", "x", 0); !ok || off != 6 {
		t.Fatalf("new group's cursor %d %v, want 6 (the end)", off, ok)
	}
	r := h.pop(Pop{Now: popT0, Max: 2, FromFirst: true, Tags: []uint32{TagHash("tb")}, MaxReconsume: 16})
	if got := offsetsOf(r.Items); !cmp.Equal(got, []uint64{1, 3}) {
		t.Fatalf("filtered offsets %v", got)
	}
	h.mustCmd(CommitOffsets{Group: "g", Reset: true, Offsets: []OffsetEntry{{Topic: "x", Offset: 0}}})
	r2 := h.pop(Pop{Now: popT0 + 1, Max: 10, MaxReconsume: 16})
	if got := offsetsOf(r2.Items); !cmp.Equal(got, []uint64{0, 2, 4, 5}) {
		t.Fatalf("after a reset %v (1 and 3 are in flight)", got)
	}
	if ok, _ := h.f.PopAvailable("g", PopQueueRef{Topic: "x", TopicID: id}, false, popT0+1); ok {
		t.Fatal("PopAvailable with everything in flight")
	}
	h.mustCmd(DeleteTopic{Name: "x"})
	if len(h.f.pops) != 0 {
		t.Fatal("pop state of a deleted topic kept")
	}
}

// TestPopSnapshotRoundTrip: items survive Snapshot / Restore bit for bit
// and behave the same afterwards.
func TestPopSnapshotRoundTrip(t *testing.T) {
	h, id := popHarness(t, 4)
	r := h.pop(Pop{Now: popT0, Max: 4, FromFirst: true, MaxReconsume: 3})
	h.ack(popT0+1, r.Items[1].Handle)
	h.applyLog(raft.LogCommand, mustEncode(t, PopChangeInvisible{Now: popT0 + 2, Group: "g", Item: r.Items[2].Handle, Invisible: 9000}))
	snap := snapshotBytes(t, h.f)

	f2 := newFSM(t, t.TempDir(), 16, h.log)
	if err := f2.Restore(nopCloser{bytes.NewReader(snap)}); err != nil {
		t.Fatal(err)
	}
	if got := snapshotBytes(t, f2); !bytes.Equal(got, snap) {
		t.Fatal("restored state snapshots differently")
	}
	for _, f := range []*FSM{h.f, f2} {
		c := Pop{Now: popT0 + 1000, Group: "g", Invisible: 1000, Max: 10, MaxReconsume: 3, Queues: []PopQueueRef{{Topic: "x", TopicID: id}}}
		res := c.apply(f, 0).(*PopResult)
		if got := offsetsOf(res.Items); !cmp.Equal(got, []uint64{0, 3}) {
			t.Fatalf("redelivery after restore: %v", got)
		}
	}
	bad := snapPop{Group: "g", TopicID: id, Items: []byte{1, 2, 3}}
	if err := newFSM(t, t.TempDir(), 16, nil).restorePops([]snapPop{bad}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("restore of a truncated pop item: %v", err)
	}
}

// BenchmarkPopAck measures one Pop of 32 and the PopAck of them.
func BenchmarkPopAck(b *testing.B) {
	h := newHarness(b, DefaultUnitsPerFile)
	h.mustCmd(CreateTopic{Name: "x", Queues: 1})
	id := h.topicID("x")
	var e BatchEncoder
	e.Reset(popT0)
	for i := 0; i < 32; i++ {
		m := Message{Topic: "x", TopicID: id, Body: make([]byte, 64)}
		if err := e.Add(&m); err != nil {
			b.Fatal(err)
		}
	}
	batch := append([]byte(nil), e.Bytes()...)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.applyLog(raft.LogCommand, batch)
		now := popT0 + int64(i)
		r := h.pop(Pop{Now: now, Max: 32, FromFirst: true, MaxReconsume: 16, Invisible: 1})
		hs := make([]PopHandle, len(r.Items))
		for j := range r.Items {
			hs[j] = r.Items[j].Handle
		}
		h.ack(now, hs...)
	}
}

// TestPopStartHoldsForUnreachedQueues: a group's first Pop FromFirst that
// fills Max from one queue still fixes the other queues' cursors at their
// start, so a later Pop without FromFirst (a consumer started without
// --from first) gets their messages instead of starting at the end.
func TestPopStartHoldsForUnreachedQueues(t *testing.T) {
	h := newHarness(t, 16)
	h.mustCmd(CreateTopic{Name: "y", Queues: 2})
	id := h.topicID("y")
	for i, q := range []uint32{1, 1, 0} {
		h.send(popT0, Message{Topic: "y", TopicID: id, QueueID: q, Body: []byte{byte('a' + i)}})
	}
	qs := []PopQueueRef{{Topic: "y", TopicID: id, QueueID: 1}, {Topic: "y", TopicID: id, QueueID: 0}}
	if r := h.pop(Pop{Now: popT0, Max: 2, FromFirst: true, MaxReconsume: 16, Queues: qs}); len(r.Items) != 2 || r.Items[0].Handle.QueueID != 1 {
		t.Fatalf("first pop %+v, want 2 items of queue 1", r.Items)
	}
	if off, ok := h.f.ConsumerOffset("g", "y", 0); !ok || off != 0 {
		t.Fatalf("queue 0's cursor %d %v after a full first pop, want 0 (FromFirst)", off, ok)
	}
	r := h.pop(Pop{Now: popT0 + 1, Max: 10, MaxReconsume: 16, Queues: qs})
	if len(r.Items) != 1 || r.Items[0].Handle.QueueID != 0 || r.Items[0].Handle.Offset != 0 {
		t.Fatalf("second pop without FromFirst %+v, want queue 0's message", r.Items)
	}
	// Without FromFirst an unreached queue starts at its end, as before.
	h.send(popT0, Message{Topic: "y", TopicID: id, QueueID: 0, Body: []byte("d")})
	h.pop(Pop{Now: popT0 + 2, Group: "late", Max: 1, MaxReconsume: 16, Queues: qs})
	if off, ok := h.f.ConsumerOffset("late", "y", 0); !ok || off != 2 {
		t.Fatalf("late group's queue 0 cursor %d %v, want 2 (the end)", off, ok)
	}
}
