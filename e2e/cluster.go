package e2e

import (
	"context"
	"errors"
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
	// Broker, if set, adjusts each node's config before start.
	Broker func(*broker.Config)
	// Namesrv, if set, adjusts the NameServer's config.
	Namesrv func(*namesrv.Config)
}

// Cluster is a NameServer and one broker group running in this process on
// 127.0.0.1 with real TCP transports and t.TempDir() data, in the spirit of
// hashicorp/raft's testing.go. Everything is stopped by t.Cleanup.
type Cluster struct {
	t      testing.TB
	ns     *namesrv.Server
	cancel context.CancelFunc
	nsDone chan error

	mu    sync.Mutex
	cfgs  map[string]broker.Config
	nodes map[string]*broker.Node
	ids   []string
}

// StartCluster starts a NameServer and a broker group and waits until the
// group has a serving leader that the NameServer routes to.
func StartCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	logger := TestLogger(t)
	c := &Cluster{t: t, cfgs: map[string]broker.Config{}, nodes: map[string]*broker.Node{}}

	nsln := listen(t, "127.0.0.1:0")
	ncfg := namesrv.DefaultConfig()
	ncfg.Listener = nsln
	ncfg.Logger = logger.Named("namesrv")
	if opts.Namesrv != nil {
		opts.Namesrv(&ncfg)
	}
	ns, err := namesrv.New(ncfg)
	if err != nil {
		t.Fatalf("start namesrv: %v", err)
	}
	c.ns = ns
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.nsDone = cancel, make(chan error, 1)
	go func() { c.nsDone <- ns.Run(ctx) }() // ends with cancel in cleanup
	// The first TempDir registers the removal of every data dir; doing it
	// before t.Cleanup(shutdown) makes it run after the nodes stopped
	// (cleanups run last first), not while they still write.
	_ = t.TempDir()
	t.Cleanup(c.shutdown)

	var peers []broker.Peer
	raftLns, clientLns := map[string]net.Listener{}, map[string]net.Listener{}
	for i := 0; i < opts.Nodes; i++ {
		id := fmt.Sprintf("n%d", i)
		raftLns[id], clientLns[id] = listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
		peers = append(peers, broker.Peer{ID: id, Addr: raftLns[id].Addr().String()})
		c.ids = append(c.ids, id)
	}
	for _, p := range peers {
		cfg := broker.Config{
			NodeID: p.ID, DataDir: t.TempDir(),
			RaftBind: p.Addr, RaftListener: raftLns[p.ID],
			ClientListen: clientLns[p.ID].Addr().String(), ClientListener: clientLns[p.ID],
			Peers: peers, Bootstrap: true, NameServers: []string{ns.Addr()},
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
		c.nodes[p.ID] = n
	}
	c.LeaderID(15 * time.Second)
	return c
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
	c.cancel()
	if err := <-c.nsDone; err != nil {
		c.t.Logf("namesrv: %v", err)
	}
}

// NamesrvAddr is the NameServer's address.
func (c *Cluster) NamesrvAddr() string { return c.ns.Addr() }

// NodeIDs lists the group's node IDs, running or not.
func (c *Cluster) NodeIDs() []string { return append([]string(nil), c.ids...) }

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

// LeaderID waits until a running node leads, serves writes and is what
// the NameServer routes to, and returns its ID.
func (c *Cluster) LeaderID(timeout time.Duration) string {
	c.t.Helper()
	var id string
	Eventually(c.t, timeout, func() error {
		for _, n := range c.Live() {
			if st := n.Status(); st.Serving {
				id = st.NodeID
				return nil
			}
		}
		return errors.New("no serving leader")
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
