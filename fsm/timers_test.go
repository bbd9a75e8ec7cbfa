package fsm

import (
	"container/heap"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func delayedMsg(topic string, id, q uint32, body string, due int64) Message {
	m := msg(topic, id, q, body)
	m.Properties = map[string]string{PropDeliverAt: strconv.FormatInt(due, 10), "k": "v"}
	return m
}

// timerHarness has topic x (2 queues) with, in entry 2, a normal message
// and two delayed ones (due ts+1000 on queue 0, ts+500 on queue 1).
func timerHarness(t *testing.T) (*harness, int64) {
	h := newHarness(t, 16)
	h.mustCmd(CreateTopic{Name: "x", Queues: 2})
	id := h.topicID("x")
	const ts = 1_700_000_000_000
	res := h.send(ts, msg("x", id, 0, "now"), delayedMsg("x", id, 0, "later", ts+1000), delayedMsg("x", id, 1, "sooner", ts+500))
	if want := []int64{0, OffsetDelayed, OffsetDelayed}; !cmp.Equal(res.Offsets, want) {
		t.Fatalf("batch offsets %v, want %v", res.Offsets, want)
	}
	return h, ts
}

func mustDeliver(t *testing.T, h *harness, c DeliverTimers) *DeliverResult {
	t.Helper()
	data, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := h.applyLog(0, data).(*DeliverResult)
	if !ok {
		t.Fatal("DeliverTimers apply did not return *DeliverResult")
	}
	return res
}

// TestDelayedMessagesWaitForTheirTimers: a delayed message gets no unit
// when stored; DeliverTimers appends one pointing at the original record
// (same entry and position as if it had been stored then), once only.
func TestDelayedMessagesWaitForTheirTimers(t *testing.T) {
	h, ts := timerHarness(t)
	f := h.f
	if _, next, _ := f.QueueRange("x", 0); next != 1 {
		t.Fatalf("queue 0 next %d, want 1 (the delayed message waits)", next)
	}
	if n := f.PendingTimers(); n != 2 {
		t.Fatalf("pending timers %d, want 2", n)
	}
	if due, ok := f.NextDue(); !ok || due != ts+500 {
		t.Fatalf("next due %d %v", due, ok)
	}
	if pin, ok := f.PinnedIndex(); !ok || pin != 2 {
		t.Fatalf("pinned index %d %v, want 2 (the batch)", pin, ok)
	}
	if got := f.DueTimers(ts+499, 10); len(got) != 0 {
		t.Fatalf("due before their time: %v", got)
	}
	due := f.DueTimers(ts+1000, 10)
	if len(due) != 2 || due[0].Due != ts+500 || due[1].Due != ts+1000 {
		t.Fatalf("due timers %+v, want both, soonest first", due)
	}
	if got := f.DueTimers(ts+1000, 1); len(got) != 1 || got[0] != due[0] {
		t.Fatalf("DueTimers max 1: %+v", got)
	}

	r := mustDeliver(t, h, DeliverTimers{Now: ts + 1000, Items: due})
	if r.Delivered != 2 || r.Skipped != 0 {
		t.Fatalf("deliver result %+v", r)
	}
	deliverIndex := h.idx
	again := mustDeliver(t, h, DeliverTimers{Now: ts + 2000, Items: due})
	if again.Delivered != 0 || again.Skipped != 2 {
		t.Fatalf("repeated deliver result %+v, want 2 skipped", again)
	}
	normal, err := f.Units("x", 0, 0, 10, nil)
	if err != nil || len(normal) != 2 {
		t.Fatalf("queue 0 units %v %v", normal, err)
	}
	later := normal[1]
	if later.Index != normal[0].Index || later.StoreTime != ts+1000 || later.Size&unitDelivered != 0 || later.Pos <= normal[0].Pos {
		t.Fatalf("delivered unit %+v (normal %+v): want the batch's entry, a later position, store time = delivery", later, normal[0])
	}
	if n := f.PendingTimers(); n != 0 {
		t.Fatalf("pending after delivery: %d", n)
	}
	// The live delivered units pin their records until retention passes
	// the delivery entry.
	if pin, ok := f.PinnedIndex(); !ok || pin != 2 {
		t.Fatalf("pinned index after delivery %d %v, want 2", pin, ok)
	}
	h.mustCmd(TruncatePrefix{UpTo: deliverIndex})
	if pin, ok := f.PinnedIndex(); ok {
		t.Fatalf("still pinned at %d after retention passed the delivery", pin)
	}
	if min, _, _ := f.QueueRange("x", 0); min != 2 {
		t.Fatalf("queue 0 min %d after truncation, want 2", min)
	}
}

// TestDelayedMessageRules: a due time not after the batch's store time
// delivers at once; a timer whose topic was deleted is dropped at
// delivery; a malformed due time is an ordinary message.
func TestDelayedMessageRules(t *testing.T) {
	h := newHarness(t, 16)
	h.mustCmd(CreateTopic{Name: "x", Queues: 1})
	id := h.topicID("x")
	const ts = 1_700_000_000_000
	bad := msg("x", id, 0, "bad")
	bad.Properties = map[string]string{PropDeliverAt: "soon"}
	res := h.send(ts, delayedMsg("x", id, 0, "past", ts), bad, delayedMsg("x", id, 0, "future", ts+1))
	if want := []int64{0, 1, OffsetDelayed}; !cmp.Equal(res.Offsets, want) {
		t.Fatalf("offsets %v, want %v", res.Offsets, want)
	}
	due := h.f.DueTimers(ts+1, 10)
	h.mustCmd(DeleteTopic{Name: "x"})
	if r := mustDeliver(t, h, DeliverTimers{Now: ts + 1, Items: due}); r.Dropped != 1 {
		t.Fatalf("deliver to a deleted topic: %+v, want 1 dropped", r)
	}
}

// TestTimersSurviveSnapshotAndRebuild: pending timers and delivered units
// come back from a snapshot, and a replica that rebuilds its consume
// queues from the log gets the same units.
func TestTimersSurviveSnapshotAndRebuild(t *testing.T) {
	h, ts := timerHarness(t)
	mustDeliver(t, h, DeliverTimers{Now: ts + 600, Items: h.f.DueTimers(ts+600, 10)}) // "sooner" only
	h.send(ts+700, msg("x", h.topicID("x"), 1, "after"))
	snap := snapshotBytes(t, h.f)
	want := dump(t, h.f)
	for name, dir := range map[string]string{"kept consume queues": copyDir(t, h.f), "rebuilt from the log": t.TempDir()} {
		t.Run(name, func(t *testing.T) {
			f2 := newFSM(t, dir, 16, h.log)
			if err := restore(t, f2, snap); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
				t.Fatalf("restored state (-want +got):\n%s", diff)
			}
			if n := f2.PendingTimers(); n != 1 {
				t.Fatalf("pending timers after restore: %d, want 1", n)
			}
			if got := f2.DueTimers(ts+1000, 10); len(got) != 1 || got[0].Due != ts+1000 {
				t.Fatalf("due after restore: %+v", got)
			}
		})
	}
}

// TestRebuildReplaysRepeatedDeliveries: a DeliverTimers repeated by a new
// leader adds nothing, in Apply and in a rebuild alike.
func TestRebuildReplaysRepeatedDeliveries(t *testing.T) {
	h, ts := timerHarness(t)
	due := h.f.DueTimers(ts+1000, 10)
	mustDeliver(t, h, DeliverTimers{Now: ts + 1000, Items: due[:1]})
	mustDeliver(t, h, DeliverTimers{Now: ts + 1001, Items: due}) // the first again, and the second
	want := dump(t, h.f)
	f2 := newFSM(t, t.TempDir(), 16, h.log)
	if err := restore(t, f2, snapshotBytes(t, h.f)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
		t.Fatalf("rebuilt state (-want +got):\n%s", diff)
	}
	if q1 := want.Queues["x/1"]; q1.Next != 1 {
		t.Fatalf("queue 1 next %d, want 1 (delivered once)", q1.Next)
	}
}

// TestDeliverFindsTimersBehindEarlierOnes: a listed timer is found and
// delivered although timers due earlier were stored after the listing
// (they stay pending), and a listed timer no longer pending is skipped.
func TestDeliverFindsTimersBehindEarlierOnes(t *testing.T) {
	h, ts := timerHarness(t)
	listed := h.f.DueTimers(ts+1000, 10) // sooner (ts+500), later (ts+1000)
	id := h.topicID("x")
	h.send(ts+1, delayedMsg("x", id, 0, "earliest", ts+2), delayedMsg("x", id, 1, "early", ts+400))
	r := mustDeliver(t, h, DeliverTimers{Now: ts + 1000, Items: listed})
	if r.Delivered != 2 {
		t.Fatalf("deliver result %+v, want both listed delivered", r)
	}
	if n := h.f.PendingTimers(); n != 2 {
		t.Fatalf("pending %d, want the two stored after the listing", n)
	}
	if r := mustDeliver(t, h, DeliverTimers{Now: ts + 1000, Items: listed}); r.Skipped != 2 || h.f.PendingTimers() != 2 {
		t.Fatalf("repeated listing: %+v, pending %d", r, h.f.PendingTimers())
	}
	if got := h.f.DueTimers(ts+1000, 10); len(got) != 2 || got[0].Due != ts+2 || got[1].Due != ts+400 {
		t.Fatalf("still due: %+v", got)
	}
}

// TestSendBackRetryAndDeadLetter: a retry waits for its timer and is
// delivered into the retry queue with its metadata, pointing at the
// original record; a dead letter is appended at once; both survive a
// snapshot and a rebuild from the log; LastRetry finds the latest
// delivery of a record.
func TestSendBackRetryAndDeadLetter(t *testing.T) {
	h := newHarness(t, 16)
	h.mustCmd(CreateTopic{Name: "x", Queues: 1})
	h.mustCmd(CreateTopic{Name: "%RETRY%g", Queues: 1})
	h.mustCmd(CreateTopic{Name: "%DLQ%g", Queues: 1, Perm: PermWrite})
	x, retry, dlq := h.topicID("x"), h.topicID("%RETRY%g"), h.topicID("%DLQ%g")
	const ts = 1_700_000_000_000
	h.send(ts, msg("x", x, 0, "a"), msg("x", x, 0, "b"))
	units, _ := h.f.Units("x", 0, 0, 2, nil)
	rec := func(u Unit, target uint32, due int64) TimerRef {
		return TimerRef{Due: due, Index: u.Index, Pos: u.Pos, Size: u.Size, TagHash: u.TagHash, TopicID: target}
	}
	sendBack := func(c SendBack) *SendBackResult {
		t.Helper()
		data, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := h.applyLog(0, data).(*SendBackResult)
		if !ok {
			t.Fatalf("SendBack apply did not return *SendBackResult")
		}
		return r
	}
	info := RetryInfo{Reconsume: 1, OriginTopicID: x, OriginQueue: 0, OriginOffset: 0}
	if r := sendBack(SendBack{Now: ts + 1, Record: rec(units[0], retry, ts+10_000), Retry: info}); !r.Scheduled {
		t.Fatalf("retry result %+v, want scheduled", r)
	}
	dead := RetryInfo{Reconsume: 17, OriginTopicID: x, OriginQueue: 0, OriginOffset: 1}
	if r := sendBack(SendBack{Now: ts + 2, Record: rec(units[1], dlq, ts+2), Retry: dead, DLQ: true}); r.Scheduled || r.Offset != 0 {
		t.Fatalf("dead letter result %+v, want offset 0", r)
	}
	if _, next, _ := h.f.QueueRange("%RETRY%g", 0); next != 0 {
		t.Fatalf("retry queue next %d before the retry is due", next)
	}
	mustDeliver(t, h, DeliverTimers{Now: ts + 10_000, Items: h.f.DueTimers(ts+10_000, 10)})
	check := func(f *FSM) {
		t.Helper()
		r, err := f.Units("%RETRY%g", 0, 0, 10, nil)
		if err != nil || len(r) != 1 || r[0].Index != units[0].Index || r[0].Pos != units[0].Pos || r[0].Retry == nil || *r[0].Retry != info {
			t.Fatalf("retry queue units %+v %v, want record a with %+v", r, err, info)
		}
		d, err := f.Units("%DLQ%g", 0, 0, 10, nil)
		if err != nil || len(d) != 1 || d[0].Pos != units[1].Pos || d[0].Retry == nil || *d[0].Retry != dead {
			t.Fatalf("dead-letter queue units %+v %v", d, err)
		}
		if got, ok := f.LastRetry("%RETRY%g", 0, units[0].Index, units[0].Pos); !ok || got != info {
			t.Fatalf("LastRetry %+v %v", got, ok)
		}
		if _, ok := f.LastRetry("%RETRY%g", 0, units[1].Index, units[1].Pos); ok {
			t.Fatal("LastRetry found a record never retried")
		}
	}
	check(h.f)
	snap := snapshotBytes(t, h.f)
	want := dump(t, h.f)
	f2 := newFSM(t, t.TempDir(), 16, h.log)
	if err := restore(t, f2, snap); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
		t.Fatalf("rebuilt state (-want +got):\n%s", diff)
	}
	check(f2)
}

// TestPendingRetrySurvivesSnapshot: a retry's metadata waits with its
// timer through a snapshot and arrives with its delivery.
func TestPendingRetrySurvivesSnapshot(t *testing.T) {
	h := newHarness(t, 16)
	h.mustCmd(CreateTopic{Name: "x", Queues: 1})
	h.mustCmd(CreateTopic{Name: "%RETRY%g", Queues: 1})
	const ts = 1_700_000_000_000
	h.send(ts, msg("x", h.topicID("x"), 0, "a"))
	u, _ := h.f.Units("x", 0, 0, 1, nil)
	info := RetryInfo{Reconsume: 2, OriginTopicID: h.topicID("x")}
	data, _ := Encode(SendBack{Now: ts, Record: TimerRef{Due: ts + 5, Index: u[0].Index, Pos: u[0].Pos, Size: u[0].Size,
		TopicID: h.topicID("%RETRY%g")}, Retry: info})
	h.applyLog(0, data)
	f2 := newFSM(t, copyDir(t, h.f), 16, h.log)
	if err := restore(t, f2, snapshotBytes(t, h.f)); err != nil {
		t.Fatal(err)
	}
	h2 := &harness{t: t, f: f2, log: h.log, idx: h.idx}
	mustDeliver(t, h2, DeliverTimers{Now: ts + 5, Items: f2.DueTimers(ts+5, 10)})
	r, err := f2.Units("%RETRY%g", 0, 0, 1, nil)
	if err != nil || len(r) != 1 || r[0].Retry == nil || *r[0].Retry != info {
		t.Fatalf("delivered retry after a snapshot: %+v %v", r, err)
	}
}

// TestDueTimersAreTheEarliest: DueTimers returns, in delivery order, the
// earliest timers due by now, at most max, whatever the heap's shape.
func TestDueTimersAreTheEarliest(t *testing.T) {
	f := &FSM{}
	rng := rand.New(rand.NewPCG(1, 2))
	var all []timer
	for i := 0; i < 500; i++ {
		tm := timer{due: rng.Int64N(1000), index: uint64(rng.IntN(50) + 1), pos: uint32(i)}
		all = append(all, tm)
		heap.Push(&f.timers, tm)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].before(&all[j]) })
	for _, c := range []struct {
		now int64
		max int
	}{{-1, 10}, {0, 10}, {500, 7}, {500, 1000}, {999, 1000}} {
		var want []TimerRef
		for i := range all {
			if all[i].due <= c.now && len(want) < c.max {
				want = append(want, all[i].ref())
			}
		}
		if got := f.DueTimers(c.now, c.max); !cmp.Equal(got, want, cmpopts.EquateEmpty()) {
			t.Fatalf("DueTimers(%d, %d): %d timers, want %d\n%s", c.now, c.max, len(got), len(want), cmp.Diff(want, got))
		}
	}
}
