package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/raftlog"
)

// TestPurgeKeepsWhatTheLatestSnapshotNeeds: a snapshot taken before a
// TruncatePrefix is applied lets raft's compaction allow the purge, but its
// state still starts the queues at the old log start. Purging then would
// leave the latest snapshot, the one raft restores on start and sends to
// lagging followers, needing entries that are gone: its restore failed
// with "raft log does not cover consume queue range", and a follower that
// had installed it and restarted could not start at all (seen in
// e2e/storage_fault_test.go). The purge must first take a snapshot newer
// than the decision.
func TestPurgeKeepsWhatTheLatestSnapshotNeeds(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.SegmentSize = 64 << 10
		cfg.SnapshotInterval = time.Hour // snapshots only when the test takes them
		cfg.SnapshotThreshold = 1 << 40
		cfg.Retention.CheckInterval = -1
		cfg.MaintenanceInterval = time.Hour // purges only when the test calls purgeReleased
	})
	createTopic(t, c, "r", 1)
	n := c.leader(10 * time.Second)
	body := make([]byte, 4<<10)
	for i := 0; i < 60; i++ { // several sealed segments
		sendOne(t, n, &fsm.Message{Topic: "r", ID: []byte(fmt.Sprint("m", i)), Body: body})
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	before, err := n.snaps.List()
	if err != nil || len(before) == 0 {
		t.Fatalf("list snapshots: %v, %d", err, len(before))
	}
	snapIndex := before[0].Index
	// Retention releases everything before the snapshot: raft's compaction
	// after it already allows that much, so no new snapshot seems needed.
	if err := n.proposeCommand(t.Context(), &fsm.TruncatePrefix{UpTo: snapIndex - 1, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	n.purgeReleased()
	first := n.Status().FirstIndex
	if first <= 1 {
		t.Fatalf("log starts at %d after the purge; want segments purged", first)
	}
	metas, err := n.snaps.List()
	if err != nil || len(metas) == 0 {
		t.Fatalf("list snapshots: %v, %d", err, len(metas))
	}
	_, rc, err := n.snaps.Open(metas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	state, err := raftlog.SnapshotState(rc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fsm.DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Log = n.store
	cfg.Logger = testLogger(t)
	f, err := fsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Restore(state); err != nil {
		t.Fatalf("the latest snapshot (index %d; the one before the purge was %d) does not restore on the purged log [%d, ...]: %v",
			metas[0].Index, snapIndex, first, err)
	}
}
