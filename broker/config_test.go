package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/raftlog"
)

func TestConfigValidateReportsAllProblems(t *testing.T) {
	cfg := Config{Bootstrap: true, Peers: []Peer{{ID: "a", Addr: "x"}, {ID: "a", Addr: "y"}}}.withDefaults()
	cfg.LeaderLeaseTimeout = time.Hour
	cfg.Retention.DiskUsageRatio = 2
	err := cfg.Validate()
	if err == nil {
		t.Fatal("got nil, want an error")
	}
	for _, want := range []string{"NodeID", "DataDir", "RaftBind", "listed twice", "does not include", "LeaderLeaseTimeout", "DiskUsageRatio"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.RaftBind = "n0", t.TempDir(), "127.0.0.1:0"
	if err := cfg.withDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRetentionTarget(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	old := now.Add(-100 * time.Hour)
	seg := func(first, last uint64, bytes int64, sealed bool, at time.Time) raftlog.SegmentInfo {
		return raftlog.SegmentInfo{First: first, Last: last, Bytes: bytes, Sealed: sealed, LastAppendedAt: at}
	}
	segs := []raftlog.SegmentInfo{
		seg(1, 10, 100, true, old),
		seg(11, 20, 100, true, old),
		seg(21, 30, 100, true, now),
		seg(31, 35, 50, false, now),
	}
	tests := []struct {
		name  string
		rc    RetentionConfig
		usage float64
		want  uint64
	}{
		{"age", RetentionConfig{MaxAge: 72 * time.Hour}, 0, 20},
		{"age off", RetentionConfig{}, 0, 0},
		{"size", RetentionConfig{MaxBytes: 160}, 0, 20},
		{"size fits", RetentionConfig{MaxBytes: 1000}, 0, 0},
		{"disk one at a time", RetentionConfig{DiskUsageRatio: 0.5}, 0.9, 10},
		{"never the active segment", RetentionConfig{MaxBytes: 1}, 0, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retentionTarget(segs, now, tc.rc, tc.usage); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}
