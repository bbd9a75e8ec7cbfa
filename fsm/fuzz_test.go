package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// fuzzFSM opens an FSM in dir, emptied first. Fuzz inputs reuse one
// fixed path (not t.TempDir): a random directory name makes coverage
// differ from run to run, and the fuzzer then re-runs inputs instead of
// mutating them.
func fuzzFSM(t *testing.T, dir string, upf int, log LogReader) *FSM {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Dir, cfg.UnitsPerFile, cfg.Log, cfg.Logger, cfg.IndexEntriesPerFile = dir, upf, log, hclog.NewNullLogger(), 64
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// richHarness builds state of every kind a snapshot carries: topics and
// queues, offsets, pending and delivered timers (a retry among them), pop
// items (one acked, one changed), halves (one checked, one committed,
// one rolled back) and a dedup window with a duplicate.
func richHarness(tb testing.TB) (*harness, uint32) {
	h := newHarness(tb, 4)
	h.mustCmd(CreateTopic{Name: "x", Queues: 2})
	h.mustCmd(CreateTopic{Name: "%RETRY%g", Queues: 1})
	x, r := h.topicID("x"), h.topicID("%RETRY%g")
	h.send(1, msg("x", x, 0, "a"), msg("x", x, 1, "b"), msg("x", x, 0, "c"))
	h.mustCmd(CommitOffsets{Group: "g", Offsets: []OffsetEntry{{Topic: "x", QueueID: 0, Offset: 1}}})
	h.send(10, delayedMsg("x", x, 0, "later", 1000), delayedMsg("x", x, 1, "sooner", 20))
	u, _ := h.f.Units("x", 0, 0, 1, nil)
	for _, c := range []Command{
		SendBack{Now: 10, Record: TimerRef{Due: 5000, Index: u[0].Index, Pos: u[0].Pos, Size: u[0].Size, TopicID: r},
			Retry: RetryInfo{Reconsume: 1, OriginTopicID: x}},
		DeliverTimers{Now: 30, Items: h.f.DueTimers(30, 10)},
		Pop{Now: 40, Group: "pg", Invisible: 100, Max: 3, MaxReconsume: 2, FromFirst: true, Queues: []PopQueueRef{{Topic: "x", TopicID: x}}},
		PopAck{Now: 41, Group: "pg", Items: []PopHandle{{TopicID: x, Offset: 0, PopTime: 40}}},
		PopChangeInvisible{Now: 42, Group: "pg", Item: PopHandle{TopicID: x, Offset: 1, PopTime: 40}, Invisible: 500},
	} {
		h.applyLog(raft.LogCommand, mustEncode(tb, c))
	}
	hr := h.send(50, halfMsg("x", x, 0, "h1"), halfMsg("x", x, 1, "h2"), halfMsg("x", x, 1, "h3"))
	hi := h.idx
	h.applyLog(raft.LogCommand, mustEncode(tb, CheckTx{Now: 60, Items: []TxRef{{Index: hi, Pos: hr.Positions[0]}}}))
	h.applyLog(raft.LogCommand, mustEncode(tb, EndTx{Now: 70, Items: []TxEnd{{TxRef: TxRef{Index: hi, Pos: hr.Positions[1]}, Commit: true},
		{TxRef: TxRef{Index: hi, Pos: hr.Positions[2]}, ByBroker: true}}}))
	h.mustCmd(SetDedup{Window: 60_000, Max: 8, All: true})
	h.send(80, idMsg("x", x, 0, id16(1), "d1"), idMsg("x", x, 1, "short-id", "d2"))
	h.send(90, idMsg("x", x, 1, id16(1), "d1"))
	return h, x
}

// exercise drives a restored or fuzzed FSM through the queries and
// commands its leader services use, from what the FSM itself reports:
// none of it may panic, whatever state was restored.
func exercise(t *testing.T, f *FSM, idx *uint64, x uint32) {
	t.Helper()
	apply := func(c Command) any {
		data, err := Encode(c)
		if err != nil {
			return err
		}
		*idx++
		return f.Apply(&raft.Log{Index: *idx, Type: raft.LogCommand, Data: data})
	}
	const now = 1 << 40
	f.PinnedIndex()
	f.NextDue()
	f.PendingTimers()
	if due := f.DueTimers(now, 16); len(due) > 0 {
		apply(DeliverTimers{Now: now, Items: due})
	}
	for _, tp := range f.Topics() {
		for q := uint32(0); q < tp.Queues && q < 4; q++ {
			if min, next, err := f.QueueRange(tp.Name, q); err == nil && next > min {
				_, _ = f.Units(tp.Name, q, min, int(min64(next-min, 16)), nil)
			}
		}
		f.PopStatsOf("pg", tp.ID, now)
		f.PopAvailable("pg", PopQueueRef{Topic: tp.Name, TopicID: tp.ID}, true, now)
	}
	if dlq, ok := f.Topic("%RETRY%g"); ok {
		for _, d := range f.DeadPops(now, 4) {
			rec := d.Record
			rec.TopicID, rec.QueueID = dlq.ID, 0
			apply(SendBack{Now: now, Record: rec, DLQ: true, Pop: &d.Handle, PopGroup: d.Group})
		}
	}
	if res, ok := apply(Pop{Now: now, Group: "pg", Invisible: 100, Max: 4, MaxReconsume: 2, FromFirst: true,
		Queues: []PopQueueRef{{Topic: "x", TopicID: x}, {Topic: "x", TopicID: x, QueueID: 1}}}).(*PopResult); ok {
		for _, it := range res.Items {
			apply(PopAck{Now: now + 1, Group: "pg", Items: []PopHandle{it.Handle}})
		}
	}
	var ends []TxEnd
	for i, hm := range f.DueHalves(now, 0, 0, 4) {
		ends = append(ends, TxEnd{TxRef: hm.TxRef, Commit: i%2 == 0})
	}
	if len(ends) > 0 {
		apply(CheckTx{Now: now, Items: []TxRef{ends[0].TxRef}})
		apply(EndTx{Now: now, Items: ends})
	}
	f.TxInfo()
	f.Dedup()
	var e BatchEncoder
	e.Reset(now)
	m := idMsg("x", x, 0, id16(1), "again")
	if e.Add(&m) == nil {
		*idx++
		f.Apply(&raft.Log{Index: *idx, Type: raft.LogCommand, Data: e.Bytes()})
	}
	apply(TruncatePrefix{UpTo: *idx / 2})
}

// FuzzRestorePacked restores snapshots whose packed sections (timers,
// halves, pop items, dedup window and duplicates) are arbitrary bytes,
// inside an otherwise real snapshot. What Restore accepts must be state
// the FSM can go on from: its leader services' queries and commands must
// not panic, and it must snapshot to bytes that restore to the same
// snapshot.
func FuzzRestorePacked(f *testing.F) {
	h, x := richHarness(f)
	base, err := readSnapshot(bytes.NewReader(snapshotBytes(f, h.f)))
	if err != nil {
		f.Fatal(err)
	}
	var pops []byte
	var popTopic, popQueue uint32
	if len(base.Pops) > 0 {
		pops, popTopic, popQueue = base.Pops[0].Items, base.Pops[0].TopicID, base.Pops[0].QueueID
	}
	d := base.Dedup
	f.Add(base.Timers, base.Halves, pops, popTopic, popQueue, d.Entries, d.Dups, d.Window, d.Max, d.Now)
	f.Add([]byte(nil), []byte(nil), []byte(nil), x, uint32(0), []byte(nil), []byte(nil), int64(0), 0, int64(0))
	f.Add(base.Timers[:timerPackLen], base.Halves[:halfPackLen], pops[:popPackLen], x, uint32(1), d.Entries, []byte(nil), d.Window, 1, d.Now)
	dir := filepath.Join(f.TempDir(), "fsm")
	f.Fuzz(func(t *testing.T, timers, halves, pops []byte, popTopic, popQueue uint32, entries, dups []byte, window int64, max int, now int64) {
		st := *base
		st.Timers, st.Halves, st.TimerRetry = timers, halves, nil
		st.Pops = []snapPop{{Group: "pg", TopicID: popTopic, QueueID: popQueue, Items: pops}}
		st.Dedup = &snapDedup{Window: window, Max: max, All: true, Now: now, Entries: entries, Dups: dups}
		var snap bytes.Buffer
		if err := writeSnapshot(&snap, &st); err != nil {
			t.Fatal(err)
		}
		target := fuzzFSM(t, dir, 4, h.log)
		if err := restore(t, target, snap.Bytes()); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Restore: got %v, want nil or ErrCorrupt", err)
			}
			return
		}
		again := snapshotBytes(t, target)
		idx := target.AppliedIndex()
		exercise(t, target, &idx, x)
		if err := restore(t, target, again); err != nil {
			t.Fatalf("restore of its own snapshot: %v", err)
		}
		if third := snapshotBytes(t, target); !bytes.Equal(third, again) {
			t.Fatalf("snapshot changed through a restore")
		}
	})
}

// FuzzApply applies arbitrary entries (typ picks the raft log type) to
// an FSM holding real state, then runs its services. Apply must never
// panic; it answers a malformed or invalid command with an error (never
// a panic), and afterwards the state must still snapshot and restore to
// the same state.
func FuzzApply(f *testing.F) {
	h, x := richHarness(f)
	for _, c := range sampleCommands() {
		f.Add(uint8(raft.LogCommand), mustEncode(f, c))
	}
	for _, l := range h.log.logs {
		f.Add(uint8(l.Type), l.Data)
	}
	f.Add(uint8(raft.LogCommand), []byte{byte(CmdMessageBatch), msgBatchVersion, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	base := snapshotBytes(f, h.f)
	dir := filepath.Join(f.TempDir(), "fsm")
	f.Fuzz(func(t *testing.T, typ uint8, data []byte) {
		target := fuzzFSM(t, dir, 4, h.log)
		if err := restore(t, target, base); err != nil {
			t.Fatal(err)
		}
		idx := target.AppliedIndex() + 1
		res := target.Apply(&raft.Log{Index: idx, Term: 1, Type: raft.LogType(typ), Data: data})
		if err, ok := res.(error); ok && err.Error() == "" {
			t.Fatal("an error without a message")
		}
		snap := snapshotBytes(t, target)
		exercise(t, target, &idx, x)
		if err := restore(t, target, snap); err != nil {
			t.Fatalf("restore of the snapshot after the entry: %v", err)
		}
		if again := snapshotBytes(t, target); !bytes.Equal(again, snap) {
			t.Fatal("snapshot changed through a restore")
		}
	})
}

// FuzzOpenIndex opens a message index directory holding an arbitrary
// state.json and index file (the only durable parts, written by Sync):
// openIndex trusts nothing it cannot check and never fails. Lookups
// must stay within the entries it kept, and it must go on indexing: a
// hash added afterwards is found.
func FuzzOpenIndex(f *testing.F) {
	// A real index: 3 files of 4 entries after 10 adds, synced.
	seedDir := filepath.Join(f.TempDir(), "index")
	ix := openIndex(seedDir, 4)
	for i := range uint64(10) {
		ix.add(idHash([]byte{byte(i)}), 100+i, uint32(i))
	}
	if err := ix.takeSyncWork().run(); err != nil {
		f.Fatal(err)
	}
	ix.closeAll()
	state, _ := os.ReadFile(filepath.Join(seedDir, "state.json"))
	file, _ := os.ReadFile(filepath.Join(seedDir, "00000000.idx"))
	f.Add(state, file, uint8(4))
	f.Add([]byte(`{"through":5,"files":[{"seq":0,"entries":3}]}`), file, uint8(4))
	f.Add([]byte(`{"through":5,"files":[{"seq":0,"entries":3},{"seq":0,"entries":3}]}`), file, uint8(4))
	f.Add([]byte(`{"through":5,"files":[{"seq":-1,"entries":3}]}`), file, uint8(4))
	f.Add([]byte(`{}`), []byte(idxMagic), uint8(2))
	dir := filepath.Join(f.TempDir(), "index")
	f.Fuzz(func(t *testing.T, state, file []byte, capacity uint8) {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, "state.json"), state, 0o644)
		// Every file state.json names holds the fuzzed bytes.
		var st idxState
		if json.Unmarshal(state, &st) == nil {
			for i, fs := range st.Files {
				if i < 4 {
					_ = os.WriteFile(filepath.Join(dir, fmtSeq(fs.Seq)), file, 0o644)
				}
			}
		}
		ix := openIndex(dir, max(int(capacity), 2))
		defer ix.closeAll()
		for i := range byte(8) {
			for _, r := range ix.lookup(idHash([]byte{i}), 0, MaxIndexLookup) {
				_ = r
			}
		}
		h := idHash([]byte("fuzz-new"))
		ix.add(h, ix.through+1, 7)
		if ix.broken != nil {
			return // an I/O error stops indexing, by design
		}
		found := false
		for _, r := range ix.lookup(h, 0, MaxIndexLookup) {
			found = found || (r.Index == ix.through+1 && r.Pos == 7)
		}
		if !found {
			t.Fatalf("an entry added after open is not found")
		}
		if err := ix.takeSyncWork().run(); err != nil {
			t.Fatalf("sync after open: %v", err)
		}
	})
}

func fmtSeq(seq int) string { return fmt.Sprintf("%08d.idx", seq) } // as openFile names it

// FuzzConsumeQueueFiles restores a real snapshot over consume-queue
// files holding arbitrary bytes (a crash can leave anything in them: they
// are written through a shared mapping without fsync). Restore validates
// them and rebuilds them from the log; afterwards every read must return
// its unit or ErrCorrupt, and the units at the queue's ends must name
// entries inside the log range.
func FuzzConsumeQueueFiles(f *testing.F) {
	h, _ := richHarness(f)
	snap := snapshotBytes(f, h.f)
	st, err := readSnapshot(bytes.NewReader(snap))
	if err != nil {
		f.Fatal(err)
	}
	var x snapTopic
	for _, tp := range st.Topics {
		if tp.Name == "x" {
			x = tp
		}
	}
	// The real files of queue 0 as seeds.
	qdir := filepath.Join(h.f.cfg.Dir, "cq", strconv.FormatUint(uint64(x.ID), 10), "0")
	ents, _ := os.ReadDir(qdir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(qdir, e.Name()))
		f.Add(b, b, uint8(0))
	}
	f.Add([]byte{}, []byte{0xff}, uint8(1))
	f.Add(make([]byte, 4*UnitSize), make([]byte, 3*UnitSize), uint8(0))
	dir := filepath.Join(f.TempDir(), "fsm")
	f.Fuzz(func(t *testing.T, file0, file1 []byte, queue uint8) {
		target := fuzzFSM(t, dir, 4, h.log)
		q := uint32(queue) % uint32(len(x.Next))
		qd := filepath.Join(dir, "cq", strconv.FormatUint(uint64(x.ID), 10), strconv.FormatUint(uint64(q), 10))
		if err := os.MkdirAll(qd, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range [][]byte{file0, file1} {
			_ = os.WriteFile(filepath.Join(qd, fmt.Sprintf("%020d.cq", i*4)), b, 0o644)
		}
		if err := restore(t, target, snap); err != nil {
			t.Fatalf("Restore over damaged consume-queue files: %v", err)
		}
		for q := range uint32(len(x.Next)) {
			min, next, err := target.QueueRange("x", q)
			if err != nil {
				t.Fatal(err)
			}
			for off := min; off < next; off++ {
				units, err := target.Units("x", q, off, 1, nil)
				if err != nil && !errors.Is(err, ErrCorrupt) || err == nil && len(units) != 1 {
					t.Fatalf("queue %d offset %d: %d units, %v", q, off, len(units), err)
				}
			}
			if next == min {
				continue
			}
			// Restore checked the ends against the log range (a damaged
			// unit between them is served as ErrCorrupt, not rebuilt).
			target.mu.RLock()
			qs := target.topics["x"].queues[q]
			first, _ := target.store.read(qs, min)
			last, _ := target.store.read(qs, next-1)
			target.mu.RUnlock()
			for _, u := range []Unit{first, last} {
				if u.Index == 0 || u.Index > target.AppliedIndex() || u.Index < target.LogStart() {
					t.Fatalf("queue %d [%d, %d): an end unit names entry %d, log [%d, %d]", q, min, next, u.Index, target.LogStart(), target.AppliedIndex())
				}
			}
		}
	})
}
