package main

import (
	"bytes"
	"strings"
	"testing"
)

// The cluster status table shows each node's disk use and says which
// groups refuse sends because a disk is full.
func TestClusterStatusDiskColumn(t *testing.T) {
	v := clusterStatusView{{BrokerGroup: "broker-a", Leader: "n0", Nodes: []nodeRow{
		{Node: "n0", Role: "leader", Term: 2, CommitIndex: ptr(uint64(9)), AppliedIndex: ptr(uint64(9)), Lag: ptr(uint64(0)),
			DiskUsedRatio: ptr(0.5), DiskFull: "n1's file system is 91.0% full (high-water mark 90.0%, writes resume at 85.0%)", Addr: "a0"},
		{Node: "n1", Role: "follower", Term: 2, CommitIndex: ptr(uint64(9)), AppliedIndex: ptr(uint64(9)), Lag: ptr(uint64(0)),
			DiskUsedRatio: ptr(0.91), Addr: "a1"},
		{Node: "n2", Role: "down", Down: true, Term: 2, Addr: "a2"},
	}}}
	var b bytes.Buffer
	v.table(&b)
	out := b.String()
	t.Logf("\n%s", out)
	for _, want := range []string{"DISK", "50.0%", "91.0%",
		"broker group broker-a refuses sends (disk full): n1's file system is 91.0% full"} {
		if !strings.Contains(out, want) {
			t.Errorf("table\n%s\nwant %q", out, want)
		}
	}
}
