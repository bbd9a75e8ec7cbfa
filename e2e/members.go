package e2e

import (
	"github.com/rmq-dev/rmq/broker"
)

// StartJoiner starts a new node id that joins the running group (Join set,
// no bootstrap) on fresh addresses and data, configured like the group's
// first node otherwise, with the group's current Raft members as Peers. It
// replicates nothing until the leader adds it (client.Admin.AddNode);
// Restart, Stop, Kill and Wipe work on it as on the others.
func (c *Cluster) StartJoiner(id string) *broker.Node {
	c.t.Helper()
	c.mu.Lock()
	cfg := c.cfgs[c.ids[0]]
	c.mu.Unlock()
	raftLn, clientLn := listen(c.t, "127.0.0.1:0"), listen(c.t, "127.0.0.1:0")
	cfg.NodeID, cfg.DataDir = id, c.t.TempDir()
	cfg.RaftBind, cfg.RaftListener = raftLn.Addr().String(), raftLn
	cfg.ClientListen, cfg.ClientListener = clientLn.Addr().String(), clientLn
	cfg.ClientAdvertise, cfg.RaftAdvertise = "", ""
	cfg.Bootstrap, cfg.Join = false, true
	cfg.Peers = c.currentPeers()
	cfg.Logger = TestLogger(c.t).Named(id)
	n, err := broker.New(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	startRun(n)
	c.mu.Lock()
	c.cfgs[id] = cfg
	c.nodes[id] = n
	c.ids = append(c.ids, id)
	c.mu.Unlock()
	return n
}

// RaftAddr is a node's Raft address (stable across restarts).
func (c *Cluster) RaftAddr(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfgs[id].RaftBind
}

// SyncPeers sets a node's Peers, for its next Restart, to the group's
// current Raft members (after membership changes, as an operator updates
// --peers): a node restarting without Raft state asks each for its term.
func (c *Cluster) SyncPeers(id string) {
	peers := c.currentPeers()
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.cfgs[id]
	cfg.Peers = peers
	c.cfgs[id] = cfg
}

// currentPeers is the latest Raft configuration of a running node that
// knows one (the initial peers if none does).
func (c *Cluster) currentPeers() []broker.Peer {
	for _, n := range c.Live() {
		ms, _, err := n.Members()
		if err != nil || len(ms) == 0 {
			continue
		}
		var peers []broker.Peer
		for _, m := range ms {
			peers = append(peers, broker.Peer{ID: m.ID, Addr: m.Addr})
		}
		return peers
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfgs[c.ids[0]].Peers
}
