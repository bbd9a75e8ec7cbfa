package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/e2e"
)

// TestNodeMembershipCommands: rmq node add, list, replace and remove on an
// in-process group, and cluster status naming the non-voter.
func TestNodeMembershipCommands(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	h := &harness{t: t, ns: c.NamesrvAddr()}
	c.LeaderID(10 * time.Second)

	if out := h.ok("node", "list"); !strings.Contains(out, "SUFFRAGE") || strings.Count(out, "voter") != 3 {
		t.Fatalf("node list:\n%s", out)
	}
	c.StartJoiner("n3")
	ms := decode[membersView](t, h.ok("node", "add", "n3", c.RaftAddr("n3"), "--no-promote", "-o", "json"))
	if got := suffrages(ms); got != "n0=voter n1=voter n2=voter n3=nonvoter" {
		t.Fatalf("after add --no-promote: got %s", got)
	}
	e2e.Eventually(t, 20*time.Second, func() error {
		out, _, err := h.run("cluster", "status")
		if err == nil && !strings.Contains(out, "(non-voter)") {
			err = fmt.Errorf("cluster status does not show n3 as a non-voter:\n%s", out)
		}
		return err
	})
	ms = decode[membersView](t, h.ok("node", "promote", "n3", "-o", "json"))
	if got := suffrages(ms); got != "n0=voter n1=voter n2=voter n3=voter" {
		t.Fatalf("after promote: got %s", got)
	}

	c.StartJoiner("n4")
	ms = decode[membersView](t, h.ok("node", "replace", "n0", "n4", c.RaftAddr("n4"), "-o", "json"))
	if got := suffrages(ms); got != "n1=voter n2=voter n3=voter n4=voter" {
		t.Fatalf("after replace n0 by n4: got %s", got)
	}
	c.Stop("n0")
	leader := c.LeaderID(10 * time.Second)
	ms = decode[membersView](t, h.ok("node", "remove", leader, "-o", "json"))
	if len(ms) != 3 {
		t.Fatalf("after removing the leader %s: %+v", leader, ms)
	}
	for _, m := range ms {
		if m.Node == leader {
			t.Fatalf("the removed leader %s is still a member: %+v", leader, ms)
		}
	}
	c.Stop(leader)
	c.LeaderID(10 * time.Second)
	h.fails("missing RAFTADDR", "node", "add", "n9")
}

func suffrages(ms membersView) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.Node+"="+m.Suffrage)
	}
	return strings.Join(parts, " ")
}

func TestBrokerConfigJoinAndPreferredLeader(t *testing.T) {
	type got struct {
		Join      bool
		Preferred string
	}
	for _, tc := range []struct {
		name string
		toml string
		args []string
		want got
	}{
		{"default", "", nil, got{}},
		{"file", "join = true\npreferred_leader = \"n1\"", nil, got{true, "n1"}},
		{"flags override the file", "preferred_leader = \"n1\"", []string{"--join", "--preferred-leader", "n2"}, got{true, "n2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := brokerConfigFrom(t, tc.toml, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if g := (got{cfg.Join, cfg.PreferredLeader}); g != tc.want {
				t.Fatalf("got %+v, want %+v", g, tc.want)
			}
		})
	}
}
