package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/wire"
)

// singleNodeConfig is a one-node group with a client listener.
func singleNodeConfig(t *testing.T) Config {
	t.Helper()
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		NodeID: "n0", DataDir: t.TempDir(), RaftBind: rl.Addr().String(), RaftListener: rl,
		Peers: []Peer{{ID: "n0", Addr: rl.Addr().String()}}, Bootstrap: true,
		ClientListener: cl, Logger: testLogger(t),
	}
}

// TestRunLifecycle: New builds, Run starts the loops and the listeners
// and returns when its ctx is done while the node keeps serving until
// Close; Run runs once, and not after the node stopped.
func TestRunLifecycle(t *testing.T) {
	n, err := New(singleNodeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	eventually(t, 10*time.Second, func() error {
		if !n.Status().Serving {
			return errors.New("not serving yet")
		}
		return nil
	})
	var st wire.NodeStatus
	conn, err := wire.Dial(t.Context(), n.ClientAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Call(t.Context(), wire.CodeNodeStatus, wire.Empty{}, &st); err != nil || st.Role != "leader" {
		t.Fatalf("node status over the rmq listener: %+v, %v; want role leader", st, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after its ctx ended: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its ctx ending")
	}
	// The node still serves: the batcher, the leader session and the
	// listener run until Close.
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if _, err := n.CreateTopic(wctx, TopicSpec{Name: "t", Queues: 1}); err != nil {
		t.Fatal(err)
	}
	if res, err := n.Send(wctx, []*fsm.Message{{Topic: "t", ID: []byte("m"), Body: []byte("x")}}); err != nil || res[0].Err != nil {
		t.Fatalf("send after Run returned: %v %+v", err, res)
	}
	if err := conn.Call(wctx, wire.CodeNodeStatus, wire.Empty{}, &st); err != nil {
		t.Fatalf("rmq listener after Run returned: %v", err)
	}

	if err := n.Run(context.Background()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("second Run: %v, want ErrInvalidArgument", err)
	}
	if err := n.Close(wctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}
}

// TestShutdownWithoutRun: a node that was built but never run stops
// cleanly, and cannot be run afterwards.
func TestShutdownWithoutRun(t *testing.T) {
	n, err := New(singleNodeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := n.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Shutdown: %v, want ErrClosed", err)
	}
}

// testClock is a settable clock for Config.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestLeaderServicesOnInjectedClock: the leader-only lock janitor and
// member expiry judge time by Config.Now, so moving the clock past
// wire.LockTrust releases a departed member's lock at the janitor's next
// tick (about a second), not 30 real seconds later.
func TestLeaderServicesOnInjectedClock(t *testing.T) {
	clk := &testClock{now: time.Now()}
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.Now = clk.Now })
	createTopic(t, c, "t", 4)
	n := c.leader(10 * time.Second)
	if diff := cmp.Diff(lockQueuesOf(3), lockVia(t, n, "c", 3)); diff != "" {
		t.Fatalf("c's lock (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(lockQueuesOf(1), lockVia(t, n, "a", 1)); diff != "" {
		t.Fatalf("a's lock (-want +got):\n%s", diff)
	}
	n.groups.leave("g", "c") // c departs without unlocking
	clk.Add(wire.LockTrust + time.Second)
	lockVia(t, n, "a", 1) // a renews: it stays live on the moved clock
	eventually(t, 5*time.Second, func() error {
		if got := owners(n); !cmp.Equal(got, map[uint32]string{1: "a"}) {
			return fmt.Errorf("owners %v, want only a's queue 1 (the janitor releases c's)", got)
		}
		return nil
	})
	// Member expiry runs on the same clock: a stops heartbeating.
	clk.Add(n.cfg.MemberTimeout + time.Second)
	if g := n.ListGroups(); len(g) != 0 {
		t.Fatalf("groups after MemberTimeout on the moved clock: %v, want none (no offsets, no live members)", g)
	}
}

// A listener whose address is taken fails New with its name and address,
// instead of a bare bind error.
func TestListenerBindErrorNamesIt(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := singleNodeConfig(t)
	cfg.ClientListener.Close()
	cfg.ClientListener, cfg.ClientListen = nil, taken.Addr().String()
	_, err = New(cfg)
	want := "broker: rmq listen " + taken.Addr().String() + ": "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("New: got %v, want an error starting %q", err, want)
	}
}
