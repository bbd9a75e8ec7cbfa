package namesrv

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/wire"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: testWriter{t}, Level: hclog.Debug})
}

// fakeClock is an injected clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// startServer runs a NameServer on 127.0.0.1:0 until the test ends.
// configure may adjust the config (nil keeps the test defaults).
func startServer(t *testing.T, configure func(*Config)) *Server {
	t.Helper()
	s := newTestServer(t, configure)
	runServer(t, s)
	return s
}

func newTestServer(t *testing.T, configure func(*Config)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listener = ln
	cfg.Logger = testLogger(t)
	if configure != nil {
		configure(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return s
}

// runServer runs s until the test ends and checks Run's result.
func runServer(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func dial(t *testing.T, s *Server) *wire.Conn {
	t.Helper()
	c, err := wire.Dial(context.Background(), s.Addr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// status is a node's registration with addresses derived from its id.
func status(group, id, role string, term uint64) wire.NodeStatus {
	return wire.NodeStatus{
		Cluster: "c1", Group: group, NodeID: id, Role: role, Term: term,
		Addr: group + "-" + id + ":10911", RaftAddr: group + "-" + id + ":10912",
	}
}

func regReq(st wire.NodeStatus, topics ...wire.TopicInfo) *wire.RegisterBrokerRequest {
	return &wire.RegisterBrokerRequest{Node: st, Topics: topics, HeartbeatMillis: 1000}
}

func register(t *testing.T, c *wire.Conn, req *wire.RegisterBrokerRequest) {
	t.Helper()
	if err := c.Call(callCtx(t), wire.CodeRegisterBroker, req, nil); err != nil {
		t.Fatalf("register %s/%s: %v", req.Node.Group, req.Node.NodeID, err)
	}
}

func route(t *testing.T, c *wire.Conn, topic string, def bool) (wire.RouteInfo, error) {
	t.Helper()
	var ri wire.RouteInfo
	err := c.Call(callCtx(t), wire.CodeGetRoute, wire.RouteRequest{Topic: topic, Default: def}, &ri)
	return ri, err
}

func mustRoute(t *testing.T, c *wire.Conn, topic string) wire.RouteInfo {
	t.Helper()
	ri, err := route(t, c, topic, false)
	if err != nil {
		t.Fatalf("route %q: %v", topic, err)
	}
	return ri
}

func cluster(t *testing.T, c *wire.Conn) wire.ClusterInfo {
	t.Helper()
	var ci wire.ClusterInfo
	if err := c.Call(callCtx(t), wire.CodeGetCluster, wire.Empty{}, &ci); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	return ci
}

// nodeIDs lists a cluster answer as "group/node" strings.
func nodeIDs(ci wire.ClusterInfo) []string {
	var ids []string
	for _, n := range ci.Nodes {
		ids = append(ids, n.Group+"/"+n.NodeID)
	}
	return ids
}

func wantCode(t *testing.T, err error, code uint16) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) {
		t.Fatalf("got error %v, want a *wire.Error with code %d", err, code)
	}
	if we.Code != code {
		t.Fatalf("got code %d (%v), want %d", we.Code, err, code)
	}
}

// eventually polls f until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.After(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("condition not met within %s: %v", timeout, err)
		case <-tick.C:
		}
	}
}
