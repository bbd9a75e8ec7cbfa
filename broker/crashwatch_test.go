package broker

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/fsm"
)

// slowDetection makes Raft's own failure detection take half a minute on
// every live node, so that only the crash watch can elect a new leader
// within a test's patience.
func slowDetection(t *testing.T, c *testCluster) {
	t.Helper()
	for _, n := range c.live() {
		if err := n.raft.ReloadConfig(raft.ReloadableConfig{
			TrailingLogs:      1,
			SnapshotInterval:  n.cfg.SnapshotInterval,
			SnapshotThreshold: n.cfg.SnapshotThreshold,
			HeartbeatTimeout:  30 * time.Second,
			ElectionTimeout:   30 * time.Second,
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashedLeaderReplacedWithoutTimeout: a leader whose transport
// vanishes (Abort, as a SIGKILL does: its connections end, its port
// refuses) is replaced at once by one follower's election, although
// Raft's heartbeat timeout is 30s.
func TestCrashedLeaderReplacedWithoutTimeout(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	old := c.leader(10 * time.Second)
	slowDetection(t, c)
	term := old.raft.CurrentTerm()
	c.kill(old.cfg.NodeID)

	next := c.leader(10 * time.Second) // Raft alone would need >= 30s
	if next.raft.CurrentTerm() <= term {
		t.Fatalf("new leader %s in term %d, old term %d", next.cfg.NodeID, next.raft.CurrentTerm(), term)
	}
	var stands int64
	for _, n := range c.live() {
		stands += n.crashStands.Load()
	}
	if stands != 1 {
		t.Fatalf("%d followers stood for election after the crash, want exactly 1 (the first in line)", stands)
	}
	// The group works: a send is committed by the new leader and its
	// follower.
	createTopic(t, c, "crash-topic", 1)
	sendOne(t, next, &fsm.Message{Topic: "crash-topic", Body: []byte("after the crash")})
}

// TestCrashWatchIgnoresLiveLeader: an inbound Raft connection that ends
// while the leader lives (here a bare TCP connection to a follower's Raft
// port, closed at once) makes the follower check, and nothing else.
func TestCrashWatchIgnoresLiveLeader(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader(10 * time.Second)
	term := lead.raft.CurrentTerm()
	var f *Node
	for _, n := range c.live() {
		if n != lead {
			f = n
			break
		}
	}
	before := f.crashChecks.Load()
	conn, err := net.Dial("tcp", string(f.trans.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	eventually(t, 10*time.Second, func() error {
		if f.crashChecks.Load() == before {
			return errors.New("the follower has not checked its leader yet")
		}
		return nil
	})
	for _, n := range c.live() {
		if s := n.crashStands.Load(); s != 0 {
			t.Errorf("%s stood for election %d times with a live leader", n.cfg.NodeID, s)
		}
	}
	if got := lead.raft.CurrentTerm(); got != term || lead.raft.State() != raft.Leader {
		t.Fatalf("leader %s: term %d state %s after the check, want term %d and leader", lead.cfg.NodeID, got, lead.raft.State(), term)
	}
}

// TestElectionOpenFollowsVotes: a follower may stand for a crashed leader
// while no election has begun, and after one began without its vote (it
// refused a candidate whose log is behind its own), but not once it voted
// for another candidate in its current term.
func TestElectionOpenFollowsVotes(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.leader(10 * time.Second)
	slowDetection(t, c) // no election of Raft's own while the test raises terms
	var f *Node
	for _, n := range c.live() {
		if n != lead {
			f = n
			break
		}
	}
	eventually(t, 10*time.Second, func() error {
		if !f.electionOpen() {
			return errors.New("a follower of a serving leader is not settled yet")
		}
		return nil
	})
	id := raft.ServerID(lead.cfg.NodeID)
	vote := func(term, lastIndex, lastTerm uint64) bool {
		t.Helper()
		req := &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id),
				Addr: lead.trans.EncodePeer(id, lead.trans.LocalAddr())},
			Term: term, LastLogIndex: lastIndex, LastLogTerm: lastTerm, LeadershipTransfer: true,
		}
		var resp raft.RequestVoteResponse
		if err := lead.trans.RequestVote(raft.ServerID(f.cfg.NodeID), f.trans.LocalAddr(), req, &resp); err != nil {
			t.Fatal(err)
		}
		return resp.Granted
	}
	term := f.raft.CurrentTerm()
	if vote(term+1, 0, 0) {
		t.Fatal("the follower voted for a candidate with an empty log")
	}
	if !f.electionOpen() {
		t.Fatal("a follower that refused the only candidate of its term may not stand")
	}
	if !vote(term+2, f.raft.LastIndex()+100, term+2) {
		t.Fatal("the follower refused a candidate whose log is ahead of its own")
	}
	if f.electionOpen() {
		t.Fatal("a follower that voted for another candidate in its term may stand")
	}
}
