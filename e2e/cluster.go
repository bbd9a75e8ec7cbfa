package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/namesrv"
)

// Options shapes an in-process cluster.
type Options struct {
	// Nodes is the group size; default 3.
	Nodes int
	// Groups is the number of broker groups, named broker-a, broker-b,
	// ...; default 1. Node IDs run on across groups: with three nodes a
	// group, broker-a has n0-n2 and broker-b n3-n5 (see GroupOf).
	Groups int
	// NameServers is the number of NameServers, each known to every
	// node; default 1.
	NameServers int
	// Broker, if set, adjusts each node's config before start.
	Broker func(*broker.Config)
	// Namesrv, if set, adjusts each NameServer's config.
	Namesrv func(*namesrv.Config)
}

// Cluster is NameServers and broker groups running in this process on
// 127.0.0.1 with real TCP transports and t.TempDir() data, in the spirit of
// hashicorp/raft's testing.go. Everything is stopped by t.Cleanup.
type Cluster struct {
	t      testing.TB
	ncfg   namesrv.Config // without Listener
	groups []string

	mu       sync.Mutex
	namesrvs []*runningNamesrv // nil entries are stopped
	nsAddrs  []string
	cfgs     map[string]broker.Config
	nodes    map[string]*broker.Node
	ids      []string
}

type runningNamesrv struct {
	srv    *namesrv.Server
	cancel context.CancelFunc
	done   chan error
}

// StartCluster starts the NameServers and broker groups and waits until
// every group has a serving leader.
func StartCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	logger := TestLogger(t)
	c := &Cluster{t: t, cfgs: map[string]broker.Config{}, nodes: map[string]*broker.Node{}}
	c.ncfg = namesrv.DefaultConfig()
	c.ncfg.Logger = logger.Named("namesrv")
	if opts.Namesrv != nil {
		opts.Namesrv(&c.ncfg)
	}
	// The first TempDir registers the removal of every data dir; doing it
	// before t.Cleanup(shutdown) makes it run after the nodes stopped
	// (cleanups run last first), not while they still write.
	_ = t.TempDir()
	t.Cleanup(c.shutdown)
	for i := 0; i < max(opts.NameServers, 1); i++ {
		c.namesrvs = append(c.namesrvs, nil)
		c.nsAddrs = append(c.nsAddrs, "")
		c.startNamesrv(i, listen(t, "127.0.0.1:0"))
	}
	for g := 0; g < max(opts.Groups, 1); g++ {
		c.startGroup(fmt.Sprintf("broker-%c", 'a'+g), g*opts.Nodes, opts, logger)
	}
	for _, g := range c.groups {
		c.GroupLeaderID(g, 15*time.Second)
	}
	return c
}

// startNamesrv starts NameServer i on ln.
func (c *Cluster) startNamesrv(i int, ln net.Listener) {
	cfg := c.ncfg
	cfg.Listener = ln
	ns, err := namesrv.New(cfg)
	if err != nil {
		c.t.Fatalf("start namesrv %d: %v", i, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &runningNamesrv{srv: ns, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- ns.Run(ctx) }() // ends with cancel (StopNamesrv or cleanup)
	c.mu.Lock()
	c.namesrvs[i], c.nsAddrs[i] = rn, ns.Addr()
	c.mu.Unlock()
}

// startGroup starts one broker group whose node IDs begin at n<first>.
func (c *Cluster) startGroup(group string, first int, opts Options, logger hclog.Logger) {
	t := c.t
	var peers []broker.Peer
	raftLns, clientLns := map[string]net.Listener{}, map[string]net.Listener{}
	for i := first; i < first+opts.Nodes; i++ {
		id := fmt.Sprintf("n%d", i)
		raftLns[id], clientLns[id] = listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
		peers = append(peers, broker.Peer{ID: id, Addr: raftLns[id].Addr().String()})
		c.ids = append(c.ids, id)
	}
	for _, p := range peers {
		cfg := broker.Config{
			NodeID: p.ID, Group: group, DataDir: t.TempDir(),
			RaftBind: p.Addr, RaftListener: raftLns[p.ID],
			ClientListen: clientLns[p.ID].Addr().String(), ClientListener: clientLns[p.ID],
			Peers: peers, Bootstrap: true, NameServers: c.NamesrvAddrs(),
			Logger: logger.Named(p.ID),
		}
		if opts.Broker != nil {
			opts.Broker(&cfg)
		}
		c.cfgs[p.ID] = cfg
		n, err := broker.New(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", p.ID, err)
		}
		startRun(n)
		c.mu.Lock()
		c.nodes[p.ID] = n
		c.mu.Unlock()
	}
	c.groups = append(c.groups, c.cfgs[peers[0].ID].Group) // as opts.Broker left it
}

// startRun starts n's loops and listeners. Run returns once the node is
// stopped (every test stops its nodes) and logs a failed listener itself.
func startRun(n *broker.Node) {
	go func() { _ = n.Run(context.Background()) }()
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	Eventually(t, 5*time.Second, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	nodes := c.nodes
	c.nodes = map[string]*broker.Node{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for id, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := n.Close(ctx); err != nil {
				c.t.Logf("close %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	for i := range c.nsAddrs {
		c.StopNamesrv(i)
	}
}

// NamesrvAddr is the first NameServer's address.
func (c *Cluster) NamesrvAddr() string { return c.NamesrvAddrs()[0] }

// NamesrvAddrs lists every NameServer's address, running or not.
func (c *Cluster) NamesrvAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.nsAddrs...)
}

// StopNamesrv stops NameServer i (its routes are lost, as in a crash:
// a NameServer keeps nothing on disk).
func (c *Cluster) StopNamesrv(i int) {
	c.mu.Lock()
	rn := c.namesrvs[i]
	c.namesrvs[i] = nil
	c.mu.Unlock()
	if rn == nil {
		return
	}
	rn.cancel()
	if err := <-rn.done; err != nil {
		c.t.Logf("namesrv %d: %v", i, err)
	}
}

// RestartNamesrv starts a stopped NameServer i again on its old address,
// knowing nothing until the brokers' next heartbeats.
func (c *Cluster) RestartNamesrv(i int) {
	c.t.Helper()
	c.startNamesrv(i, listen(c.t, c.NamesrvAddrs()[i]))
}

// NodeIDs lists every node ID, running or not (of every group).
func (c *Cluster) NodeIDs() []string { return append([]string(nil), c.ids...) }

// Groups lists the broker groups (broker-a, broker-b, ...).
func (c *Cluster) Groups() []string { return append([]string(nil), c.groups...) }

// GroupOf is the broker group of node id.
func (c *Cluster) GroupOf(id string) string { return c.cfgs[id].Group }

// GroupNodeIDs lists the node IDs of group, running or not.
func (c *Cluster) GroupNodeIDs(group string) []string {
	var out []string
	for _, id := range c.ids {
		if c.cfgs[id].Group == group {
			out = append(out, id)
		}
	}
	return out
}

// Node returns a running node (nil if stopped).
func (c *Cluster) Node(id string) *broker.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// ClientAddr is a node's client address (stable across restarts).
func (c *Cluster) ClientAddr(id string) string { return c.cfgs[id].ClientListen }

// Live returns the running nodes.
func (c *Cluster) Live() []*broker.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*broker.Node
	for _, id := range c.ids {
		if n := c.nodes[id]; n != nil {
			out = append(out, n)
		}
	}
	return out
}

// LeaderID waits until a running node of the first group leads and
// serves writes, and returns its ID.
func (c *Cluster) LeaderID(timeout time.Duration) string {
	c.t.Helper()
	return c.GroupLeaderID(c.groups[0], timeout)
}

// GroupLeaderID waits until a running node of group leads and serves
// writes, and returns its ID.
func (c *Cluster) GroupLeaderID(group string, timeout time.Duration) string {
	c.t.Helper()
	var id string
	Eventually(c.t, timeout, func() error {
		for _, n := range c.Live() {
			if st := n.Status(); st.Serving && st.Group == group {
				id = st.NodeID
				return nil
			}
		}
		return fmt.Errorf("no serving leader in %s", group)
	})
	return id
}

// Leader waits for and returns the serving leader.
func (c *Cluster) Leader(timeout time.Duration) *broker.Node {
	c.t.Helper()
	return c.Node(c.LeaderID(timeout))
}

// Kill stops a node abruptly (no leadership transfer, no final sync, no
// NameServer unregistration), as a crash would.
func (c *Cluster) Kill(id string) {
	if n := c.take(id); n != nil {
		n.Abort()
	}
}

// Stop closes a node gracefully (leadership transfer first).
func (c *Cluster) Stop(id string) {
	if n := c.take(id); n != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			c.t.Logf("close %s: %v", id, err)
		}
	}
}

func (c *Cluster) take(id string) *broker.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[id]
	delete(c.nodes, id)
	return n
}

// Wipe gives a stopped node an empty data directory for its next Restart.
func (c *Cluster) Wipe(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.cfgs[id]
	cfg.DataDir = c.t.TempDir()
	c.cfgs[id] = cfg
}

// Restart starts a stopped node again on its old addresses and data.
func (c *Cluster) Restart(id string) *broker.Node {
	c.t.Helper()
	c.mu.Lock()
	cfg := c.cfgs[id]
	c.mu.Unlock()
	cfg.RaftListener = listen(c.t, cfg.RaftBind)
	cfg.ClientListener = listen(c.t, cfg.ClientListen)
	n, err := broker.New(cfg)
	if err != nil {
		c.t.Fatalf("restart %s: %v", id, err)
	}
	startRun(n)
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

// Eventually polls f until it returns nil, failing t after timeout.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	backoff := time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		time.Sleep(backoff) // polling interval, not a wait for state
		backoff = min(backoff*2, 50*time.Millisecond)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestLogger logs through t (shown only for failing tests) at Warn, or at
// the level named by RMQ_TEST_LOG.
func TestLogger(t testing.TB) hclog.Logger {
	level := hclog.Warn
	if l := os.Getenv("RMQ_TEST_LOG"); l != "" {
		level = hclog.LevelFromString(l)
	}
	return hclog.New(&hclog.LoggerOptions{Name: "e2e", Level: level, Output: testWriter{t}})
}
