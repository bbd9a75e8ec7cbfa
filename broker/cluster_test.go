package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testCluster is an in-process group of brokers on 127.0.0.1 with real TCP
// Raft transports and t.TempDir() data, modelled on hashicorp/raft's
// testing.go cluster helper. Every node is stopped by t.Cleanup.
type testCluster struct {
	t     testing.TB
	mu    sync.Mutex
	cfgs  map[string]Config
	nodes map[string]*Node
	ids   []string
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) hclog.Logger {
	level := hclog.Warn
	if l := os.Getenv("RMQ_TEST_LOG"); l != "" {
		level = hclog.LevelFromString(l)
	}
	var out io.Writer = testWriter{t}
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: level, Output: out})
}

func newTestCluster(t testing.TB, size int, mutate func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, cfgs: map[string]Config{}, nodes: map[string]*Node{}}
	var peers []Peer
	lns := map[string]net.Listener{}
	for i := 0; i < size; i++ {
		id := fmt.Sprintf("n%d", i)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id] = ln
		peers = append(peers, Peer{ID: id, Addr: ln.Addr().String()})
		c.ids = append(c.ids, id)
	}
	logger := testLogger(t)
	for _, p := range peers {
		cfg := Config{
			NodeID:       p.ID,
			DataDir:      t.TempDir(),
			RaftBind:     p.Addr,
			RaftListener: lns[p.ID],
			Peers:        peers,
			Bootstrap:    true,
			Logger:       logger,
		}
		if mutate != nil {
			mutate(&cfg)
		}
		c.cfgs[p.ID] = cfg
		n, err := New(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", p.ID, err)
		}
		run(n)
		c.nodes[p.ID] = n
	}
	t.Cleanup(c.closeAll)
	return c
}

func (c *testCluster) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var wg sync.WaitGroup
	for id, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := n.Close(ctx); err != nil {
				c.t.Logf("close %s: %v", id, err)
			}
		}()
		delete(c.nodes, id)
	}
	wg.Wait()
}

// node returns a running node by ID (nil if stopped).
func (c *testCluster) node(id string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *testCluster) live() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, id := range c.ids {
		if n := c.nodes[id]; n != nil {
			out = append(out, n)
		}
	}
	return out
}

// leader waits until one live node leads and serves writes.
func (c *testCluster) leader(timeout time.Duration) *Node {
	c.t.Helper()
	var found *Node
	eventually(c.t, timeout, func() error {
		for _, n := range c.live() {
			if n.Status().Serving {
				found = n
				return nil
			}
		}
		return errors.New("no serving leader")
	})
	return found
}

// kill stops a node abruptly (no leadership transfer, no final sync).
func (c *testCluster) kill(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n != nil {
		n.Abort()
	}
}

// stop closes a node gracefully.
func (c *testCluster) stop(id string) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			c.t.Logf("close %s: %v", id, err)
		}
	}
}

// run starts n's loops and listeners. Run returns once the node is
// stopped (closeAll stops every node) and logs a failed listener itself.
func run(n *Node) {
	go func() { _ = n.Run(context.Background()) }()
}

// start (re)starts a stopped node on its old address and data directory.
func (c *testCluster) start(id string) *Node {
	c.t.Helper()
	cfg := c.cfgs[id]
	var ln net.Listener
	eventually(c.t, 5*time.Second, func() error {
		var err error
		ln, err = net.Listen("tcp", cfg.RaftBind)
		return err
	})
	cfg.RaftListener = ln
	n, err := New(cfg)
	if err != nil {
		c.t.Fatalf("restart %s: %v", id, err)
	}
	run(n)
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

// wipe replaces a stopped node's data directory with an empty one.
func (c *testCluster) wipe(id string) {
	cfg := c.cfgs[id]
	cfg.DataDir = c.t.TempDir()
	c.cfgs[id] = cfg
}

// waitApplied waits until every live node's state machine has applied the
// command entry at index (raft's no-op and barrier entries never reach the
// state machine, so compare with a leader's StateIndex).
func (c *testCluster) waitApplied(index uint64, timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, func() error {
		for _, n := range c.live() {
			if st := n.Status(); st.StateIndex < index {
				return fmt.Errorf("%s applied %d, want %d", st.NodeID, st.StateIndex, index)
			}
		}
		return nil
	})
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := poll(timeout, f); err != nil {
		t.Fatalf("condition not met after %s: %v", timeout, err)
	}
}

// poll is eventually without failing the test: it returns f's last error
// once the deadline passes, or nil.
func poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	backoff := time.Millisecond
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(backoff) // polling interval, not a wait for state
		if backoff < 50*time.Millisecond {
			backoff *= 2
		}
	}
}
