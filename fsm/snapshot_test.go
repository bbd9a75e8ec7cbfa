package fsm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

type bufSink struct {
	bytes.Buffer
	canceled bool
}

func (s *bufSink) ID() string    { return "buf" }
func (s *bufSink) Cancel() error { s.canceled = true; return nil }
func (s *bufSink) Close() error  { return nil }

func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	return sink.Bytes()
}

func restore(t testing.TB, f *FSM, snap []byte) error {
	t.Helper()
	return f.Restore(io.NopCloser(bytes.NewReader(snap)))
}

func TestSnapshotFileStoreRestartKeepsCQ(t *testing.T) {
	h := newHarness(t, 16)
	randomLog(h, 200)
	want := dump(t, h.f)

	store, err := raft.NewFileSnapshotStore(t.TempDir(), 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := store.Create(raft.SnapshotVersionMax, h.idx, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := h.f.Snapshot()
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	snap.Release()
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart on the same Dir without a log: Restore must validate the
	// existing CQ files and not need a rebuild (which would fail with ErrNoLog).
	f2 := newFSM(t, h.f.cfg.Dir, 16, nil)
	if got := dump(t, f2); got.Applied != 0 || len(got.Topics) != 0 {
		t.Fatalf("New started with state %+v", got)
	}
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := f2.Restore(rc); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
		t.Fatalf("restored state (-want +got):\n%s", diff)
	}
}

func TestSnapshotIsDeterministic(t *testing.T) {
	h := newHarness(t, 16)
	randomLog(h, 100)
	f2 := newFSM(t, t.TempDir(), 16, nil)
	f2.ApplyBatch(h.log.logs)
	if !bytes.Equal(snapshotBytes(t, h.f), snapshotBytes(t, f2)) {
		t.Error("replicas with the same log wrote different snapshots")
	}
}

func TestRestoreRebuildsFromLog(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, src *harness) string // returns the new FSM's Dir
	}{
		{"empty dir", func(t *testing.T, _ *harness) string { return t.TempDir() }},
		{"one queue wiped", func(t *testing.T, src *harness) string {
			dir := copyDir(t, src.f)
			id := src.topicID("x")
			if err := os.RemoveAll(filepath.Join(dir, "cq", itoa(id), "1")); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"stale cache, different UnitsPerFile", func(t *testing.T, src *harness) string { return copyDir(t, src.f) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 16)
			randomLog(h, 200)
			snap := snapshotBytes(t, h.f)
			want := dump(t, h.f)
			dir := tc.prepare(t, h)
			f2 := newFSM(t, dir, 5, h.log)
			if err := restore(t, f2, snap); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
				t.Fatalf("rebuilt state (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRestoreIgnoresUnitsPastNext(t *testing.T) {
	h := newHarness(t, 4)
	randomLog(h, 80)
	snap := snapshotBytes(t, h.f)
	at := len(h.log.logs)
	randomLog(h, 80) // more units written past the snapshot's next offsets
	want := dump(t, h.f)
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	// A topic deleted after the snapshot had its files removed, so Restore
	// may rebuild some queues from the log: give it one.
	f2 := newFSM(t, h.f.cfg.Dir, 4, h.log)
	if err := restore(t, f2, snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	f2.ApplyBatch(h.log.logs[at:]) // raft replays entries after the snapshot
	if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
		t.Fatalf("state after replay (-want +got):\n%s", diff)
	}
}

func TestTruncatePrefix(t *testing.T) {
	h := newHarness(t, 3)
	h.mustCmd(CreateTopic{Name: "t", Queues: 2})
	var idx []uint64 // raft index of each message on queue 0
	for i := 0; i < 10; i++ {
		h.send(int64(i), msg("t", 1, 0, "a"))
		idx = append(idx, h.idx)
	}
	h.send(100, msg("t", 1, 1, "b"))
	h.mustCmd(TruncatePrefix{UpTo: idx[6]}) // offsets 0..6 on queue 0 are gone
	if err := h.f.Sync(); err != nil {
		t.Fatal(err)
	}
	min, next, _ := h.f.QueueRange("t", 0)
	if min != 7 || next != 10 {
		t.Fatalf("queue 0 range got [%d,%d), want [7,10)", min, next)
	}
	if min, next, _ := h.f.QueueRange("t", 1); min != 0 || next != 1 {
		t.Fatalf("queue 1 range got [%d,%d), want [0,1) (its unit is above UpTo)", min, next)
	}
	_, err := h.f.Units("t", 0, 3, 5, nil)
	var tooSmall *OffsetTooSmallError
	if !errors.As(err, &tooSmall) || tooSmall.Min != 7 || !errors.Is(err, ErrOffsetTooSmall) {
		t.Fatalf("Units below min got %v, want OffsetTooSmallError{Min: 7}", err)
	}
	// Queue 0 files [0,3) and [3,6) are wholly below 7; [6,9), [9,12) and queue 1's [0,3) stay.
	if n := cqFiles(t, h.f, 1); n != 3 {
		t.Errorf("CQ files after truncation got %d, want 3", n)
	}
	// An older UpTo is a no-op.
	h.mustCmd(TruncatePrefix{UpTo: 1})
	if h.f.LogStart() != idx[6]+1 {
		t.Errorf("LogStart got %d, want %d", h.f.LogStart(), idx[6]+1)
	}

	// Rebuild in an empty dir from a log that retention trimmed: min is respected.
	want := dump(t, h.f)
	snap := snapshotBytes(t, h.f)
	h.log.truncate(idx[5]) // retention may lag: entries above UpTo-1 survive
	f2 := newFSM(t, t.TempDir(), 3, h.log)
	if err := restore(t, f2, snap); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if diff := cmp.Diff(want, dump(t, f2)); diff != "" {
		t.Fatalf("rebuilt state (-want +got):\n%s", diff)
	}
}

func TestRestoreErrors(t *testing.T) {
	h := newHarness(t, 4)
	h.mustCmd(CreateTopic{Name: "t", Queues: 1})
	for i := 0; i < 5; i++ {
		h.send(int64(i), msg("t", 1, 0, "a"))
	}
	snap := snapshotBytes(t, h.f)
	short := &memLog{logs: h.log.logs[3:]}
	tests := []struct {
		name string
		log  LogReader
		snap []byte
		want error
	}{
		{"no log", nil, snap, ErrNoLog},
		{"log too short", short, snap, ErrLogShort},
		{"bad version", h.log, append([]byte{9}, snap[1:]...), ErrSnapshotVersion},
		{"garbage", h.log, []byte{1, 0xc1}, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM(t, t.TempDir(), 4, tc.log)
			if err := restore(t, f, tc.snap); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRestoreRemovesStaleTopicDirs(t *testing.T) {
	h := newHarness(t, 4)
	h.mustCmd(CreateTopic{Name: "t", Queues: 1})
	snap := snapshotBytes(t, h.f)
	h.mustCmd(CreateTopic{Name: "later", Queues: 1})
	h.send(1, msg("later", 2, 0, "a"))
	if err := h.f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := restore(t, h.f, snap); err != nil {
		t.Fatal(err)
	}
	if n := cqFiles(t, h.f, 2); n != 0 {
		t.Errorf("stale topic dir has %d files after Restore, want 0", n)
	}
	if _, ok := h.f.Topic("later"); ok {
		t.Error("Restore kept a topic that is not in the snapshot")
	}
}

func TestPersistCancelsOnSyncError(t *testing.T) {
	h := newHarness(t, 4)
	snap, _ := h.f.Snapshot()
	if err := h.f.Close(); err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err == nil || !sink.canceled {
		t.Errorf("Persist after Close got %v (canceled %v), want error and Cancel", err, sink.canceled)
	}
}

func itoa(id uint32) string { return strconv.FormatUint(uint64(id), 10) }

// copyDir copies the FSM's Dir after a Sync, like a disk image of the node.
func copyDir(t *testing.T, f *FSM) string {
	t.Helper()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	err := filepath.WalkDir(f.cfg.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(f.cfg.Dir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
