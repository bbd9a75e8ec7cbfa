package client

import (
	"context"
	"fmt"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// Membership of a broker group: its Raft configuration, changed by the
// group's leader. A new node (started with rmq broker --join) is added as
// a non-voter with AddNode, replicates the group's history, and is made a
// voter with PromoteNode once WaitCaughtUp says it has caught up (rmq node
// add does all three). RemoveNode keeps the group writable: a leader asked
// to remove itself hands leadership over first.

// Member is one server of a broker group's Raft configuration.
type Member struct {
	ID     string
	Addr   string // Raft address
	Voter  bool   // false: a non-voter (replicates, neither votes nor counts for commit)
	Leader bool
}

func members(ml *wire.MemberList) []Member {
	out := make([]Member, len(ml.Members))
	for i, m := range ml.Members {
		out[i] = Member{ID: m.ID, Addr: m.Addr, Voter: m.Suffrage == "voter", Leader: m.Leader}
	}
	return out
}

// Members returns group's latest Raft configuration, as its leader knows it.
func (a *Admin) Members(ctx context.Context, group string) ([]Member, error) {
	var ml wire.MemberList
	if err := a.memberCall(ctx, group, wire.CodeListMembers, wire.Empty{}, &ml); err != nil {
		return nil, err
	}
	return members(&ml), nil
}

// AddNode adds node id, listening for Raft at raftAddr, to group as a
// non-voter. Adding a member again with the same address changes nothing.
func (a *Admin) AddNode(ctx context.Context, group, id, raftAddr string) ([]Member, error) {
	return a.memberChange(ctx, group, wire.CodeAddNode, wire.MemberRequest{ID: id, Addr: raftAddr})
}

// PromoteNode makes the non-voter id a voter of group. Call it once the
// node has caught up (WaitCaughtUp): Raft counts it for commit at once.
func (a *Admin) PromoteNode(ctx context.Context, group, id string) ([]Member, error) {
	return a.memberChange(ctx, group, wire.CodePromoteNode, wire.MemberRequest{ID: id})
}

// RemoveNode takes node id out of group. If it is the leader, it hands
// leadership to the most caught-up voter first and the new leader removes
// it. The node keeps running until it is stopped; stop it.
func (a *Admin) RemoveNode(ctx context.Context, group, id string) ([]Member, error) {
	return a.memberChange(ctx, group, wire.CodeRemoveNode, wire.MemberRequest{ID: id})
}

func (a *Admin) memberChange(ctx context.Context, group string, code uint16, req wire.MemberRequest) ([]Member, error) {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		req.TimeoutMillis = max(time.Until(dl).Milliseconds(), 1)
	}
	var ml wire.MemberList
	if err := a.memberCall(ctx, group, code, req, &ml); err != nil {
		return nil, err
	}
	return members(&ml), nil
}

// memberCall asks group's leader. Membership changes are idempotent, so a
// call whose outcome is unknown may be repeated.
func (a *Admin) memberCall(ctx context.Context, group string, code uint16, req, resp any) error {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	if _, err := a.router.clusterGroups(ctx); err != nil {
		return err
	}
	return a.router.callLeader(ctx, group, 3, code, req, resp)
}

// WaitCaughtUp waits until node id of group has caught up: it registers
// with the NameServer as a member of the latest configuration, follows the
// group's current leader in its term, has applied at least everything the
// leader had applied when the wait began (the history before it joined),
// and is at most maxLag entries behind. It returns the node's status.
// Progress is as nodes last registered (every second by default). ctx
// bounds the wait (the Admin's Timeout without a deadline).
func (a *Admin) WaitCaughtUp(ctx context.Context, group, id string, maxLag uint64) (NodeStatus, error) {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	var target uint64
	var last error
	for {
		st, err := a.ClusterStatus(ctx)
		if err == nil {
			var ns NodeStatus
			ns, err = caughtUp(st, group, id, maxLag, &target)
			if err == nil {
				return ns, nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return NodeStatus{}, fmt.Errorf("node %s of %s has not caught up: %w (last: %w)", id, group, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond): // poll interval
		}
	}
}

func caughtUp(st []GroupStatus, group, id string, maxLag uint64, target *uint64) (NodeStatus, error) {
	for _, g := range st {
		if g.Group != group {
			continue
		}
		if g.Leader == "" {
			return NodeStatus{}, fmt.Errorf("group %s has no leader", group)
		}
		if *target == 0 {
			*target = g.AppliedIndex
		}
		for _, n := range g.Nodes {
			if n.NodeID != id {
				continue
			}
			switch {
			case n.Down:
				return n, fmt.Errorf("node %s is down", id)
			case n.Suffrage == "":
				return n, fmt.Errorf("node %s is not in the group's configuration yet", id)
			case n.Term != g.Term || n.LeaderID != g.Leader:
				return n, fmt.Errorf("node %s is in term %d following %q, the leader %s is in term %d", id, n.Term, n.LeaderID, g.Leader, g.Term)
			case n.AppliedIndex < *target:
				return n, fmt.Errorf("node %s applied %d of the %d entries before the wait", id, n.AppliedIndex, *target)
			case n.Lag > maxLag:
				return n, fmt.Errorf("node %s is %d entries behind", id, n.Lag)
			}
			return n, nil
		}
		return NodeStatus{}, fmt.Errorf("node %s has not registered with the NameServer", id)
	}
	return NodeStatus{}, fmt.Errorf("no broker group %s", group)
}
