package broker

import (
	"slices"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/client/wire"
)

// groupManager tracks live consumer-group members on the group leader,
// like RocketMQ's ConsumerManager. This state is leader-local on purpose:
// it is soft (clients re-heartbeat every second), and replicating
// heartbeats through Raft would cost a log entry per client per second.
// After failover members reach the new leader within one heartbeat
// interval. Queue locks are not kept here: they are replicated (fsm
// LockQueues, see locks.go), so a new leader honours every lease the old
// one granted.
type groupManager struct {
	mu      sync.Mutex // leaf lock
	now     func() time.Time
	timeout time.Duration // member expiry
	groups  map[string]*liveGroup
}

type liveGroup struct {
	mode    string
	members map[string]*member
}

type member struct {
	lastSeen time.Time
	topics   []string
}

func newGroupManager(timeout time.Duration) *groupManager {
	return &groupManager{now: time.Now, timeout: timeout, groups: map[string]*liveGroup{}}
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
	return sortedKeys(lg.members), nil
}

// leave removes a member (its locks are released by the caller).
func (g *groupManager) leave(group, client string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if lg := g.groups[group]; lg != nil {
		delete(lg.members, client)
		if len(lg.members) == 0 {
			delete(g.groups, group)
		}
	}
}

// isMember reports whether client is a live member of group.
func (g *groupManager) isMember(group, client string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(g.now())
	lg := g.groups[group]
	return lg != nil && lg.members[client] != nil
}

// expireLocked drops members that stopped heartbeating.
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
}

// describe returns a live group's mode and sorted members.
func (g *groupManager) describe(group string) (mode string, members []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expireLocked(g.now())
	if lg := g.groups[group]; lg != nil {
		return lg.mode, sortedKeys(lg.members)
	}
	return "", nil
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
