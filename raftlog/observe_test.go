package raftlog

import (
	"sync"
	"testing"
	"time"
)

// TestOnSyncObservesEveryFsync: in sync mode every append fsyncs once
// and reports it; Sync reports too.
func TestOnSyncObservesEveryFsync(t *testing.T) {
	var mu sync.Mutex
	var got []time.Duration
	cfg := testConfig(t, t.TempDir())
	cfg.OnSync = func(d time.Duration) {
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
	}
	s := openStore(t, cfg)
	mu.Lock()
	base := len(got) // opening may sync
	mu.Unlock()
	for i := uint64(1); i <= 5; i++ {
		mustStore(t, s, mkLogs(i, i, 1, 100))
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(got) - base; n != 6 {
		t.Fatalf("OnSync calls: got %d, want 6 (5 appends, 1 Sync)", n)
	}
	for _, d := range got[base:] {
		if d < 0 {
			t.Fatalf("OnSync got a negative duration %s", d)
		}
	}
}

// TestSnapshotStatsCount: a local snapshot counts as created, a shipped
// one received from a leader as installed; a failed install counts as
// neither.
func TestSnapshotStatsCount(t *testing.T) {
	a, stream, _ := leaderWithSnapshot(t)
	b := openStore(t, testConfig(t, t.TempDir()))
	snapB, err := NewSnapshotStore(t.TempDir(), 2, b, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := install(t, snapB, stream[:len(stream)-1]); err == nil {
		t.Fatal("an incomplete install succeeded")
	}
	if got := snapB.Stats(); got != (SnapshotStats{}) {
		t.Fatalf("after a failed install: got %+v, want none", got)
	}
	if _, err := install(t, snapB, stream); err != nil {
		t.Fatal(err)
	}
	if got, want := snapB.Stats(), (SnapshotStats{Installed: 1}); got != want {
		t.Fatalf("after an install: got %+v, want %+v", got, want)
	}
	snapC, err := NewSnapshotStore(t.TempDir(), 2, a, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := install(t, snapC, fsmState); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := snapC.Stats(), (SnapshotStats{Created: 2}); got != want {
		t.Fatalf("after two local snapshots: got %+v, want %+v", got, want)
	}
}
