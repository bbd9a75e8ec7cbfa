package broker

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidateReportsAllProblems(t *testing.T) {
	cfg := Config{Bootstrap: true, Peers: []Peer{{ID: "a", Addr: "x"}, {ID: "a", Addr: "y"}}}.withDefaults()
	cfg.LeaderLeaseTimeout = time.Hour
	cfg.Retention.ForceDiskRatio = 2
	err := cfg.Validate()
	if err == nil {
		t.Fatal("got nil, want an error")
	}
	for _, want := range []string{"NodeID", "DataDir", "RaftBind", "listed twice", "does not include", "LeaderLeaseTimeout", "ForceDiskRatio"} {
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
