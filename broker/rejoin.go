package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// A node that starts without Raft state (a brand-new group, or a data
// directory that was wiped) may have voted in an earlier life; it must not
// vote again in any term it might have voted in. See "Bootstrap and
// rejoin" in doc.go for the argument.

// guardFile holds the vote guard's state in the data directory while the
// guard is active. It is written and fsynced before Raft starts.
const guardFile = "vote-guard.json"

// Probe pacing: the first retry is quick (peers of a group started
// together come up within milliseconds of each other), later ones back
// off to probeMaxDelay; the still-missing peers are logged every
// probeLogEvery.
const (
	probeFirstDelay = 20 * time.Millisecond
	probeMaxDelay   = time.Second
	probeLogEvery   = 5 * time.Second
	guardPollEvery  = 500 * time.Millisecond
)

var errVoteGuard = errors.New("broker: vote guard: this node restarted without Raft state and does not stand for election yet")

// guardState is the content of guardFile.
type guardState struct {
	// Pending: not every peer has reported its term yet; refuse every vote.
	Pending bool `json:"pending"`
	// Floor is the highest term any peer reported; refuse votes in terms
	// up to and including it.
	Floor uint64 `json:"floor"`
}

// voteGuard wraps the Raft transport of a node that started without
// state. It answers vote requests (and leadership-transfer requests) that
// would let this node vote in a term <= floor, or in any term while
// pending, and passes every other RPC to Raft unchanged. It also refuses,
// on this node's behalf, its own outgoing vote requests in such terms, so
// its own candidacy cannot add a second vote either.
type voteGuard struct {
	*raft.NetworkTransport
	path    string
	localID raft.ServerID
	fresh   bool // the node started without Raft state
	log     hclog.Logger
	rpcCh   chan raft.RPC // Consumer(): unbuffered like NetworkTransport's
	term    func() uint64 // Raft's current term, set by start

	mu    sync.Mutex
	state guardState
	off   bool // Raft's term passed the floor: Raft keeps one vote per term itself
	// seen holds, per peer, the highest term its own RPCs to this node
	// carried since the node started: as good an answer as a probe's.
	seen map[string]uint64

	stopCh    chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// openVoteGuard returns the guard for a node, or nil when it needs none
// (it has Raft state and no unfinished guard). A node without state gets a
// pending guard, persisted before it returns.
func openVoteGuard(dir string, hasState bool, trans *raft.NetworkTransport, localID raft.ServerID, log hclog.Logger) (*voteGuard, error) {
	path := filepath.Join(dir, guardFile)
	st, found, err := readGuardState(path)
	if err != nil {
		return nil, err
	}
	if hasState && !found {
		return nil, nil
	}
	g := &voteGuard{
		NetworkTransport: trans, path: path, localID: localID, fresh: !hasState, log: log,
		rpcCh: make(chan raft.RPC), state: st, stopCh: make(chan struct{}), seen: map[string]uint64{},
	}
	if !hasState {
		// Probe again even if an earlier start got answers: the bootstrap
		// decision needs fresh ones. The old floor stays a lower bound.
		g.state.Pending = true
		if err := writeGuardState(path, g.state); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func readGuardState(path string) (guardState, bool, error) {
	var st guardState
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("broker: read vote guard: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("broker: vote guard %s is corrupt (delete it only if this node never voted): %w", path, err)
	}
	return st, true, nil
}

// writeGuardState replaces path atomically and durably.
func writeGuardState(path string, st guardState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("broker: write vote guard: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("broker: write vote guard: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// start begins passing RPCs to Raft; call it once Raft runs.
func (g *voteGuard) start(term func() uint64) {
	g.term = term
	g.wg.Add(1)
	go g.forward()
}

// SetHeartbeatHandler passes the transport's heartbeat fast path (which
// bypasses Consumer) through observe, so a leader's heartbeats count as
// its answer too.
func (g *voteGuard) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		g.NetworkTransport.SetHeartbeatHandler(nil)
		return
	}
	g.NetworkTransport.SetHeartbeatHandler(func(rpc raft.RPC) {
		g.observe(rpc.Command)
		cb(rpc)
	})
}

// Consumer is the RPC channel Raft reads.
func (g *voteGuard) Consumer() <-chan raft.RPC { return g.rpcCh }

// Close stops the forwarder and closes the transport. Idempotent (Raft's
// shutdown closes the transport too).
func (g *voteGuard) Close() error {
	var err error
	g.closeOnce.Do(func() {
		close(g.stopCh)
		err = g.NetworkTransport.Close()
		g.wg.Wait()
	})
	return err
}

func (g *voteGuard) forward() {
	defer g.wg.Done()
	in := g.NetworkTransport.Consumer()
	for {
		select {
		case rpc := <-in:
			if g.intercept(rpc) {
				continue
			}
			select {
			case g.rpcCh <- rpc:
			case <-g.stopCh:
				return
			}
		case <-g.stopCh:
			return
		}
	}
}

// observe records the term a peer's RPC carries. A term a peer reports
// after this node lost its state is at least every term this node can
// have voted for it in before (terms never go down), so it bounds past
// votes as a probe's answer does: a follower that hears its leader need
// not wait for that leader to answer a probe, which it may never do
// (the leader dies, as in a failover right after a restart). Probes from
// guarded peers (pre-votes for term 0) carry no term and are skipped. A
// real pre-vote asks for the sender's term + 1, which it has not taken
// (so it is not a sign that the group exists: a peer that bootstrapped a
// brand-new group campaigns with pre-votes for term 1 while still at 0).
func (g *voteGuard) observe(cmd any) {
	var id []byte
	var term uint64
	switch req := cmd.(type) {
	case *raft.AppendEntriesRequest:
		id, term = req.ID, req.Term
	case *raft.InstallSnapshotRequest:
		id, term = req.ID, req.Term
	case *raft.RequestVoteRequest:
		id, term = req.ID, req.Term // a candidate persists its term before asking
	case *raft.RequestPreVoteRequest:
		if req.Term == 0 {
			return // a probe
		}
		id, term = req.ID, req.Term-1
	default:
		return
	}
	if len(id) == 0 || string(id) == string(g.localID) {
		return
	}
	g.mu.Lock()
	if prev, ok := g.seen[string(id)]; !ok || term > prev {
		g.seen[string(id)] = term
	}
	g.mu.Unlock()
}

// observed returns the highest term peer's RPCs carried, if any came.
func (g *voteGuard) observed(peer string) (uint64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.seen[peer]
	return t, ok
}

// intercept answers rpc itself if it would let this node vote in a
// guarded term, and reports whether it did.
func (g *voteGuard) intercept(rpc raft.RPC) bool {
	g.observe(rpc.Command)
	switch req := rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		if !g.allowsVote(req.Term) {
			g.log.Info("vote guard refused a vote", "candidate", string(req.ID), "term", req.Term, "floor", g.floor())
			rpc.Respond(&raft.RequestVoteResponse{RPCHeader: g.header(), Term: max(req.Term, g.term())}, nil)
			return true
		}
	case *raft.RequestPreVoteRequest:
		if !g.allowsVote(req.Term) {
			// Pre-votes change nothing, so the answer can be Raft's own term:
			// peers probing this node (term 0 requests) read it.
			rpc.Respond(&raft.RequestPreVoteResponse{RPCHeader: g.header(), Term: g.term()}, nil)
			return true
		}
	case *raft.TimeoutNowRequest:
		// A transfer makes this node a candidate in term+1 without a pre-vote.
		if !g.allowsCandidacy() {
			g.log.Info("vote guard refused a leadership transfer", "term", g.term(), "floor", g.floor())
			rpc.Respond(&raft.TimeoutNowResponse{RPCHeader: g.header()}, errVoteGuard)
			return true
		}
	}
	return false
}

// RequestVote sends this node's vote request unless its candidacy is in
// a guarded term; then it answers as a refusing peer would, with the
// floor as the newer term so Raft moves past it.
func (g *voteGuard) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if !g.allowsVote(args.Term) {
		*resp = raft.RequestVoteResponse{RPCHeader: g.header(), Term: max(args.Term, g.floor())}
		return nil
	}
	return g.NetworkTransport.RequestVote(id, target, args, resp)
}

// RequestPreVote: as RequestVote, for the pre-vote that precedes it.
func (g *voteGuard) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if !g.allowsVote(args.Term) {
		*resp = raft.RequestPreVoteResponse{RPCHeader: g.header(), Term: max(args.Term, g.floor())}
		return nil
	}
	return g.NetworkTransport.RequestPreVote(id, target, args, resp)
}

func (g *voteGuard) header() raft.RPCHeader {
	return raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersionMax,
		ID:              []byte(g.localID),
		Addr:            g.EncodePeer(g.localID, g.LocalAddr()),
	}
}

// allowsVote reports whether this node may vote (or stand) in term.
func (g *voteGuard) allowsVote(term uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.off || (!g.state.Pending && term > g.state.Floor)
}

// allowsCandidacy reports whether a candidacy now (in Raft's term + 1)
// is past the floor.
func (g *voteGuard) allowsCandidacy() bool {
	return g.allowsVote(g.term() + 1)
}

func (g *voteGuard) pending() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state.Pending && !g.off
}

func (g *voteGuard) floor() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state.Floor
}

// settle records that every peer answered, floor being the highest term,
// and returns the floor in force (never lower than an earlier one).
func (g *voteGuard) settle(floor uint64) (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := guardState{Floor: max(floor, g.state.Floor)}
	if err := writeGuardState(g.path, st); err != nil {
		return 0, err // stays pending: refusing votes is safe
	}
	g.state = st
	return st.Floor, nil
}

// finish turns the guard off once Raft's own term is past the floor (a
// durable fact: Raft persists a term before using it) and removes the file.
func (g *voteGuard) finish() error {
	g.mu.Lock()
	g.off = true
	g.mu.Unlock()
	if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("broker: remove vote guard: %w", err)
	}
	return syncDir(filepath.Dir(g.path))
}

// runRejoin is the guarded node's goroutine: it learns every peer's term,
// bootstraps a brand-new group if asked to, and turns the guard off once
// Raft's term is past the floor. Stopped through stopCh.
func (n *Node) runRejoin() {
	defer n.wg.Done()
	g := n.guard
	floor := g.floor()
	if g.pending() {
		terms, ok := n.probePeers()
		if !ok {
			return
		}
		var err error
		if floor, err = g.settle(slices.Max(append(terms, 0))); err != nil {
			n.log.Error("vote guard: cannot record the peers' terms; still refusing votes", "error", err)
			return
		}
		n.log.Info("vote guard: every peer answered", "floor", floor)
		switch {
		case g.fresh && n.cfg.Bootstrap && floor == 0:
			n.bootstrapGroup()
		case g.fresh && floor > 0 && n.cfg.Join:
			n.log.Info("joining the existing group as a replica: the leader adds this node; voting only in terms after the floor", "floor", floor)
		case g.fresh && floor > 0:
			n.log.Warn("data directory is empty but the group already exists: rejoining as a replica, voting only in terms after the floor",
				"floor", floor)
		}
	}
	tick := time.NewTicker(guardPollEvery)
	defer tick.Stop()
	for n.raft.CurrentTerm() <= floor {
		select {
		case <-n.stopCh:
			return
		case <-tick.C:
		}
	}
	if err := g.finish(); err != nil {
		n.log.Warn("vote guard: turned off but its file stays", "error", err)
	}
	n.log.Info("vote guard off: raft's term is past the floor", "term", n.raft.CurrentTerm(), "floor", floor)
}

// probePeers asks every other peer for its current term, retrying until
// each has answered (or sent this node an RPC with its term, see
// observe), and returns the answers (false if the node stopped).
// The probe is a pre-vote request for term 0: Raft answers it in every
// state with its current term and changes nothing.
func (n *Node) probePeers() ([]uint64, bool) {
	missing := map[string]string{}
	for _, p := range n.cfg.Peers {
		if p.ID != n.cfg.NodeID {
			missing[p.ID] = p.Addr
		}
	}
	if len(n.cfg.Peers) == 0 && !n.cfg.Join {
		n.log.Warn("vote guard: no Peers configured, so past votes cannot be bounded; voting at once")
	}
	var terms []uint64
	delay, lastLog := probeFirstDelay, time.Now()
	for len(missing) > 0 {
		for id, addr := range missing {
			if term, ok := n.guard.observed(id); ok {
				terms = append(terms, term)
				delete(missing, id)
				continue
			}
			term, err := n.probeTerm(id, addr)
			if err != nil {
				n.log.Debug("vote guard: peer did not answer", "peer", id, "error", err)
				continue
			}
			terms = append(terms, term)
			delete(missing, id)
		}
		if len(missing) == 0 {
			break
		}
		if time.Since(lastLog) >= probeLogEvery {
			n.log.Info("vote guard: waiting for every peer's term before voting", "missing", slices.Sorted(maps.Keys(missing)))
			lastLog = time.Now()
		}
		select {
		case <-n.stopCh:
			return nil, false
		case <-time.After(delay): // retry pacing
		}
		delay = min(2*delay, probeMaxDelay)
	}
	return terms, true
}

func (n *Node) probeTerm(id, addr string) (uint64, error) {
	self := raft.ServerID(n.cfg.NodeID)
	req := &raft.RequestPreVoteRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(self), Addr: n.trans.EncodePeer(self, n.trans.LocalAddr())},
		Term:      0,
	}
	var resp raft.RequestPreVoteResponse
	if err := n.trans.RequestPreVote(raft.ServerID(id), raft.ServerAddress(addr), req, &resp); err != nil {
		return 0, err
	}
	return resp.Term, nil
}

// bootstrapGroup writes the initial configuration of a brand-new group:
// every peer answered term 0. Peers doing the same write the same
// configuration; one that already received it from a peer refuses.
func (n *Node) bootstrapGroup() {
	var conf raft.Configuration
	for _, p := range n.cfg.Peers {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr),
		})
	}
	err := n.raft.BootstrapCluster(conf).Error()
	switch {
	case err == nil:
		n.log.Info("bootstrapped group", "peers", len(conf.Servers))
	case errors.Is(err, raft.ErrCantBootstrap):
		n.log.Info("not bootstrapping: the configuration already arrived from a peer")
	default:
		n.log.Error("bootstrap failed", "error", err)
	}
}
