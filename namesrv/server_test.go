package namesrv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rmq-dev/rmq/wire"
)

func nodeRoute(group, id string) wire.NodeRoute {
	return wire.NodeRoute{NodeID: id, Addr: group + "-" + id + ":10911"}
}

func ptr[T any](v T) *T { return &v }

// TestRegisterRouteAndFailover registers a three-node group over three
// connections, then moves leadership and checks routes and staleness.
func TestRegisterRouteAndFailover(t *testing.T) {
	s := startServer(t, nil)
	n0, n1, n2, q := dial(t, s), dial(t, s), dial(t, s), dial(t, s)
	orders := topic("orders", 4)
	register(t, n0, regReq(status("ga", "n0", "leader", 1), orders))
	register(t, n1, regReq(status("ga", "n1", "follower", 1), orders))
	register(t, n2, regReq(status("ga", "n2", "follower", 1), orders))

	want := wire.RouteInfo{Topic: "orders", Groups: []wire.GroupRoute{{
		Group: "ga", Cluster: "c1", Queues: 4, Perm: 6, Term: 1, Leader: ptr(nodeRoute("ga", "n0")),
		Followers: []wire.NodeRoute{nodeRoute("ga", "n1"), nodeRoute("ga", "n2")},
	}}}
	if diff := cmp.Diff(want, mustRoute(t, q, "orders")); diff != "" {
		t.Fatalf("route (-want +got):\n%s", diff)
	}
	ci := cluster(t, q)
	if got, want := nodeIDs(ci), []string{"ga/n0", "ga/n1", "ga/n2"}; !slices.Equal(got, want) {
		t.Fatalf("cluster: got %v, want %v", got, want)
	}
	if diff := cmp.Diff(status("ga", "n0", "leader", 1), ci.Nodes[0].NodeStatus); diff != "" {
		t.Errorf("cluster node status (-want +got):\n%s", diff)
	}

	// n1 wins term 2 and registers at once: routed before anyone else speaks.
	register(t, n1, regReq(status("ga", "n1", "leader", 2), orders))
	want.Groups[0].Term = 2
	want.Groups[0].Leader = ptr(nodeRoute("ga", "n1"))
	want.Groups[0].Followers = []wire.NodeRoute{nodeRoute("ga", "n2")} // n0 is a stale leader
	if diff := cmp.Diff(want, mustRoute(t, q, "orders")); diff != "" {
		t.Fatalf("route after failover (-want +got):\n%s", diff)
	}

	// The old leader has not noticed and keeps heartbeating as leader of term 1.
	register(t, n0, regReq(status("ga", "n0", "leader", 1), topic("orders", 99)))
	if diff := cmp.Diff(want, mustRoute(t, q, "orders")); diff != "" {
		t.Fatalf("route with a stale leader (-want +got):\n%s", diff)
	}
	stale := map[string]bool{}
	for _, n := range cluster(t, q).Nodes {
		stale[n.NodeID] = n.StaleLeader
	}
	if diff := cmp.Diff(map[string]bool{"n0": true, "n1": false, "n2": false}, stale); diff != "" {
		t.Fatalf("stale flags (-want +got):\n%s", diff)
	}

	// It notices, steps down and is a follower again.
	register(t, n0, regReq(status("ga", "n0", "follower", 2), orders))
	want.Groups[0].Followers = []wire.NodeRoute{nodeRoute("ga", "n0"), nodeRoute("ga", "n2")}
	if diff := cmp.Diff(want, mustRoute(t, q, "orders")); diff != "" {
		t.Fatalf("route after step-down (-want +got):\n%s", diff)
	}
}

func TestOnewayRegistration(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s)
	if err := c.Send(wire.CodeRegisterBroker, regReq(status("ga", "n0", "leader", 1), topic("t", 1))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if got := nodeIDs(cluster(t, c)); !slices.Equal(got, []string{"ga/n0"}) {
			return fmt.Errorf("cluster: got %v, want [ga/n0]", got)
		}
		return nil
	})
}

func TestExpiryAfterMissedHeartbeats(t *testing.T) {
	clk := newFakeClock()
	s := startServer(t, func(c *Config) {
		c.Now = clk.Now
		c.MinExpiry = time.Second
		c.SweepInterval = time.Hour // the test sweeps by hand
	})
	c := dial(t, s)
	// HeartbeatMillis 1000 and ExpiryFactor 3: each node expires 3s after its last registration.
	register(t, c, regReq(status("ga", "n0", "leader", 1), topic("t", 1)))
	register(t, c, regReq(status("ga", "n1", "follower", 1), topic("t", 1)))
	clk.Advance(2 * time.Second)
	register(t, c, regReq(status("ga", "n1", "follower", 1), topic("t", 1)))
	clk.Advance(time.Second)
	s.sweep()
	if got := s.reg.nodeCount(); got != 2 {
		t.Fatalf("at 3s: got %d nodes, want 2 (expiry is after, not at, the limit)", got)
	}
	clk.Advance(time.Millisecond)
	s.sweep()
	if got := s.reg.nodeCount(); got != 1 {
		t.Fatalf("at 3.001s: got %d nodes, want 1", got)
	}
	ri := mustRoute(t, c, "t")
	if ri.Groups[0].Leader != nil {
		t.Errorf("got leader %+v, want none after the leader expired", ri.Groups[0].Leader)
	}
	if got := nodeIDs(cluster(t, c)); !slices.Equal(got, []string{"ga/n1"}) {
		t.Errorf("cluster: got %v, want [ga/n1]", got)
	}
	// Queries never show an overdue node, even before a sweep.
	clk.Advance(3 * time.Second)
	if got := nodeIDs(cluster(t, c)); len(got) != 0 {
		t.Errorf("cluster: got %v, want none", got)
	}
	_, err := route(t, c, "t", false)
	wantCode(t, err, wire.CodeTopicNotFound)
}

// TestSweeperExpiresIdleNodes checks the sweeper itself: nothing queries
// the server, and nodeCount does not expire anything.
func TestSweeperExpiresIdleNodes(t *testing.T) {
	s := startServer(t, func(c *Config) {
		c.MinExpiry = 20 * time.Millisecond
		c.SweepInterval = 5 * time.Millisecond
	})
	c := dial(t, s)
	req := regReq(status("ga", "n0", "leader", 1))
	req.HeartbeatMillis = 1
	register(t, c, req)
	eventually(t, 5*time.Second, func() error {
		if n := s.reg.nodeCount(); n != 0 {
			return fmt.Errorf("got %d nodes, want 0", n)
		}
		return nil
	})
}

func TestConnCloseRemovesNode(t *testing.T) {
	s := startServer(t, nil)
	a, b, q := dial(t, s), dial(t, s), dial(t, s)
	register(t, a, regReq(status("ga", "n0", "leader", 1), topic("t", 1)))
	register(t, b, regReq(status("ga", "n1", "follower", 1), topic("t", 1)))
	a.Close()
	eventually(t, 5*time.Second, func() error {
		if got := nodeIDs(cluster(t, q)); !slices.Equal(got, []string{"ga/n1"}) {
			return fmt.Errorf("cluster: got %v, want [ga/n1]", got)
		}
		return nil
	})
}

func TestReconnectedNodeSurvivesOldConnClose(t *testing.T) {
	s := newTestServer(t, nil)
	closed := make(chan struct{}, 8) // more than the connections this test opens
	s.afterClose = func(*wire.ServerConn) { closed <- struct{}{} }
	runServer(t, s)
	old, fresh, q := dial(t, s), dial(t, s), dial(t, s)
	register(t, old, regReq(status("ga", "n0", "leader", 1), topic("t", 1)))
	register(t, fresh, regReq(status("ga", "n0", "leader", 1), topic("t", 1))) // the node reconnected

	old.Close()
	waitClosed(t, closed)
	if got := nodeIDs(cluster(t, q)); !slices.Equal(got, []string{"ga/n0"}) {
		t.Fatalf("after the old connection closed: got %v, want [ga/n0]", got)
	}
	fresh.Close()
	waitClosed(t, closed)
	if got := nodeIDs(cluster(t, q)); len(got) != 0 {
		t.Fatalf("after the latest connection closed: got %v, want none", got)
	}
}

func waitClosed(t *testing.T, closed <-chan struct{}) {
	t.Helper()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not notice the connection close")
	}
}

func TestUnregister(t *testing.T) {
	s := startServer(t, nil)
	b, q := dial(t, s), dial(t, s)
	register(t, b, regReq(status("ga", "n0", "leader", 1), topic("t", 1)))
	register(t, b, regReq(status("ga", "n1", "follower", 1), topic("t", 1)))
	// A clean shutdown may come on another connection than the registration.
	unreg := func(group, id string) error {
		return q.Call(callCtx(t), wire.CodeUnregisterBroker, wire.UnregisterBrokerRequest{Group: group, NodeID: id}, nil)
	}
	if err := unreg("ga", "n0"); err != nil {
		t.Fatal(err)
	}
	if got := nodeIDs(cluster(t, q)); !slices.Equal(got, []string{"ga/n1"}) {
		t.Fatalf("cluster: got %v, want [ga/n1]", got)
	}
	if ri := mustRoute(t, q, "t"); ri.Groups[0].Leader != nil {
		t.Errorf("got leader %+v, want none", ri.Groups[0].Leader)
	}
	if err := unreg("ga", "nope"); err != nil {
		t.Errorf("unregister of an unknown node: got %v, want nil", err)
	}
	wantCode(t, unreg("", "n1"), wire.CodeInvalidArgument)
	wantCode(t, unreg("ga", ""), wire.CodeInvalidArgument)
}

func TestTwoGroupsHoldingATopic(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s)
	register(t, c, regReq(status("gb", "n0", "leader", 3), topic("orders", 8)))
	register(t, c, regReq(status("gb", "n1", "follower", 3), topic("orders", 8)))
	register(t, c, regReq(status("ga", "n0", "leader", 1), topic("orders", 4), topic("audit", 2)))
	register(t, c, regReq(status("gc", "n0", "leader", 1), topic("other", 1)))

	want := wire.RouteInfo{Topic: "orders", Groups: []wire.GroupRoute{
		{Group: "ga", Cluster: "c1", Queues: 4, Perm: 6, Term: 1, Leader: ptr(nodeRoute("ga", "n0"))},
		{Group: "gb", Cluster: "c1", Queues: 8, Perm: 6, Term: 3, Leader: ptr(nodeRoute("gb", "n0")),
			Followers: []wire.NodeRoute{nodeRoute("gb", "n1")}},
	}}
	if diff := cmp.Diff(want, mustRoute(t, c, "orders")); diff != "" {
		t.Fatalf("route (-want +got):\n%s", diff)
	}
	if ri := mustRoute(t, c, "audit"); len(ri.Groups) != 1 || ri.Groups[0].Group != "ga" {
		t.Errorf("route audit: got %+v, want group ga only", ri)
	}
}

func TestDefaultRoute(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s)

	_, err := route(t, c, "fresh", true)
	wantCode(t, err, wire.CodeTopicNotFound) // no group at all

	register(t, c, regReq(status("gb", "n0", "follower", 2))) // no leader: not a default target
	_, err = route(t, c, "fresh", true)
	wantCode(t, err, wire.CodeTopicNotFound)

	register(t, c, regReq(status("ga", "n0", "leader", 1), topic("orders", 4)))
	register(t, c, regReq(status("ga", "n1", "follower", 1), topic("orders", 4)))
	ri, err := route(t, c, "fresh", true)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.RouteInfo{Topic: "fresh", Groups: []wire.GroupRoute{{
		Group: "ga", Cluster: "c1", Queues: 0, Perm: 6, Term: 1, Leader: ptr(nodeRoute("ga", "n0")),
		Followers: []wire.NodeRoute{nodeRoute("ga", "n1")},
	}}}
	if diff := cmp.Diff(want, ri); diff != "" {
		t.Fatalf("default route (-want +got):\n%s", diff)
	}
	// Without Default an unknown topic is an error.
	_, err = route(t, c, "fresh", false)
	wantCode(t, err, wire.CodeTopicNotFound)
	var we *wire.Error
	if errors.As(err, &we) && we.Message != `topic "fresh" has no route` {
		t.Errorf("got message %q", we.Message)
	}
	// An existing topic gets its real route even with Default.
	if ri, err := route(t, c, "orders", true); err != nil || ri.Groups[0].Queues != 4 {
		t.Errorf("route orders with Default: got %+v, %v; want 4 queues", ri, err)
	}
}

// TestBadRequests sends bad requests on one connection, which must keep
// working after each.
func TestBadRequests(t *testing.T) {
	s := startServer(t, nil)
	c := dial(t, s)
	garbage := msgpack.RawMessage{0xc1} // a byte msgpack never uses
	tests := []struct {
		name string
		code uint16
		req  any
		want uint16
	}{
		{"unknown code", 999, wire.Empty{}, wire.CodeUnknownRequest},
		{"broker code", wire.CodeSend, wire.Empty{}, wire.CodeUnknownRequest},
		{"malformed register", wire.CodeRegisterBroker, garbage, wire.CodeMalformed},
		{"register of wrong shape", wire.CodeRegisterBroker, []string{"x"}, wire.CodeMalformed},
		{"malformed unregister", wire.CodeUnregisterBroker, garbage, wire.CodeMalformed},
		{"malformed route", wire.CodeGetRoute, garbage, wire.CodeMalformed},
		{"malformed cluster", wire.CodeGetCluster, garbage, wire.CodeMalformed},
		{"register without group", wire.CodeRegisterBroker, regReq(status("", "n0", "leader", 1)), wire.CodeInvalidArgument},
		{"register without node id", wire.CodeRegisterBroker, regReq(status("ga", "", "leader", 1)), wire.CodeInvalidArgument},
		{"register with bad role", wire.CodeRegisterBroker, regReq(status("ga", "n0", "boss", 1)), wire.CodeInvalidArgument},
		{"route without topic", wire.CodeGetRoute, wire.RouteRequest{}, wire.CodeInvalidArgument},
		{"unknown topic", wire.CodeGetRoute, wire.RouteRequest{Topic: "nope"}, wire.CodeTopicNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, c.Call(callCtx(t), tc.code, tc.req, nil), tc.want)
			register(t, c, regReq(status("ga", "n0", "leader", 1), topic("t", 1)))
			if got := nodeIDs(cluster(t, c)); !slices.Equal(got, []string{"ga/n0"}) {
				t.Fatalf("cluster: got %v, want [ga/n0]", got)
			}
		})
	}
}

// TestRawMalformedFrame: a bad frame closes that connection only.
func TestRawMalformedFrame(t *testing.T) {
	s := startServer(t, nil)
	good := dial(t, s)
	register(t, good, regReq(status("ga", "n0", "leader", 1), topic("t", 1)))

	badVersion := wire.AppendFrame(nil, wire.Frame{Code: wire.CodeGetCluster, ID: 1})
	badVersion[4] = 9
	tooLong := binary.BigEndian.AppendUint32(nil, 1<<31)
	tooShort := binary.BigEndian.AppendUint32(nil, 3)
	for name, frame := range map[string][]byte{"bad version": badVersion, "too long": tooLong, "too short": tooShort} {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			// Closed: EOF, or a reset when the server closed with bytes of
			// the bad frame still unread.
			if n, err := nc.Read(make([]byte, 64)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read after a bad frame: got %d bytes, %v; want EOF or a reset", n, err)
			}
			if got := nodeIDs(cluster(t, good)); !slices.Equal(got, []string{"ga/n0"}) {
				t.Fatalf("cluster on the good connection: got %v, want [ga/n0]", got)
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	s := startServer(t, nil)
	cluster(t, dial(t, s)) // answered: Run is serving
	if err := s.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Run: got %v, want ErrAlreadyRunning", err)
	}
}
