package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

// idMsg is msg with a message ID.
func idMsg(topic string, topicID, q uint32, id, body string) Message {
	m := msg(topic, topicID, q, body)
	m.ID = []byte(id)
	return m
}

// id16 is a 16-byte ID, the length rmq and RocketMQ clients use.
func id16(n int) string { return fmt.Sprintf("%016d", n) }

// dedupHarness has topic x (2 queues) and dedup on with window w ms, max n.
func dedupHarness(t testing.TB, w int64, n uint32) (*harness, uint32) {
	h := newHarness(t, 16)
	h.mustCmd(SetDedup{Window: w, Max: n, All: true})
	h.mustCmd(CreateTopic{Name: "x", Queues: 2})
	return h, h.topicID("x")
}

func TestDedupWithinWindow(t *testing.T) {
	h, x := dedupHarness(t, 1000, 100)
	first := h.send(100, idMsg("x", x, 0, id16(1), "a"), idMsg("x", x, 1, id16(2), "b"))
	firstIndex := h.idx
	if !cmp.Equal(first.Offsets, []int64{0, 0}) || first.Duplicates != nil {
		t.Fatalf("first send: offsets %v, duplicates %v", first.Offsets, first.Duplicates)
	}
	// The resend names another queue (a client may pick one on retry):
	// it gets the original's answer.
	res := h.send(1099, idMsg("x", x, 1, id16(1), "a"), idMsg("x", x, 0, id16(3), "c"))
	if want := []int64{0, 1}; !cmp.Equal(res.Offsets, want) {
		t.Fatalf("resend offsets %v, want %v", res.Offsets, want)
	}
	want := []Duplicate{{Msg: 0, QueueID: 0, Index: firstIndex, Pos: first.Positions[0], StoreTime: 100}}
	if diff := cmp.Diff(want, res.Duplicates); diff != "" {
		t.Fatalf("duplicates (-want +got):\n%s", diff)
	}
	for q, next := range []uint64{2, 1} {
		if _, n, _ := h.f.QueueRange("x", uint32(q)); n != next {
			t.Errorf("queue %d next got %d, want %d", q, n, next)
		}
	}
	// At exactly one window after the original it is stored again.
	res = h.send(1100, idMsg("x", x, 0, id16(1), "a"))
	if res.Duplicates != nil || res.Offsets[0] != 2 {
		t.Fatalf("send after the window: offsets %v, duplicates %v", res.Offsets, res.Duplicates)
	}
	if info := h.f.Dedup(); info != (DedupInfo{Window: 1000, Max: 100, All: true, Entries: 2, Retained: 1}) {
		t.Errorf("Dedup got %+v", info)
	}
}

func TestDedupKeys(t *testing.T) {
	h, x := dedupHarness(t, 1000, 100)
	h.mustCmd(CreateTopic{Name: "y", Queues: 1})
	y := h.topicID("y")
	h.send(10, idMsg("x", x, 0, id16(1), "a"), idMsg("x", x, 0, "short", "b"), idMsg("x", x, 0, "", "c"))
	tests := []struct {
		name string
		m    Message
		dup  bool
	}{
		{"same 16-byte id", idMsg("x", x, 0, id16(1), "a"), true},
		{"same id of another length", idMsg("x", x, 1, "short", "b"), true},
		{"empty id is never deduplicated", idMsg("x", x, 0, "", "c"), false},
		{"another topic", idMsg("y", y, 0, id16(1), "a"), false},
		{"an id that differs in one byte", idMsg("x", x, 0, id16(1)[:15]+"x", "a"), false},
		{"a prefix", idMsg("x", x, 0, "shor", "b"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := h.send(20, tc.m)
			if got := len(res.Duplicates) == 1; got != tc.dup {
				t.Fatalf("duplicate got %v, want %v (offsets %v)", got, tc.dup, res.Offsets)
			}
		})
	}
	// A recreated topic is a new incarnation: nothing of the old one is a
	// duplicate there.
	h.mustCmd(DeleteTopic{Name: "x"})
	h.mustCmd(CreateTopic{Name: "x", Queues: 2})
	if res := h.send(30, idMsg("x", h.topicID("x"), 0, id16(1), "a")); res.Duplicates != nil || res.Offsets[0] != 0 {
		t.Fatalf("send to the new incarnation: offsets %v, duplicates %v", res.Offsets, res.Duplicates)
	}
}

func TestDedupWithinOneBatch(t *testing.T) {
	h, x := dedupHarness(t, 1000, 100)
	h.send(10, idMsg("x", x, 0, id16(9), "z"))
	res := h.send(20, idMsg("x", x, 1, id16(1), "a"), idMsg("x", x, 0, id16(1), "a"), idMsg("x", x, 1, id16(2), "b"),
		idMsg("x", x, 1, id16(1), "a"))
	if want := []int64{0, 0, 1, 0}; !cmp.Equal(res.Offsets, want) {
		t.Fatalf("offsets %v, want %v", res.Offsets, want)
	}
	want := []Duplicate{
		{Msg: 1, QueueID: 1, Index: h.idx, Pos: res.Positions[0], StoreTime: 20},
		{Msg: 3, QueueID: 1, Index: h.idx, Pos: res.Positions[0], StoreTime: 20},
	}
	if diff := cmp.Diff(want, res.Duplicates); diff != "" {
		t.Fatalf("duplicates (-want +got):\n%s", diff)
	}
	// The entry made within the batch answers later resends alike.
	res = h.send(30, idMsg("x", x, 0, id16(1), "a"))
	if diff := cmp.Diff(want[:1], res.Duplicates, cmp.Comparer(func(a, b Duplicate) bool { a.Msg, b.Msg = 0, 0; return a == b })); diff != "" {
		t.Fatalf("later duplicate (-want +got):\n%s", diff)
	}
}

func TestDedupEvictsByCount(t *testing.T) {
	h, x := dedupHarness(t, 60_000, 3)
	for i := 1; i <= 4; i++ {
		h.send(int64(i), idMsg("x", x, 0, id16(i), "m"))
	}
	if n := h.f.Dedup().Entries; n != 3 {
		t.Fatalf("entries got %d, want 3", n)
	}
	if res := h.send(10, idMsg("x", x, 0, id16(2), "m")); res.Duplicates == nil {
		t.Error("id 2 (still in the window) was stored again")
	}
	// The oldest, 1, was evicted by count; storing it again evicts 2.
	if res := h.send(11, idMsg("x", x, 0, id16(1), "m")); res.Duplicates != nil {
		t.Error("id 1 (evicted) was taken for a duplicate")
	}
	if res := h.send(12, idMsg("x", x, 0, id16(2), "m")); res.Duplicates != nil {
		t.Error("id 2 (evicted by 1) was taken for a duplicate")
	}
	// A batch larger than the window keeps its last three.
	var msgs []Message
	for i := 100; i < 110; i++ {
		msgs = append(msgs, idMsg("x", x, 1, id16(i), "m"), idMsg("x", x, 1, id16(i), "m"))
	}
	res := h.send(20, msgs...)
	if len(res.Duplicates) != 10 {
		t.Fatalf("got %d duplicates in the batch, want 10 (offsets %v)", len(res.Duplicates), res.Offsets)
	}
	for i, d := range res.Duplicates {
		if res.Offsets[d.Msg] != int64(i) {
			t.Errorf("duplicate %d offset got %d, want %d", d.Msg, res.Offsets[d.Msg], i)
		}
	}
	// A smaller Max evicts at once; SetDedup 0 turns dedup off.
	h.mustCmd(SetDedup{Window: 60_000, Max: 1, All: true})
	if n := h.f.Dedup().Entries; n != 1 {
		t.Errorf("entries after Max 1 got %d, want 1", n)
	}
	h.mustCmd(SetDedup{})
	if info := h.f.Dedup(); info.Entries != 0 || info.Window != 0 || info.Retained != 11 {
		t.Errorf("Dedup after off got %+v", info)
	}
	if res := h.send(30, idMsg("x", x, 1, id16(109), "m")); res.Duplicates != nil {
		t.Error("a duplicate with dedup off")
	}
}

// TestDedupClockBehind: a new leader whose clock is behind judges the
// window by the latest store time seen, never going back.
func TestDedupClockBehind(t *testing.T) {
	h, x := dedupHarness(t, 1000, 100)
	h.send(5000, idMsg("x", x, 0, id16(1), "a"))
	h.send(3000, idMsg("x", x, 0, id16(2), "b")) // older than the window's end
	if res := h.send(3500, idMsg("x", x, 0, id16(1), "a")); res.Duplicates == nil {
		t.Error("resend stamped before the original not taken for a duplicate")
	}
	if res := h.send(5999, idMsg("x", x, 0, id16(2), "b")); res.Duplicates == nil {
		t.Error("id 2 evicted too early")
	}
	h.send(6000, idMsg("x", x, 0, id16(3), "c")) // 1 and 2 are out now
	if n := h.f.Dedup().Entries; n != 1 {
		t.Errorf("entries got %d, want 1", n)
	}
}

func TestDedupDelayed(t *testing.T) {
	h, x := dedupHarness(t, 60_000, 100)
	m := delayedMsg("x", x, 0, "later", 5000)
	m.ID = []byte(id16(1))
	first := h.send(1000, m)
	firstIndex := h.idx
	// The resend asks for another due time (a relative delay resolved
	// again): it is still a duplicate, answered with the original's.
	m2 := delayedMsg("x", x, 1, "later", 6000)
	m2.ID = m.ID
	res := h.send(2000, m2)
	if res.Offsets[0] != OffsetDelayed || first.Offsets[0] != OffsetDelayed {
		t.Fatalf("offsets %v then %v, want OffsetDelayed", first.Offsets, res.Offsets)
	}
	want := []Duplicate{{QueueID: 0, Index: firstIndex, Pos: first.Positions[0], StoreTime: 1000, DeliverAt: 5000}}
	if diff := cmp.Diff(want, res.Duplicates); diff != "" {
		t.Fatalf("duplicates (-want +got):\n%s", diff)
	}
	if n := h.f.PendingTimers(); n != 1 {
		t.Fatalf("pending timers got %d, want 1", n)
	}
	// Delivered, the original keeps answering as delayed (the sender's
	// first answer did not name an offset either).
	mustDeliver(t, h, DeliverTimers{Now: 5000, Items: h.f.DueTimers(5000, 10)})
	if res := h.send(3000, m2); res.Offsets[0] != OffsetDelayed || res.Duplicates[0].DeliverAt != 5000 {
		t.Fatalf("resend after delivery: offsets %v, duplicates %v", res.Offsets, res.Duplicates)
	}
	// In one batch: the copy of a delayed message is answered as delayed.
	m3 := delayedMsg("x", x, 0, "b", 9000)
	m3.ID = []byte(id16(2))
	res = h.send(4000, m3, m3)
	if !cmp.Equal(res.Offsets, []int64{OffsetDelayed, OffsetDelayed}) || len(res.Duplicates) != 1 || res.Duplicates[0].DeliverAt != 9000 {
		t.Fatalf("batch: offsets %v, duplicates %v", res.Offsets, res.Duplicates)
	}
	if n := h.f.PendingTimers(); n != 1 {
		t.Fatalf("pending timers got %d, want 1", n)
	}
}

// dedupLog applies a log with duplicates, a delayed message, retention
// and a settings change to h.
func dedupLog(h *harness, x uint32) {
	for i := 0; i < 60; i++ {
		var msgs []Message
		for j := 0; j < 5; j++ {
			n := i*3 + j // overlaps the previous entry's ids
			msgs = append(msgs, idMsg("x", x, uint32(n%2), id16(n), strconv.Itoa(n)))
		}
		if i%7 == 0 {
			d := delayedMsg("x", x, 1, "d", int64(i*100+500))
			d.ID = []byte(id16(i % 3))
			msgs = append(msgs, d)
		}
		h.send(int64(i*100), msgs...)
		switch i {
		case 30:
			h.mustCmd(SetDedup{Window: 2000, Max: 40, All: true})
		case 40:
			h.mustCmd(TruncatePrefix{UpTo: h.idx - 20})
		}
	}
}

// TestDedupReplicasAndRestart: replicas applying the same log agree; a
// replica restored from a snapshot and applying the rest of the log ends
// in the same state (and snapshot bytes) as one that applied all of it;
// the snapshot round-trips.
func TestDedupReplicasAndRestart(t *testing.T) {
	h, x := dedupHarness(t, 1000, 50)
	var mid []byte
	var midIndex uint64
	for i := 0; i < 2; i++ {
		dedupLog(h, x)
		if i == 0 {
			mid, midIndex = snapshotBytes(t, h.f), h.idx
		}
	}
	if h.f.Dedup().Retained == 0 {
		t.Fatal("the log has no duplicates")
	}
	end := snapshotBytes(t, h.f)

	replica := newFSM(t, t.TempDir(), 16, nil)
	replica.ApplyBatch(h.log.logs)
	if got := snapshotBytes(t, replica); !bytes.Equal(got, end) {
		t.Error("a replica applying the same log wrote a different snapshot")
	}
	restarted := newFSM(t, t.TempDir(), 16, h.log)
	if err := restore(t, restarted, mid); err != nil {
		t.Fatal(err)
	}
	for _, l := range h.log.logs {
		if l.Index > midIndex {
			restarted.Apply(l)
		}
	}
	if got := snapshotBytes(t, restarted); !bytes.Equal(got, end) {
		t.Error("restored and re-applied: snapshot differs")
	}
	if diff := cmp.Diff(dump(t, h.f), dump(t, restarted)); diff != "" {
		t.Errorf("restored and re-applied (-want +got):\n%s", diff)
	}
	again := newFSM(t, t.TempDir(), 16, h.log)
	if err := restore(t, again, end); err != nil {
		t.Fatal(err)
	}
	if got := snapshotBytes(t, again); !bytes.Equal(got, end) {
		t.Error("snapshot round trip changed it")
	}
	if h.f.Dedup() != again.Dedup() {
		t.Errorf("Dedup after round trip got %+v, want %+v", again.Dedup(), h.f.Dedup())
	}
}

// TestDedupRebuild: a consume-queue rebuild from the log skips the
// duplicates Apply skipped, also when retention dropped the entries of
// their originals.
func TestDedupRebuild(t *testing.T) {
	h, x := dedupHarness(t, 100_000, 1000)
	for i := 0; i < 40; i++ {
		h.send(int64(i), idMsg("x", x, 0, id16(i), "a"), idMsg("x", x, 1, id16(i-1), "b"), idMsg("x", x, 1, id16(i+1000), "c"))
		if i == 20 {
			// Retention past the originals of the next duplicates (the
			// log still holds them: its segments go later).
			h.mustCmd(TruncatePrefix{UpTo: h.idx})
		}
	}
	want := dump(t, h.f)
	snap := snapshotBytes(t, h.f)
	for _, tc := range []struct {
		name string
		log  func() *memLog
	}{
		{"whole log", func() *memLog { return h.log }},
		{"log purged by retention", func() *memLog {
			l := &memLog{logs: h.log.logs}
			l.truncate(h.f.LogStart() - 1)
			return l
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f2 := newFSM(t, t.TempDir(), 16, tc.log())
			if err := restore(t, f2, snap); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
				t.Fatalf("rebuilt state (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDedupRestoreRefusesCorrupt(t *testing.T) {
	entries := func(ids []byte, ts ...int64) []byte {
		var b []byte
		prev := int64(100) // the window's end
		for i, id := range ids {
			e := dedupEntry{ts: ts[i], index: 7, off: 3, pos: 14}
			e.key.id[0] = id
			b, prev = appendDedupEntry(b, &e, prev, 0), ts[i]
		}
		return b
	}
	dup := func(index uint64, pos uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, index), pos)
	}
	ok := snapDedup{Window: 1000, Max: 2, Now: 100, Entries: entries([]byte{1, 2}, 50, 60), Dups: append(dup(3, 14), dup(3, 90)...)}
	if _, err := restoreDedup(&ok); err != nil {
		t.Fatalf("valid state refused: %v", err)
	}
	tests := []struct {
		name   string
		change func(s *snapDedup)
	}{
		{"negative window", func(s *snapDedup) { s.Window = -1 }},
		{"window too long", func(s *snapDedup) { s.Window = MaxDedupWindow + 1 }},
		{"no max", func(s *snapDedup) { s.Max = 0 }},
		{"max too large", func(s *snapDedup) { s.Max = MaxDedupEntries + 1 }},
		{"more entries than max", func(s *snapDedup) { s.Max = 1 }},
		{"entries while off", func(s *snapDedup) { s.Window, s.Max = 0, 0 }},
		{"truncated entry", func(s *snapDedup) { s.Entries = s.Entries[:len(s.Entries)-1] }},
		{"an overlong varint", func(s *snapDedup) {
			s.Entries = append(entries([]byte{1}, 50)[:16], bytes.Repeat([]byte{0xff}, 11)...)
		}},
		{"an id twice", func(s *snapDedup) { s.Entries = entries([]byte{1, 1}, 50, 60) }},
		{"entry after the end", func(s *snapDedup) { s.Entries = entries([]byte{1}, 101) }},
		{"bad flag", func(s *snapDedup) { s.Entries[len(s.Entries)-1] = 2 }},
		{"negative end", func(s *snapDedup) { s.Now, s.Entries = -1, nil }},
		{"short duplicate", func(s *snapDedup) { s.Dups = s.Dups[1:] }},
		{"duplicates out of order", func(s *snapDedup) { s.Dups = append(dup(3, 90), dup(3, 14)...) }},
		{"a duplicate twice", func(s *snapDedup) { s.Dups = append(dup(3, 14), dup(3, 14)...) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.change(&s)
			if _, err := restoreDedup(&s); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestSetDedupValidate(t *testing.T) {
	for _, c := range []SetDedup{{Window: -1, Max: 1}, {Window: MaxDedupWindow + 1, Max: 1}, {Window: 1}, {Window: 1, Max: MaxDedupEntries + 1}} {
		if _, err := Encode(c); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("Encode(%+v) got %v, want ErrInvalidCommand", c, err)
		}
	}
	for _, c := range []SetDedup{{}, {Window: 1, Max: 1}, {Window: MaxDedupWindow, Max: MaxDedupEntries}} {
		if _, err := Encode(c); err != nil {
			t.Errorf("Encode(%+v): %v", c, err)
		}
	}
}

// TestDedupMemoryPerEntry measures the heap a full default-size window
// holds (ring and index) per entry.
func TestDedupMemoryPerEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a million-entry window")
	}
	const n = DefaultDedupMax
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := &dedupState{}
	d.configure(DefaultDedupWindow, n)
	var id [16]byte
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint64(id[8:], uint64(i)*0x9E3779B97F4A7C15)
		k := makeDedupKey(id[:], 1)
		tag := d.index.hash(&k)
		_, _, free := d.lookup(&k, tag)
		d.push(dedupEntry{key: k, ts: 1, index: uint64(i)}, tag, free)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("dedup window: %d entries, %.1f heap bytes per entry (ring %d slots of %d bytes)", d.n, per, len(d.ring), unsafe.Sizeof(dedupEntry{}))
	if per > 150 {
		t.Errorf("got %.1f bytes per entry, want <= 150", per)
	}
	runtime.KeepAlive(d)
}

// BenchmarkApplyBatchDedup is BenchmarkApplyBatch (256 x 1 KiB messages
// with 16-byte IDs per entry) with dedup off and on; on, every ID is new
// and the window is full (1M entries, evicting one per insert).
func BenchmarkApplyBatchDedup(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			f := newFSM(b, b.TempDir(), DefaultUnitsPerFile, nil)
			f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: mustEncode(b, CreateTopic{Name: "bench", Queues: 8})})
			if on {
				f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: mustEncode(b, SetDedup{Window: DefaultDedupWindow, Max: DefaultDedupMax, All: true})})
			}
			var e BatchEncoder
			e.Reset(1700000000000)
			body := make([]byte, 1024)
			for i := 0; i < 256; i++ {
				m := Message{Topic: "bench", TopicID: 1, QueueID: uint32(i % 8), ID: make([]byte, 16), Tags: "TagA",
					Properties: map[string]string{"k": "v"}, Body: body}
				if err := e.Add(&m); err != nil {
					b.Fatal(err)
				}
			}
			data := e.Bytes()
			_, refs, err := splitBatch(data, nil)
			if err != nil {
				b.Fatal(err)
			}
			seq := uint64(0)
			setIDs := func() { // the records' ID bytes alias data; Apply does not check CRCs
				for i := range refs {
					seq++
					binary.BigEndian.PutUint64(refs[i].r.id[8:], seq)
				}
			}
			for i := 0; on && i < DefaultDedupMax/256+1; i++ { // fill the window
				setIDs()
				f.Apply(&raft.Log{Index: uint64(i) + 3, Type: raft.LogCommand, Data: data})
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				setIDs()
				res := f.Apply(&raft.Log{Index: uint64(i) + DefaultDedupMax, Type: raft.LogCommand, Data: data}).(*BatchResult)
				if res.Rejected != 0 || res.Duplicates != nil {
					b.Fatal("rejected or duplicate")
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "msgs/s")
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestDedupTableModel drives the window through growth, count and time
// eviction, stale index slots, rehashes and shrinking, checking every
// lookup against a plain model of the window.
func TestDedupTableModel(t *testing.T) {
	var d dedupState
	var model []dedupKey // oldest first
	in := map[dedupKey]bool{}
	seed := uint64(7)
	next := func(n int) int { seed = seed*6364136223846793005 + 1442695040888963407; return int(seed>>33) % n }
	max, now := 5000, int64(0)
	d.configure(1000, max)
	trim := func() {
		for len(model) > max {
			delete(in, model[0])
			model = model[1:]
		}
	}
	for step := 0; step < 300_000; step++ {
		switch {
		case step%60_000 == 30_000:
			max = []int{50, 20_000, 3, 5000}[step/60_000%4]
			d.configure(1000, max)
			trim()
		case step%20_000 == 19_999: // time eviction: everything expires
			now += 1000
			model, in = nil, map[dedupKey]bool{}
		}
		d.advance(now)
		var id [16]byte
		binary.BigEndian.PutUint64(id[8:], uint64(next(3*max+10)))
		k := makeDedupKey(id[:], 1)
		tag := d.index.hash(&k)
		seq, hit, free := d.lookup(&k, tag)
		if hit != in[k] {
			t.Fatalf("step %d: lookup hit %v, model %v (window %d, max %d)", step, hit, in[k], d.n, max)
		}
		if hit {
			if s, ok := d.slot(seq); !ok || d.ring[s].key != k {
				t.Fatalf("step %d: hit names entry %d, not the key's", step, seq)
			}
			continue
		}
		d.push(dedupEntry{key: k, ts: now}, tag, free)
		model = append(model, k)
		in[k] = true
		trim()
		if d.n != len(model) {
			t.Fatalf("step %d: window %d, model %d", step, d.n, len(model))
		}
		if c := len(d.index.slots); 2*d.n > c || 4*d.index.used > 3*c {
			t.Fatalf("step %d: %d live and %d used of %d slots", step, d.n, d.index.used, c)
		}
	}
}

// TestDedupOnlyWhenAsked: without All, only messages that carry
// PropIdempotent are deduplicated; others with equal ids are stored.
func TestDedupOnlyWhenAsked(t *testing.T) {
	h := newHarness(t, 16)
	h.mustCmd(CreateTopic{Name: "x", Queues: 1})
	x := h.topicID("x")
	h.mustCmd(SetDedup{Window: 60_000, Max: 100})
	plain := Message{Topic: "x", TopicID: x, ID: []byte("0123456789abcdef"), Body: []byte("p")}
	asked := Message{Topic: "x", TopicID: x, ID: []byte("fedcba9876543210"), Body: []byte("a"), Properties: map[string]string{PropIdempotent: "1"}}
	h.send(1, plain, asked)
	r := h.send(2, plain, asked)
	if len(r.Duplicates) != 1 || r.Duplicates[0].Msg != 1 {
		t.Fatalf("duplicates %+v: only the message asking for dedup is one", r.Duplicates)
	}
	if _, next, _ := h.f.QueueRange("x", 0); next != 3 {
		t.Fatalf("next %d, want 3 (plain stored twice, asked once)", next)
	}
	if d := h.f.Dedup(); d.All || d.Entries != 1 {
		t.Fatalf("dedup info %+v", d)
	}
}
