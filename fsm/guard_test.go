package fsm

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// claim4e9 is a msgpack array32 header declaring 4e9 elements.
var claim4e9 = []byte{0xdd, 0xee, 0x6b, 0x28, 0x00}

// allocated returns the bytes fn allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHugeDeclaredLengthsRefused: a command or snapshot whose msgpack
// claims four billion entries is refused as corrupt without allocating
// for them (msgpack v5.4.1 would preallocate the declared slice).
func TestHugeDeclaredLengthsRefused(t *testing.T) {
	const maxAlloc = 1 << 20
	// CommitOffsets{Group: "g", Offsets: <4e9 entries>}
	cmd := append([]byte{byte(CmdCommitOffsets), controlVersion, 0x82, 0xa5, 'g', 'r', 'o', 'u', 'p', 0xa1, 'g',
		0xa7, 'o', 'f', 'f', 's', 'e', 't', 's'}, claim4e9...)
	var err error
	if n := allocated(func() { _, err = Decode(cmd) }); n > maxAlloc {
		t.Errorf("Decode allocated %d bytes, want <= %d", n, maxAlloc)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("Decode got %v, want ErrCorrupt", err)
	}
	h := newHarness(t, 4)
	var res any
	if n := allocated(func() { res = h.applyLog(raft.LogCommand, cmd) }); n > maxAlloc {
		t.Errorf("Apply allocated %d bytes, want <= %d", n, maxAlloc)
	}
	if rerr, ok := res.(error); !ok || !errors.Is(rerr, ErrCorrupt) {
		t.Errorf("Apply got %v, want ErrCorrupt", res)
	}
	// version | {topics: <4e9 topics>}
	snap := append([]byte{snapshotVersion, 0x81, 0xa6, 't', 'o', 'p', 'i', 'c', 's'}, claim4e9...)
	if n := allocated(func() { err = restore(t, h.f, snap) }); n > maxAlloc {
		t.Errorf("Restore allocated %d bytes, want <= %d", n, maxAlloc)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("Restore got %v, want ErrCorrupt", err)
	}
}

// FuzzRestoreSnapshot restores arbitrary snapshots, seeded from real ones.
// Restore must never panic; a snapshot it accepts must snapshot back to
// a state that restores to the same bytes.
func FuzzRestoreSnapshot(f *testing.F) {
	h := newHarness(f, 4)
	f.Add(snapshotBytes(f, h.f)) // empty state
	h.mustCmd(CreateTopic{Name: "x", Queues: 2})
	h.send(1, msg("x", 1, 0, "a"), msg("x", 1, 1, "b"))
	h.mustCmd(CommitOffsets{Group: "g", Offsets: []OffsetEntry{{Topic: "x", QueueID: 1, Offset: 1}}})
	f.Add(snapshotBytes(f, h.f))
	randomLog(h, 40)
	f.Add(snapshotBytes(f, h.f))
	// Pending timers (a delay and a retry), delivered units with metadata.
	h.mustCmd(CreateTopic{Name: "%RETRY%g", Queues: 1})
	x, r := h.topicID("x"), h.topicID("%RETRY%g")
	h.send(10, delayedMsg("x", x, 0, "later", 1000), delayedMsg("x", x, 1, "sooner", 20))
	u, _ := h.f.Units("x", 0, 0, 1, nil)
	for _, c := range []Command{
		SendBack{Now: 10, Record: TimerRef{Due: 5000, Index: u[0].Index, Pos: u[0].Pos, Size: u[0].Size, TopicID: r},
			Retry: RetryInfo{Reconsume: 1, OriginTopicID: x}},
		SendBack{Now: 10, Record: TimerRef{Due: 10, Index: u[0].Index, Pos: u[0].Pos, Size: u[0].Size, TopicID: r},
			Retry: RetryInfo{Reconsume: 2, OriginTopicID: x, OriginOffset: 3}},
		DeliverTimers{Now: 30, Items: h.f.DueTimers(30, 10)},
		// Pop state: items in flight, one acked (a tombstone), one changed.
		Pop{Now: 40, Group: "pg", Invisible: 100, Max: 3, MaxReconsume: 2, FromFirst: true, Queues: []PopQueueRef{{Topic: "x", TopicID: x}}},
		PopAck{Now: 41, Group: "pg", Items: []PopHandle{{TopicID: x, Offset: 0, PopTime: 40}}},
		PopChangeInvisible{Now: 42, Group: "pg", Item: PopHandle{TopicID: x, Offset: 1, PopTime: 40}, Invisible: 500},
	} {
		data, err := Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		h.applyLog(0, data)
	}
	f.Add(snapshotBytes(f, h.f))
	// Transactions: two halves, one checked, one committed, one broker rollback.
	hr := h.send(50, halfMsg("x", x, 0, "h1"), halfMsg("x", x, 1, "h2"), halfMsg("x", x, 1, "h3"))
	hi := h.idx
	for _, c := range []Command{
		CheckTx{Now: 60, Items: []TxRef{{Index: hi, Pos: hr.Positions[0]}}},
		EndTx{Now: 70, Items: []TxEnd{{TxRef: TxRef{Index: hi, Pos: hr.Positions[1]}, Commit: true}, {TxRef: TxRef{Index: hi, Pos: hr.Positions[2]}, ByBroker: true}}},
	} {
		h.applyLog(0, mustEncode(f, c))
	}
	// Producer dedup: settings, a window (a delayed entry too) and the
	// position of a duplicate.
	h.mustCmd(SetDedup{Window: 60_000, Max: 8, All: true})
	d := delayedMsg("x", x, 0, "d3", 9000)
	d.ID = []byte(id16(3))
	h.send(50, idMsg("x", x, 0, id16(1), "d1"), idMsg("x", x, 1, "short-id", "d2"), d)
	h.send(60, idMsg("x", x, 1, id16(1), "d1"))
	f.Add(snapshotBytes(f, h.f))
	f.Add(append([]byte{snapshotVersion, 0x81, 0xa6, 't', 'o', 'p', 'i', 'c', 's'}, claim4e9...))
	cfg := DefaultConfig()
	cfg.Dir, cfg.UnitsPerFile, cfg.Log, cfg.Logger = f.TempDir(), 4, h.log, hclog.NewNullLogger() // f's logger may not be used inside the target
	target, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { target.Close() })
	f.Fuzz(func(t *testing.T, snap []byte) {
		if err := target.Restore(nopCloser{bytes.NewReader(snap)}); err != nil {
			return
		}
		again := snapshotBytes(t, target)
		if err := target.Restore(nopCloser{bytes.NewReader(again)}); err != nil {
			t.Fatalf("restore of a re-snapshot: %v", err)
		}
		if third := snapshotBytes(t, target); !bytes.Equal(third, again) {
			t.Fatalf("re-snapshot changed after restore:\n%x\n%x", again, third)
		}
	})
}
