package broker

import (
	"slices"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/client/wire"
)

// groupManager tracks live consumer-group members and queue locks on the
// group leader, like RocketMQ's ConsumerManager and RebalanceLockManager.
// This state is leader-local on purpose: it is soft (clients re-heartbeat
// every second and re-lock), and replicating heartbeats through Raft would
// cost a log entry per client per second. After failover members reach
// the new leader within one heartbeat interval.
//
// A queue lock is held while its owner heartbeats, for at most LockLease
// without renewal; a member that leaves or expires loses its locks, which
// is what lets the next owner of a queue start exactly where the previous
// one committed.
type groupManager struct {
	mu      sync.Mutex // leaf lock
	now     func() time.Time
	timeout time.Duration // member expiry
	lease   time.Duration // lock lease
	groups  map[string]*liveGroup
	locks   map[lockKey]*queueLock
}

type liveGroup struct {
	mode    string
	members map[string]*member
}

type member struct {
	lastSeen time.Time
	topics   []string
}

type lockKey struct {
	group, topic string
	queue        uint32
}

type queueLock struct {
	owner   string
	expires time.Time
}

func newGroupManager(timeout, lease time.Duration) *groupManager {
	return &groupManager{
		now: time.Now, timeout: timeout, lease: lease,
		groups: map[string]*liveGroup{}, locks: map[lockKey]*queueLock{},
	}
}

// heartbeat registers or refreshes a member and returns the sorted ids of
// the group's live members.
func (g *groupManager) heartbeat(req *wire.HeartbeatRequest) ([]string, error) {
	if req.Mode != wire.ModeClustering && req.Mode != wire.ModeBroadcasting {
		return nil, wire.Errorf(wire.CodeInvalidArgument, "mode %q; use %q or %q", req.Mode, wire.ModeClustering, wire.ModeBroadcasting)
	}
	if req.ClientID == "" {
		return nil, wire.Errorf(wire.CodeInvalidArgument, "empty client id")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.expireLocked(now)
	lg := g.groups[req.Group]
	if lg == nil {
		lg = &liveGroup{mode: req.Mode, members: map[string]*member{}}
		g.groups[req.Group] = lg
	}
	if lg.mode != req.Mode {
		if _, alone := lg.members[req.ClientID]; !(alone && len(lg.members) == 1) {
			return nil, wire.Errorf(wire.CodeGroupModeMismatch,
				"group %q is consumed in %s mode by %d member(s); this client asked for %s",
				req.Group, lg.mode, len(lg.members), req.Mode)
		}
		lg.mode = req.Mode // the only member switched modes
	}
	lg.members[req.ClientID] = &member{lastSeen: now, topics: slices.Clone(req.Topics)}
	// Renew this member's locks.
	for k, l := range g.locks {
		if k.group == req.Group && l.owner == req.ClientID {
			l.expires = now.Add(g.lease)
		}
	}
	return sortedKeys(lg.members), nil
}

// leave removes a member and releases its locks.
func (g *groupManager) leave(group, client string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if lg := g.groups[group]; lg != nil {
		delete(lg.members, client)
		if len(lg.members) == 0 {
			delete(g.groups, group)
		}
	}
	for k, l := range g.locks {
		if k.group == group && l.owner == client {
			delete(g.locks, k)
		}
	}
}

// lock grants each queue that is free, expired, held by a departed member
// or already held by client; it returns the queues client now holds.
func (g *groupManager) lock(req *wire.LockRequest) ([]wire.QueueOffset, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.expireLocked(now)
	lg := g.groups[req.Group]
	if lg == nil || lg.members[req.ClientID] == nil {
		return nil, wire.Errorf(wire.CodeInvalidArgument, "client %q is not a live member of group %q; heartbeat first", req.ClientID, req.Group)
	}
	var held []wire.QueueOffset
	for _, q := range req.Queues {
		k := lockKey{req.Group, q.Topic, q.QueueID}
		l := g.locks[k]
		if l == nil || l.owner == req.ClientID || now.After(l.expires) || lg.members[l.owner] == nil {
			g.locks[k] = &queueLock{owner: req.ClientID, expires: now.Add(g.lease)}
			held = append(held, wire.QueueOffset{Topic: q.Topic, QueueID: q.QueueID})
		}
	}
	return held, nil
}

// unlock releases the queues client holds.
func (g *groupManager) unlock(req *wire.LockRequest) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, q := range req.Queues {
		k := lockKey{req.Group, q.Topic, q.QueueID}
		if l := g.locks[k]; l != nil && l.owner == req.ClientID {
			delete(g.locks, k)
		}
	}
}

// expireLocked drops members that stopped heartbeating and their locks.
func (g *groupManager) expireLocked(now time.Time) {
	for name, lg := range g.groups {
		for id, m := range lg.members {
			if now.Sub(m.lastSeen) > g.timeout {
				delete(lg.members, id)
			}
		}
		if len(lg.members) == 0 {
			delete(g.groups, name)
		}
	}
	for k, l := range g.locks {
		lg := g.groups[k.group]
		if now.After(l.expires) || lg == nil || lg.members[l.owner] == nil {
			delete(g.locks, k)
		}
	}
}

// snapshot returns the live groups' modes and members, and queue owners.
func (g *groupManager) describe(group string) (mode string, members []string, owners map[lockKey]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(g.now())
	owners = map[lockKey]string{}
	for k, l := range g.locks {
		if k.group == group {
			owners[k] = l.owner
		}
	}
	if lg := g.groups[group]; lg != nil {
		return lg.mode, sortedKeys(lg.members), owners
	}
	return "", nil, owners
}

func (g *groupManager) liveGroups() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(g.now())
	return sortedKeys(g.groups)
}

// reset forgets everything (leadership lost: the next leader starts fresh).
func (g *groupManager) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.groups = map[string]*liveGroup{}
	g.locks = map[lockKey]*queueLock{}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// memberTopics returns the topics live members of group subscribe to.
func (g *groupManager) memberTopics(group string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	set := map[string]bool{}
	if lg := g.groups[group]; lg != nil {
		for _, m := range lg.members {
			for _, t := range m.topics {
				set[t] = true
			}
		}
	}
	return sortedKeys(set)
}
