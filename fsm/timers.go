package fsm

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"fmt"
	"strconv"
)

// Delayed delivery, written once. A message whose record carries the
// property TIMER_DELIVER_MS (absolute unix ms; the broker turns delay
// levels and relative delays into it) later than its batch's store time
// gets no consume-queue unit when its batch is applied: it becomes a
// pending timer {due, record position, target queue} in the replicated
// state. The leader's scheduler proposes DeliverTimers listing due timers;
// applying it removes each listed pending timer and appends a unit for it
// to its queue, pointing at the original record. The body is never
// written again; a delivered unit is marked (unitDelivered in Size), its
// Index is the DeliverTimers entry (so units stay in raft-index order and
// retention's binary search holds) and the record's own entry index is
// kept in the queue's delivered table, which Units resolves.
//
// Retention pins: PinnedIndex is the lowest entry index a pending timer or
// a live delivered unit points to; the broker never purges the log at or
// above it (TruncatePrefix still moves queue mins by unit index).

// PropDeliverAt is the record property holding a delayed message's due
// time, unix ms (RocketMQ 5's TIMER_DELIVER_MS).
const PropDeliverAt = "TIMER_DELIVER_MS"

// unitDelivered marks, in a stored unit's Size, a unit appended by
// DeliverTimers: its Index is that entry, the record's entry is in
// queue.delivered.
const unitDelivered = 1 << 31

// MaxDeliverItems bounds one DeliverTimers command.
const MaxDeliverItems = 4096

// timer is one pending delayed message (40 bytes in memory).
type timer struct {
	due     int64  // unix ms
	index   uint64 // entry of the record
	pos     uint32 // record position in the entry
	size    uint32
	tagHash uint32
	topicID uint32
	queueID uint32
}

// before is the total order timers are delivered in.
func (a *timer) before(b *timer) bool {
	if a.due != b.due {
		return a.due < b.due
	}
	if a.index != b.index {
		return a.index < b.index
	}
	if a.pos != b.pos {
		return a.pos < b.pos
	}
	if a.topicID != b.topicID {
		return a.topicID < b.topicID
	}
	return a.queueID < b.queueID
}

// timerHeap is a min-heap of pending timers by (due, index, pos).
type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].before(&h[j]) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// TimerRef names one pending timer: what the scheduler lists in a
// DeliverTimers and what a DeliverTimers entry carries, self-contained so
// that a consume-queue rebuild can replay it from the log alone.
type TimerRef struct {
	Due     int64  `msgpack:"d"`
	Index   uint64 `msgpack:"i"`
	Pos     uint32 `msgpack:"p"`
	Size    uint32 `msgpack:"s"`
	TagHash uint32 `msgpack:"h"`
	TopicID uint32 `msgpack:"t"`
	QueueID uint32 `msgpack:"q"`
}

func (r TimerRef) timer() timer {
	return timer{due: r.Due, index: r.Index, pos: r.Pos, size: r.Size, tagHash: r.TagHash, topicID: r.TopicID, queueID: r.QueueID}
}

func (t *timer) ref() TimerRef {
	return TimerRef{Due: t.due, Index: t.index, Pos: t.pos, Size: t.size, TagHash: t.tagHash, TopicID: t.topicID, QueueID: t.queueID}
}

// DeliverTimers delivers the listed timers that are still pending, in
// order: each gets a unit in its queue (if its topic incarnation still
// exists) stamped with Now. A timer already delivered (a proposal repeated
// by a new leader) is skipped, so nothing is delivered twice. Apply
// result: *DeliverResult.
type DeliverTimers struct {
	Now   int64      `msgpack:"now"` // leader clock, unix ms: the delivered units' store time
	Items []TimerRef `msgpack:"items"`
}

// DeliverResult is the Apply result of DeliverTimers.
type DeliverResult struct {
	Delivered int // units appended
	Dropped   int // pending, but the target topic is gone or was recreated
	Skipped   int // no longer pending
}

// Type implements Command.
func (DeliverTimers) Type() CommandType { return CmdDeliverTimers }

func (c *DeliverTimers) validate() error {
	if len(c.Items) == 0 || len(c.Items) > MaxDeliverItems {
		return fmt.Errorf("%w: deliver %d timers (1..%d)", ErrInvalidCommand, len(c.Items), MaxDeliverItems)
	}
	return nil
}

func (c *DeliverTimers) apply(f *FSM, index uint64) any {
	res := &DeliverResult{}
	for _, it := range c.Items {
		t := it.timer()
		if !f.removeTimer(&t) {
			res.Skipped++
			continue
		}
		var meta *RetryInfo // a retry's metadata (retry.go)
		if m, ok := f.retryMeta[t.key()]; ok {
			meta = &m
			delete(f.retryMeta, t.key())
		}
		q := f.queueByID(t.topicID, t.queueID)
		if q == nil {
			res.Dropped++
			continue
		}
		f.appendUnit(q, Unit{Index: index, Pos: t.pos, Size: t.size | unitDelivered, TagHash: t.tagHash, StoreTime: c.Now})
		q.delivered.add(q.next-1, t.index, meta)
		res.Delivered++
	}
	f.timers.shrink()
	return res
}

// shrink gives back the heap's backing array once it is mostly empty:
// popping never shrinks a slice, and a burst of a million timers would
// otherwise keep 40 MB until a restart.
func (h *timerHeap) shrink() {
	if c := cap(*h); c > 4096 && len(*h) < c/4 {
		*h = append(make(timerHeap, 0, 2*len(*h)), *h...)
	}
}

// removeTimer removes t from the pending timers and reports whether it
// was pending. The scheduler lists the earliest timers, so t is at or
// near the top: the timers ordered before it (ones stored meanwhile with
// an earlier due time, or overdue ones) are popped aside and pushed back.
// The cost is O((1 + timers before t) log n), never a scan of the heap.
func (f *FSM) removeTimer(t *timer) bool {
	var aside []timer
	found := false
	for len(f.timers) > 0 && !t.before(&f.timers[0]) {
		top := heap.Pop(&f.timers).(timer)
		if top == *t {
			found = true
			break
		}
		aside = append(aside, top)
	}
	for _, a := range aside {
		heap.Push(&f.timers, a)
	}
	return found
}

// queueByID returns queue q of the topic whose incarnation is topicID.
func (f *FSM) queueByID(topicID, queueID uint32) *queue {
	for _, t := range f.topics {
		if t.ID == topicID {
			if queueID < t.Queues {
				return t.queues[queueID]
			}
			return nil
		}
	}
	return nil
}

// deliverAtKey is how PropDeliverAt starts a pair in a record's properties.
var deliverAtKey = []byte(PropDeliverAt + "\x01")

// deliverAt returns the due time a record's properties ask for. It runs
// in Apply for every message with properties, so it allocates nothing
// and looks at the pairs only if the key occurs at all.
func deliverAt(props []byte) (int64, bool) {
	key := deliverAtKey
	if !bytes.Contains(props, key) {
		return 0, false
	}
	for p := props; len(p) > 0; {
		var pair []byte
		if i := bytes.IndexByte(p, propSep); i >= 0 {
			pair, p = p[:i], p[i+1:]
		} else {
			pair, p = p, nil
		}
		if bytes.HasPrefix(pair, key) {
			v, err := strconv.ParseInt(string(pair[len(key):]), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// delayed reports whether a record of a batch stored at storeTs waits for
// a timer, and its due time. The rule is Apply's and rebuild's alike.
func delayed(props []byte, storeTs int64) (int64, bool) {
	if len(props) == 0 {
		return 0, false
	}
	due, ok := deliverAt(props)
	return due, ok && due > storeTs
}

// deliveredTable maps the offsets of a queue's delivered units to their
// records' entry indexes, in offset order (delivered units are appended in
// offset order, and removed from the front as the queue's min moves).
type deliveredTable struct {
	offsets []uint64
	orig    []uint64
	meta    []RetryInfo // empty, or one per entry (zero for a plain delayed delivery)
}

func (d *deliveredTable) add(off, orig uint64, meta *RetryInfo) {
	if meta != nil && len(d.meta) < len(d.offsets) {
		d.meta = append(d.meta, make([]RetryInfo, len(d.offsets)-len(d.meta))...)
	}
	d.offsets = append(d.offsets, off)
	d.orig = append(d.orig, orig)
	switch {
	case meta != nil:
		d.meta = append(d.meta, *meta)
	case len(d.meta) > 0:
		d.meta = append(d.meta, RetryInfo{})
	}
}

// retry returns the metadata of entry i (nil for a plain delivery).
func (d *deliveredTable) retry(i int) *RetryInfo {
	if i >= len(d.meta) || d.meta[i] == (RetryInfo{}) {
		return nil
	}
	m := d.meta[i]
	return &m
}

// lookup returns the record entry of the delivered unit at off.
func (d *deliveredTable) lookup(off uint64) (uint64, bool) {
	i, ok := d.find(off)
	if !ok {
		return 0, false
	}
	return d.orig[i], true
}

// find returns the table position of the delivered unit at off.
func (d *deliveredTable) find(off uint64) (int, bool) {
	lo, hi := 0, len(d.offsets)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if d.offsets[mid] < off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(d.offsets) && d.offsets[lo] == off
}

// dropBelow forgets delivered units below min.
func (d *deliveredTable) dropBelow(min uint64) {
	i := 0
	for i < len(d.offsets) && d.offsets[i] < min {
		i++
	}
	if i > 0 {
		d.offsets = append(d.offsets[:0:0], d.offsets[i:]...)
		d.orig = append(d.orig[:0:0], d.orig[i:]...)
		if len(d.meta) > 0 {
			d.meta = append(d.meta[:0:0], d.meta[i:]...)
		}
	}
}

// dropAtOrAbove forgets delivered units at or above next (a rebuild or a
// restore that rewinds a queue).
func (d *deliveredTable) dropAtOrAbove(next uint64) {
	i := len(d.offsets)
	for i > 0 && d.offsets[i-1] >= next {
		i--
	}
	d.offsets, d.orig = d.offsets[:i], d.orig[:i]
	if len(d.meta) > i {
		d.meta = d.meta[:i]
	}
}

// resolve turns a stored unit into the one readers use: a delivered unit
// points at its record's entry.
func (q *queue) resolve(off uint64, u Unit) (Unit, error) {
	if u.Size&unitDelivered == 0 {
		return u, nil
	}
	i, ok := q.delivered.find(off)
	if !ok {
		return u, fmt.Errorf("%w: %s/%d offset %d is a delivered unit without its record's entry", ErrCorrupt, q.topic, q.id, off)
	}
	u.Index, u.Size, u.Retry = q.delivered.orig[i], u.Size&^unitDelivered, q.delivered.retry(i)
	return u, nil
}

// NextDue returns the due time of the earliest pending timer.
func (f *FSM) NextDue() (int64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.timers) == 0 {
		return 0, false
	}
	return f.timers[0].due, true
}

// DueTimers returns up to max pending timers due at or before now, in
// delivery order. It copies the heap's candidates, so it costs O(pending)
// in the worst case only when many are due at once.
func (f *FSM) DueTimers(now int64, max int) []TimerRef {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.timers) == 0 || f.timers[0].due > now || max <= 0 {
		return nil
	}
	// Walk the heap from its root: the candidates are heap positions,
	// ordered by their timers; a taken timer's children join them.
	var out []TimerRef
	cand := &heapPositions{h: f.timers, pos: []int{0}}
	for cand.Len() > 0 && len(out) < max {
		i := heap.Pop(cand).(int)
		t := &f.timers[i]
		if t.due > now {
			break
		}
		out = append(out, t.ref())
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(f.timers) {
				heap.Push(cand, c)
			}
		}
	}
	return out
}

// heapPositions is a min-heap of positions in h, by their timers.
type heapPositions struct {
	h   timerHeap
	pos []int
}

func (p *heapPositions) Len() int           { return len(p.pos) }
func (p *heapPositions) Less(i, j int) bool { return p.h[p.pos[i]].before(&p.h[p.pos[j]]) }
func (p *heapPositions) Swap(i, j int)      { p.pos[i], p.pos[j] = p.pos[j], p.pos[i] }
func (p *heapPositions) Push(x any)         { p.pos = append(p.pos, x.(int)) }
func (p *heapPositions) Pop() any {
	x := p.pos[len(p.pos)-1]
	p.pos = p.pos[:len(p.pos)-1]
	return x
}

// PendingTimers is the number of delayed messages not yet delivered.
func (f *FSM) PendingTimers() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.timers)
}

// PinnedIndex returns the lowest log entry index that a pending timer, a
// live delivered unit or an unacked pop item (pop.go) still points to:
// the log must be kept from there.
func (f *FSM) PinnedIndex() (uint64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var pin uint64
	found := false
	take := func(i uint64) {
		if !found || i < pin {
			pin, found = i, true
		}
	}
	for i := range f.timers {
		take(f.timers[i].index)
	}
	f.popPinned(take)
	for k := range f.halves {
		take(k.index)
	}
	for _, t := range f.topics {
		for _, q := range t.queues {
			for _, o := range q.delivered.orig {
				take(o)
			}
		}
	}
	return pin, found
}

// packTimers encodes the pending timers for a snapshot (40 bytes each).
func packTimers(h timerHeap) []byte {
	if len(h) == 0 {
		return nil
	}
	b := make([]byte, 0, len(h)*timerPackLen)
	for _, t := range h {
		b = binary.BigEndian.AppendUint64(b, uint64(t.due))
		b = binary.BigEndian.AppendUint64(b, t.index)
		b = binary.BigEndian.AppendUint32(b, t.pos)
		b = binary.BigEndian.AppendUint32(b, t.size)
		b = binary.BigEndian.AppendUint32(b, t.tagHash)
		b = binary.BigEndian.AppendUint32(b, t.topicID)
		b = binary.BigEndian.AppendUint32(b, t.queueID)
	}
	return b
}

const timerPackLen = 8 + 8 + 5*4

func unpackTimers(b []byte) (timerHeap, error) {
	if len(b)%timerPackLen != 0 {
		return nil, fmt.Errorf("%w: snapshot timers are %d bytes, not a multiple of %d", ErrCorrupt, len(b), timerPackLen)
	}
	h := make(timerHeap, 0, len(b)/timerPackLen)
	for ; len(b) > 0; b = b[timerPackLen:] {
		h = append(h, timer{
			due:     int64(binary.BigEndian.Uint64(b)),
			index:   binary.BigEndian.Uint64(b[8:]),
			pos:     binary.BigEndian.Uint32(b[16:]),
			size:    binary.BigEndian.Uint32(b[20:]),
			tagHash: binary.BigEndian.Uint32(b[24:]),
			topicID: binary.BigEndian.Uint32(b[28:]),
			queueID: binary.BigEndian.Uint32(b[32:]),
		})
	}
	heap.Init(&h)
	return h, nil
}
