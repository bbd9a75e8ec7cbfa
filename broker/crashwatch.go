package broker

import (
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// Crash detection: a follower that sees its leader's process die starts
// the election at once instead of after a heartbeat timeout.
//
// Raft finds a dead leader by silence: a follower that has not heard from
// it for HeartbeatTimeout (400ms, checked at random points up to twice
// that) becomes a candidate, so detection alone is 0.4-1.2s of the
// failover pause. A leader whose process crashed is louder than that when
// its host lives on: the kernel closes its sockets, so the followers'
// inbound Raft connections from it end at once (EOF or reset), and a new
// connection to its Raft port is refused, or reset if it reached the
// listener's queue before the listener closed (the connections often end
// first). Every node wraps the connections its Raft listener accepts
// (watchRaftConns); when one ends from the far side, runCrashWatch, on a
// voting follower, probes the leader's Raft address (leaderGone). Only a
// refused dial or a reset without a byte counts; a connection that stays
// open means the leader lives and merely closed a connection, and a dial
// that times out (a dead host, a partition that drops packets) tells
// nothing, so Raft's own timeout decides as before. SIGSTOPped and
// partitioned leaders are left to the timeouts too: their sockets stay
// open.
//
// A follower that found its leader dead asks its own Raft, over the
// transport, for TimeoutNow, the request a leader sends in a leadership
// transfer: Raft becomes a candidate at once, skips the pre-vote, and its
// vote requests carry the transfer flag, so the other voters grant them
// although they still remember the dead leader. Only one follower should
// do that at a time, or two candidates split the vote and the randomised
// election timeout decides after all: the voters other than the dead
// leader are ranked by ID and each waits rank x crashStagger, then acts
// only if no new leader has been heard of meanwhile, it has not voted for
// another candidate since (electionOpen: the first in line asked it) and
// the old one is still gone. Before it stands it closes the transport's
// pooled connections: those to a peer that restarted since are dead, and
// hashicorp/raft sends a vote request once, on whatever the pool holds.
// If the first in line cannot win (its log is behind, so the others
// refuse their votes), the next in line stands in a later term when its
// turn comes, and wins.
//
// Safety is Raft's: any node may stand for election at any time, and a
// vote is granted only to a candidate whose log is at least as up to date.
// What a wrong verdict could cost is an unnecessary election, which the
// probe prevents as long as a live leader's port accepts and holds
// connections. A node that started without state keeps its vote guard
// (rejoin.go), which refuses TimeoutNow like any other vote in a guarded
// term.

// crashStagger is how long each follower waits per rank before it stands
// for election after its leader crashed (see above): long enough for the
// first in line to win and be heard from (a vote round and a heartbeat
// over loopback or a LAN), short against the heartbeat timeout.
const crashStagger = 100 * time.Millisecond

// crashProbeTimeout bounds the dial to a leader that seems to have died,
// and crashProbeWait how long a connection that opened is watched for the
// reset of a dying listener (leaderGone).
const (
	crashProbeTimeout = 200 * time.Millisecond
	crashProbeWait    = 100 * time.Millisecond
)

// watchRaftConns wraps ln so that every accepted connection that ends
// from the far side signals the crash watch.
func (n *Node) watchRaftConns(ln net.Listener) net.Listener {
	if n.cfg.DisableCrashDetection {
		return ln
	}
	return &watchedListener{Listener: ln, ended: n.raftConnEnded}
}

type watchedListener struct {
	net.Listener
	ended chan struct{} // buffered 1; a pending signal is enough
}

func (l *watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c, ended: l.ended}, nil
}

type watchedConn struct {
	net.Conn
	ended chan struct{}
	once  sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && peerEnded(err) {
		c.once.Do(func() {
			select {
			case c.ended <- struct{}{}:
			default:
			}
		})
	}
	return n, err
}

// peerEnded reports whether a read error means the far side closed or
// reset the connection (not a local close or a deadline).
func peerEnded(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// runCrashWatch checks the leader each time an inbound Raft connection
// ended; see the top of this file. It runs from open until shutdown.
func (n *Node) runCrashWatch() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stopCh:
			return
		case <-n.raftConnEnded:
		}
		n.checkLeaderCrash()
	}
}

// checkLeaderCrash stands this node for election if it is a voting
// follower whose leader's process is gone (leaderGone), after waiting its
// turn (crashStagger per rank).
func (n *Node) checkLeaderCrash() {
	defer n.crashChecks.Add(1)
	if why := n.standForCrashedLeader(); why != "" {
		n.log.Debug("a Raft connection ended; not standing for election", "reason", why)
	}
}

// standForCrashedLeader does checkLeaderCrash's work; it returns why it
// did not stand, or "" when it did.
func (n *Node) standForCrashedLeader() string {
	if n.raft.State() != raft.Follower {
		return "not a follower"
	}
	addr, id := n.raft.LeaderWithID()
	self := raft.ServerID(n.cfg.NodeID)
	if addr == "" || id == self {
		return "no leader known"
	}
	rank, ok := n.crashRank(id)
	switch {
	case !ok:
		return "not a voter"
	case !n.electionOpen():
		return "it voted for a candidate in its current term"
	case !n.leaderGone(addr):
		return "the leader's Raft port holds a new connection open"
	}
	if rank > 0 {
		t := time.NewTimer(time.Duration(rank) * crashStagger)
		select {
		case <-n.stopCh:
			t.Stop()
			return "shutting down"
		case <-t.C:
		}
		// Someone ahead in line may have won meanwhile: its heartbeats
		// name it as leader here.
		if n.raft.State() != raft.Follower {
			return "not a follower after waiting its turn"
		}
		if a, _ := n.raft.LeaderWithID(); a != "" && a != addr {
			return "a new leader was elected while it waited its turn"
		}
		if !n.electionOpen() {
			return "it voted for a candidate while it waited its turn"
		}
		if !n.leaderGone(addr) {
			return "the leader's Raft port holds a new connection open after its turn"
		}
	}
	n.log.Info("leader's process is gone (its Raft port refuses or resets connections): standing for election now",
		"leader", string(id), "leader-addr", string(addr), "rank", rank)
	// Pooled connections to a peer that restarted since they were opened
	// are dead, and a vote request sent on one fails without a retry
	// (hashicorp/raft dials afresh only for the next RPC): the election
	// would be lost to a split vote or an election timeout. Closing the
	// transport's streams makes every vote request dial a new connection;
	// the inbound ones it also ends are the dead leader's and idle peers'.
	n.trans.CloseStreams()
	local := n.trans.LocalAddr()
	req := &raft.TimeoutNowRequest{
		RPCHeader: raft.RPCHeader{
			ProtocolVersion: raft.ProtocolVersionMax,
			ID:              []byte(self),
			Addr:            n.trans.EncodePeer(self, local),
		},
	}
	var resp raft.TimeoutNowResponse
	if err := n.trans.TimeoutNow(self, local, req, &resp); err != nil {
		n.log.Warn("could not start the election after the leader's crash; Raft's timeout will", "error", err)
		return "TimeoutNow failed"
	}
	n.crashStands.Add(1)
	return ""
}

// electionOpen reports whether this node may stand without competing with
// a candidate it helped: either no election has begun since it last
// appended an entry (its current term is its last entry's; every leader
// appends one in its term at once), or one has and it granted no vote in
// it. A follower that voted for a candidate in its current term (its term
// rose, its log's did not) leaves the crash to that candidate, perhaps
// another follower that saw the crash first: a second candidate in the
// same term would split the vote. One whose term rose without its vote
// refused a candidate whose log is behind its own; it stands, in a later
// term, which that candidate then votes for.
func (n *Node) electionOpen() bool {
	st := n.raft.Stats()
	if st["term"] == "" {
		return false
	}
	if st["term"] == st["last_log_term"] {
		return true
	}
	// hashicorp/raft keeps its vote under these stable-store keys (raft.go:
	// keyLastVoteTerm, keyLastVoteCand); it has no API for them.
	term, err := strconv.ParseUint(st["term"], 10, 64)
	if err != nil {
		return false
	}
	voteTerm, err := n.stable.GetUint64([]byte("LastVoteTerm"))
	if err != nil {
		return false
	}
	if voteTerm < term {
		return true
	}
	cand, err := n.stable.Get([]byte("LastVoteCand"))
	self := n.trans.EncodePeer(raft.ServerID(n.cfg.NodeID), n.trans.LocalAddr())
	return err == nil && string(cand) == string(self)
}

// crashRank is this node's place in line among the voters other than
// leader, by ID; ok is false when this node does not vote.
func (n *Node) crashRank(leader raft.ServerID) (rank int, ok bool) {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return 0, false
	}
	var ids []raft.ServerID
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != leader {
			ids = append(ids, s.ID)
		}
	}
	slices.Sort(ids)
	i := slices.Index(ids, raft.ServerID(n.cfg.NodeID))
	return i, i >= 0
}

// leaderGone reports whether the process behind the Raft address addr is
// gone while its host lives: a TCP connection to it is refused (nothing
// listens), or it opens and is then reset or closed before any byte is
// sent, which is what a dying process's listener does to the connections
// in its queue (the first connections to end are often a SIGKILLed
// process's, before its listener goes). A live Raft transport, TCP or
// TLS, keeps a new connection open waiting for a request: after
// crashProbeWait of silence the leader is taken to be alive, and a dial
// that times out tells nothing either.
func (n *Node) leaderGone(addr raft.ServerAddress) bool {
	c, err := net.DialTimeout("tcp", string(addr), crashProbeTimeout)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(crashProbeWait)); err != nil {
		return false
	}
	var b [1]byte
	_, err = c.Read(b[:])
	return err != nil && peerEnded(err)
}
