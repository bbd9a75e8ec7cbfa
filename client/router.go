package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/rmq-dev/rmq/wire"
)

const (
	// routeMaxAge is how long a topic route is trusted (RocketMQ polls
	// the NameServer every 30s).
	routeMaxAge = 30 * time.Second
	// autoRouteMaxAge is how long a "default" route (topic not created
	// yet) is trusted before asking again whether the topic now exists.
	autoRouteMaxAge = time.Second
	// clusterMinInterval rate-limits leader look-ups at the NameServer
	// when many goroutines find the leader unknown at once.
	clusterMinInterval = 20 * time.Millisecond
)

// router caches topic routes and what the client believes about each
// broker group's leader, and runs the retry loop that finds the leader.
// Sources of leader knowledge, in order of trust: a NotLeader answer's
// hint, the NameServer (topic routes and cluster info, by term), and
// probing the group's other nodes when the leader is unreachable.
type router struct {
	namesrvs []string
	pool     *pool
	log      hclog.Logger
	// cluster, if set, limits route answers to that cluster's groups
	// (ProducerConfig.Cluster); set before first use.
	cluster string
	// attemptTimeout is how long a request to a leader may go unanswered
	// before leaderCall looks the leader up again (see leaderCall).
	attemptTimeout time.Duration
	// resends counts attempts made while an earlier attempt's outcome was
	// unknown (unanswered, timed out, lost): each may store a duplicate.
	resends atomic.Uint64
	// attempts tracks leaderCall's attempt goroutines, which may outlive
	// their call (see leaderCall); wait waits for them. amu orders track
	// before wait: no attempt starts once waiting began.
	attempts sync.WaitGroup
	amu      sync.Mutex
	waiting  bool

	mu           sync.Mutex
	nsNext       int
	nsReached    bool // some NameServer has answered this client
	topics       map[string]*topicRoute
	groups       map[string]*groupState
	clusterFetch time.Time
	clusterCall  chan struct{} // non-nil while a cluster look-up is in flight; closed when done
}

type topicRoute struct {
	groups  []wire.GroupRoute
	auto    bool // the topic does not exist yet: Groups are candidates for auto-create
	fetched time.Time

	// The writable queues, sorted, computed once per fetched route (a
	// route is replaced, never changed): the producer picks from them on
	// every send.
	queuesOnce sync.Once
	queues     []Queue
}

// writable returns the route's writable queues (autoQueues per group for
// an auto-create route). Callers must not modify the slice.
func (tr *topicRoute) writable(topic string, autoQueues uint32) []Queue {
	tr.queuesOnce.Do(func() { tr.queues = writableQueues(topic, tr, autoQueues) })
	return tr.queues
}

// cached returns a fresh cached route of topic without any request.
func (r *router) cached(topic string) *topicRoute {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tr := r.topics[topic]; tr != nil && !tr.auto && time.Since(tr.fetched) < routeMaxAge {
		return tr
	}
	return nil
}

// knownLeader is group's leader address if one is known ("" otherwise;
// unlike leaderAddr it never names a node to probe).
func (r *router) knownLeader(group string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.groups[group]; st != nil {
		return st.leader
	}
	return ""
}

type groupState struct {
	leader     string // "" while unknown
	term       uint64
	nodes      []string // every known client address of the group
	next       int      // probe cursor over nodes
	failed     string   // last leader address that failed at transport level
	failedTerm uint64
}

func newRouter(namesrvs []string, p *pool, log hclog.Logger, attemptTimeout time.Duration) *router {
	if attemptTimeout <= 0 {
		attemptTimeout = DefaultAttemptTimeout
	}
	return &router{
		namesrvs:       namesrvs,
		pool:           p,
		log:            log,
		attemptTimeout: attemptTimeout,
		topics:         make(map[string]*topicRoute),
		groups:         make(map[string]*groupState),
	}
}

// nsCall sends one request to the first NameServer that answers it
// usefully. NameServers share nothing: one just restarted knows no broker
// until the next heartbeats, so an empty answer (TopicNotFound, a cluster
// with no node) is not final while another NameServer may know better;
// nor is any other error one NameServer answers (unavailable, internal,
// a refusal). nsCall asks each in turn and returns an empty answer only
// when no NameServer answered better, and an error answer only when none
// answered at all.
func (r *router) nsCall(ctx context.Context, code uint16, req, resp any) error {
	r.mu.Lock()
	start := r.nsNext
	r.mu.Unlock()
	var lastErr, emptyErr, answerErr error
	var failures []string // "addr: reason" per unreachable NameServer
	refused := 0          // of them, how many answered with a definite no
	empty := false
	for i := range r.namesrvs {
		idx := (start + i) % len(r.namesrvs)
		err := r.pool.call(ctx, r.namesrvs[idx], code, req, resp)
		switch {
		case err == nil && !emptyAnswer(resp):
			r.mu.Lock()
			r.nsNext, r.nsReached = idx, true
			r.mu.Unlock()
			return nil
		case err == nil || errors.Is(err, ErrTopicNotFound):
			r.mu.Lock()
			r.nsReached = true
			r.mu.Unlock()
			if !empty {
				empty, emptyErr = true, err
			}
			r.log.Debug("namesrv knows nothing, asking the next", "namesrv", r.namesrvs[idx], "code", code)
		case errors.Is(err, wire.ErrNotRMQ):
			// A wrong address in the list: as definite as a refusal.
			lastErr = err
			failures = append(failures, err.Error())
			refused++
		case !isTransport(err):
			r.mu.Lock()
			r.nsReached = true
			r.mu.Unlock()
			if answerErr == nil {
				answerErr = err
			}
			r.log.Debug("namesrv answered an error, asking the next", "namesrv", r.namesrvs[idx], "code", code, "error", err)
		default:
			lastErr = err
			failures = append(failures, r.namesrvs[idx]+": "+dialReason(err))
			if definitelyRefused(err) {
				refused++
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if empty {
		return emptyErr // resp holds the empty answer, if it was one
	}
	if answerErr != nil {
		return answerErr
	}
	r.mu.Lock()
	reached := r.nsReached
	r.mu.Unlock()
	summary := strings.Join(failures, "; ")
	if !reached && refused == len(r.namesrvs) {
		// Every NameServer refused outright and none ever answered: a
		// wrong address, not a restart. Retrying would only wait out the
		// caller's timeout, so the error is final (no transport error in
		// its chain).
		return fmt.Errorf("%w: %s", ErrNoNameServer, summary)
	}
	return fmt.Errorf("%w (%s): %w", ErrNoNameServer, summary, lastErr)
}

// definitelyRefused reports whether a dial failed with a definite answer
// (connection refused, unknown host) rather than silence.
func definitelyRefused(err error) bool {
	var dns *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &dns) && dns.IsNotFound) ||
		// a wrong CA or certificate, or a plaintext port, does not heal by waiting
		errors.Is(err, wire.ErrTLSHandshake) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded)
}

// dialReason is the short cause of a failed NameServer call.
func dialReason(err error) string {
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dns) && dns.IsNotFound:
		return "no such host"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	}
	var de *dialError
	if errors.As(err, &de) {
		return de.err.Error()
	}
	return err.Error()
}

// emptyAnswer reports whether a successful NameServer answer knows no
// broker at all (a just-restarted NameServer).
func emptyAnswer(resp any) bool {
	ci, ok := resp.(*wire.ClusterInfo)
	return ok && len(ci.Nodes) == 0
}

// track counts a new attempt goroutine; false once wait was called.
func (r *router) track() bool {
	r.amu.Lock()
	defer r.amu.Unlock()
	if r.waiting {
		return false
	}
	r.attempts.Add(1)
	return true
}

// wait waits for every attempt goroutine; call it after the pool closed
// (which ends attempts blocked on a connection). Later calls get ErrClosed.
func (r *router) wait() {
	r.amu.Lock()
	r.waiting = true
	r.amu.Unlock()
	r.attempts.Wait()
}

// route returns topic's route, from cache when younger than maxAge. With
// auto set, an unknown topic yields the NameServer's default route
// (auto=true, every group with Queues=0); otherwise ErrTopicNotFound.
func (r *router) route(ctx context.Context, topic string, auto bool, maxAge time.Duration) (*topicRoute, error) {
	r.mu.Lock()
	tr := r.topics[topic]
	r.mu.Unlock()
	if tr != nil && (auto || !tr.auto) {
		age := time.Since(tr.fetched)
		if age < maxAge && (!tr.auto || age < autoRouteMaxAge) {
			return tr, nil
		}
	}
	var info wire.RouteInfo
	err := r.nsCall(ctx, wire.CodeGetRoute, wire.RouteRequest{Topic: topic, Cluster: r.cluster}, &info)
	isAuto := false
	if errors.Is(err, ErrTopicNotFound) && auto {
		info = wire.RouteInfo{}
		err = r.nsCall(ctx, wire.CodeGetRoute, wire.RouteRequest{Topic: topic, Default: true, Cluster: r.cluster}, &info)
		isAuto = true
	}
	if err != nil {
		if errors.Is(err, ErrTopicNotFound) {
			r.mu.Lock()
			delete(r.topics, topic)
			r.mu.Unlock()
			return nil, &Error{Code: wire.CodeTopicNotFound, Message: fmt.Sprintf("topic %q", topic)}
		}
		return nil, err
	}
	if !isAuto {
		// A real route may still list no queues while the NameServer
		// hears of a just-created topic; treat it as auto.
		n := 0
		for _, g := range info.Groups {
			n += int(g.Queues)
		}
		isAuto = n == 0
		if isAuto && !auto {
			return nil, &Error{Code: wire.CodeTopicNotFound, Message: fmt.Sprintf("topic %q has no queues", topic)}
		}
	}
	tr = &topicRoute{groups: info.Groups, auto: isAuto, fetched: time.Now()}
	r.mu.Lock()
	r.topics[topic] = tr
	for _, g := range info.Groups {
		r.learnLocked(g.Group, g.Leader, g.Term, g.Followers)
	}
	r.mu.Unlock()
	return tr, nil
}

// invalidate drops topic's cached route.
func (r *router) invalidate(topic string) {
	r.mu.Lock()
	delete(r.topics, topic)
	r.mu.Unlock()
}

func (r *router) learnLocked(group string, leader *wire.NodeRoute, term uint64, followers []wire.NodeRoute) {
	st := r.groups[group]
	if st == nil {
		st = &groupState{}
		r.groups[group] = st
	}
	var nodes []string
	if leader != nil && leader.Addr != "" {
		nodes = append(nodes, leader.Addr)
	}
	for _, f := range followers {
		if f.Addr != "" {
			nodes = append(nodes, f.Addr)
		}
	}
	if len(nodes) > 0 {
		st.nodes = mergeAddrs(st.nodes, nodes)
	}
	if leader == nil || leader.Addr == "" || term < st.term {
		return
	}
	if leader.Addr == st.failed && term <= st.failedTerm {
		return // the NameServer has not noticed the dead leader yet
	}
	if term > st.term || st.leader == "" {
		st.leader = leader.Addr
		st.term = term
	}
}

func mergeAddrs(old, add []string) []string {
	out := append([]string(nil), old...)
	for _, a := range add {
		found := false
		for _, o := range out {
			if o == a {
				found = true
				break
			}
		}
		if !found {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// refreshLeaders asks the NameServer for the cluster's nodes and learns
// every group's leader (highest-term non-stale node with role leader).
//
// Concurrent callers share one look-up: a caller arriving while one is in
// flight waits for its answer instead of returning with what it knew, so
// every producer goroutine that found its leader unanswered sees the
// NameServer's latest view.
func (r *router) refreshLeaders(ctx context.Context) error {
	r.mu.Lock()
	if ch := r.clusterCall; ch != nil {
		r.mu.Unlock()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if time.Since(r.clusterFetch) < clusterMinInterval {
		r.mu.Unlock()
		return nil
	}
	r.clusterFetch = time.Now()
	ch := make(chan struct{})
	r.clusterCall = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.clusterCall = nil
		r.mu.Unlock()
		close(ch)
	}()
	var ci wire.ClusterInfo
	if err := r.nsCall(ctx, wire.CodeGetCluster, wire.Empty{}, &ci); err != nil {
		return err
	}
	type best struct {
		leader *wire.NodeRoute
		term   uint64
		nodes  []wire.NodeRoute
	}
	groups := make(map[string]*best)
	for _, n := range ci.Nodes {
		b := groups[n.Group]
		if b == nil {
			b = &best{}
			groups[n.Group] = b
		}
		b.nodes = append(b.nodes, wire.NodeRoute{NodeID: n.NodeID, Addr: n.Addr})
		if n.Role == "leader" && !n.StaleLeader && n.Term >= b.term {
			b.leader = &wire.NodeRoute{NodeID: n.NodeID, Addr: n.Addr}
			b.term = n.Term
		}
	}
	r.mu.Lock()
	for g, b := range groups {
		r.learnLocked(g, b.leader, b.term, b.nodes)
	}
	r.mu.Unlock()
	return nil
}

// leaderAddr returns where to send a leader-only request to group: the
// believed leader, or else the next node to probe ("" if none known).
func (r *router) leaderAddr(group string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.groups[group]
	if st == nil {
		return ""
	}
	if st.leader != "" {
		return st.leader
	}
	return st.probeLocked()
}

func (st *groupState) probeLocked() string {
	n := len(st.nodes)
	for i := 0; i < n; i++ {
		a := st.nodes[st.next%n]
		st.next++
		if a != st.failed || n == 1 {
			return a
		}
	}
	return ""
}

// readAddr returns a node to read from: the leader when known, else any
// node of the group, rotating after failures.
func (r *router) readAddr(group string) string { return r.leaderAddr(group) }

// groupKnown reports whether any node of group is known.
func (r *router) groupKnown(group string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.groups[group]
	return st != nil && len(st.nodes) > 0
}

// setLeader adopts a NotLeader hint.
func (r *router) setLeader(group, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.groups[group]
	if st == nil {
		st = &groupState{}
		r.groups[group] = st
	}
	st.leader = addr
	st.nodes = mergeAddrs(st.nodes, []string{addr})
	if st.failed == addr {
		st.failed = ""
	}
}

// noteFailed records that addr could not be reached (or is not the
// leader); the next leader-only request probes the other nodes.
func (r *router) noteFailed(group, addr string, transport bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.groups[group]
	if st == nil {
		return
	}
	if st.leader == addr {
		st.leader = ""
		if transport {
			st.failed = addr
			st.failedTerm = st.term
		}
	}
}

// backoff is a short capped exponential backoff for leader look-ups. The
// cap is low on purpose: a new leader serves about half a second after a
// crash, and a 200ms cap made clients notice it up to 200ms late (measured:
// pauses clustered at 0.72/0.92/1.12s). A look-up is one small request.
type backoff struct{ d, max time.Duration }

func newBackoff() *backoff { return &backoff{d: 10 * time.Millisecond, max: 50 * time.Millisecond} }

// next returns the current delay and doubles it (up to max).
func (b *backoff) next() time.Duration {
	d := b.d
	b.d = min(b.d*2, b.max)
	return d
}

// wait sleeps for the current delay (or until ctx ends) and doubles it.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func budgetErr(ctxErr, last error) error {
	if last == nil {
		return ctxErr
	}
	return fmt.Errorf("%w (last error: %w)", ctxErr, last)
}

// callLeader is leaderCall for a plain request/response; each attempt
// decodes into its own value and the winner's is copied into resp.
func (r *router) callLeader(ctx context.Context, group string, maxMaybe int, code uint16, req, resp any) error {
	won, err := leaderCall(ctx, r, group, maxMaybe, func(ctx context.Context, addr string) (any, error) {
		v := callResp(resp)
		return v, r.pool.call(ctx, addr, code, req, v)
	})
	if err == nil {
		setResp(resp, won)
	}
	return err
}

// groupsOf lists the broker groups of the cluster (from the NameServer).
func (r *router) clusterGroups(ctx context.Context) ([]string, error) {
	var ci wire.ClusterInfo
	if err := r.nsCall(ctx, wire.CodeGetCluster, wire.Empty{}, &ci); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range ci.Nodes {
		if !seen[n.Group] {
			seen[n.Group] = true
			out = append(out, n.Group)
		}
	}
	sort.Strings(out)
	r.mu.Lock()
	for _, n := range ci.Nodes {
		var leader *wire.NodeRoute
		if n.Role == "leader" && !n.StaleLeader {
			leader = &wire.NodeRoute{NodeID: n.NodeID, Addr: n.Addr}
		}
		r.learnLocked(n.Group, leader, n.Term, []wire.NodeRoute{{NodeID: n.NodeID, Addr: n.Addr}})
	}
	r.mu.Unlock()
	return out, nil
}

// knownGroups lists the broker groups the router has learned of.
func (r *router) knownGroups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.groups))
	for g := range r.groups {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}
