package broker

import (
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Status is a node's view of itself and its group.
type Status struct {
	NodeID       string
	Group        string
	State        string // Leader, Follower, Candidate, Shutdown
	Serving      bool   // leader that passed its Barrier
	LeaderID     string
	LeaderAddr   string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64 // raft's applied index (includes no-op and barrier entries)
	StateIndex   uint64 // last command entry applied to this node's state machine
	FirstIndex   uint64 // oldest CommitLog entry still on this node's disk
	RetainFrom   uint64 // retention floor: entries before it are released everywhere
	LastIndex    uint64
	LogBytes     int64
	Disk         DiskUsage    // this node's disk, measured at most a few seconds ago
	LastPurge    *PurgeRecord // the last segment deletion on this node, nil if none
	// DiskFull says why the group refuses sends (a node's disk is above
	// the high-water mark, diskguard.go), "" while it takes them. It is
	// the leader's verdict; a follower shows the one it last held.
	DiskFull      string
	DiskFullSince time.Time // when the current verdict began (zero: never refused)
	// CommitUnknown: this node has not learned the commit index since it
	// started (CommitIndex is raft's 0 until the leader's first
	// AppendEntries reaches a follower, or a new leader commits its first
	// entry). AppliedIndex is known from the start: a restart restores it
	// from the latest snapshot (0 without one, when there is nothing
	// applied until the log is replayed).
	CommitUnknown bool
}

// Status reports this node's Raft and storage state.
func (n *Node) Status() Status {
	// Term is read before and after State and leader, so a node that
	// reports itself leader was leader in the term it reports (raft
	// changes the state before the term when a leader steps down).
	term, state := n.raft.CurrentTerm(), n.raft.State()
	addr, id := n.raft.LeaderWithID()
	for i := 0; i < 3; i++ {
		t := n.raft.CurrentTerm()
		if t == term {
			break
		}
		term, state = t, n.raft.State()
		addr, id = n.raft.LeaderWithID()
	}
	first, _ := n.store.FirstIndex()
	last, _ := n.store.LastIndex()
	st := Status{
		NodeID:       n.cfg.NodeID,
		Group:        n.cfg.Group,
		State:        state.String(),
		Serving:      n.serving.Load() && state == raft.Leader,
		LeaderID:     string(id),
		LeaderAddr:   string(addr),
		Term:         term,
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		StateIndex:   n.fsm.AppliedIndex(),
		FirstIndex:   first,
		RetainFrom:   n.fsm.LogStart(),
		LastIndex:    last,
		LogBytes:     n.store.DiskBytes(),
		Disk:         n.diskUsage(false),
		LastPurge:    n.lastPurge.Load(),
	}
	st.DiskFull, st.DiskFullSince = n.diskGuard.get()
	st.CommitUnknown = st.CommitIndex == 0
	return st
}

// Role is the node's role for status displays: "leader" (serving),
// "candidate" (elected but still applying earlier terms, or campaigning),
// "follower" or "shutdown".
func (s Status) Role() string {
	role := strings.ToLower(s.State)
	if role == "leader" && !s.Serving {
		role = "candidate" // elected but still applying earlier terms
	}
	return role
}
