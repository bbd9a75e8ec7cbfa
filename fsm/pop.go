package fsm

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"fmt"
	"slices"
)

// Pop consumption (RocketMQ 5's SimpleConsumer), replicated. A pop
// consumer does not own queues: any member of a group receives from any
// queue. Receiving is a Raft command (Pop) that takes the next units of
// the named queues and makes each an in-flight item of the group: its
// record, the pop time and the deadline (pop time + invisible time)
// before which no other member receives it. The group's committed offset
// of the queue is its pop cursor, so `group describe` shows pop lag as
// it shows pull lag, and an offset reset moves the cursor.
//
// An item leaves the in-flight state by an ack (PopAck) or by expiring.
// An expired item is visible again in place: the next Pop of its queue
// takes it before new units, with its reconsume count one higher, and the
// record is never copied (RocketMQ writes it to a retry topic instead).
// Whether an item expired is decided by the command's Now (the proposing
// leader's clock), so every replica decides alike, and a new leader goes
// on from the replicated items. An item that expires once more than its
// group's maximum reconsume count is dead: the leader's revive service
// sends it to the group's dead-letter queue with a SendBack naming the
// item (Pop), which appends the DLQ unit and drops the item.
//
// A receipt handle names an item instance: queue, offset and pop time.
// ChangeInvisible gives the item a new pop time and deadline, so handles
// of earlier instances no longer ack it. An acked item stays as a
// tombstone until its deadline, so an ack repeated after a lost reply
// succeeds again instead of failing; a later pop command on the queue
// drops the tombstones whose deadline passed. The unacked items of a
// queue are in a heap by deadline that knows each item's position, so a
// receive, an ack or an invisible-time change costs O(log n).

// MaxPopItems bounds the items of one Pop, PopAck or DeadPops list.
const MaxPopItems = 1024

// MaxInvisible bounds an invisible time (RocketMQ 5 allows 12 hours; a
// replicated maximum leaves room for operators' longer leases).
const MaxInvisible = 7 * 24 * 3600 * 1000

// popScanUnits bounds how many units one Pop examines per queue, so a
// selective tag filter over a long backlog answers promptly.
const popScanUnits = 4096

// PopQueueRef names one queue a Pop may take from.
type PopQueueRef struct {
	Topic   string `msgpack:"t"`
	TopicID uint32 `msgpack:"id"`
	QueueID uint32 `msgpack:"q"`
}

// Pop receives up to Max messages for Group from Queues, in order:
// first each queue's expired items (redeliveries), then new units from
// the group's cursor. Each becomes in flight until Now+Invisible. Tags,
// if set, are the tag hashes the group subscribes to: other units are
// passed over (the cursor moves past them). A queue without a cursor
// starts at its min with FromFirst, else at its end; every queue listed
// gets its cursor on the group's first Pop, even once Max is reached, so
// that start holds for queues a first receive did not reach. Apply result:
// *PopResult.
type Pop struct {
	Now          int64         `msgpack:"now"` // leader clock, unix ms
	Group        string        `msgpack:"g"`
	Invisible    int64         `msgpack:"inv"` // ms
	Max          uint32        `msgpack:"max"`
	MaxReconsume uint32        `msgpack:"mr"` // expiries before an item is dead
	Tags         []uint32      `msgpack:"tags,omitempty"`
	FromFirst    bool          `msgpack:"first,omitempty"`
	Queues       []PopQueueRef `msgpack:"qs"`
}

// PopResult is the Apply result of Pop: the items received, in order.
type PopResult struct {
	Items []PoppedItem
}

// PoppedItem is one received message: where its record is and its
// receipt (Handle).
type PoppedItem struct {
	Topic     string
	Handle    PopHandle
	Unit      Unit  // the record (resolved: a delivered unit names its record's entry)
	Reconsume int32 // earlier deliveries that expired unacked
	Deadline  int64 // invisible until then, unix ms
}

// PopHandle names one in-flight item instance (a receipt handle).
type PopHandle struct {
	TopicID uint32 `msgpack:"t"`
	QueueID uint32 `msgpack:"q"`
	Offset  uint64 `msgpack:"o"`
	PopTime int64  `msgpack:"pt"`
}

// PopAck acks items of Group. Apply result: *PopAckResult.
type PopAck struct {
	Now   int64       `msgpack:"now"`
	Group string      `msgpack:"g"`
	Items []PopHandle `msgpack:"items"`
}

// PopStatus is the outcome of an ack or an invisible-time change.
type PopStatus uint8

// PopStatus values.
const (
	PopOK         PopStatus = iota
	PopNotFound             // no such item: never received, or long acked, or dead-lettered
	PopSuperseded           // the item was received again or its invisible time changed: a newer handle names it
	PopExpired              // its invisible time passed and it is dead (bound for the DLQ)
)

func (s PopStatus) String() string {
	switch s {
	case PopOK:
		return "ok"
	case PopNotFound:
		return "not in flight (never received, acked long ago, or dead-lettered)"
	case PopSuperseded:
		return "superseded (received again, or its invisible time changed: use the newer receipt handle)"
	case PopExpired:
		return "expired (its invisible time passed after its last allowed delivery)"
	}
	return fmt.Sprintf("PopStatus(%d)", uint8(s))
}

// PopAckResult is the Apply result of PopAck: one status per item.
type PopAckResult struct {
	Status []PopStatus
}

// PopChangeInvisible makes an in-flight item invisible until
// Now+Invisible, under a new pop time (Now). Apply result:
// *PopChangeResult.
type PopChangeInvisible struct {
	Now       int64     `msgpack:"now"`
	Group     string    `msgpack:"g"`
	Item      PopHandle `msgpack:"item"`
	Invisible int64     `msgpack:"inv"`
}

// PopChangeResult is the Apply result of PopChangeInvisible.
type PopChangeResult struct {
	Status   PopStatus
	Handle   PopHandle // the new handle (Status PopOK)
	Deadline int64
}

func (Pop) Type() CommandType                { return CmdPop }
func (PopAck) Type() CommandType             { return CmdPopAck }
func (PopChangeInvisible) Type() CommandType { return CmdPopChangeInvisible }

func validateInvisible(ms int64) error {
	if ms <= 0 || ms > MaxInvisible {
		return invalid("invisible time %d ms outside [1, %d]", ms, MaxInvisible)
	}
	return nil
}

func (c *Pop) validate() error {
	if err := validateGroup(c.Group); err != nil {
		return err
	}
	if c.Max == 0 || c.Max > MaxPopItems {
		return invalid("pop of %d messages (1..%d)", c.Max, MaxPopItems)
	}
	if len(c.Queues) == 0 || len(c.Queues) > MaxQueues+1 {
		return invalid("pop from %d queues (1..%d)", len(c.Queues), MaxQueues+1)
	}
	if len(c.Tags) > 256 {
		return invalid("%d tags in a pop filter (at most 256)", len(c.Tags))
	}
	return validateInvisible(c.Invisible)
}

func (c *PopAck) validate() error {
	if err := validateGroup(c.Group); err != nil {
		return err
	}
	if len(c.Items) == 0 || len(c.Items) > MaxPopItems {
		return invalid("ack of %d items (1..%d)", len(c.Items), MaxPopItems)
	}
	return nil
}

func (c *PopChangeInvisible) validate() error {
	if err := validateGroup(c.Group); err != nil {
		return err
	}
	return validateInvisible(c.Invisible)
}

// popKey names a group's pop state of one queue.
type popKey struct {
	group            string
	topicID, queueID uint32
}

// popItem is one in-flight (or acked, until its deadline) item.
type popItem struct {
	off       uint64 // its queue offset
	hidx      int    // its position in popQueue.due, -1 when not there (acked)
	index     uint64 // the record: entry, position, size, tag hash
	pos       uint32
	size      uint32
	tagHash   uint32
	storeTime int64
	popTime   int64
	deadline  int64
	reconsume uint32 // deliveries that expired unacked
	max       uint32 // expiries allowed before the item is dead
	acked     bool
}

// dead reports whether an item is past its last allowed delivery at now.
func (it *popItem) dead(now int64) bool {
	return !it.acked && it.deadline <= now && it.reconsume+1 > it.max
}

// popDueHeap is a min-heap of a queue's unacked items by deadline (then
// offset); each item knows its position, so an ack or a dead letter
// removes it and an invisible-time change moves it in O(log n).
type popDueHeap []*popItem

func (h popDueHeap) Len() int { return len(h) }
func (h popDueHeap) Less(i, j int) bool {
	return h[i].deadline < h[j].deadline || h[i].deadline == h[j].deadline && h[i].off < h[j].off
}
func (h popDueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *popDueHeap) Push(x any) {
	it := x.(*popItem)
	it.hidx = len(*h)
	*h = append(*h, it)
}
func (h *popDueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.hidx = -1
	return it
}

// tomb is an acked item kept until its deadline (a repeated ack of its
// handle succeeds meanwhile).
type tomb struct {
	deadline int64
	off      uint64
	popTime  int64
}

type tombHeap []tomb

func (h tombHeap) Len() int           { return len(h) }
func (h tombHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h tombHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *tombHeap) Push(x any)        { *h = append(*h, x.(tomb)) }
func (h *tombHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// popQueue is a group's pop state of one queue.
type popQueue struct {
	qid   uint32
	items map[uint64]*popItem // by queue offset: unacked items and tombstones
	due   popDueHeap          // the unacked items
	tombs tombHeap            // the tombstones, by deadline
}

// arm puts it (newly received, or with a new deadline) in the heap.
func (pq *popQueue) arm(it *popItem) {
	if it.hidx >= 0 {
		heap.Fix(&pq.due, it.hidx)
		return
	}
	heap.Push(&pq.due, it)
}

// ack turns it into a tombstone.
func (pq *popQueue) ack(it *popItem) {
	if it.hidx >= 0 {
		heap.Remove(&pq.due, it.hidx)
	}
	it.acked = true
	heap.Push(&pq.tombs, tomb{deadline: it.deadline, off: it.off, popTime: it.popTime})
}

// drop forgets an unacked item (dead-lettered).
func (pq *popQueue) drop(it *popItem) {
	if it.hidx >= 0 {
		heap.Remove(&pq.due, it.hidx)
	}
	delete(pq.items, it.off)
}

// sweep forgets the tombstones whose deadline passed by now.
func (pq *popQueue) sweep(now int64) {
	for len(pq.tombs) > 0 && pq.tombs[0].deadline <= now {
		t := heap.Pop(&pq.tombs).(tomb)
		if it := pq.items[t.off]; it != nil && it.acked && it.popTime == t.popTime {
			delete(pq.items, t.off)
		}
	}
}

// expired walks the unacked items whose deadline passed by now, earliest
// first, calling fn until it returns false or limit items were seen; it
// returns the earliest deadline after now (0: none seen).
func (pq *popQueue) expired(now int64, limit int, fn func(*popItem) bool) int64 {
	if len(pq.due) == 0 {
		return 0
	}
	cand := &popPositions{h: pq.due, pos: []int{0}}
	for n := 0; cand.Len() > 0 && n < limit; n++ {
		i := heap.Pop(cand).(int)
		it := pq.due[i]
		if it.deadline > now {
			return it.deadline
		}
		if !fn(it) {
			return 0
		}
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(pq.due) {
				heap.Push(cand, c)
			}
		}
	}
	return 0
}

func (f *FSM) popQueueOf(k popKey, create bool) *popQueue {
	pq := f.pops[k]
	if pq == nil && create {
		pq = &popQueue{qid: k.queueID, items: map[uint64]*popItem{}}
		f.pops[k] = pq
	}
	return pq
}

func (f *FSM) dropEmptyPop(k popKey, pq *popQueue) {
	if len(pq.items) == 0 {
		delete(f.pops, k)
	}
}

func (c *Pop) apply(f *FSM, _ uint64) any {
	res := &PopResult{}
	max := int(c.Max)
	for _, ref := range c.Queues {
		t := f.topics[ref.Topic]
		if t == nil || t.ID != ref.TopicID || ref.QueueID >= t.Queues {
			continue
		}
		q := t.queues[ref.QueueID]
		if len(res.Items) >= max {
			// Full: the other queues take nothing, but a queue the group
			// never received from gets its cursor now, so the group's
			// start (FromFirst or the end) holds for every queue it asked
			// for, not only those a first receive reached.
			gk := queueKey{t.Name, ref.QueueID}
			if _, had := f.groups[c.Group][gk]; !had {
				if f.groups[c.Group] == nil {
					f.groups[c.Group] = map[queueKey]uint64{}
				}
				f.groups[c.Group][gk] = q.next
				if c.FromFirst {
					f.groups[c.Group][gk] = q.min
				}
			}
			continue
		}
		k := popKey{group: c.Group, topicID: t.ID, queueID: ref.QueueID}
		pq := f.popQueueOf(k, true)
		// Redeliveries first: expired unacked items, earliest deadline first.
		pq.sweep(c.Now)
		for len(res.Items) < max && len(pq.due) > 0 {
			it := pq.due[0]
			if it.deadline > c.Now || it.dead(c.Now) {
				break // none expired; or the earliest is dead (the revive service dead-letters it)
			}
			it.reconsume++
			res.Items = append(res.Items, f.take(pq, t, it, c))
		}
		// Then new units from the cursor.
		gk := queueKey{t.Name, ref.QueueID}
		offs := f.groups[c.Group]
		cur, had := offs[gk]
		switch {
		case !had && c.FromFirst:
			cur = q.min
		case !had:
			cur = q.next
		case cur < q.min:
			cur = q.min
		}
		start := cur
		for n := 0; cur < q.next && len(res.Items) < max && n < popScanUnits && q.err == nil; n++ {
			off := cur
			cur++
			if pq.items[off] != nil {
				continue // still in flight from before an offset reset
			}
			u, ok := f.store.read(q, off)
			if !ok {
				break
			}
			u, err := q.resolve(off, u)
			if err != nil {
				break
			}
			if len(c.Tags) > 0 && !slices.Contains(c.Tags, u.TagHash) {
				continue
			}
			it := &popItem{off: off, hidx: -1, index: u.Index, pos: u.Pos, size: u.Size, tagHash: u.TagHash, storeTime: u.StoreTime, max: c.MaxReconsume}
			pq.items[off] = it
			res.Items = append(res.Items, f.take(pq, t, it, c))
		}
		if !had || cur != start {
			if offs == nil {
				offs = map[queueKey]uint64{}
				f.groups[c.Group] = offs
			}
			offs[gk] = cur
		}
		f.dropEmptyPop(k, pq)
	}
	return res
}

// take makes it in flight for c and returns it as received.
func (f *FSM) take(pq *popQueue, t *topicState, it *popItem, c *Pop) PoppedItem {
	it.popTime, it.deadline, it.max = c.Now, c.Now+c.Invisible, c.MaxReconsume
	pq.arm(it)
	return PoppedItem{
		Topic:     t.Name,
		Handle:    PopHandle{TopicID: t.ID, QueueID: pq.qid, Offset: it.off, PopTime: it.popTime},
		Unit:      Unit{Index: it.index, Pos: it.pos, Size: it.size, TagHash: it.tagHash, StoreTime: it.storeTime},
		Reconsume: int32(it.reconsume),
		Deadline:  it.deadline,
	}
}

// find returns the item a handle names in group, and whether the handle
// names its current instance.
func (f *FSM) findPop(group string, h PopHandle) (popKey, *popQueue, *popItem, PopStatus) {
	k := popKey{group: group, topicID: h.TopicID, queueID: h.QueueID}
	pq := f.pops[k]
	if pq == nil {
		return k, nil, nil, PopNotFound
	}
	it := pq.items[h.Offset]
	switch {
	case it == nil:
		return k, pq, nil, PopNotFound
	case it.popTime != h.PopTime:
		return k, pq, it, PopSuperseded
	}
	return k, pq, it, PopOK
}

func (c *PopAck) apply(f *FSM, _ uint64) any {
	res := &PopAckResult{Status: make([]PopStatus, len(c.Items))}
	touched := map[popKey]*popQueue{}
	for i, h := range c.Items {
		k, pq, it, st := f.findPop(c.Group, h)
		if st == PopOK && it.dead(c.Now) {
			st = PopExpired
		}
		if st == PopOK && !it.acked {
			pq.ack(it)
		}
		if pq != nil {
			touched[k] = pq
		}
		res.Status[i] = st
	}
	for k, pq := range touched {
		pq.sweep(c.Now)
		f.dropEmptyPop(k, pq)
	}
	return res
}

func (c *PopChangeInvisible) apply(f *FSM, _ uint64) any {
	_, pq, it, st := f.findPop(c.Group, c.Item)
	if st == PopOK && it.acked {
		st = PopNotFound
	}
	if st == PopOK && it.dead(c.Now) {
		st = PopExpired
	}
	if st != PopOK {
		return &PopChangeResult{Status: st}
	}
	it.popTime, it.deadline = c.Now, c.Now+c.Invisible
	pq.arm(it)
	h := c.Item
	h.PopTime = it.popTime
	return &PopChangeResult{Status: PopOK, Handle: h, Deadline: it.deadline}
}

// dropPopped removes a dead-lettered item (SendBack with Pop set) if the
// handle still names it.
func (f *FSM) dropPopped(group string, h PopHandle) {
	k, pq, it, st := f.findPop(group, h)
	if st == PopOK && !it.acked {
		pq.drop(it)
		f.dropEmptyPop(k, pq)
	}
}

// dropPopsOf forgets the pop state of a deleted topic incarnation or of
// a deleted group ("" matches any group, 0 any topic).
func (f *FSM) dropPopsOf(group string, topicID uint32) {
	for k := range f.pops {
		if (group == "" || k.group == group) && (topicID == 0 || k.topicID == topicID) {
			delete(f.pops, k)
		}
	}
}

// DeadPop is an item past its last allowed delivery, for the revive
// service to dead-letter.
type DeadPop struct {
	Group     string
	Handle    PopHandle
	Record    TimerRef // Index, Pos, Size, TagHash of the record
	Reconsume uint32   // deliveries that expired unacked, including the last
}

// DeadPops lists up to max items that are dead at now (their last
// allowed delivery expired unacked). It examines at most popScanUnits
// expired entries per queue.
func (f *FSM) DeadPops(now int64, max int) []DeadPop {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []DeadPop
	for k, pq := range f.pops {
		pq.expired(now, popScanUnits, func(it *popItem) bool {
			if it.dead(now) {
				out = append(out, DeadPop{Group: k.group,
					Handle:    PopHandle{TopicID: k.topicID, QueueID: k.queueID, Offset: it.off, PopTime: it.popTime},
					Record:    TimerRef{Index: it.index, Pos: it.pos, Size: it.size, TagHash: it.tagHash},
					Reconsume: it.reconsume + 1})
			}
			return len(out) < max
		})
	}
	slices.SortFunc(out, func(a, b DeadPop) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Handle.TopicID, b.Handle.TopicID),
			cmp.Compare(a.Handle.QueueID, b.Handle.QueueID), cmp.Compare(a.Handle.Offset, b.Handle.Offset))
	})
	return out
}

// popPositions is a min-heap of positions in a deadline heap.
type popPositions struct {
	h   popDueHeap
	pos []int
}

func (p *popPositions) Len() int           { return len(p.pos) }
func (p *popPositions) Less(i, j int) bool { return p.h.Less(p.pos[i], p.pos[j]) }
func (p *popPositions) Swap(i, j int)      { p.pos[i], p.pos[j] = p.pos[j], p.pos[i] }
func (p *popPositions) Push(x any)         { p.pos = append(p.pos, x.(int)) }
func (p *popPositions) Pop() any {
	x := p.pos[len(p.pos)-1]
	p.pos = p.pos[:len(p.pos)-1]
	return x
}

// PopStats counts a group's pop items on a queue of a topic incarnation.
type PopStats struct {
	InFlight int // received, not acked, invisible
	Visible  int // expired unacked: the next receive redelivers them
	Dead     int // past their last allowed delivery: bound for the DLQ
	Acked    int // acked, kept until their deadline so a repeated ack succeeds
}

// PopStatsOf returns a group's pop item counts per queue of topic
// incarnation topicID at now.
func (f *FSM) PopStatsOf(group string, topicID uint32, now int64) map[uint32]PopStats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out map[uint32]PopStats
	for k, pq := range f.pops {
		if k.group != group || k.topicID != topicID {
			continue
		}
		var s PopStats
		for _, it := range pq.items {
			switch {
			case it.acked:
				s.Acked++
			case it.dead(now):
				s.Dead++
			case it.deadline <= now:
				s.Visible++
			default:
				s.InFlight++
			}
		}
		if out == nil {
			out = map[uint32]PopStats{}
		}
		out[k.queueID] = s
	}
	return out
}

// PopAvailable reports whether a Pop by group at now would find
// something in the queue: an expired item to redeliver, or units past
// the group's cursor (or, without a cursor, any unit when fromFirst).
// The earliest future deadline of the queue's items is returned too, so
// a long-polling receiver knows when to look again.
func (f *FSM) PopAvailable(group string, ref PopQueueRef, fromFirst bool, now int64) (bool, int64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t := f.topics[ref.Topic]
	if t == nil || t.ID != ref.TopicID || ref.QueueID >= t.Queues {
		return false, 0
	}
	q := t.queues[ref.QueueID]
	var next int64
	if pq := f.pops[popKey{group: group, topicID: t.ID, queueID: ref.QueueID}]; pq != nil {
		found := false
		next = pq.expired(now, popScanUnits, func(it *popItem) bool {
			found = !it.dead(now)
			return !found
		})
		if found {
			return true, 0
		}
	}
	cur, ok := f.groups[group][queueKey{t.Name, ref.QueueID}]
	switch {
	case !ok && fromFirst:
		cur = q.min
	case !ok:
		return false, next
	}
	return max(cur, q.min) < q.next, next
}

// popPinned is the lowest record entry an item points to (under mu).
func (f *FSM) popPinned(take func(uint64)) {
	for _, pq := range f.pops {
		for _, it := range pq.items {
			if !it.acked {
				take(it.index)
			}
		}
	}
}

// Snapshot form: per group queue, the items packed.
type snapPop struct {
	Group   string `msgpack:"g"`
	TopicID uint32 `msgpack:"t"`
	QueueID uint32 `msgpack:"q"`
	Items   []byte `msgpack:"i"` // popPackLen bytes per item, by offset
}

const popPackLen = 8 + 8 + 4 + 4 + 4 + 8 + 8 + 8 + 4 + 4 + 1

func (f *FSM) snapPops() []snapPop {
	out := make([]snapPop, 0, len(f.pops))
	for k, pq := range f.pops {
		offs := make([]uint64, 0, len(pq.items))
		for off := range pq.items {
			offs = append(offs, off)
		}
		slices.Sort(offs)
		b := make([]byte, 0, len(offs)*popPackLen)
		for _, off := range offs {
			it := pq.items[off]
			b = binary.BigEndian.AppendUint64(b, off)
			b = binary.BigEndian.AppendUint64(b, it.index)
			b = binary.BigEndian.AppendUint32(b, it.pos)
			b = binary.BigEndian.AppendUint32(b, it.size)
			b = binary.BigEndian.AppendUint32(b, it.tagHash)
			b = binary.BigEndian.AppendUint64(b, uint64(it.storeTime))
			b = binary.BigEndian.AppendUint64(b, uint64(it.popTime))
			b = binary.BigEndian.AppendUint64(b, uint64(it.deadline))
			b = binary.BigEndian.AppendUint32(b, it.reconsume)
			b = binary.BigEndian.AppendUint32(b, it.max)
			var fl byte
			if it.acked {
				fl = 1
			}
			b = append(b, fl)
		}
		out = append(out, snapPop{Group: k.group, TopicID: k.topicID, QueueID: k.queueID, Items: b})
	}
	slices.SortFunc(out, func(a, b snapPop) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.TopicID, b.TopicID), cmp.Compare(a.QueueID, b.QueueID))
	})
	return out
}

func (f *FSM) restorePops(sp []snapPop) error {
	for _, s := range sp {
		if validateGroup(s.Group) != nil || len(s.Items)%popPackLen != 0 {
			return fmt.Errorf("%w: snapshot pop state of group %q on %d/%d", ErrCorrupt, s.Group, s.TopicID, s.QueueID)
		}
		k := popKey{group: s.Group, topicID: s.TopicID, queueID: s.QueueID}
		pq := f.popQueueOf(k, true)
		for b := s.Items; len(b) > 0; b = b[popPackLen:] {
			off := binary.BigEndian.Uint64(b)
			it := &popItem{
				off:       off,
				hidx:      -1,
				index:     binary.BigEndian.Uint64(b[8:]),
				pos:       binary.BigEndian.Uint32(b[16:]),
				size:      binary.BigEndian.Uint32(b[20:]),
				tagHash:   binary.BigEndian.Uint32(b[24:]),
				storeTime: int64(binary.BigEndian.Uint64(b[28:])),
				popTime:   int64(binary.BigEndian.Uint64(b[36:])),
				deadline:  int64(binary.BigEndian.Uint64(b[44:])),
				reconsume: binary.BigEndian.Uint32(b[52:]),
				max:       binary.BigEndian.Uint32(b[56:]),
				acked:     b[60]&1 != 0,
			}
			if b[60]&^1 != 0 || pq.items[off] != nil {
				return fmt.Errorf("%w: snapshot pop item %d of group %q", ErrCorrupt, off, s.Group)
			}
			pq.items[off] = it
			if it.acked {
				pq.tombs = append(pq.tombs, tomb{deadline: it.deadline, off: off, popTime: it.popTime})
			} else {
				it.hidx = len(pq.due)
				pq.due = append(pq.due, it)
			}
		}
		heap.Init(&pq.due)
		heap.Init(&pq.tombs)
		f.dropEmptyPop(k, pq)
	}
	return nil
}
