package fsm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

func TestConfigValidate(t *testing.T) {
	err := Config{UnitsPerFile: -1}.Validate()
	if err == nil {
		t.Fatal("got nil, want errors")
	}
	// Every problem is reported, not only the first.
	for _, want := range []string{"Dir", "UnitsPerFile"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New(Config{}) got nil error, want one")
	}
}

func TestApplyAssignsDenseOffsetsAcrossQueues(t *testing.T) {
	h := newHarness(t, 4)
	h.mustCmd(CreateTopic{Name: "a", Queues: 2, Time: 10})
	h.mustCmd(CreateTopic{Name: "b", Queues: 1, Time: 11})
	a, b := h.topicID("a"), h.topicID("b")
	sent := []Message{msg("a", a, 0, "1"), msg("a", a, 1, "2"), msg("b", b, 0, "3"), msg("a", a, 0, "4"), msg("a", a, 2, "bad")}
	res := h.send(1000, sent...)
	want := &BatchResult{Offsets: []int64{0, 0, 0, 1, -1}, Rejected: 1}
	pos := uint32(batchHeaderLen) // each record follows the previous one
	for i := range sent {
		want.Positions = append(want.Positions, pos)
		pos += uint32(EncodedSize(&sent[i]))
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Fatalf("result (-want +got):\n%s", diff)
	}
	units, err := h.f.Units("a", 0, 0, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Record positions: header 14, then the first record.
	m1 := msg("a", a, 0, "1")
	wantUnits := []Unit{
		{Index: 3, Pos: 14, Size: uint32(EncodedSize(&m1)), TagHash: TagHash("t1"), StoreTime: 1000},
		{Index: 3, Pos: units[1].Pos, Size: units[1].Size, TagHash: TagHash("t4"), StoreTime: 1000},
	}
	if diff := cmp.Diff(wantUnits, units); diff != "" {
		t.Fatalf("units (-want +got):\n%s", diff)
	}
	// The unit slices exactly the record.
	data := h.log.logs[2].Data
	got, err := DecodeMessage(data[units[1].Pos : units[1].Pos+units[1].Size])
	if err != nil || string(got.Body) != "4" {
		t.Fatalf("DecodeMessage via unit got %q, %v; want body 4", got.Body, err)
	}
}

func TestApplyRejects(t *testing.T) {
	h := newHarness(t, 4)
	h.mustCmd(CreateTopic{Name: "t", Queues: 2})
	oldID := h.topicID("t")
	h.mustCmd(DeleteTopic{Name: "t"})
	h.mustCmd(CreateTopic{Name: "t", Queues: 2})
	newID := h.topicID("t")
	if newID == oldID {
		t.Fatalf("recreated topic kept ID %d", oldID)
	}
	tests := []struct {
		name string
		m    Message
		want int64
	}{
		{"stale topic id", msg("t", oldID, 0, "x"), -1},
		{"unknown topic", msg("nope", newID, 0, "x"), -1},
		{"queue out of range", msg("t", newID, 2, "x"), -1},
		{"accepted", msg("t", newID, 1, "x"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := h.send(1, tc.m)
			if res.Offsets[0] != tc.want {
				t.Errorf("offset got %d, want %d", res.Offsets[0], tc.want)
			}
		})
	}
}

func TestApplyControlResults(t *testing.T) {
	h := newHarness(t, 4)
	tests := []struct {
		name string
		cmd  Command
		want error
	}{
		{"create", CreateTopic{Name: "t", Queues: 2, Time: 5, Attributes: map[string]string{"k": "v"}}, nil},
		{"create again", CreateTopic{Name: "t", Queues: 2}, ErrTopicExists},
		{"update unknown", UpdateTopic{Name: "u", Queues: 3}, ErrTopicNotFound},
		{"shrink", UpdateTopic{Name: "t", Queues: 1}, ErrQueueShrink},
		{"grow", UpdateTopic{Name: "t", Queues: 4, Perm: PermRead}, nil},
		{"perm only", UpdateTopic{Name: "t"}, nil},
		{"commit", CommitOffsets{Group: "g", Offsets: []OffsetEntry{{"t", 3, 9}, {"t", 9, 1}, {"zz", 0, 1}}}, nil},
		{"delete unknown group", DeleteGroup{Group: "nope"}, ErrGroupNotFound},
		{"delete unknown topic", DeleteTopic{Name: "nope"}, ErrTopicNotFound},
		{"truncate", TruncatePrefix{UpTo: 3}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := h.cmd(tc.cmd); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	want := Topic{Name: "t", ID: 1, Queues: 4, Perm: PermRead, CreatedAt: 5, Attributes: map[string]string{"k": "v"}}
	got, _ := h.f.Topic("t")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("topic (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]OffsetEntry{{"t", 3, 9}}, h.f.GroupOffsets("g")); diff != "" {
		t.Errorf("offsets (-want +got):\n%s", diff)
	}
	if h.f.LogStart() != 4 || h.f.AppliedIndex() != h.idx {
		t.Errorf("LogStart %d AppliedIndex %d, want 4 and %d", h.f.LogStart(), h.f.AppliedIndex(), h.idx)
	}
	// Non-command entries only move the applied index.
	if res := h.applyLog(raft.LogNoop, nil); res != nil || h.f.AppliedIndex() != h.idx {
		t.Errorf("noop got %v, applied %d", res, h.f.AppliedIndex())
	}
	// Garbage returns an error, never panics.
	if res := h.applyLog(raft.LogCommand, []byte{1, 1, 9}); res == nil {
		t.Error("garbage batch got nil result")
	}
}

func TestDeleteTopicRemovesOffsetsAndFiles(t *testing.T) {
	h := newHarness(t, 2)
	h.mustCmd(CreateTopic{Name: "t", Queues: 1})
	h.mustCmd(CreateTopic{Name: "keep", Queues: 1})
	id := h.topicID("t")
	h.send(1, msg("t", id, 0, "a"), msg("t", id, 0, "b"), msg("t", id, 0, "c"))
	h.mustCmd(CommitOffsets{Group: "g", Offsets: []OffsetEntry{{"t", 0, 2}, {"keep", 0, 0}}})
	h.mustCmd(CommitOffsets{Group: "only-t", Offsets: []OffsetEntry{{"t", 0, 1}}})
	h.mustCmd(DeleteTopic{Name: "t"})
	if err := h.f.Sync(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"g"}, h.f.Groups()); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	if _, ok := h.f.ConsumerOffset("g", "t", 0); ok {
		t.Error("offset on deleted topic survived")
	}
	if cqFiles(t, h.f, id) != 0 {
		t.Error("CQ files of deleted topic survived Sync")
	}
}

// randomLog builds a deterministic pseudo-random workload.
func randomLog(h *harness, entries int) {
	_ = h.cmd(CreateTopic{Name: "x", Queues: 3}) // exists when called twice
	_ = h.cmd(CreateTopic{Name: "y", Queues: 2})
	seed := uint32(1)
	next := func(n uint32) uint32 { seed = seed*1664525 + 1013904223; return (seed >> 8) % n }
	for i := 0; i < entries; i++ {
		switch next(10) {
		case 0:
			h.cmd(UpdateTopic{Name: "y", Queues: 2 + next(3)})
		case 1:
			h.cmd(CommitOffsets{Group: fmt.Sprint("g", next(3)), Offsets: []OffsetEntry{{"x", next(3), uint64(i)}}})
		case 2:
			if next(4) == 0 {
				h.cmd(DeleteTopic{Name: "y"})
				h.cmd(CreateTopic{Name: "y", Queues: 2})
			}
		default:
			var msgs []Message
			for j := uint32(0); j < 1+next(20); j++ {
				topic := []string{"x", "y"}[next(2)]
				tp, _ := h.f.Topic(topic)
				id := tp.ID
				if next(20) == 0 {
					id-- // stale incarnation
				}
				msgs = append(msgs, msg(topic, id, next(4), fmt.Sprint(i, j)))
			}
			h.send(int64(i), msgs...)
		}
	}
}

func TestApplyDeterministic(t *testing.T) {
	h := newHarness(t, 16)
	randomLog(h, 300)
	// A second FSM gets the same log in ApplyBatch chunks.
	f2 := newFSM(t, t.TempDir(), 7, nil)
	for i := 0; i < len(h.log.logs); i += 13 {
		end := min(i+13, len(h.log.logs))
		f2.ApplyBatch(h.log.logs[i:end])
	}
	want := dump(t, h.f)
	if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
		t.Fatalf("replicas differ (-a +b):\n%s", diff)
	}
	if len(want.Groups) == 0 || len(want.Queues) < 5 {
		t.Fatalf("workload too small: %d groups %d queues", len(want.Groups), len(want.Queues))
	}
}

func TestOnAppend(t *testing.T) {
	type call struct {
		TopicID uint32
		Topic   string
		QueueID uint32
		Next    uint64
	}
	var calls []call
	cfg := DefaultConfig()
	cfg.Dir, cfg.Logger = t.TempDir(), testLogger(t)
	cfg.OnAppend = func(id uint32, topic string, q uint32, next uint64) { calls = append(calls, call{id, topic, q, next}) }
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := &harness{t: t, f: f, log: &memLog{}}
	h.mustCmd(CreateTopic{Name: "t", Queues: 2})
	var e BatchEncoder
	e.Reset(1)
	for _, q := range []uint32{1, 0, 1} {
		m := msg("t", 1, q, "b")
		_ = e.Add(&m)
	}
	logs := []*raft.Log{{Index: 2, Data: e.Bytes()}, {Index: 3, Data: e.Bytes()}}
	f.ApplyBatch(logs)
	want := []call{{1, "t", 1, 4}, {1, "t", 0, 2}}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("OnAppend calls (-want +got):\n%s", diff)
	}
}

func TestConcurrentReadersDuringApply(t *testing.T) {
	h := newHarness(t, 8)
	h.mustCmd(CreateTopic{Name: "t", Queues: 2})
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []Unit
			for {
				select {
				case <-done:
					return
				default:
				}
				min, next, err := h.f.QueueRange("t", 1)
				if err != nil {
					t.Error(err)
					return
				}
				buf, err = h.f.Units("t", 1, min, 64, buf[:0])
				if errors.Is(err, ErrOffsetTooSmall) {
					continue // truncated between the two calls
				}
				if err != nil {
					t.Error(err)
					return
				}
				// Units may have grown since QueueRange, never shrunk below
				// next; every unit returned is complete and in log order.
				if len(buf) < int(min64(next-min, 64)) {
					t.Errorf("got %d units, want >= %d", len(buf), min64(next-min, 64))
					return
				}
				for i, u := range buf {
					if u.Index == 0 || (i > 0 && u.Index <= buf[i-1].Index) {
						t.Errorf("incomplete or unordered unit %+v at %d", u, i)
						return
					}
				}
				_, _ = h.f.OffsetForTime("t", 1, 50)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			if err := h.f.Sync(); err != nil {
				t.Error(err)
			}
		}
	}()
	for i := 0; i < 200; i++ {
		h.send(int64(i), msg("t", 1, 1, "a"), msg("t", 1, 0, "b"))
		if i%50 == 49 {
			h.mustCmd(TruncatePrefix{UpTo: h.idx - 20})
		}
	}
	close(done)
	wg.Wait()
}

// cqFiles counts the .cq files of a topic ID.
func cqFiles(t testing.TB, f *FSM, topicID uint32) int {
	t.Helper()
	n := 0
	root := filepath.Join(f.cfg.Dir, "cq", strconv.FormatUint(uint64(topicID), 10))
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && filepath.Ext(p) == ".cq" {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func min64(a, b uint64) uint64 { return min(a, b) }
