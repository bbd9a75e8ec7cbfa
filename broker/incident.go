package broker

import (
	"fmt"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// watchIncidents calls Config.OnIncident when this node's Raft becomes a
// candidate or leaves the leader state: the moments an operator tracing
// an unexpected election wants a record of. Like watchLeader, the filter
// runs on Raft's goroutine and drops every observation.
func (n *Node) watchIncidents() {
	report := n.cfg.OnIncident
	if report == nil {
		return
	}
	var prev atomic.Uint32 // a raft.RaftState; Shutdown may race the run loop
	prev.Store(uint32(n.raft.State()))
	n.raft.RegisterObserver(raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		st, ok := o.Data.(raft.RaftState)
		if !ok {
			return false
		}
		was := raft.RaftState(prev.Swap(uint32(st)))
		switch {
		case st == raft.Candidate:
			report(fmt.Sprintf("%s-election-term-%d", n.cfg.NodeID, n.raft.CurrentTerm()))
		case was == raft.Leader && st != raft.Shutdown:
			report(fmt.Sprintf("%s-lost-leadership-term-%d", n.cfg.NodeID, n.raft.CurrentTerm()))
		}
		return false
	}))
}
