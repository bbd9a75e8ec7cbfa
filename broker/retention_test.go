package broker

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rmq-dev/rmq/namesrv"
	"github.com/rmq-dev/rmq/raftlog"
	"github.com/rmq-dev/rmq/wire"
)

func TestRetentionConfigDefaultsAndOff(t *testing.T) {
	got := Config{}.withDefaults().Retention
	want := RetentionConfig{MaxAge: 72 * time.Hour, ForceDiskRatio: 0.85, CheckInterval: 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("zero Config retention (-want +got):\n%s", diff)
	}
	if d := DefaultConfig().Retention; d != want {
		t.Fatalf("DefaultConfig retention = %+v, want %+v", d, want)
	}
	off := RetentionConfig{MaxAge: -1, MaxDiskBytes: -1, ForceDiskRatio: -1, CheckInterval: -1}
	cfg := Config{NodeID: "n0", DataDir: t.TempDir(), RaftBind: "127.0.0.1:0", Retention: off}.withDefaults()
	if cfg.Retention != off {
		t.Fatalf("off values changed by withDefaults: %+v", cfg.Retention)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("all retention off: %v", err)
	}
}

const gib = int64(1) << 30

// gibSegments returns n sealed 1 GiB segments of 100 entries each, the
// newest entry of segment i appended at at(i), and an active segment.
func gibSegments(n int, at func(i int) time.Time) []raftlog.SegmentInfo {
	var segs []raftlog.SegmentInfo
	for i := 0; i < n; i++ {
		segs = append(segs, raftlog.SegmentInfo{First: uint64(i*100 + 1), Last: uint64(i*100 + 100), Bytes: gib, Sealed: true, LastAppendedAt: at(i)})
	}
	return append(segs, raftlog.SegmentInfo{First: uint64(n*100 + 1), Last: uint64(n*100 + 50), Bytes: gib / 2})
}

func TestPlanRetention(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	fresh := func(int) time.Time { return now.Add(-time.Hour) }
	def := DefaultConfig().Retention
	// A shared 100 GiB disk, 69 GiB used by other data, 15 GiB of rmq
	// writes: 84% full.
	shared := func(used int64) []nodeDisk {
		return []nodeDisk{{Node: "n0", DiskUsage: DiskUsage{FSUsed: uint64(used), FSTotal: uint64(100 * gib), DataBytes: 15 * gib}}}
	}
	tests := []struct {
		name      string
		segs      []raftlog.SegmentInfo
		start     uint64
		rc        RetentionConfig
		disks     []nodeDisk
		wantUpTo  uint64
		wantSegs  int
		unexpired bool
		reason    string // substring of the reason
	}{
		{name: "69% disk plus 15 GiB of writes keeps unexpired data", segs: gibSegments(15, fresh), rc: def, disks: shared(84 * gib)},
		{name: "force ratio frees what is needed in one step", segs: gibSegments(15, fresh), rc: def, disks: shared(90 * gib),
			wantUpTo: 500, wantSegs: 5, unexpired: true, reason: "disk ratio: n0's file system is 90.0% full, force-clean ratio 85.0%"},
		{name: "force ratio off", segs: gibSegments(15, fresh), rc: RetentionConfig{MaxAge: def.MaxAge, ForceDiskRatio: -1}, disks: shared(99 * gib)},
		{name: "budget frees down to the budget", segs: gibSegments(15, fresh),
			rc: RetentionConfig{MaxAge: def.MaxAge, ForceDiskRatio: def.ForceDiskRatio, MaxDiskBytes: 10*gib - gib/2}, disks: shared(50 * gib),
			wantUpTo: 600, wantSegs: 6, unexpired: true, reason: "disk budget: n0 holds 16106127360 bytes of rmq files, budget 10200547328"},
		{name: "the fullest node decides", segs: gibSegments(15, fresh), rc: def,
			disks:    append(shared(50*gib), nodeDisk{Node: "n2", DiskUsage: DiskUsage{FSUsed: uint64(87 * gib), FSTotal: uint64(100 * gib)}}),
			wantUpTo: 200, wantSegs: 2, unexpired: true, reason: "n2's file system is 87.0%"},
		{name: "a pending purge counts as freed", segs: gibSegments(15, fresh), start: 301, rc: def, disks: shared(90 * gib),
			wantUpTo: 500, wantSegs: 2, unexpired: true, reason: "disk ratio"},
		{name: "age", segs: gibSegments(15, func(i int) time.Time { return now.Add(-time.Duration(80-i) * time.Hour) }), rc: def, disks: shared(50 * gib),
			wantUpTo: 800, wantSegs: 8, reason: "age: sealed segments older than 72h0m0s"},
		{name: "age off", segs: gibSegments(3, func(int) time.Time { return now.Add(-1000 * time.Hour) }), rc: RetentionConfig{MaxAge: -1}},
		{name: "age then ratio", segs: gibSegments(15, func(i int) time.Time {
			if i < 2 {
				return now.Add(-100 * time.Hour)
			}
			return now
		}), rc: def, disks: shared(90 * gib), wantUpTo: 500, wantSegs: 5, unexpired: true, reason: "age: sealed segments older than 72h0m0s; disk ratio"},
		{name: "never the active segment", segs: gibSegments(3, fresh), rc: RetentionConfig{MaxDiskBytes: 1}, disks: shared(10 * gib),
			wantUpTo: 300, wantSegs: 3, unexpired: true, reason: "disk budget"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planRetention(tc.segs, tc.start, now, tc.rc, tc.disks)
			if p.UpTo != tc.wantUpTo || p.Segments != tc.wantSegs || p.Unexpired != tc.unexpired {
				t.Fatalf("got up-to %d, %d segments, unexpired %v; want %d, %d, %v (plan %+v)",
					p.UpTo, p.Segments, p.Unexpired, tc.wantUpTo, tc.wantSegs, tc.unexpired, p)
			}
			if p.Bytes != int64(tc.wantSegs)*gib {
				t.Errorf("got %d bytes, want %d", p.Bytes, int64(tc.wantSegs)*gib)
			}
			if !strings.Contains(p.Reason, tc.reason) || (tc.reason == "") != (p.Reason == "") {
				t.Errorf("reason %q, want it to contain %q", p.Reason, tc.reason)
			}
		})
	}
}

// fakeDisk is a node's disk as the test sets it; calls counts measurements.
type fakeDisk struct {
	used  atomic.Int64
	calls atomic.Int64
}

func (d *fakeDisk) stat(string) (DiskUsage, error) {
	d.calls.Add(1)
	return DiskUsage{FSUsed: uint64(d.used.Load()), FSTotal: uint64(100 * gib), DataBytes: 15 * gib}, nil
}

// startNamesrv runs a NameServer on 127.0.0.1:0 until the test ends.
func startNamesrv(t *testing.T) string {
	t.Helper()
	s, err := namesrv.New(namesrv.Config{Listen: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("namesrv: %v", err)
		}
	})
	return s.Addr()
}

// TestRetentionFollowerDiskAndStatus: on a 3-node group whose disks are 84%
// full nothing unexpired is deleted; when one follower's disk passes the
// force-clean ratio, the leader (which reads its followers' disk use from
// their NameServer heartbeats) releases the sealed prefix, every node
// purges it, logs why, and shows it in node status.
func TestRetentionFollowerDiskAndStatus(t *testing.T) {
	ns := startNamesrv(t)
	disks := map[string]*fakeDisk{}
	for _, id := range []string{"n0", "n1", "n2"} {
		disks[id] = &fakeDisk{}
		disks[id].used.Store(84 * gib)
	}
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.ClientListen = "127.0.0.1:0"
		cfg.NameServers = []string{ns}
		cfg.SegmentSize = 64 << 10
		cfg.SnapshotThreshold = 8
		cfg.SnapshotInterval = 200 * time.Millisecond
		cfg.MaintenanceInterval = 50 * time.Millisecond
		cfg.Retention = RetentionConfig{CheckInterval: 50 * time.Millisecond} // other rules: defaults
		cfg.diskStat = disks[cfg.NodeID].stat
	})
	createTopic(t, c, "logs", 2)
	produce(t, c, "logs", 2, 800, 40, 500, "x")
	l := c.leader(5 * time.Second)
	if segs := l.store.Segments(); len(segs) < 3 {
		t.Fatalf("got %d segments, want several sealed ones", len(segs))
	}
	// Let every follower report its disk three times, then the leader run
	// three more retention checks.
	waitMeasured := func(ids ...string) {
		base := map[string]int64{}
		for _, id := range ids {
			base[id] = disks[id].calls.Load()
		}
		eventually(t, 10*time.Second, func() error {
			for _, id := range ids {
				if n := disks[id].calls.Load() - base[id]; n < 3 {
					return fmt.Errorf("%s measured %d times since the writes", id, n)
				}
			}
			return nil
		})
	}
	var followers []string
	for _, n := range c.live() {
		if n != l {
			followers = append(followers, n.cfg.NodeID)
		}
	}
	waitMeasured(followers...)
	waitMeasured(l.cfg.NodeID)
	for _, n := range c.live() {
		if st := n.Status(); st.LastPurge != nil || st.FirstIndex != 1 {
			t.Fatalf("%s purged at 84%% disk: first index %d, last purge %+v", st.NodeID, st.FirstIndex, st.LastPurge)
		}
	}
	follower := followers[0]
	disks[follower].used.Store(90 * gib)
	eventually(t, 20*time.Second, func() error {
		for _, n := range c.live() {
			st := n.Status()
			if st.LastPurge == nil {
				return fmt.Errorf("%s has not purged", st.NodeID)
			}
			if st.FirstIndex <= 1 {
				return fmt.Errorf("%s still holds index 1", st.NodeID)
			}
		}
		return nil
	})
	for _, n := range c.live() {
		st := n.nodeStatus()
		p := st.LastPurge
		want := "disk ratio: " + follower + "'s file system is 90.0% full"
		if p == nil || !strings.Contains(p.Reason, want) || p.Segments == 0 || p.Bytes == 0 || p.FromIndex != 1 || p.ToIndex < p.FromIndex || p.AtMillis == 0 {
			t.Fatalf("%s status last purge = %+v, want segments, bytes, index range and a reason containing %q", st.NodeID, p, want)
		}
		if st.DiskTotal != uint64(100*gib) || st.DataBytes != 15*gib {
			t.Fatalf("%s status disk = %d/%d, data %d; want the measured values", st.NodeID, st.DiskUsed, st.DiskTotal, st.DataBytes)
		}
	}
	// The status survives the wire (old clients ignore the new fields).
	var st wire.NodeStatus
	conn, err := wire.Dial(t.Context(), l.ClientAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Call(t.Context(), wire.CodeNodeStatus, wire.Empty{}, &st); err != nil {
		t.Fatal(err)
	}
	if st.LastPurge == nil || !strings.Contains(st.LastPurge.Reason, "disk ratio") {
		t.Fatalf("node status over the wire: last purge %+v", st.LastPurge)
	}
}
