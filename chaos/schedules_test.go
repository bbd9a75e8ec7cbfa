package chaos

import (
	"context"
	"testing"
	"time"
)

// TestSchedules runs every schedule briefly against real processes, each
// with another workload mode (the storage ones on an rmqfault build), and fails on any violation the checker
// finds or any fault the group did not recover from. scripts/chaos.sh
// runs the long versions.
func TestSchedules(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process chaos")
	}
	for _, tc := range []struct {
		schedule string
		mode     string
		faults   int
		hold     time.Duration
	}{
		{"minority-leader", "sync-keyed-orderly", 2, 2 * time.Second},
		{"majority", "async-keyed-clustering", 2, 2 * time.Second},
		{"bridge", "sync-unkeyed-clustering", 2, 2 * time.Second},
		{"ring", "async-unkeyed-clustering", 2, 2 * time.Second},
		{"reset", "sync-keyed-clustering", 1, 2 * time.Second},
		{"one-way", "async-keyed-orderly", 1, 2 * time.Second},
		{"pause", "sync-keyed-orderly", 2, 2 * time.Second},
		{"kill", "async-keyed-orderly", 2, 0},
		{"rolling", "sync-keyed-clustering", 3, 0},
		{"crash-roll", "async-unkeyed-clustering", 2, 0},
		{"crash-snapshot", "sync-keyed-orderly", 2, 0},
		{"crash-purge", "async-keyed-clustering", 2, 0},
		{"crash-install", "sync-unkeyed-clustering", 1, 0},
		{"slow-fsync", "sync-keyed-orderly", 2, 2 * time.Second},
		{"fsync-error", "async-keyed-orderly", 2, 0},
	} {
		t.Run(tc.schedule, func(t *testing.T) {
			s, err := ScheduleByName(tc.schedule)
			if err != nil {
				t.Fatal(err)
			}
			if s.Storage != StorageDefault {
				needHarness(t)
				if ok, err := hasFaultHooks(testBin); err != nil || !ok {
					t.Skipf("%s is not an rmqfault build (-tags rmqfault), which the storage schedules need (%v)", testBin, err)
				}
			}
			mode, err := ParseMode(tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			c := startCluster(t, s.Nodes, s.Storage)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			o, err := Run(ctx, c, RunConfig{Schedule: tc.schedule, Mode: mode, Faults: tc.faults, Hold: tc.hold,
				Calm: 500 * time.Millisecond, Warmup: 50, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s\n%s", SummaryHeader, o.Summary())
			for _, f := range o.History.Faults {
				t.Logf("fault %q at %s: healed after %s, whole again after %s %s", f.Name, f.Start.Format(timeFmt),
					f.Healed.Sub(f.Start).Round(time.Millisecond), f.Recovered.Sub(f.Healed).Round(time.Millisecond), f.Err)
			}
			t.Logf("redelivered %d, failed sends %d (stored anyway %d), orderly holds %d, offset samples %d, purged by retention %d",
				o.Result.Deliveries-o.Result.Delivered, o.Result.Failed, o.Result.StoredFail, o.Result.Holds, o.Result.OffsetSamples, o.Result.Purged)
			for _, d := range o.Detection() {
				t.Log(d)
			}
			for _, p := range o.Problems {
				t.Logf("problem: %s", p)
			}
			if err := o.Err(); err != nil {
				t.Error(err)
			}
		})
	}
}
