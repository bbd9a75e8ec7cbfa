package fsm

import (
	"container/heap"
	"fmt"
)

// Retries and dead letters, written once. A consumer that fails a message
// sends it back (SendBack): the leader names the record (entry, position,
// size, tag hash), the group's retry or dead-letter queue as the target,
// the due time of the retry and the per-delivery metadata (RetryInfo: how
// many deliveries failed, where the message was first stored). Applying a
// retry with a due time in the future adds a pending timer whose metadata
// waits in retryMeta until DeliverTimers delivers it; a dead letter (or a
// retry due now) gets its unit at once. Either way the unit points at the
// original record, and its metadata is in the queue's delivered table, so
// Units hands it to readers with the unit. No body is written again.

// RetryInfo is the metadata of a retried or dead-lettered delivery.
type RetryInfo struct {
	Reconsume     uint32 `msgpack:"n"` // deliveries of the message that failed before this one
	OriginTopicID uint32 `msgpack:"t"` // the topic incarnation it was first stored in
	OriginQueue   uint32 `msgpack:"q"` // and its queue
	OriginOffset  uint64 `msgpack:"o"` // and offset there
}

// timerKey identifies a pending timer (a record may have several: its own
// delay, and retries for several groups).
type timerKey struct {
	index            uint64
	pos              uint32
	topicID, queueID uint32
}

func (t *timer) key() timerKey {
	return timerKey{index: t.index, pos: t.pos, topicID: t.topicID, queueID: t.queueID}
}

// SendBack schedules a retry of a record into a retry queue, or appends
// it to a dead-letter queue (DLQ, or a retry due at Now). Record names the
// record (Index, Pos, Size, TagHash), the target queue (TopicID, QueueID)
// and, for a retry, its due time. Apply result: *SendBackResult or
// ErrTopicNotFound (the target queue does not exist).
type SendBack struct {
	Now    int64     `msgpack:"now"`
	Record TimerRef  `msgpack:"rec"`
	Retry  RetryInfo `msgpack:"retry"`
	DLQ    bool      `msgpack:"dlq,omitempty"`
	// Pop, with PopGroup, names the dead pop item (pop.go) this dead
	// letter comes from: applying drops the item if the handle still
	// names it. The unit is appended whether or not it does, so the
	// command means the same when a consume-queue rebuild replays it.
	Pop      *PopHandle `msgpack:"pop,omitempty"`
	PopGroup string     `msgpack:"popg,omitempty"`
}

// SendBackResult is the Apply result of SendBack.
type SendBackResult struct {
	Scheduled bool   // a timer waits for Record.Due
	Offset    uint64 // otherwise the unit's offset in the target queue
}

// Type implements Command.
func (SendBack) Type() CommandType { return CmdSendBack }

func (c *SendBack) validate() error {
	if c.Record.Index == 0 || c.Record.Size == 0 || c.Record.Size&unitDelivered != 0 {
		return fmt.Errorf("%w: send back of record %d/%d (size %d)", ErrInvalidCommand, c.Record.Index, c.Record.Pos, c.Record.Size)
	}
	if c.Pop != nil && (!c.DLQ || validateGroup(c.PopGroup) != nil) {
		return invalid("a send back naming a pop item must be a dead letter of a named group")
	}
	return nil
}

func (c *SendBack) apply(f *FSM, index uint64) any {
	q := f.queueByID(c.Record.TopicID, c.Record.QueueID)
	if q == nil {
		return fmt.Errorf("%w: target queue %d of topic incarnation %d", ErrTopicNotFound, c.Record.QueueID, c.Record.TopicID)
	}
	if !c.DLQ && c.Record.Due > c.Now {
		t := c.Record.timer()
		heap.Push(&f.timers, t)
		f.retryMeta[t.key()] = c.Retry
		return &SendBackResult{Scheduled: true}
	}
	r := c.Record
	f.appendUnit(q, Unit{Index: index, Pos: r.Pos, Size: r.Size | unitDelivered, TagHash: r.TagHash, StoreTime: c.Now})
	q.delivered.add(q.next-1, r.Index, &c.Retry)
	if c.Pop != nil {
		f.dropPopped(c.PopGroup, *c.Pop)
	}
	return &SendBackResult{Offset: q.next - 1}
}

// LastRetry returns the metadata of the latest live delivery of the
// record at (index, pos) in the queue of topic (a group's retry queue):
// how a send-back that names only the record learns how often it failed.
func (f *FSM) LastRetry(topic string, queueID uint32, index uint64, pos uint32) (RetryInfo, bool) {
	_, meta, ok := f.LastDelivered(topic, queueID, index, pos)
	if !ok || meta == nil {
		return RetryInfo{}, false
	}
	return *meta, true
}

// LastDelivered returns the offset (and retry metadata, if any) of the
// latest live delivered unit of a queue that points at the record at
// (index, pos): how a delayed or retried message's queue offset is found
// from its record, which a binary search by position cannot do (the
// delivered units are out of their records' order).
func (f *FSM) LastDelivered(topic string, queueID uint32, index uint64, pos uint32) (uint64, *RetryInfo, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	q, err := f.queueLocked(topic, queueID)
	if err != nil || q.err != nil {
		return 0, nil, false
	}
	d := &q.delivered
	for i := len(d.offsets) - 1; i >= 0; i-- {
		if d.orig[i] != index || d.offsets[i] < q.min {
			continue
		}
		if u, ok := f.store.read(q, d.offsets[i]); ok && u.Pos == pos {
			return d.offsets[i], d.retry(i), true
		}
	}
	return 0, nil, false
}

// TopicName returns the name of the live topic incarnation id.
func (f *FSM) TopicName(id uint32) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, t := range f.topics {
		if t.ID == id {
			return t.Name, true
		}
	}
	return "", false
}

// PendingTimersTo counts the pending timers whose target is a queue of
// the topic incarnation topicID (a group's retries waiting for their
// backoff, for its retry topic). It scans the timers.
func (f *FSM) PendingTimersTo(topicID uint32) int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := 0
	for i := range f.timers {
		if f.timers[i].topicID == topicID {
			n++
		}
	}
	return n
}

// PendingTimersByQueue counts, per queue, the pending timers whose target
// is a queue of the topic incarnation topicID (delayed messages not yet
// due, or retries waiting for their backoff). It scans the timers.
func (f *FSM) PendingTimersByQueue(topicID uint32) map[uint32]int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out map[uint32]int
	for i := range f.timers {
		if t := &f.timers[i]; t.topicID == topicID {
			if out == nil {
				out = map[uint32]int{}
			}
			out[t.queueID]++
		}
	}
	return out
}
