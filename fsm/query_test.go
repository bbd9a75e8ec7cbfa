package fsm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

func TestUnitsAcrossFileBoundaries(t *testing.T) {
	h := newHarness(t, 3)
	h.mustCmd(CreateTopic{Name: "t", Queues: 1})
	for i := 0; i < 10; i++ {
		h.send(int64(i*10), msg("t", 1, 0, fmt.Sprint(i)))
	}
	tests := []struct {
		name      string
		from      uint64
		max       int
		wantFirst uint64 // raft index of the first unit
		wantN     int
	}{
		{"whole queue", 0, 100, 2, 10},
		{"straddles files", 2, 4, 4, 4},
		{"from last", 9, 5, 11, 1},
		{"at next", 10, 5, 0, 0},
		{"past next", 50, 5, 0, 0},
		{"max zero", 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.f.Units("t", 0, tc.from, tc.max, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.wantN {
				t.Fatalf("got %d units, want %d", len(got), tc.wantN)
			}
			for i, u := range got {
				if u.Index != tc.wantFirst+uint64(i) || u.StoreTime != int64(u.Index-2)*10 {
					t.Errorf("unit %d got %+v", i, u)
				}
			}
		})
	}
	if _, err := h.f.Units("nope", 0, 0, 1, nil); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("unknown topic got %v", err)
	}
	if _, err := h.f.Units("t", 1, 0, 1, nil); !errors.Is(err, ErrQueueNotFound) {
		t.Errorf("unknown queue got %v", err)
	}
}

func TestOffsetForTime(t *testing.T) {
	h := newHarness(t, 4)
	h.mustCmd(CreateTopic{Name: "t", Queues: 1})
	for _, ts := range []int64{100, 100, 200, 300, 300, 300, 400} {
		h.send(ts, msg("t", 1, 0, "x"))
	}
	tests := []struct {
		ts   int64
		want uint64
	}{{0, 0}, {100, 0}, {101, 2}, {200, 2}, {300, 3}, {350, 6}, {400, 6}, {401, 7}}
	for _, tc := range tests {
		got, err := h.f.OffsetForTime("t", 0, tc.ts)
		if err != nil || got != tc.want {
			t.Errorf("OffsetForTime(%d) got %d, %v; want %d", tc.ts, got, err, tc.want)
		}
	}
	// After retention the answer never goes below min.
	h.mustCmd(TruncatePrefix{UpTo: 4}) // messages were entries 2..8: offsets 0..2 go
	if got, _ := h.f.OffsetForTime("t", 0, 0); got != 3 {
		t.Errorf("OffsetForTime after truncation got %d, want 3", got)
	}
}

func TestConsumerOffsetsQueries(t *testing.T) {
	h := newHarness(t, 4)
	h.mustCmd(CreateTopic{Name: "b", Queues: 2})
	h.mustCmd(CreateTopic{Name: "a", Queues: 2})
	h.mustCmd(CommitOffsets{Group: "g2", Offsets: []OffsetEntry{{"b", 1, 5}, {"a", 1, 3}, {"a", 0, 4}}})
	h.mustCmd(CommitOffsets{Group: "g1", Offsets: []OffsetEntry{{"a", 0, 1}}})
	h.mustCmd(CommitOffsets{Group: "g1", Offsets: []OffsetEntry{{"a", 0, 0}}}) // reset backwards
	if diff := cmp.Diff([]string{"g1", "g2"}, h.f.Groups()); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	want := []OffsetEntry{{"a", 0, 4}, {"a", 1, 3}, {"b", 1, 5}}
	if diff := cmp.Diff(want, h.f.GroupOffsets("g2")); diff != "" {
		t.Errorf("offsets (-want +got):\n%s", diff)
	}
	if off, ok := h.f.ConsumerOffset("g1", "a", 0); !ok || off != 0 {
		t.Errorf("ConsumerOffset got %d %v, want 0 true", off, ok)
	}
	h.mustCmd(DeleteGroup{Group: "g2"})
	if _, ok := h.f.ConsumerOffset("g2", "a", 0); ok {
		t.Error("offset of deleted group survived")
	}
	topics := h.f.Topics()
	if len(topics) != 2 || topics[0].Name != "a" {
		t.Errorf("Topics not sorted: %+v", topics)
	}
}

func TestResetEpochAndNodeRegistry(t *testing.T) {
	h := newHarness(t, 4)
	h.mustCmd(CreateTopic{Name: "a", Queues: 2})
	h.mustCmd(CommitOffsets{Group: "g", Offsets: []OffsetEntry{{"a", 0, 9}}})
	if e := h.f.GroupResetEpoch("g"); e != 0 {
		t.Fatalf("epoch after a plain commit got %d, want 0", e)
	}
	h.mustCmd(CommitOffsets{Group: "g", Offsets: []OffsetEntry{{"a", 0, 2}}, Reset: true})
	h.mustCmd(CommitOffsets{Group: "g", Offsets: []OffsetEntry{{"a", 1, 0}}, Reset: true})
	if e := h.f.GroupResetEpoch("g"); e != 2 {
		t.Fatalf("epoch after two resets got %d, want 2", e)
	}
	// A commit carrying positions from before the latest reset must not
	// undo it; one that saw the reset goes through.
	if err := h.cmd(CommitOffsets{Group: "g", Offsets: []OffsetEntry{{"a", 0, 99}}, Epoch: 1}); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale commit got %v, want ErrStaleEpoch", err)
	}
	if off, _ := h.f.ConsumerOffset("g", "a", 0); off != 2 {
		t.Fatalf("offset after a refused stale commit got %d, want the reset value 2", off)
	}
	h.mustCmd(CommitOffsets{Group: "g", Offsets: []OffsetEntry{{"a", 0, 5}}, Epoch: 2})
	h.mustCmd(RegisterNode{ID: "n1", Addr: "127.0.0.1:1"})
	h.mustCmd(RegisterNode{ID: "n1", Addr: "127.0.0.1:2"})
	if a, ok := h.f.NodeAddr("n1"); !ok || a != "127.0.0.1:2" {
		t.Fatalf("NodeAddr got %q %v, want the latest address", a, ok)
	}
	want := dump(t, h.f)
	f2 := newFSM(t, t.TempDir(), 4, nil)
	if err := restore(t, f2, snapshotBytes(t, h.f)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
		t.Fatalf("restored state (-want +got):\n%s", diff)
	}
	h.mustCmd(DeleteGroup{Group: "g"})
	if e := h.f.GroupResetEpoch("g"); e != 0 {
		t.Fatalf("epoch of a deleted group got %d, want 0", e)
	}
}

// BenchmarkApplyBatch applies entries of 256 x 1 KiB messages over 8 queues.
func BenchmarkApplyBatch(b *testing.B) {
	f := newFSM(b, b.TempDir(), DefaultUnitsPerFile, nil)
	f.Apply(&raft.Log{Index: 1, Data: mustEncode(b, CreateTopic{Name: "bench", Queues: 8})})
	var e BatchEncoder
	e.Reset(1700000000000)
	body := make([]byte, 1024)
	for i := 0; i < 256; i++ {
		m := Message{Topic: "bench", TopicID: 1, QueueID: uint32(i % 8), ID: make([]byte, 16), Tags: "TagA",
			Properties: map[string]string{"UNIQ_KEY": "0123456789abcdef"}, Body: body}
		if err := e.Add(&m); err != nil {
			b.Fatal(err)
		}
	}
	data := e.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := f.Apply(&raft.Log{Index: uint64(i) + 2, Type: raft.LogCommand, Data: data}).(*BatchResult)
		if res.Rejected != 0 {
			b.Fatal("rejected")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "msgs/s")
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}

func mustEncode(tb testing.TB, c Command) []byte {
	data, err := Encode(c)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
