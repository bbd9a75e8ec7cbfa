package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

func clusterCommand() *cli.Command {
	return nounCommand("cluster", "show the broker groups' Raft state",
		&cli.Command{
			Name:  "status",
			Usage: "per broker group: leader, term, and each node's role, commit and applied index, lag and address",
			Description: "With --wait D it polls until every broker group has a serving leader, then prints the\n" +
				"table; if that has not happened within D it prints what it last saw and exits non-zero\n" +
				"(for scripts and for 'docker compose up -d' followed by a check that the group came up).",
			Flags: []cli.Flag{
				&cli.DurationFlag{Name: "wait", Usage: "wait up to this long for a serving leader in every broker group; exit non-zero if none"},
			},
			Action: clusterStatus,
		},
	)
}

// nodeRow is one broker node as the NameServer last heard from it.
type nodeRow struct {
	Node         string `json:"node"`
	Role         string `json:"role"`
	Serving      bool   `json:"serving"`
	StaleLeader  bool   `json:"stale_leader,omitempty"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// Lag is the leader's applied index minus this node's.
	Lag      uint64 `json:"lag"`
	Addr     string `json:"addr"`
	RaftAddr string `json:"raft_addr"`
	// LastSeenMillis is how long ago the node last registered.
	LastSeenMillis int64 `json:"last_seen_ms"`
}

// groupStatusRow is one broker group.
type groupStatusRow struct {
	BrokerGroup  string    `json:"broker_group"`
	Leader       string    `json:"leader"`
	Term         uint64    `json:"term"`
	CommitIndex  uint64    `json:"commit_index"`
	AppliedIndex uint64    `json:"applied_index"`
	Nodes        []nodeRow `json:"nodes"`
}

// clusterStatusView is "rmq cluster status".
type clusterStatusView []groupStatusRow

func (v clusterStatusView) table(w io.Writer) {
	row(w, "BROKER GROUP", "NODE", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "ADDRESS", "LAST SEEN")
	for _, g := range v {
		for _, n := range g.Nodes {
			role := n.Role
			switch {
			case n.StaleLeader:
				role += " (stale)"
			case n.Node == g.Leader:
				role += " *"
			}
			seen := (time.Duration(n.LastSeenMillis) * time.Millisecond).Round(time.Millisecond).String() + " ago"
			row(w, g.BrokerGroup, n.Node, role, n.Term, n.CommitIndex, n.AppliedIndex, n.Lag, n.Addr, seen)
		}
		if g.Leader == "" {
			row(w, g.BrokerGroup, "-", "no leader", "-", "-", "-", "-", "-", "-")
		}
	}
}

func clusterStatus(c *cli.Context) error {
	_, err := wantArgs(c)
	if err != nil {
		return err
	}
	wait := c.Duration("wait")
	if wait < 0 {
		return fmt.Errorf("--wait %s: want a positive duration", wait)
	}
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	defer a.Close()
	if wait == 0 {
		ctx, cancel := opContext(c)
		defer cancel()
		st, err := a.ClusterStatus(ctx)
		if err != nil {
			return err
		}
		return render(c, newClusterStatusView(st))
	}
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(c.Context, min(c.Duration("timeout"), 2*time.Second))
		st, err := a.ClusterStatus(ctx)
		cancel()
		problem := err
		if err == nil {
			problem = notReady(st)
		}
		if problem == nil {
			return render(c, newClusterStatusView(st))
		}
		if time.Now().After(deadline) || c.Context.Err() != nil {
			if err == nil {
				if rerr := render(c, newClusterStatusView(st)); rerr != nil {
					return rerr
				}
			}
			return fmt.Errorf("not ready after %s: %w", wait, problem)
		}
		select {
		case <-c.Context.Done():
		case <-time.After(250 * time.Millisecond): // poll interval
		}
	}
}

// notReady says why a cluster cannot take writes yet, or returns nil.
func notReady(st []client.GroupStatus) error {
	if len(st) == 0 {
		return errors.New("no broker group has registered with the NameServer")
	}
	for _, g := range st {
		if g.Leader == "" {
			return fmt.Errorf("broker group %s has no leader (%d node(s) registered)", g.Group, len(g.Nodes))
		}
		serving := false
		for _, n := range g.Nodes {
			serving = serving || (n.NodeID == g.Leader && n.Serving)
		}
		if !serving {
			return fmt.Errorf("broker group %s: leader %s is not serving yet", g.Group, g.Leader)
		}
	}
	return nil
}

func newClusterStatusView(st []client.GroupStatus) clusterStatusView {
	out := clusterStatusView{}
	for _, g := range st {
		gr := groupStatusRow{BrokerGroup: g.Group, Leader: g.Leader, Term: g.Term, CommitIndex: g.CommitIndex, AppliedIndex: g.AppliedIndex, Nodes: []nodeRow{}}
		for _, n := range g.Nodes {
			gr.Nodes = append(gr.Nodes, nodeRow{
				Node: n.NodeID, Role: n.Role, Serving: n.Serving, StaleLeader: n.StaleLeader, Term: n.Term,
				CommitIndex: n.CommitIndex, AppliedIndex: n.AppliedIndex, Lag: n.Lag,
				Addr: n.Addr, RaftAddr: n.RaftAddr, LastSeenMillis: n.Age.Milliseconds(),
			})
		}
		sort.Slice(gr.Nodes, func(i, j int) bool { return gr.Nodes[i].Node < gr.Nodes[j].Node })
		out = append(out, gr)
	}
	return out
}
