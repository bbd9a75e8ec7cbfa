package fsm

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

func keyedMsg(topic string, id uint32, n int, keys ...string) Message {
	m := msg(topic, id, uint32(n%2), fmt.Sprint(n))
	m.ID = []byte(fmt.Sprintf("id-%013d", n))
	if len(keys) > 0 {
		m.Keys = keys[0]
		for _, k := range keys[1:] {
			m.Keys += " " + k
		}
	}
	return m
}

func newIndexHarness(t *testing.T, dir string, perFile int) *harness {
	log := &memLog{}
	cfg := DefaultConfig()
	cfg.Dir, cfg.UnitsPerFile, cfg.Log, cfg.Logger, cfg.IndexEntriesPerFile = dir, 16, log, testLogger(t), perFile
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return &harness{t: t, f: f, log: log}
}

func refsOf(h *harness, res []*BatchResult, idx []uint64, which ...int) []RecordRef {
	var out []RecordRef
	for _, w := range which {
		out = append(out, RecordRef{Index: idx[w], Pos: res[w].Positions[0]})
	}
	return out
}

// TestIndexLookups: by id and by (topic, key), newest first, across
// index files, not across topics; rejected messages are not indexed.
func TestIndexLookups(t *testing.T) {
	h := newIndexHarness(t, t.TempDir(), 8)
	h.mustCmd(CreateTopic{Name: "x", Queues: 2})
	h.mustCmd(CreateTopic{Name: "y", Queues: 1})
	x, y := h.topicID("x"), h.topicID("y")
	var res []*BatchResult
	var idx []uint64
	for n := 0; n < 20; n++ {
		m := keyedMsg("x", x, n, "order-"+fmt.Sprint(n%5), "shared")
		if n == 7 {
			m = keyedMsg("y", y, n, "order-2")
			m.QueueID = 0
		}
		res = append(res, h.send(int64(n), m))
		idx = append(idx, h.idx)
	}
	h.send(99, Message{Topic: "gone", TopicID: 77, ID: []byte("id-rejected"), Keys: "order-2", Body: []byte("x")})
	if got := h.f.LookupID([]byte("id-0000000000012"), 10); !cmp.Equal(got, refsOf(h, res, idx, 12)) {
		t.Fatalf("lookup id 12: %v", got)
	}
	if got := h.f.LookupKey("x", "order-2", 10); !cmp.Equal(got, refsOf(h, res, idx, 17, 12, 2)) {
		t.Fatalf("lookup key order-2 in x: %v (7 is in y, newest first)", got)
	}
	if got := h.f.LookupKey("y", "order-2", 10); !cmp.Equal(got, refsOf(h, res, idx, 7)) {
		t.Fatalf("lookup key order-2 in y: %v", got)
	}
	if got := h.f.LookupKey("x", "shared", 3); !cmp.Equal(got, refsOf(h, res, idx, 19, 18, 17)) {
		t.Fatalf("lookup shared, max 3: %v", got)
	}
	if got := h.f.LookupID([]byte("id-rejected"), 10); len(got) != 0 {
		t.Fatalf("a rejected message was indexed: %v", got)
	}
	if st := h.f.IndexStats(); st.Files < 7 || st.Entries != 20*3-1 {
		t.Fatalf("index stats %+v: want 59 entries over 8-entry files", st)
	}
}

// TestIndexSurvivesRestartAndRetention: what Sync made durable is kept
// across a restart, what was not is rebuilt from the log, a replay adds
// nothing twice, and retention retires files below the log start.
func TestIndexSurvivesRestartAndRetention(t *testing.T) {
	dir := t.TempDir()
	h := newIndexHarness(t, dir, 8)
	h.mustCmd(CreateTopic{Name: "x", Queues: 2})
	x := h.topicID("x")
	for n := 0; n < 10; n++ {
		h.send(int64(n), keyedMsg("x", x, n, "k"))
	}
	if err := h.f.Sync(); err != nil {
		t.Fatal(err)
	}
	synced, err := os.ReadFile(filepath.Join(dir, "index", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	for n := 10; n < 14; n++ { // not synced: rebuilt from the log after the restart
		h.send(int64(n), keyedMsg("x", x, n, "k"))
	}
	want := h.f.LookupKey("x", "k", 100)
	snap := snapshotBytes(t, h.f)
	logs := h.log
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash after the Sync: the later entries are in the
	// files, but state.json (as the Sync left it) does not count them.
	if err := os.WriteFile(filepath.Join(dir, "index", "state.json"), synced, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Dir, cfg.UnitsPerFile, cfg.Log, cfg.Logger, cfg.IndexEntriesPerFile = dir, 16, logs, testLogger(t), 8
	f2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f2.Close() })
	if err := restore(t, f2, snap); err != nil {
		t.Fatal(err)
	}
	if got := f2.LookupKey("x", "k", 100); !cmp.Equal(got, want) {
		t.Fatalf("after restart: %v, want %v", got, want)
	}
	// Raft replays the entries after the snapshot: nothing is added twice.
	for _, l := range logs.logs {
		if l.Index > f2.AppliedIndex() {
			f2.Apply(l)
		}
	}
	f2.Apply(logs.logs[len(logs.logs)-1]) // and a repeated apply of the last
	if got := f2.LookupKey("x", "k", 100); len(got) != 14 {
		t.Fatalf("%d entries after the replay, want 14", len(got))
	}
	f2.Apply(&raft.Log{Index: f2.AppliedIndex() + 1, Type: raft.LogCommand, Data: mustEncode(t, TruncatePrefix{UpTo: logs.logs[9].Index})})
	if err := f2.Sync(); err != nil {
		t.Fatal(err)
	}
	got := f2.LookupKey("x", "k", 100)
	for _, r := range got {
		if r.Index <= logs.logs[9].Index {
			t.Fatalf("lookup returned %v below the log start", r)
		}
	}
	if len(got) != 5 {
		t.Fatalf("after retention up to entry %d: %d records, want the 5 stored after it", logs.logs[9].Index, len(got))
	}
	// Two entries per message (id, key), 8 per file: files 0 and 1 hold
	// entries 2..9, below the new log start 11.
	if files := indexFiles(filepath.Join(dir, "index")); !cmp.Equal(files, []string{"00000002.idx", "00000003.idx"}) {
		t.Fatalf("index files %v: the first two (entries 2..9) should be retired", files)
	}
}

// BenchmarkApplyBatchKeys is BenchmarkApplyBatch (query_test.go) with
// a key per message besides its id: two index entries per message.
func BenchmarkApplyBatchKeys(b *testing.B) {
	f := newFSM(b, b.TempDir(), DefaultUnitsPerFile, nil)
	f.Apply(&raft.Log{Index: 1, Data: mustEncode(b, CreateTopic{Name: "bench", Queues: 8})})
	var e BatchEncoder
	e.Reset(1700000000000)
	for i := 0; i < 256; i++ {
		m := Message{Topic: "bench", TopicID: 1, QueueID: uint32(i % 8), ID: []byte(fmt.Sprintf("%016d", i)), Tags: "TagA",
			Keys: fmt.Sprintf("order-%d", i), Body: make([]byte, 1024)}
		if err := e.Add(&m); err != nil {
			b.Fatal(err)
		}
	}
	data := e.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := f.Apply(&raft.Log{Index: uint64(i) + 2, Type: raft.LogCommand, Data: data}).(*BatchResult); res.Rejected != 0 {
			b.Fatal("rejected")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkIndexAddSynced is the index's cost per entry with an fsync
// every 40 000 entries (about what a node's maintenance does under load:
// Sync once a second at 40k msgs/s), hashes spread like message ids'.
func BenchmarkIndexAddSynced(b *testing.B) {
	ix := openIndex(b.TempDir(), DefaultIndexEntriesPerFile)
	defer ix.closeAll()
	h := uint64(fnvOffset)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h = (h ^ uint64(i)) * fnvPrime
		ix.add(h, uint64(i)+1, 0)
		if i%40000 == 39999 {
			if err := ix.takeSyncWork().run(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
