package client

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// Latency fault tolerance (RocketMQ's MQFaultStrategy, on by default
// here): a broker group whose leader could not be reached, had no leader,
// refused a write in a way another group would not (unavailable, disk
// full, timed out) or answered slower than ProducerConfig.SlowSend is
// avoided for ProducerConfig.GroupBackoff, doubled for each further
// failure in a row up to 16 times; a fast success ends it. (Only Send
// measures slowness: a SendAsync's latency is mostly its wait behind the
// producer's own backlog.) Only sends the
// producer may place on any queue take part: a message without a
// ShardingKey under one of the built-in selectors. Such a send skips
// avoided groups when it picks its queue, and when its group fails in one
// of those ways it goes on to another group (with the same MsgID) rather
// than waiting there for a new leader. A message with a ShardingKey, or
// under a custom QueueSelector, keeps its queue: its order depends on it.
// When every group is avoided the selector sees all queues again.

// codeDiskFull is wire.CodeDiskFull: a broker above its disk high-water
// mark refuses writes with it. Another group may well have room, so it
// is retriable elsewhere whether or not this build's wire table knows it.
const codeDiskFull uint16 = 24

// maxBackoffShift caps the doubling of GroupBackoff (x16).
const maxBackoffShift = 4

// faults is the producer's view of which broker groups to avoid.
type faults struct {
	backoff time.Duration // <= 0: avoidance off
	slow    time.Duration
	// any is the latest avoidance deadline (unix nanos) of any group: a
	// send checks it alone while no group is avoided.
	any atomic.Int64

	mu     sync.Mutex
	groups map[string]*groupFault
}

type groupFault struct {
	until  time.Time
	streak int // failures in a row
}

func newFaults(backoff, slow time.Duration) *faults {
	return &faults{backoff: backoff, slow: slow, groups: map[string]*groupFault{}}
}

func (f *faults) enabled() bool { return f != nil && f.backoff > 0 }

// fail records a send to group that failed in a retriable-elsewhere way.
func (f *faults) fail(group string, now time.Time) {
	if !f.enabled() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groups[group]
	if g == nil {
		g = &groupFault{}
		f.groups[group] = g
	}
	d := f.backoff << min(g.streak, maxBackoffShift)
	g.streak++
	f.avoidLocked(g, now.Add(d))
}

// done records a successful send to group that took d.
func (f *faults) done(group string, d time.Duration, now time.Time) {
	if !f.enabled() {
		return
	}
	if d >= f.slow {
		f.mu.Lock()
		g := f.groups[group]
		if g == nil {
			g = &groupFault{}
			f.groups[group] = g
		}
		f.avoidLocked(g, now.Add(f.backoff))
		f.mu.Unlock()
		return
	}
	if f.any.Load() == 0 {
		return // nothing avoided, nothing to end
	}
	f.mu.Lock()
	if g := f.groups[group]; g != nil {
		delete(f.groups, group)
	}
	if len(f.groups) == 0 {
		f.any.Store(0)
	}
	f.mu.Unlock()
}

func (f *faults) avoidLocked(g *groupFault, until time.Time) {
	if until.After(g.until) {
		g.until = until
	}
	if n := until.UnixNano(); n > f.any.Load() {
		f.any.Store(n)
	}
}

// avoided reports whether group is avoided at now.
func (f *faults) avoided(group string, now time.Time) bool {
	if !f.enabled() || f.any.Load() <= now.UnixNano() {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groups[group]
	return g != nil && now.Before(g.until)
}

// filter returns the queues of groups neither avoided nor in skip; all
// of queues when that leaves none (better a sick group than no send).
func (f *faults) filter(queues []Queue, skip []string, now time.Time) []Queue {
	if len(skip) == 0 && (!f.enabled() || f.any.Load() <= now.UnixNano()) {
		return queues
	}
	out := make([]Queue, 0, len(queues))
	for _, q := range queues {
		if !contains(skip, q.Group) && !f.avoided(q.Group, now) {
			out = append(out, q)
		}
	}
	if len(out) == 0 {
		// Every group is avoided: skip only the ones this send has tried.
		for _, q := range queues {
			if !contains(skip, q.Group) {
				out = append(out, q)
			}
		}
	}
	if len(out) == 0 {
		return queues
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// otherGroup reports whether queues hold a group other than group and
// not in skip: whether a send that gives up on group has somewhere to go.
func otherGroup(queues []Queue, group string, skip []string) bool {
	for _, q := range queues {
		if q.Group != group && !contains(skip, q.Group) {
			return true
		}
	}
	return false
}

// errElsewhere marks a send that gave up on its broker group so that the
// producer can try another (see leaderCallOpts).
type errElsewhere struct {
	group string
	err   error
	maybe bool // an attempt may have stored the message: going elsewhere may duplicate it
}

func (e *errElsewhere) Error() string { return "broker group " + e.group + ": " + e.err.Error() }
func (e *errElsewhere) Unwrap() error { return e.err }

// retriableElsewhere reports whether err says the group cannot take the
// write now while another group may: its leader unreachable or gone, no
// leader, unavailable, disk full, timed out.
func retriableElsewhere(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) {
		return false
	}
	if errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNoNameServer) {
		return true
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Code {
		case wire.CodeNotLeader, wire.CodeLeaderNotReady, wire.CodeUnavailable, wire.CodeTimeout,
			wire.CodeIndeterminate, codeDiskFull:
			return true
		}
		return false
	}
	return isTransport(err) || classify(err) == failMaybe
}

// movable reports whether the producer may place msg on any queue: no
// ShardingKey and a built-in selector.
func (p *Producer) movable(msg *Message) bool {
	if !p.faults.enabled() || msg.ShardingKey != "" {
		return false
	}
	switch p.cfg.QueueSelector.(type) {
	case *roundRobin, *hashSelector:
		return true
	}
	return false
}

// selectQueue picks msg's queue among queues, skipping avoided groups and
// those in skip when msg is movable.
func (p *Producer) selectQueue(msg *Message, queues []Queue, skip []string) Queue {
	if p.movable(msg) {
		queues = p.faults.filter(queues, skip, time.Now())
	}
	return p.cfg.QueueSelector.Select(msg, queues)
}
