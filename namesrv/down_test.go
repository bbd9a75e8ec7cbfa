package namesrv

import (
	"slices"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// downView lists a cluster answer's down nodes as "group/node" strings.
func downView(ci *wire.ClusterInfo) []string {
	var ids []string
	for _, n := range ci.Down {
		ids = append(ids, n.Group+"/"+n.NodeID)
	}
	return ids
}

// TestDownNodes: a node that stops registering leaves the group (routes,
// leader selection, ClusterInfo.Nodes) but is listed in ClusterInfo.Down
// with its last status and the time since it was last seen, until it
// registers again or DownRetention passes. Expiry, a closed connection
// and unregistration all make a node down.
func TestDownNodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		gone func(r *registry, conn *wire.ServerConn, now time.Time)
	}{
		{"expired", func(r *registry, _ *wire.ServerConn, now time.Time) { r.expire(now) }},
		{"connection closed", func(r *registry, conn *wire.ServerConn, _ time.Time) { r.connClosed(conn) }},
		{"unregistered", func(r *registry, _ *wire.ServerConn, now time.Time) { r.unregister("g", "n0", now) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegistry(testLogger(t), 3, time.Second, 10*time.Minute)
			start := time.Unix(1_700_000_000, 0)
			c0, c1 := new(wire.ServerConn), new(wire.ServerConn)
			n0 := regReq(status("g", "n0", "leader", 2), topic("t", 4))
			n0.Node.AppliedIndex, n0.Node.CommitIndex = 255, 255
			if err := r.register(n0, c0, start); err != nil {
				t.Fatal(err)
			}
			// n1 keeps registering; n0 stops at start.
			beat := func(now time.Time) {
				t.Helper()
				if err := r.register(regReq(status("g", "n1", "follower", 2), topic("t", 4)), c1, now); err != nil {
					t.Fatal(err)
				}
			}
			beat(start)
			now := start.Add(3*time.Second + time.Millisecond) // past n0's 3s expiry
			beat(now)
			tc.gone(r, c0, now)

			now = now.Add(2 * time.Second)
			beat(now)
			ci := r.cluster("", now)
			if got := nodeIDs(*ci); !slices.Equal(got, []string{"g/n1"}) {
				t.Errorf("live nodes: got %v, want [g/n1]", got)
			}
			if got := downView(ci); !slices.Equal(got, []string{"g/n0"}) {
				t.Fatalf("down nodes: got %v, want [g/n0]", got)
			}
			d := ci.Down[0]
			if !d.Down || d.Role != "leader" || d.AppliedIndex != 255 || d.Addr != "g-n0:10911" {
				t.Errorf("down node: got %+v, want Down and its last status (leader, applied 255, its address)", d)
			}
			if want := (5*time.Second + time.Millisecond).Milliseconds(); d.AgeMillis != want {
				t.Errorf("down node last seen: got %dms ago, want %dms", d.AgeMillis, want)
			}
			if !slices.Equal(ci.Clusters["c1"], []string{"g"}) {
				t.Errorf("clusters: got %v, want c1: [g]", ci.Clusters)
			}
			if got := r.cluster("other", now); len(got.Down) != 0 {
				t.Errorf("cluster %q: got down nodes %v, want none", "other", downView(got))
			}
			ri, err := r.route(&wire.RouteRequest{Topic: "t"}, now)
			if err != nil {
				t.Fatal(err)
			}
			if gr := ri.Groups[0]; gr.Leader != nil || len(gr.Followers) != 1 || gr.Followers[0].NodeID != "n1" {
				t.Errorf("route: got leader %v followers %v, want no leader and follower n1 only", gr.Leader, gr.Followers)
			}

			// Back: live again, no longer down.
			if err := r.register(regReq(status("g", "n0", "follower", 3), topic("t", 4)), c0, now); err != nil {
				t.Fatal(err)
			}
			ci = r.cluster("", now)
			if got := nodeIDs(*ci); !slices.Equal(got, []string{"g/n0", "g/n1"}) {
				t.Errorf("after re-registration: live nodes %v, want [g/n0 g/n1]", got)
			}
			if len(ci.Down) != 0 {
				t.Errorf("after re-registration: down nodes %v, want none", downView(ci))
			}
		})
	}
}

// TestDownNodeForgotten: a down node is listed until DownRetention after
// it was last seen, then forgotten; a group whose nodes are all down is
// listed only through its down nodes (no route, not in Clusters).
func TestDownNodeForgotten(t *testing.T) {
	r := newRegistry(testLogger(t), 3, time.Second, time.Minute)
	start := time.Unix(1_700_000_000, 0)
	if err := r.register(regReq(status("g", "n0", "leader", 1), topic("t", 4)), new(wire.ServerConn), start); err != nil {
		t.Fatal(err)
	}
	r.expire(start.Add(4 * time.Second))
	ci := r.cluster("", start.Add(time.Minute))
	if got := downView(ci); !slices.Equal(got, []string{"g/n0"}) {
		t.Fatalf("at the bound: down nodes %v, want [g/n0]", got)
	}
	if len(ci.Nodes) != 0 || len(ci.Clusters) != 0 {
		t.Errorf("all down: got nodes %v clusters %v, want none", nodeIDs(*ci), ci.Clusters)
	}
	if _, err := r.route(&wire.RouteRequest{Topic: "t", Default: true}, start.Add(time.Minute)); err == nil {
		t.Errorf("route to a group whose nodes are all down: got one, want CodeTopicNotFound")
	}
	r.expire(start.Add(time.Minute + time.Millisecond))
	if ci := r.cluster("", start.Add(time.Minute+time.Millisecond)); len(ci.Down) != 0 {
		t.Errorf("past the bound: down nodes %v, want none", downView(ci))
	}
}

// TestDownRetentionConfig: the server applies Config.DownRetention.
func TestDownRetentionConfig(t *testing.T) {
	clock := newFakeClock()
	s := startServer(t, func(c *Config) { c.Now = clock.Now; c.DownRetention = 30 * time.Second })
	c := dial(t, s)
	register(t, c, regReq(status("g", "n0", "leader", 1), topic("t", 4)))
	if err := c.Call(callCtx(t), wire.CodeUnregisterBroker, wire.UnregisterBrokerRequest{Group: "g", NodeID: "n0"}, nil); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Second)
	if ci := cluster(t, c); len(ci.Down) != 1 || !ci.Down[0].Down || ci.Down[0].AgeMillis != 30_000 {
		t.Fatalf("30s after: got down %+v, want n0 down, last seen 30000ms ago", ci.Down)
	}
	clock.Advance(time.Millisecond)
	s.sweep()
	if ci := cluster(t, c); len(ci.Down) != 0 {
		t.Fatalf("past DownRetention: got down %+v, want none", ci.Down)
	}
}
