package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/fsm"
)

// watchLeadership follows raft's LeaderCh. On gaining leadership it starts
// a leader session (Barrier, then leader-only services); on losing it, it
// stops serving writes before anything else. Two true values in a row mean
// leadership was lost and regained (LeaderCh keeps only the latest value),
// so every value ends the previous session.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	var stop context.CancelFunc // ends the current leader session
	end := func() {
		if stop == nil {
			return
		}
		n.leaderMu.Lock()
		stop()
		n.serving.Store(false)
		n.leaderMu.Unlock()
		stop = nil
		n.groups.reset() // members re-heartbeat to the next leader
		n.pokeRegistration()
	}
	defer end()
	for {
		select {
		case <-n.stopCh:
			return
		case isLeader := <-n.raft.LeaderCh():
			end()
			if !isLeader {
				n.log.Info("lost leadership")
				continue
			}
			ctx, cancel := context.WithCancel(context.Background())
			stop = cancel
			n.wg.Add(1)
			go n.leaderSession(ctx)
		}
	}
}

// leaderSession runs while this node leads. A new leader must not serve
// until it has applied every entry committed by earlier terms: its
// consume queues and topic table would be incomplete (Barrier). Then it
// records its client address and runs the leader services until ctx ends
// (leadership lost or the node stops).
func (n *Node) leaderSession(ctx context.Context) {
	defer n.wg.Done()
	start := time.Now() // real clock: measures the barrier for the log
	for {
		err := n.await(n.raft.Barrier(n.cfg.ElectionTimeout * 4))
		if err == nil {
			break
		}
		if ctx.Err() != nil || n.raft.State() != raft.Leader {
			return
		}
		// A transfer in progress or a slow quorum: try again shortly, not
		// in a tight loop.
		n.log.Debug("leader barrier failed", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.cfg.HeartbeatTimeout / 4):
		}
	}
	n.syncDedup(ctx) // dedup.go: the group's window settings, before the first send
	n.leaderMu.Lock()
	ok := ctx.Err() == nil
	if ok {
		n.serving.Store(true)
	}
	n.leaderMu.Unlock()
	if !ok {
		return
	}
	n.log.Info("leader serving", "term", n.raft.CurrentTerm(), "barrier", time.Since(start))
	n.pokeRegistration()
	n.registerNodeAddr(ctx)
	n.runLeaderServices(ctx) // leader_services.go; returns once ctx ends
}

// checkWritable reports whether this node may accept writes now.
func (n *Node) checkWritable() error {
	select {
	case <-n.stopCh:
		return ErrClosed
	default:
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if !n.serving.Load() {
		return fmt.Errorf("%w: applying entries of earlier terms", ErrLeaderNotReady)
	}
	return nil
}

func (n *Node) notLeader() error {
	addr, id := n.raft.LeaderWithID()
	return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
}

// TransferLeadership hands leadership to the node with ID to, or to the
// most caught-up follower when to is empty, and waits for it.
func (n *Node) TransferLeadership(ctx context.Context, to string) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	return n.transfer(ctx, to)
}

func (n *Node) transfer(ctx context.Context, to string) error {
	var f raft.Future
	if to == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		addr, err := n.serverAddr(to)
		if err != nil {
			return err
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(to), addr)
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // raft resolves f within ElectionTimeout
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("broker: leadership transfer: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) serverAddr(id string) (raft.ServerAddress, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return "", err
	}
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == id {
			return s.Address, nil
		}
	}
	return "", fmt.Errorf("%w: node %q is not in the group", ErrInvalidArgument, id)
}

// registerNodeAddr records this node's client address in the replicated
// state, so followers can send clients here.
func (n *Node) registerNodeAddr(ctx context.Context) {
	addr := n.ClientAddr()
	if addr == "" {
		return
	}
	if cur, ok := n.fsm.NodeAddr(n.cfg.NodeID); ok && cur == addr {
		return
	}
	actx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.applyCommand(actx, &fsm.RegisterNode{ID: n.cfg.NodeID, Addr: addr}); err != nil {
		n.log.Warn("record client address", "error", err)
	}
}
