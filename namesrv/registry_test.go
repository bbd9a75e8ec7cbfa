package namesrv

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rmq-dev/rmq/wire"
)

func topic(name string, queues uint32) wire.TopicInfo {
	return wire.TopicInfo{Name: name, Queues: queues, Perm: 6}
}

// groupView is what the table test checks of group "g" after its steps.
type groupView struct {
	Leader string   // "" when none
	Term   uint64   // route term
	Stale  []string // node ids flagged StaleLeader
	Routed []string // followers in the route
	Queues uint32   // queues of topic "t" in the route (the topic table's source)
}

func TestLeaderSelection(t *testing.T) {
	type step struct {
		reg        *wire.RegisterBrokerRequest
		unregister string
	}
	reg := func(id, role string, term uint64, queues uint32) step {
		return step{reg: regReq(status("g", id, role, term), topic("t", queues))}
	}
	tests := []struct {
		name  string
		steps []step
		want  groupView
	}{
		{
			name:  "one leader two followers",
			steps: []step{reg("n0", "leader", 1, 4), reg("n1", "follower", 1, 4), reg("n2", "follower", 1, 4)},
			want:  groupView{Leader: "n0", Term: 1, Routed: []string{"n1", "n2"}, Queues: 4},
		},
		{
			name: "higher term leader supersedes at once",
			steps: []step{reg("n0", "leader", 1, 4), reg("n1", "follower", 1, 4),
				reg("n1", "leader", 2, 8)},
			want: groupView{Leader: "n1", Term: 2, Stale: []string{"n0"}, Queues: 8},
		},
		{
			name: "old leader still registering with lower term stays stale",
			steps: []step{reg("n0", "leader", 1, 4), reg("n1", "leader", 2, 8), reg("n2", "follower", 2, 8),
				reg("n0", "leader", 1, 5)},
			want: groupView{Leader: "n1", Term: 2, Stale: []string{"n0"}, Routed: []string{"n2"}, Queues: 8},
		},
		{
			name:  "follower with higher term unseats the known leader",
			steps: []step{reg("n0", "leader", 1, 4), reg("n1", "follower", 1, 4), reg("n2", "follower", 2, 7)},
			want:  groupView{Term: 2, Stale: []string{"n0"}, Routed: []string{"n1", "n2"}, Queues: 7},
		},
		{
			name:  "candidate with higher term does not unseat the leader",
			steps: []step{reg("n0", "leader", 1, 4), reg("n1", "follower", 1, 4), reg("n2", "candidate", 9, 3)},
			want:  groupView{Leader: "n0", Term: 1, Routed: []string{"n1", "n2"}, Queues: 4},
		},
		{
			name:  "no leader: topics from the newest registration",
			steps: []step{reg("n0", "follower", 3, 4), reg("n1", "candidate", 4, 5), reg("n2", "follower", 3, 6)},
			want:  groupView{Term: 4, Routed: []string{"n0", "n1", "n2"}, Queues: 6},
		},
		{
			name:  "equal-term claims: newest wins, the other is stale",
			steps: []step{reg("n0", "leader", 5, 4), reg("n1", "leader", 5, 5)},
			want:  groupView{Leader: "n1", Term: 5, Stale: []string{"n0"}, Queues: 5},
		},
		{
			name:  "leader unregistered: no leader",
			steps: []step{reg("n0", "leader", 1, 4), reg("n1", "follower", 1, 5), {unregister: "n0"}},
			want:  groupView{Term: 1, Routed: []string{"n1"}, Queues: 5},
		},
		{
			name:  "new leader after old one unregistered",
			steps: []step{reg("n0", "leader", 1, 4), reg("n1", "follower", 1, 4), {unregister: "n0"}, reg("n1", "leader", 2, 4)},
			want:  groupView{Leader: "n1", Term: 2, Queues: 4},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegistry(testLogger(t), 3, time.Second, 10*time.Minute)
			now := time.Unix(1_700_000_000, 0)
			conn := new(wire.ServerConn)
			for _, s := range tc.steps {
				now = now.Add(time.Millisecond)
				if s.reg != nil {
					if err := validateRegistration(s.reg); err != nil {
						t.Fatal(err)
					}
					if err := r.register(s.reg, conn, now); err != nil {
						t.Fatal(err)
					}
				} else {
					r.unregister("g", s.unregister, now)
				}
			}
			ri, err := r.route(&wire.RouteRequest{Topic: "t"}, now)
			if err != nil {
				t.Fatal(err)
			}
			gr := ri.Groups[0]
			got := groupView{Term: gr.Term, Queues: gr.Queues}
			if gr.Leader != nil {
				got.Leader = gr.Leader.NodeID
			}
			for _, f := range gr.Followers {
				got.Routed = append(got.Routed, f.NodeID)
			}
			for _, n := range r.cluster("", now).Nodes {
				if n.StaleLeader {
					got.Stale = append(got.Stale, n.NodeID)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("group view (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateRegistration(t *testing.T) {
	long := string(make([]byte, maxNameLen+1))
	tests := []struct {
		name string
		mut  func(*wire.RegisterBrokerRequest)
		ok   bool
	}{
		{"valid", func(*wire.RegisterBrokerRequest) {}, true},
		{"role is case-insensitive", func(r *wire.RegisterBrokerRequest) { r.Node.Role = "Leader" }, true},
		{"no heartbeat announced", func(r *wire.RegisterBrokerRequest) { r.HeartbeatMillis = 0 }, true},
		{"empty group", func(r *wire.RegisterBrokerRequest) { r.Node.Group = "" }, false},
		{"empty node id", func(r *wire.RegisterBrokerRequest) { r.Node.NodeID = "" }, false},
		{"long group", func(r *wire.RegisterBrokerRequest) { r.Node.Group = long }, false},
		{"unknown role", func(r *wire.RegisterBrokerRequest) { r.Node.Role = "king" }, false},
		{"negative heartbeat", func(r *wire.RegisterBrokerRequest) { r.HeartbeatMillis = -1 }, false},
		{"huge heartbeat", func(r *wire.RegisterBrokerRequest) { r.HeartbeatMillis = 1 << 62 }, false},
		{"empty topic name", func(r *wire.RegisterBrokerRequest) { r.Topics = append(r.Topics, topic("", 1)) }, false},
		{"duplicate topic", func(r *wire.RegisterBrokerRequest) { r.Topics = append(r.Topics, topic("t", 2)) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := regReq(status("g", "n0", "leader", 1), topic("t", 4))
			tc.mut(req)
			err := validateRegistration(req)
			if tc.ok {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			wantCode(t, err, wire.CodeInvalidArgument)
		})
	}
}

func TestExpiryTime(t *testing.T) {
	tests := []struct {
		name      string
		heartbeat int64 // announced, ms
		alive     time.Duration
		dead      time.Duration
	}{
		{"factor times heartbeat", 1000, 3 * time.Second, 3*time.Second + time.Millisecond},
		{"floor for fast heartbeats", 10, 2 * time.Second, 2*time.Second + time.Millisecond},
		{"default heartbeat when none announced", 0, 90 * time.Second, 90*time.Second + time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegistry(testLogger(t), 3, 2*time.Second, 10*time.Minute)
			start := time.Unix(1_700_000_000, 0)
			req := regReq(status("g", "n0", "leader", 1), topic("t", 1))
			req.HeartbeatMillis = tc.heartbeat
			if err := r.register(req, new(wire.ServerConn), start); err != nil {
				t.Fatal(err)
			}
			r.expire(start.Add(tc.alive))
			if got := r.nodeCount(); got != 1 {
				t.Fatalf("after %s: got %d nodes, want 1", tc.alive, got)
			}
			r.expire(start.Add(tc.dead))
			if got := r.nodeCount(); got != 0 {
				t.Fatalf("after %s: got %d nodes, want 0", tc.dead, got)
			}
		})
	}
}

func TestClusterSortedWithAge(t *testing.T) {
	r := newRegistry(testLogger(t), 3, time.Second, 10*time.Minute)
	now := time.Unix(1_700_000_000, 0)
	c := new(wire.ServerConn)
	for _, st := range []wire.NodeStatus{status("b", "n1", "leader", 1), status("a", "n2", "follower", 1), status("a", "n0", "leader", 1)} {
		if err := r.register(regReq(st), c, now); err != nil {
			t.Fatal(err)
		}
	}
	ci := r.cluster("", now.Add(250*time.Millisecond))
	var got []string
	for _, n := range ci.Nodes {
		got = append(got, n.Group+"/"+n.NodeID)
		if n.AgeMillis != 250 {
			t.Errorf("%s/%s: got age %dms, want 250ms", n.Group, n.NodeID, n.AgeMillis)
		}
	}
	if want := []string{"a/n0", "a/n2", "b/n1"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
