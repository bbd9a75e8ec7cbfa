package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/wire"
)

// Membership: the group's voters and non-voters are Raft's configuration,
// changed only by the leader with AddNonvoter, AddVoter and RemoveServer.
// Raft stores each change as a configuration entry in the log (the
// CommitLog) and in snapshots, so every replica and every restart sees the
// same membership; Peers in Config matters only for bootstrap and the vote
// guard (rejoin.go). A node is added as a non-voter (it replicates but
// neither votes nor counts for commit), catches up, and is then promoted;
// see "Membership" in doc.go.

// Member is one server of the group's Raft configuration.
type Member struct {
	ID       string
	Addr     string // Raft address
	Voter    bool
	IsLeader bool // as this node knows it
}

// Members returns the latest Raft configuration this node knows (committed
// or not) and the log index it was stored at.
func (n *Node) Members() ([]Member, uint64, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, 0, fmt.Errorf("broker: read configuration: %w", err)
	}
	_, leader := n.raft.LeaderWithID()
	var out []Member
	for _, s := range f.Configuration().Servers {
		out = append(out, Member{ID: string(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter, IsLeader: s.ID == leader})
	}
	return out, f.Index(), nil
}

// suffrage is this node's place in its latest configuration: "voter",
// "nonvoter" or "" (in none).
func (n *Node) suffrage() string {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return ""
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.NodeID {
			if s.Suffrage == raft.Voter {
				return "voter"
			}
			return "nonvoter"
		}
	}
	return ""
}

// AddNode adds node id at Raft address addr as a non-voter: it receives
// the whole log (or a snapshot with the retained log, raftlog's
// SnapshotStore) but does not vote or count for commit until PromoteNode.
// Adding a member again with the same address changes nothing.
func (n *Node) AddNode(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return fmt.Errorf("%w: a node to add needs an ID and a Raft address", ErrInvalidArgument)
	}
	if err := n.checkWritable(); err != nil {
		return err
	}
	members, _, err := n.Members()
	if err != nil {
		return err
	}
	for _, m := range members {
		switch {
		case m.ID == id && m.Addr == addr:
			return nil // already a member (as voter or non-voter)
		case m.ID == id:
			return fmt.Errorf("%w: node %q is a member with Raft address %s; remove it first", ErrInvalidArgument, id, m.Addr)
		case m.Addr == addr:
			return fmt.Errorf("%w: Raft address %s belongs to member %q", ErrInvalidArgument, addr, m.ID)
		}
	}
	n.log.Info("adding a non-voter", "peer", id, "address", addr)
	return n.configChange(ctx, func(timeout time.Duration) raft.IndexFuture {
		return n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
	})
}

// PromoteNode makes the non-voter id a voter. The caller decides it has
// caught up (client.Admin.WaitCaughtUp): Raft counts it for commit at once.
// Promoting a voter changes nothing.
func (n *Node) PromoteNode(ctx context.Context, id string) error {
	if err := n.checkWritable(); err != nil {
		return err
	}
	m, err := n.member(id)
	if err != nil {
		return err
	}
	if m.Voter {
		return nil
	}
	n.log.Info("promoting a non-voter", "peer", id)
	return n.configChange(ctx, func(timeout time.Duration) raft.IndexFuture {
		return n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(m.Addr), 0, timeout)
	})
}

// RemoveNode takes node id out of the group. The group stays writable: a
// leader asked to remove itself hands leadership to the most caught-up
// voter first and answers "not leader" with the new leader, which the
// client asks again. The last voter cannot be removed. Removing a node
// that is not a member changes nothing.
func (n *Node) RemoveNode(ctx context.Context, id string) error {
	if err := n.checkWritable(); err != nil {
		return err
	}
	members, _, err := n.Members()
	if err != nil {
		return err
	}
	voters, found := 0, false
	for _, m := range members {
		if m.Voter && m.ID != id {
			voters++
		}
		found = found || m.ID == id
	}
	if !found {
		return nil
	}
	if voters == 0 {
		return fmt.Errorf("%w: node %q is the group's last voter", ErrInvalidArgument, id)
	}
	if id == n.cfg.NodeID {
		n.log.Info("asked to remove this node, the leader: transferring leadership first")
		if err := n.transfer(ctx, ""); err != nil {
			return err
		}
		return n.notLeader()
	}
	n.log.Info("removing a member", "peer", id)
	return n.configChange(ctx, func(timeout time.Duration) raft.IndexFuture {
		return n.raft.RemoveServer(raft.ServerID(id), 0, timeout)
	})
}

func (n *Node) member(id string) (Member, error) {
	members, _, err := n.Members()
	if err != nil {
		return Member{}, err
	}
	for _, m := range members {
		if m.ID == id {
			return m, nil
		}
	}
	return Member{}, fmt.Errorf("%w: node %q is not in the group", ErrInvalidArgument, id)
}

// configChange runs one Raft configuration change with ctx's deadline (or
// ApplyTimeout) and waits until it is committed.
func (n *Node) configChange(ctx context.Context, change func(timeout time.Duration) raft.IndexFuture) error {
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	if err := n.await(change(timeout)); err != nil {
		return n.applyError(err)
	}
	return nil
}

// Membership over the rmq wire protocol.

func (n *Node) handleMembership(ctx context.Context, code uint16, req *wire.MemberRequest) (any, error) {
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	var err error
	switch code {
	case wire.CodeAddNode:
		err = n.AddNode(ctx, req.ID, req.Addr)
	case wire.CodePromoteNode:
		err = n.PromoteNode(ctx, req.ID)
	case wire.CodeRemoveNode:
		err = n.RemoveNode(ctx, req.ID)
	}
	if err != nil {
		return nil, err
	}
	return n.memberList()
}

func (n *Node) memberList() (*wire.MemberList, error) {
	members, index, err := n.Members()
	if err != nil {
		return nil, err
	}
	out := &wire.MemberList{Index: index, Members: make([]wire.Member, len(members))}
	for i, m := range members {
		s := "nonvoter"
		if m.Voter {
			s = "voter"
		}
		out.Members[i] = wire.Member{ID: m.ID, Addr: m.Addr, Suffrage: s, Leader: m.IsLeader}
	}
	return out, nil
}
