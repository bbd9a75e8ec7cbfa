package broker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/wire"
)

// Preferred leader (DLedger's preferredLeaderId): with PreferredLeader set,
// the leader hands leadership to that node once it is a voter, healthy and
// caught up. It is a leader service that proposes nothing: its only act is
// raft's LeadershipTransferToServer, which replicates the last entries to
// the target and tells it to campaign at once. Raft refuses writes during
// the hand-over (ErrLeadershipTransferInProgress, "not leader" to
// clients, who retry), so the write pause is the transfer plus the new
// leader's barrier; e2e's TestPreferredLeaderReturns measures it.
//
// The checks, every PreferredCheckInterval, all of which must pass on two
// checks in a row:
//
//   - the preferred node is a voter of the latest configuration;
//   - it answers a status request on its client address (from a
//     NameServer, or the replicated node table) as a follower of this
//     leader in this term, knowing the commit index; if the request fails
//     (access control refuses it: the leader sends no credentials), its
//     last registration with the NameServer stands in, compared with the
//     leader's own (both at most a RegisterInterval old, so under heavy
//     writes the lag check may wait for a quieter moment);
//   - its applied index is at most PreferredMaxLag behind this node's
//     last log index (applied, not only stored: a new leader serves only
//     once it has applied everything).
//
// A failed hand-over doubles the wait before the next attempt (up to 64
// intervals). Against flapping, a node that regains leadership within
// preferredFlapWindow of handing it over waits twice as long as the last
// time before trying again; the preferred node itself never hands over.

// preferredFlapWindow: regaining leadership this soon after a hand-over
// counts as a flap.
const preferredFlapWindow = time.Minute

// preferredState remembers this node's last hand-over across leader
// sessions.
type preferredState struct {
	mu      sync.Mutex
	last    time.Time     // last successful hand-over (real clock)
	holdOff time.Duration // wait before trying again after a flap
}

// startDelay is how long a new leader session waits before its first
// check.
func (p *preferredState) startDelay(interval time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last.IsZero() || time.Since(p.last) > preferredFlapWindow {
		p.holdOff = 0
		return interval
	}
	p.holdOff = min(max(2*p.holdOff, 4*interval), 300*interval)
	return p.holdOff
}

func (p *preferredState) handedOver() {
	p.mu.Lock()
	p.last = time.Now()
	p.mu.Unlock()
}

// runPreferredLeader is the leader service behind PreferredLeader.
func (n *Node) runPreferredLeader(ctx context.Context) error {
	pref := n.cfg.PreferredLeader
	if pref == "" || pref == n.cfg.NodeID {
		return nil
	}
	interval := n.cfg.PreferredCheckInterval
	var ns nameServerConns
	defer ns.close()
	var conn peerConn
	defer conn.close()
	delay, good, failures := n.preferred.startDelay(interval), 0, 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay): // check pacing and back-off
		}
		delay = interval
		if err := n.preferredReady(ctx, &ns, &conn, pref); err != nil {
			n.log.Debug("preferred leader not ready", "peer", pref, "error", err)
			good = 0
			continue
		}
		if good++; good < 2 {
			continue
		}
		start := time.Now()
		if err := n.transfer(ctx, pref); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			delay = interval << min(failures, 6)
			good = 0
			n.log.Warn("hand-over to the preferred leader failed", "peer", pref, "error", err, "retry-in", delay)
			continue
		}
		n.preferred.handedOver()
		n.log.Info("handed leadership to the preferred leader", "peer", pref, "took", time.Since(start))
		return nil
	}
}

// preferredReady reports why the preferred node cannot take over now (nil
// if it can).
func (n *Node) preferredReady(ctx context.Context, ns *nameServerConns, conn *peerConn, pref string) error {
	m, err := n.member(pref)
	if err != nil {
		return err
	}
	if !m.Voter {
		return fmt.Errorf("%s is a non-voter", pref)
	}
	addr, reported, err := n.peerInfo(ctx, ns, pref)
	if err != nil {
		return err
	}
	myTerm, myLast := n.raft.CurrentTerm(), n.raft.LastIndex()
	cctx, cancel := context.WithTimeout(ctx, max(n.cfg.PreferredCheckInterval, time.Second))
	defer cancel()
	st, err := conn.status(cctx, addr)
	if err != nil {
		// Refused (access control: this call carries no credentials) or
		// unreachable from here: judge by its last registration, as
		// recent as the NameServer's, against this node's.
		if reported == nil || reported.mine == nil {
			return err
		}
		st, myLast = &reported.peer, reported.mine.LastIndex
	}
	switch {
	case st.NodeID != pref:
		return fmt.Errorf("%s answers as node %q", addr, st.NodeID)
	case st.Role != "follower" || st.Term != myTerm || st.LeaderID != n.cfg.NodeID:
		return fmt.Errorf("%s is %s in term %d with leader %q", pref, st.Role, st.Term, st.LeaderID)
	case st.CommitUnknown:
		return fmt.Errorf("%s has not learned the commit index", pref)
	case myLast > st.AppliedIndex && myLast-st.AppliedIndex > n.cfg.PreferredMaxLag:
		// Applied, not only stored: a new leader serves only once it has
		// applied everything (its barrier), so an unapplied backlog (a
		// node replaying its log after a restart) would be write pause.
		return fmt.Errorf("%s has applied up to %d, %d entries behind", pref, st.AppliedIndex, myLast-st.AppliedIndex)
	}
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	return nil
}

// registered is a peer's and this node's last registrations, from one
// NameServer answer.
type registered struct {
	peer wire.NodeStatus
	mine *wire.NodeStatus // nil if the NameServer lists no recent one
}

// peerInfo finds a group member's client address and its last
// registration (nil if no NameServer has a recent one): from the first
// NameServer that knows it, else the node table (nodes that once led).
func (n *Node) peerInfo(ctx context.Context, ns *nameServerConns, id string) (string, *registered, error) {
	maxAge := 3 * max(n.cfg.RegisterInterval, time.Second)
	for _, addr := range n.cfg.NameServers {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		ci, err := ns.clusterInfo(cctx, addr)
		cancel()
		if err != nil {
			continue
		}
		var r registered
		found := false
		for _, cn := range ci.Nodes {
			if cn.Cluster != n.cfg.Cluster || cn.Group != n.cfg.Group || time.Duration(cn.AgeMillis)*time.Millisecond > maxAge {
				continue
			}
			switch cn.NodeID {
			case id:
				r.peer, found = cn.NodeStatus, cn.Addr != ""
			case n.cfg.NodeID:
				r.mine = &cn.NodeStatus
			}
		}
		if found {
			return r.peer.Addr, &r, nil
		}
	}
	if addr, ok := n.fsm.NodeAddr(id); ok {
		return addr, nil, nil
	}
	return "", nil, fmt.Errorf("no client address known for %s", id)
}

// peerConn is a leader service's connection to one peer's client
// address; the zero value is ready.
type peerConn struct {
	addr string
	c    *wire.Conn
}

func (p *peerConn) close() {
	if p.c != nil {
		p.c.Close()
		p.c = nil
	}
}

// status asks the node at addr for its status, dialling again if the
// address changed or the connection broke.
func (p *peerConn) status(ctx context.Context, addr string) (*wire.NodeStatus, error) {
	if p.c != nil && (p.c.Err() != nil || p.addr != addr) {
		p.close()
	}
	if p.c == nil {
		c, err := wire.Dial(ctx, addr, 0)
		if err != nil {
			return nil, err
		}
		p.c, p.addr = c, addr
	}
	var st wire.NodeStatus
	if err := p.c.Call(ctx, wire.CodeNodeStatus, wire.Empty{}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
