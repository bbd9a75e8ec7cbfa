package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

func clusterCommand() *cli.Command {
	return nounCommand("cluster", "show the broker groups' Raft state",
		&cli.Command{
			Name:  "status",
			Usage: "per broker group: leader, term, and each node's role, commit and applied index, lag and address; nodes that stopped registering are listed as down",
			Description: "With --wait D it polls until every broker group has a serving leader, then prints the\n" +
				"table; if that has not happened within D it prints what it last saw and exits non-zero\n" +
				"(for scripts and for 'docker compose up -d' followed by a check that the group came up).\n" +
				"A node that stopped registering (killed, stopped, cut off) is listed with ROLE down and its\n" +
				"LAST SEEN age until it comes back or the NameServer forgets it (10 minutes by default).\n" +
				"COMMIT is - while a node has not learned the commit index (just restarted, not yet\n" +
				"reached by the leader). A non-voter (added by 'rmq node add', not yet promoted) has\n" +
				"'(non-voter)' after its role; 'rmq node list' prints the Raft configuration itself.",
			Flags: []cli.Flag{
				&cli.DurationFlag{Name: "wait", Usage: "wait up to this long for a serving leader in every broker group; exit non-zero if none"},
			},
			Action: clusterStatus,
		},
	)
}

// nodeRow is one broker node as the NameServer last heard from it. A
// down node (no longer registered) has role "down", Down set and no
// commit, applied or lag; Term and the addresses are from its last
// registration.
type nodeRow struct {
	Node string `json:"node"`
	Role string `json:"role"`
	// Suffrage is the node's place in its latest Raft configuration:
	// "voter", "nonvoter", or "" (not in it: not yet added or removed, or an
	// older broker).
	Suffrage    string `json:"suffrage,omitempty"`
	Down        bool   `json:"down"`
	Serving     bool   `json:"serving"`
	StaleLeader bool   `json:"stale_leader,omitempty"`
	Term        uint64 `json:"term"`
	// CommitIndex is null while the node does not know it (just started,
	// not yet heard from a leader) and for a down node.
	CommitIndex  *uint64 `json:"commit_index"`
	AppliedIndex *uint64 `json:"applied_index"` // null for a down node
	// Lag is the leader's applied index minus this node's; null without a
	// leader and for a down node.
	Lag      *uint64 `json:"lag"`
	Addr     string  `json:"addr"`
	RaftAddr string  `json:"raft_addr"`
	// LastSeenMillis is how long ago the node last registered.
	LastSeenMillis int64 `json:"last_seen_ms"`
	// DiskUsedRatio is the fullness of the node's file system (0..1),
	// null when unknown; DiskFull says why the node's group refuses sends
	// (a disk above the high-water mark), empty while it takes them.
	DiskUsedRatio *float64 `json:"disk_used_ratio"`
	DiskFull      string   `json:"disk_full,omitempty"`
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
	row(w, "BROKER GROUP", "NODE", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "DISK", "ADDRESS", "LAST SEEN")
	var full []string
	for _, g := range v {
		for _, n := range g.Nodes {
			role := n.Role
			switch {
			case n.Down:
			case n.StaleLeader:
				role += " (stale)"
			case n.Node == g.Leader:
				role += " *"
			}
			if n.Suffrage == "nonvoter" && !n.Down {
				role += " (non-voter)"
			}
			seen := (time.Duration(n.LastSeenMillis) * time.Millisecond).Round(time.Millisecond).String() + " ago"
			disk := "-"
			if n.DiskUsedRatio != nil {
				disk = fmt.Sprintf("%.1f%%", 100**n.DiskUsedRatio)
			}
			row(w, g.BrokerGroup, n.Node, role, n.Term, indexCell(n.CommitIndex), indexCell(n.AppliedIndex), indexCell(n.Lag), disk, n.Addr, seen)
			if n.Node == g.Leader && n.DiskFull != "" {
				full = append(full, fmt.Sprintf("broker group %s refuses sends (disk full): %s", g.BrokerGroup, n.DiskFull))
			}
		}
		if g.Leader == "" {
			row(w, g.BrokerGroup, "-", "no leader", "-", "-", "-", "-", "-", "-", "-")
		}
	}
	for _, l := range full {
		fmt.Fprintln(w, l)
	}
}

// indexCell renders an index that may be unknown ("-").
func indexCell(v *uint64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatUint(*v, 10)
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
			up := 0
			for _, n := range g.Nodes {
				if !n.Down {
					up++
				}
			}
			return fmt.Errorf("broker group %s has no leader (%d node(s) registered, %d down)", g.Group, up, len(g.Nodes)-up)
		}
		serving := false
		for _, n := range g.Nodes {
			serving = serving || (n.NodeID == g.Leader && n.Serving && !n.Down)
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
			r := nodeRow{
				Node: n.NodeID, Role: n.Role, Suffrage: n.Suffrage, Serving: n.Serving, StaleLeader: n.StaleLeader, Term: n.Term,
				Addr: n.Addr, RaftAddr: n.RaftAddr, LastSeenMillis: n.Age.Milliseconds(), DiskFull: n.DiskFull,
			}
			if n.DiskTotal > 0 {
				r.DiskUsedRatio = ptr(float64(n.DiskUsed) / float64(n.DiskTotal))
			}
			if n.Down {
				r.Role, r.Down, r.Serving, r.StaleLeader = "down", true, false, false
			} else {
				if !n.CommitUnknown {
					r.CommitIndex = ptr(n.CommitIndex)
				}
				r.AppliedIndex = ptr(n.AppliedIndex)
				if g.Leader != "" {
					r.Lag = ptr(n.Lag)
				}
			}
			gr.Nodes = append(gr.Nodes, r)
		}
		sort.Slice(gr.Nodes, func(i, j int) bool { return gr.Nodes[i].Node < gr.Nodes[j].Node })
		out = append(out, gr)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
