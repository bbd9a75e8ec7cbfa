package fsm

import (
	"cmp"
	"math"
	"slices"
)

// MaxLockQueues bounds the queues of one LockQueues or UnlockQueues.
const MaxLockQueues = 64 * MaxQueues

// QueueRef names one queue of a topic.
type QueueRef struct {
	Topic   string `msgpack:"t"`
	QueueID uint32 `msgpack:"q"`
}

// LockQueues grants ClientID, a member of consumer group Group, the lock of
// each of Queues that is unowned, already held by ClientID, or whose lease
// ended at or before Now. A granted (or renewed) lock is held until
// Now+Lease; a renewal never moves its grant time or expiry back. Now is
// the proposing leader's clock: Apply reads no clock, so every replica
// decides alike. Apply result: *LockResult, or an ErrInvalidCommand error.
type LockQueues struct {
	Group    string     `msgpack:"group"`
	ClientID string     `msgpack:"client"`
	Queues   []QueueRef `msgpack:"queues"`
	Now      int64      `msgpack:"now"`   // leader clock, unix ms
	Lease    int64      `msgpack:"lease"` // ms
}

// LockResult is the Apply result of LockQueues: the requested queues
// ClientID holds now, in request order.
type LockResult struct {
	Granted []QueueRef
}

// UnlockQueues releases the locks ClientID holds in Group: those of Queues,
// or all of them when All is set. A non-zero GrantedBefore (leader clock,
// unix ms) limits it to locks last granted before that time; the leader
// uses it to drop a departed member's locks only once the member can no
// longer trust them, without racing a renewal that commits first. Apply
// result: nil or an ErrInvalidCommand error.
type UnlockQueues struct {
	Group         string     `msgpack:"group"`
	ClientID      string     `msgpack:"client"`
	Queues        []QueueRef `msgpack:"queues,omitempty"`
	All           bool       `msgpack:"all,omitempty"`
	GrantedBefore int64      `msgpack:"granted_before,omitempty"`
}

func (LockQueues) Type() CommandType   { return CmdLockQueues }
func (UnlockQueues) Type() CommandType { return CmdUnlockQueues }

// QueueLock is one entry of the replicated lock table.
type QueueLock struct {
	Group   string
	Topic   string
	QueueID uint32
	Owner   string
	Granted int64 // leader clock of the last grant or renewal, unix ms
	Expires int64 // the lock is held while the leader clock is before this, unix ms
}

type lockState struct {
	owner            string
	granted, expires int64
}

func validateLockTarget(group, client string, qs []QueueRef) error {
	if err := validateGroup(group); err != nil {
		return err
	}
	if client == "" || len(client) > 255 {
		return invalid("client id length %d outside [1, 255]", len(client))
	}
	if len(qs) > MaxLockQueues {
		return invalid("%d queues in one lock command; at most %d", len(qs), MaxLockQueues)
	}
	for _, q := range qs {
		if err := ValidateTopicName(q.Topic); err != nil {
			return invalid("%v", err)
		}
	}
	return nil
}

func (c *LockQueues) validate() error {
	if err := validateLockTarget(c.Group, c.ClientID, c.Queues); err != nil {
		return err
	}
	if c.Now <= 0 || c.Lease <= 0 || c.Lease > math.MaxInt64-c.Now {
		return invalid("lock time %d and lease %dms must be positive and not overflow", c.Now, c.Lease)
	}
	return nil
}

func (c *UnlockQueues) validate() error {
	if err := validateLockTarget(c.Group, c.ClientID, c.Queues); err != nil {
		return err
	}
	if c.GrantedBefore < 0 {
		return invalid("negative granted-before %d", c.GrantedBefore)
	}
	return nil
}

func (c *LockQueues) apply(f *FSM, _ uint64) any { return f.lockQueues(c) }

func (c *UnlockQueues) apply(f *FSM, _ uint64) any {
	f.unlockQueues(c)
	return nil
}

// lockQueues applies c; it also drops the group's locks that expired by
// c.Now, so the table does not grow with abandoned queues.
func (f *FSM) lockQueues(c *LockQueues) *LockResult {
	gl := f.locks[c.Group]
	for k, l := range gl {
		if c.Now >= l.expires {
			delete(gl, k)
		}
	}
	res := &LockResult{}
	seen := make(map[queueKey]bool, len(c.Queues))
	for _, q := range c.Queues {
		k := queueKey{q.Topic, q.QueueID}
		if seen[k] {
			continue
		}
		seen[k] = true
		l, ok := gl[k]
		if ok && l.owner != c.ClientID { // live: expired ones were dropped above
			continue
		}
		if gl == nil {
			gl = map[queueKey]lockState{}
			f.locks[c.Group] = gl
		}
		// A renewal stamped by a leader whose clock is behind never
		// shortens the lock.
		gl[k] = lockState{owner: c.ClientID, granted: max(l.granted, c.Now), expires: max(l.expires, c.Now+c.Lease)}
		res.Granted = append(res.Granted, q)
	}
	if gl != nil && len(gl) == 0 {
		delete(f.locks, c.Group)
	}
	return res
}

func (f *FSM) unlockQueues(c *UnlockQueues) {
	gl := f.locks[c.Group]
	release := func(k queueKey) {
		if l, ok := gl[k]; ok && l.owner == c.ClientID && (c.GrantedBefore == 0 || l.granted < c.GrantedBefore) {
			delete(gl, k)
		}
	}
	if c.All {
		for k := range gl {
			release(k)
		}
	} else {
		for _, q := range c.Queues {
			release(queueKey{q.Topic, q.QueueID})
		}
	}
	if gl != nil && len(gl) == 0 {
		delete(f.locks, c.Group)
	}
}

// Locks returns the lock table of group, or of every group when group is
// empty, sorted by group, topic and queue. It includes locks whose lease
// has ended but that no command has dropped yet: compare Expires with the
// caller's clock.
func (f *FSM) Locks(group string) []QueueLock {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []QueueLock
	add := func(g string, gl map[queueKey]lockState) {
		for k, l := range gl {
			out = append(out, QueueLock{Group: g, Topic: k.topic, QueueID: k.queue, Owner: l.owner, Granted: l.granted, Expires: l.expires})
		}
	}
	if group != "" {
		add(group, f.locks[group])
	} else {
		for g, gl := range f.locks {
			add(g, gl)
		}
	}
	sortLocks(out)
	return out
}

func sortLocks(ls []QueueLock) {
	slices.SortFunc(ls, func(a, b QueueLock) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.QueueID, b.QueueID))
	})
}
