package broker

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
)

// noFSM is the state machine of a Raft instance that never applies an
// entry: the guard tests exercise only votes.
type noFSM struct{}

func (noFSM) Apply(*raft.Log) any                 { return nil }
func (noFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, errors.New("no state") }
func (noFSM) Restore(io.ReadCloser) error         { return nil }

func testTransport(t *testing.T) *raft.NetworkTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: &streamLayer{Listener: ln, adv: ln.Addr()}, MaxPool: 2, Timeout: 5 * time.Second, Logger: testLogger(t),
	})
}

// guardedRaft starts a real Raft without configuration (it grants any
// vote it may) behind the vote guard of data directory dir; nil guard
// means openVoteGuard decided none is needed.
func guardedRaft(t *testing.T, dir string, hasState bool) (*voteGuard, func()) {
	t.Helper()
	trans := testTransport(t)
	g, err := openVoteGuard(dir, hasState, trans, "n1", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if g == nil {
		trans.Close()
		return nil, func() {}
	}
	cfg := raft.DefaultConfig()
	cfg.LocalID = "n1"
	cfg.Logger = testLogger(t)
	r, err := raft.NewRaft(cfg, noFSM{}, raft.NewInmemStore(), raft.NewInmemStore(), raft.NewInmemSnapshotStore(), g)
	if err != nil {
		t.Fatal(err)
	}
	g.start(r.CurrentTerm)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := r.Shutdown().Error(); err != nil {
				t.Error(err)
			}
			g.Close()
		}
	}
	t.Cleanup(stop)
	return g, stop
}

// candidate asks the node behind g for votes over a real transport.
type candidate struct {
	t     *testing.T
	trans *raft.NetworkTransport
	to    raft.ServerAddress
}

func newCandidate(t *testing.T, g *voteGuard) *candidate {
	c := &candidate{t: t, trans: testTransport(t), to: g.LocalAddr()}
	t.Cleanup(func() { c.trans.Close() })
	return c
}

func (c *candidate) header() raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("c"), Addr: []byte(c.trans.LocalAddr())}
}

func (c *candidate) vote(term uint64) bool {
	c.t.Helper()
	var resp raft.RequestVoteResponse
	if err := c.trans.RequestVote("n1", c.to, &raft.RequestVoteRequest{RPCHeader: c.header(), Term: term}, &resp); err != nil {
		c.t.Fatalf("request vote in term %d: %v", term, err)
	}
	return resp.Granted
}

func (c *candidate) preVote(term uint64) raft.RequestPreVoteResponse {
	c.t.Helper()
	var resp raft.RequestPreVoteResponse
	if err := c.trans.RequestPreVote("n1", c.to, &raft.RequestPreVoteRequest{RPCHeader: c.header(), Term: term}, &resp); err != nil {
		c.t.Fatalf("request pre-vote in term %d: %v", term, err)
	}
	return resp
}

func (c *candidate) timeoutNow() error {
	var resp raft.TimeoutNowResponse
	return c.trans.TimeoutNow("n1", c.to, &raft.TimeoutNowRequest{RPCHeader: c.header()}, &resp)
}

func readGuard(t *testing.T, dir string) guardState {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, guardFile))
	if err != nil {
		t.Fatal(err)
	}
	var st guardState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestVoteGuard: a node that started without state refuses every vote
// while its peers' terms are unknown and every vote in a term up to the
// floor afterwards, also for its own candidacy; the guard survives a
// restart; Raft's own answers pass through otherwise.
func TestVoteGuard(t *testing.T) {
	dir := t.TempDir()
	g, stop := guardedRaft(t, dir, false)
	if diff := cmp.Diff(guardState{Pending: true}, readGuard(t, dir)); diff != "" {
		t.Fatalf("guard file before raft ran (-want +got):\n%s", diff)
	}
	c := newCandidate(t, g)

	// Pending: no vote in any term, no transfer; pre-votes still tell
	// Raft's term (what peers probe).
	if c.vote(100) {
		t.Fatal("pending guard granted a vote in term 100")
	}
	if r := c.preVote(0); r.Granted || r.Term != 0 {
		t.Fatalf("pending guard pre-vote: got granted=%v term=%d, want false, 0", r.Granted, r.Term)
	}
	if err := c.timeoutNow(); err == nil {
		t.Fatal("pending guard accepted a leadership transfer")
	}

	// Every peer answered, highest term 3.
	if floor, err := g.settle(3); err != nil || floor != 3 {
		t.Fatalf("settle: got %d, %v, want 3, nil", floor, err)
	}
	if diff := cmp.Diff(guardState{Floor: 3}, readGuard(t, dir)); diff != "" {
		t.Fatalf("guard file after settle (-want +got):\n%s", diff)
	}
	for _, term := range []uint64{1, 3} {
		if c.vote(term) {
			t.Fatalf("guard with floor 3 granted a vote in term %d", term)
		}
	}
	if !c.vote(4) {
		t.Fatal("guard with floor 3 refused a vote in term 4 (raft would grant it)")
	}
	// Its own candidacy in a guarded term is refused without sending,
	// with the floor as the newer term.
	var own raft.RequestVoteResponse
	if err := g.RequestVote("n2", "127.0.0.1:1", &raft.RequestVoteRequest{Term: 2}, &own); err != nil || own.Granted || own.Term != 3 {
		t.Fatalf("own vote request in term 2: got %+v, %v; want refused with term 3", own, err)
	}

	// Restart: the floor holds although this Raft starts at term 0 again.
	stop()
	g, _ = guardedRaft(t, dir, true)
	if g == nil {
		t.Fatal("no guard after restart with a guard file")
	}
	c = newCandidate(t, g)
	if c.vote(3) {
		t.Fatal("after restart the guard granted a vote in term 3")
	}
	if !c.vote(5) {
		t.Fatal("after restart the guard refused a vote in term 5")
	}
	if err := g.finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, guardFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("guard file after finish: %v, want not exist", err)
	}
	if g, _ := guardedRaft(t, dir, true); g != nil {
		t.Fatal("a node with state and no guard file got a guard")
	}
}

// TestVoteGuardPendingSurvivesRestart: a node stopped before every peer
// answered still refuses every vote after a restart, even once Raft has
// state.
func TestVoteGuardPendingSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	_, stop := guardedRaft(t, dir, false)
	stop()
	g, _ := guardedRaft(t, dir, true)
	if g == nil || !g.pending() {
		t.Fatal("pending guard lost across a restart")
	}
	if newCandidate(t, g).vote(100) {
		t.Fatal("pending guard granted a vote after a restart")
	}
}

// TestVoteGuardObservesPeerTerms: a peer's own RPCs tell the guard its
// term (as a probe's answer would), the highest one wins, and a guarded
// peer's probe (a pre-vote for term 0) tells nothing.
func TestVoteGuardObservesPeerTerms(t *testing.T) {
	g, _ := guardedRaft(t, t.TempDir(), false)
	c := newCandidate(t, g)
	if _, ok := g.observed("c"); ok {
		t.Fatal("a term observed before any RPC")
	}
	c.preVote(0) // a probe
	if term, ok := g.observed("c"); ok {
		t.Fatalf("a probe recorded term %d", term)
	}
	var resp raft.AppendEntriesResponse
	if err := c.trans.AppendEntries("n1", c.to, &raft.AppendEntriesRequest{RPCHeader: c.header(), Term: 7}, &resp); err != nil {
		t.Fatal(err)
	}
	if term, ok := g.observed("c"); !ok || term != 7 {
		t.Fatalf("after an AppendEntries of term 7: %d %v", term, ok)
	}
	c.preVote(5) // older: the highest stays
	if term, _ := g.observed("c"); term != 7 {
		t.Fatalf("after a pre-vote of term 5: %d, want 7", term)
	}
	c.preVote(9) // the sender is at 8 and asks for 9
	if term, _ := g.observed("c"); term != 8 {
		t.Fatalf("after a pre-vote for term 9: %d, want the sender's 8", term)
	}

	// A peer that bootstrapped a new group campaigns for term 1 from term
	// 0: it answers 0, so the group still counts as brand new.
	g2, _ := guardedRaft(t, t.TempDir(), false)
	c2 := newCandidate(t, g2)
	c2.preVote(1)
	if term, ok := g2.observed("c"); !ok || term != 0 {
		t.Fatalf("after a pre-vote for term 1: %d %v, want 0 (observed)", term, ok)
	}
}
