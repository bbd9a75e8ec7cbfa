package namesrv

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/wire"
)

// Raft roles a node may report.
const (
	RoleLeader    = "leader"
	RoleFollower  = "follower"
	RoleCandidate = "candidate"
)

// permReadWrite is RocketMQ's PERM_READ|PERM_WRITE, the permission of a
// default route (the same bits as fsm.DefaultPerm).
const permReadWrite uint8 = 6

// maxNameLen bounds group, node and topic names in a registration.
const maxNameLen = 255

// node is one broker node as last registered.
type node struct {
	status wire.NodeStatus
	topics map[string]wire.TopicInfo // immutable once stored
	seen   time.Time                 // last registration, by the NameServer's clock
	seq    uint64                    // registry-wide registration counter: orders "newest"
	ttl    time.Duration             // expires at seen+ttl
	conn   *wire.ServerConn          // the connection of the latest registration
	stale  bool                      // claims leadership but is not the group's leader
}

// group is one broker group. leader, topics and term are derived from
// nodes by recompute after every change.
type group struct {
	name    string
	cluster string // the ClusterName its nodes registered with (all the same)
	nodes   map[string]*node
	leader  *node                     // nil while no valid claim exists
	topics  map[string]wire.TopicInfo // shared with the node it came from
	term    uint64                    // leader's term, or the highest reported
}

// downNode is a node that left its group (expired, lost its connection or
// unregistered), kept for the cluster query until it registers again or
// has been gone for the registry's downFor.
type downNode struct {
	status wire.NodeStatus // its last registration
	seen   time.Time       // that registration's time
	why    string          // "expired", "disconnected" or "unregistered"
}

// registry is the NameServer's whole state. Every method takes the time
// from its caller, so it never reads a clock, and holds mu throughout.
type registry struct {
	log       hclog.Logger
	factor    time.Duration
	minExpiry time.Duration
	downFor   time.Duration // how long a down node is listed after it was last seen

	mu     sync.Mutex
	groups map[string]*group
	down   map[string]map[string]*downNode // group name -> node id -> record
	seq    uint64
}

func newRegistry(log hclog.Logger, factor int, minExpiry, downFor time.Duration) *registry {
	return &registry{log: log, factor: time.Duration(factor), minExpiry: minExpiry, downFor: downFor,
		groups: make(map[string]*group), down: make(map[string]map[string]*downNode)}
}

// validateRegistration checks every field a registration must get right
// and returns a CodeInvalidArgument *wire.Error listing the problems.
func validateRegistration(req *wire.RegisterBrokerRequest) error {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	st := &req.Node
	checkName := func(what, v string) {
		if v == "" {
			bad("%s is required", what)
		} else if len(v) > maxNameLen {
			bad("%s is longer than %d bytes", what, maxNameLen)
		}
	}
	checkName("cluster", st.Cluster)
	checkName("group", st.Group)
	checkName("node id", st.NodeID)
	switch strings.ToLower(st.Role) {
	case RoleLeader, RoleFollower, RoleCandidate:
	default:
		bad("role %q is not leader, follower or candidate", st.Role)
	}
	if req.HeartbeatMillis < 0 || req.HeartbeatMillis > MaxHeartbeat.Milliseconds() {
		bad("heartbeat %dms is not in 0..%d", req.HeartbeatMillis, MaxHeartbeat.Milliseconds())
	}
	seen := make(map[string]bool, len(req.Topics))
	for _, t := range req.Topics {
		if t.Name == "" || len(t.Name) > maxNameLen {
			bad("topic name %q is empty or longer than %d bytes", t.Name, maxNameLen)
		} else if seen[t.Name] {
			bad("topic %q is listed twice", t.Name)
		}
		seen[t.Name] = true
	}
	if len(probs) > 0 {
		return wire.Errorf(wire.CodeInvalidArgument, "register broker: %s", strings.Join(probs, "; "))
	}
	return nil
}

// register records a registration that arrived on conn at now. The
// request must have passed validateRegistration. A group belongs to one
// cluster: a node naming another cluster than the group's other live
// nodes is refused (CodeInvalidArgument) rather than merged into a group
// of a different Raft cluster that happens to share the name.
func (r *registry) register(req *wire.RegisterBrokerRequest, conn *wire.ServerConn, now time.Time) error {
	st := req.Node
	st.Role = strings.ToLower(st.Role)
	hb := time.Duration(req.HeartbeatMillis) * time.Millisecond
	if hb == 0 {
		hb = DefaultHeartbeat
	}
	topics := make(map[string]wire.TopicInfo, len(req.Topics))
	for _, t := range req.Topics {
		topics[t.Name] = t
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	g := r.groups[st.Group]
	if g != nil && g.cluster != st.Cluster {
		for id, n := range g.nodes {
			if id != st.NodeID {
				return wire.Errorf(wire.CodeInvalidArgument,
					"register broker: group %q belongs to cluster %q (node %q), not %q", st.Group, g.cluster, n.status.NodeID, st.Cluster)
			}
		}
		r.log.Info("broker group moved to another cluster", "group", st.Group, "from", g.cluster, "to", st.Cluster)
	}
	r.seq++
	if g == nil {
		g = &group{name: st.Group, nodes: make(map[string]*node)}
		r.groups[st.Group] = g
	}
	g.cluster = st.Cluster
	n := &node{status: st, topics: topics, seen: now, seq: r.seq, ttl: max(r.minExpiry, r.factor*hb), conn: conn}
	old := g.nodes[st.NodeID]
	g.nodes[st.NodeID] = n
	if d := r.down[st.Group][st.NodeID]; d != nil {
		r.log.Info("broker node is back", "group", st.Group, "node", st.NodeID, "was", d.why,
			"down-for", now.Sub(d.seen).Round(time.Millisecond))
		r.forgetLocked(st.Group, st.NodeID)
	}
	switch {
	case old == nil:
		r.log.Info("broker node registered", "cluster", st.Cluster, "group", st.Group, "node", st.NodeID, "role", st.Role,
			"term", st.Term, "addr", st.Addr, "topics", len(topics))
	case old.status.Role != st.Role || old.status.Term != st.Term || old.status.Addr != st.Addr:
		r.log.Info("broker node changed", "group", st.Group, "node", st.NodeID, "role", st.Role,
			"term", st.Term, "addr", st.Addr, "topics", len(topics))
	default:
		r.log.Trace("broker node heartbeat", "group", st.Group, "node", st.NodeID, "term", st.Term)
	}
	r.recomputeLocked(g)
	return nil
}

// unregister removes a node at once; an unknown node is not an error.
func (r *registry) unregister(groupName, nodeID string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	g := r.groups[groupName]
	if g == nil || g.nodes[nodeID] == nil {
		return
	}
	r.log.Info("broker node unregistered", "group", groupName, "node", nodeID)
	r.removeLocked(g, nodeID, "unregistered")
}

// connClosed removes every node whose latest registration came on conn.
// A node that has since registered on another connection stays.
func (r *registry) connClosed(conn *wire.ServerConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.sortedGroupsLocked("") {
		for _, id := range sortedIDs(g) {
			if g.nodes[id].conn == conn {
				r.log.Info("broker node connection closed", "group", g.name, "node", id)
				r.removeLocked(g, id, "disconnected")
			}
		}
	}
}

// expire removes every node that has not registered within its ttl and
// forgets every down node last seen more than downFor ago.
func (r *registry) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
}

func (r *registry) expireLocked(now time.Time) {
	for _, g := range r.groups {
		for id, n := range g.nodes {
			if age := now.Sub(n.seen); age > n.ttl {
				r.log.Info("broker node expired", "group", g.name, "node", id,
					"age", age.Round(time.Millisecond), "expiry", n.ttl)
				r.removeLocked(g, id, "expired")
			}
		}
	}
	for gname, ds := range r.down {
		for id, d := range ds {
			if age := now.Sub(d.seen); age > r.downFor {
				r.log.Info("down broker node forgotten", "group", gname, "node", id,
					"age", age.Round(time.Millisecond), "was", d.why)
				r.forgetLocked(gname, id)
			}
		}
	}
}

// removeLocked takes node id out of g (so out of routes and leader
// selection) and keeps its last registration as a down node.
func (r *registry) removeLocked(g *group, id, why string) {
	n := g.nodes[id]
	delete(g.nodes, id)
	r.recomputeLocked(g)
	if len(g.nodes) == 0 {
		delete(r.groups, g.name)
	}
	if n == nil {
		return
	}
	ds := r.down[g.name]
	if ds == nil {
		ds = make(map[string]*downNode)
		r.down[g.name] = ds
	}
	ds[id] = &downNode{status: n.status, seen: n.seen, why: why}
}

func (r *registry) forgetLocked(group, id string) {
	delete(r.down[group], id)
	if len(r.down[group]) == 0 {
		delete(r.down, group)
	}
}

// recomputeLocked derives g's leader, stale flags, topic table and term
// from its nodes, and logs a change of leader.
//
// The leader is the live node claiming leadership with the highest term
// (ties: the newest registration). It is rejected when a follower reports
// a higher term: that follower saw an election the claimant has not
// noticed. Candidates do not count, since a partitioned candidate's term
// runs ahead without any election succeeding. Every other claim is stale.
func (r *registry) recomputeLocked(g *group) {
	prev, prevTerm := g.leader, g.term
	var best, newest *node
	var maxFollower, maxTerm uint64
	for _, n := range g.nodes {
		st := &n.status
		maxTerm = max(maxTerm, st.Term)
		if newest == nil || n.seq > newest.seq {
			newest = n
		}
		switch st.Role {
		case RoleLeader:
			if best == nil || st.Term > best.status.Term || st.Term == best.status.Term && n.seq > best.seq {
				best = n
			}
		case RoleFollower:
			maxFollower = max(maxFollower, st.Term)
		}
	}
	if best != nil && best.status.Term < maxFollower {
		best = nil
	}
	for _, n := range g.nodes {
		n.stale = n.status.Role == RoleLeader && n != best
	}
	g.leader = best
	switch {
	case best != nil:
		g.topics, g.term = best.topics, best.status.Term
	case newest != nil:
		g.topics, g.term = newest.topics, maxTerm
	default:
		g.topics, g.term = nil, 0
	}
	switch {
	case best != nil && (prev == nil || prev.status.NodeID != best.status.NodeID || prevTerm != g.term):
		r.log.Info("group leader changed", "group", g.name, "node", best.status.NodeID, "term", g.term,
			"addr", best.status.Addr)
	case best == nil && prev != nil:
		r.log.Info("group has no leader", "group", g.name, "term", g.term)
	}
}

// route answers a RouteRequest.
func (r *registry) route(req *wire.RouteRequest, now time.Time) (*wire.RouteInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	info := &wire.RouteInfo{Topic: req.Topic, Groups: []wire.GroupRoute{}}
	groups := r.sortedGroupsLocked(req.Cluster)
	for _, g := range groups {
		if t, ok := g.topics[req.Topic]; ok {
			info.Groups = append(info.Groups, groupRoute(g, t.Queues, t.Perm))
		}
	}
	if len(info.Groups) == 0 && req.Default {
		for _, g := range groups {
			if g.leader != nil {
				info.Groups = append(info.Groups, groupRoute(g, 0, permReadWrite))
			}
		}
	}
	if len(info.Groups) == 0 {
		if req.Cluster != "" {
			return nil, wire.Errorf(wire.CodeTopicNotFound, "topic %q has no route in cluster %q", req.Topic, req.Cluster)
		}
		return nil, wire.Errorf(wire.CodeTopicNotFound, "topic %q has no route", req.Topic)
	}
	return info, nil
}

// groupRoute is g's entry in a route: its leader, and every other live
// node that is not a stale leader as a follower.
func groupRoute(g *group, queues uint32, perm uint8) wire.GroupRoute {
	gr := wire.GroupRoute{Group: g.name, Cluster: g.cluster, Queues: queues, Perm: perm, Term: g.term}
	if g.leader != nil {
		gr.Leader = &wire.NodeRoute{NodeID: g.leader.status.NodeID, Addr: g.leader.status.Addr}
	}
	for _, id := range sortedIDs(g) {
		if n := g.nodes[id]; n != g.leader && !n.stale {
			gr.Followers = append(gr.Followers, wire.NodeRoute{NodeID: id, Addr: n.status.Addr})
		}
	}
	return gr
}

// cluster answers a cluster query: every live node of the cluster (every
// cluster if empty) by group then id, each cluster's groups (those with a
// live node), and the down nodes by group then id.
func (r *registry) cluster(cluster string, now time.Time) *wire.ClusterInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	info := &wire.ClusterInfo{Nodes: []wire.ClusterNode{}, Clusters: map[string][]string{}}
	for _, g := range r.sortedGroupsLocked(cluster) {
		info.Clusters[g.cluster] = append(info.Clusters[g.cluster], g.name)
		for _, id := range sortedIDs(g) {
			n := g.nodes[id]
			info.Nodes = append(info.Nodes, wire.ClusterNode{
				NodeStatus:  n.status,
				StaleLeader: n.stale,
				AgeMillis:   max(0, now.Sub(n.seen).Milliseconds()),
			})
		}
	}
	gnames := make([]string, 0, len(r.down))
	for gname := range r.down {
		gnames = append(gnames, gname)
	}
	slices.Sort(gnames)
	for _, gname := range gnames {
		ds := r.down[gname]
		ids := make([]string, 0, len(ds))
		for id := range ds {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			d := ds[id]
			if cluster != "" && d.status.Cluster != cluster {
				continue
			}
			info.Down = append(info.Down, wire.ClusterNode{
				NodeStatus: d.status,
				Down:       true,
				AgeMillis:  max(0, now.Sub(d.seen).Milliseconds()),
			})
		}
	}
	return info
}

// nodeCount is the number of stored nodes, without expiring any (tests
// use it to watch the sweeper).
func (r *registry) nodeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, g := range r.groups {
		n += len(g.nodes)
	}
	return n
}

// sortedGroupsLocked lists the groups of cluster ("" for every cluster)
// by name.
func (r *registry) sortedGroupsLocked(cluster string) []*group {
	gs := make([]*group, 0, len(r.groups))
	for _, g := range r.groups {
		if cluster == "" || g.cluster == cluster {
			gs = append(gs, g)
		}
	}
	slices.SortFunc(gs, func(a, b *group) int { return cmp.Compare(a.name, b.name) })
	return gs
}

func sortedIDs(g *group) []string {
	ids := make([]string, 0, len(g.nodes))
	for id := range g.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// groupRoutes lists every group of cluster ("" for all) with its leader
// and followers, without topic data (RocketMQ's brokerAddrTable).
func (r *registry) groupRoutes(cluster string, now time.Time) []wire.GroupRoute {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	groups := r.sortedGroupsLocked(cluster)
	out := make([]wire.GroupRoute, 0, len(groups))
	for _, g := range groups {
		out = append(out, groupRoute(g, 0, 0))
	}
	return out
}

// topicNames lists, sorted, every topic some group of cluster ("" for
// all) serves.
func (r *registry) topicNames(cluster string, now time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	seen := map[string]bool{}
	for _, g := range r.sortedGroupsLocked(cluster) {
		for t := range g.topics {
			seen[t] = true
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
