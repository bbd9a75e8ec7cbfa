package fsm

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// Every method in this file is safe to call concurrently with Apply,
// ApplyBatch, Sync and each other: each holds FSM.mu for reading.

// AppliedIndex is the raft index of the last entry passed to Apply (any type).
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// LogStart is the first raft index retention keeps (TruncatePrefix UpTo+1),
// or 0 if nothing was truncated yet.
func (f *FSM) LogStart() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.logStart
}

// TruncateReason is the Reason of the TruncatePrefix that last moved
// LogStart on this replica ("" if none since start-up or the last Restore:
// it is a diagnostic, not part of snapshots).
func (f *FSM) TruncateReason() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.truncReason
}

// Topic returns a copy of the named topic's configuration.
func (f *FSM) Topic(name string) (Topic, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t := f.topics[name]
	if t == nil {
		return Topic{}, false
	}
	c := t.Topic
	c.Attributes = cloneMap(c.Attributes)
	return c, true
}

// Topics returns copies of every topic, sorted by name.
func (f *FSM) Topics() []Topic {
	f.mu.RLock()
	out := make([]Topic, 0, len(f.topics))
	for _, t := range f.topics {
		c := t.Topic
		c.Attributes = cloneMap(c.Attributes)
		out = append(out, c)
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Topic) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func (f *FSM) queueLocked(topic string, queueID uint32) (*queue, error) {
	t := f.topics[topic]
	if t == nil {
		return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, topic)
	}
	if queueID >= t.Queues {
		return nil, fmt.Errorf("%w: %s/%d", ErrQueueNotFound, topic, queueID)
	}
	return t.queues[queueID], nil
}

// QueueRange returns the readable offsets [min, next) of a queue.
func (f *FSM) QueueRange(topic string, queueID uint32) (min, next uint64, err error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	q, err := f.queueLocked(topic, queueID)
	if err != nil {
		return 0, 0, err
	}
	return q.min, q.next, nil
}

// Units appends to dst up to max units of a queue starting at offset from.
// from < min returns *OffsetTooSmallError; from >= next returns dst unchanged.
func (f *FSM) Units(topic string, queueID uint32, from uint64, max int, dst []Unit) ([]Unit, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	q, err := f.queueLocked(topic, queueID)
	if err != nil {
		return dst, err
	}
	if from < q.min {
		return dst, &OffsetTooSmallError{Topic: topic, QueueID: queueID, Offset: from, Min: q.min}
	}
	if q.err != nil {
		return dst, q.err
	}
	for off := from; off < q.next && max > 0; off++ {
		u, ok := f.store.read(q, off)
		if !ok {
			return dst, fmt.Errorf("%w: %s/%d offset %d has no consume queue file", ErrCorrupt, topic, queueID, off)
		}
		u, err := q.resolve(off, u)
		if err != nil {
			return dst, err
		}
		dst = append(dst, u)
		max--
	}
	return dst, nil
}

// OffsetForTime returns the first offset in [min, next) whose unit's store
// time is >= tsMillis, or next if there is none. Store times come from the
// leader's clock and are assumed non-decreasing within a queue (a leader
// change with clock skew can break that; the answer is then some boundary).
func (f *FSM) OffsetForTime(topic string, queueID uint32, tsMillis int64) (uint64, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	q, err := f.queueLocked(topic, queueID)
	if err != nil {
		return 0, err
	}
	if q.err != nil {
		return 0, q.err
	}
	n := int(q.next - q.min)
	i := sort.Search(n, func(i int) bool {
		u, _ := f.store.read(q, q.min+uint64(i))
		return u.StoreTime >= tsMillis
	})
	return q.min + uint64(i), nil
}

// ConsumerOffset returns a group's committed offset for a queue.
func (f *FSM) ConsumerOffset(group, topic string, queueID uint32) (uint64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	off, ok := f.groups[group][queueKey{topic, queueID}]
	return off, ok
}

// GroupOffsets returns a group's offsets sorted by topic, then queue.
func (f *FSM) GroupOffsets(group string) []OffsetEntry {
	f.mu.RLock()
	offs := f.groups[group]
	out := make([]OffsetEntry, 0, len(offs))
	for k, v := range offs {
		out = append(out, OffsetEntry{Topic: k.topic, QueueID: k.queue, Offset: v})
	}
	f.mu.RUnlock()
	sortOffsets(out)
	return out
}

func sortOffsets(s []OffsetEntry) {
	slices.SortFunc(s, func(a, b OffsetEntry) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.QueueID, b.QueueID))
	})
}

// Groups returns the names of groups holding offsets, sorted.
func (f *FSM) Groups() []string {
	f.mu.RLock()
	out := make([]string, 0, len(f.groups))
	for g := range f.groups {
		out = append(out, g)
	}
	f.mu.RUnlock()
	slices.Sort(out)
	return out
}

// GroupResetEpoch counts administrative offset resets of a group.
func (f *FSM) GroupResetEpoch(group string) uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.resetEpochs[group]
}

// Nodes returns every registered broker node's client address.
func (f *FSM) Nodes() map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return maps.Clone(f.nodes)
}

// NodeAddr returns the client address a broker node registered.
func (f *FSM) NodeAddr(id string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.nodes[id]
	return a, ok
}
