package fsm

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// rebuild regenerates the units of the given queues from the retained raft
// log [FirstIndex, applied]. A message in entry i belongs to queue (T, q)
// iff topic T exists in the restored state with ID == the message's TopicID,
// q < T's queue count and queue q was created by an entry before i. That is
// exactly Apply's rule at index i: a stale TopicID never matches again, queue
// counts only grow, and the creation index covers a message that named a
// queue before it existed (which a correct leader never proposes). The last n units found
// for a queue are offsets [next-n, next); those below min are dropped.
//
// Units are collected in memory (28 bytes per message) before writing.
func (f *FSM) rebuild(need []*queue) error {
	if f.cfg.Log == nil {
		return ErrNoLog
	}
	bufs := make(map[*queue][]byte, len(need))
	for _, q := range need {
		bufs[q] = nil
	}
	first, err := f.cfg.Log.FirstIndex()
	if err != nil {
		return fmt.Errorf("rebuild: first index: %w", err)
	}
	var refs []recRef
	var unit [UnitSize]byte
	// Delayed messages: a record with a timer gets its unit from the first
	// DeliverTimers entry that lists it (as Apply decided: a timer is
	// delivered once), not from its batch. Its record is in the scan: the
	// log is kept from every live delivered unit's record (PinnedIndex).
	// Retries (SendBack) schedule timers too, or append at once.
	scheduled := map[timerKey]bool{} // timers pending at this point of the scan
	// Transactions: a half gets its unit from the first EndTx committing
	// it (the log is kept from every pending half's record, and the
	// committed units' records are delivered units' records, pinned too).
	halves := map[halfKey]*half{}
	// Duplicates (dedup.go) got no unit from Apply: skip them too.
	dups := dupCursor{dups: f.dedup.dups}
	// skipped counts, per queue, the records the dedup list skipped: when
	// a queue comes out short by no more than that, the snapshot's list
	// most likely marks stored records as duplicates (it is corrupt), not
	// the log short. Both fail Restore; this only names the likelier cause.
	skipped := map[*queue]uint64{}
	add := func(q *queue, u Unit) {
		if buf, ok := bufs[q]; ok && q != nil {
			putUnit(unit[:], u)
			bufs[q] = append(buf, unit[:]...)
		}
	}
	control := func(index uint64, data []byte) {
		cmd, err := Decode(data)
		if err != nil {
			return
		}
		switch c := cmd.(type) {
		case DeliverTimers:
			if c.validate() != nil {
				return
			}
			for _, it := range c.Items {
				t := it.timer()
				if !scheduled[t.key()] {
					continue
				}
				delete(scheduled, t.key())
				add(f.queueByID(it.TopicID, it.QueueID), Unit{Index: index, Pos: it.Pos, Size: it.Size | unitDelivered, TagHash: it.TagHash, StoreTime: c.Now})
			}
		case EndTx:
			if c.validate() != nil {
				return
			}
			for _, it := range c.Items {
				k := halfKey{it.Index, it.Pos}
				h := halves[k]
				if h == nil {
					continue
				}
				delete(halves, k)
				if it.Commit {
					add(f.queueByID(h.topicID, h.queueID), Unit{Index: index, Pos: it.Pos, Size: h.size | unitDelivered, TagHash: h.tagHash, StoreTime: c.Now})
				}
			}
		case SendBack:
			if c.validate() != nil {
				return
			}
			r := c.Record
			if !c.DLQ && r.Due > c.Now {
				t := r.timer()
				scheduled[t.key()] = true
				return
			}
			add(f.queueByID(r.TopicID, r.QueueID), Unit{Index: index, Pos: r.Pos, Size: r.Size | unitDelivered, TagHash: r.TagHash, StoreTime: c.Now})
		}
	}
	scan := func(index uint64, typ raft.LogType, data []byte) error {
		if typ == raft.LogCommand && len(data) >= 2 && (CommandType(data[0]) == CmdDeliverTimers || CommandType(data[0]) == CmdSendBack || CommandType(data[0]) == CmdEndTx) {
			control(index, data)
			return nil
		}
		if typ != raft.LogCommand || len(data) < 2 || CommandType(data[0]) != CmdMessageBatch || data[1] != msgBatchVersion {
			return nil
		}
		ts, rs, err := splitBatch(data, refs[:0])
		refs = rs
		if err != nil {
			return nil // Apply rejected this entry as a whole too
		}
		for i := range rs {
			r := &rs[i].r
			t := f.topics[string(r.topic)]
			if dups.skip(index, rs[i].pos) {
				if t != nil && t.ID == r.topicID && r.queueID < t.Queues && !isHalf(r.props) {
					skipped[t.queues[r.queueID]]++
				}
				continue
			}
			if t == nil || t.ID != r.topicID || r.queueID >= t.Queues {
				continue
			}
			if isHalf(r.props) {
				halves[halfKey{index, rs[i].pos}] = &half{size: rs[i].size, tagHash: TagHash(string(r.tags)), topicID: t.ID, queueID: r.queueID}
				continue
			}
			if _, ok := delayed(r.props, ts); ok {
				scheduled[timerKey{index: index, pos: rs[i].pos, topicID: t.ID, queueID: r.queueID}] = true
				continue
			}
			q := t.queues[r.queueID]
			if buf, ok := bufs[q]; ok && index > q.since {
				putUnit(unit[:], Unit{Index: index, Pos: rs[i].pos, Size: rs[i].size, TagHash: TagHash(string(r.tags)), StoreTime: ts})
				bufs[q] = append(buf, unit[:]...)
			}
		}
		return nil
	}
	if first != 0 && first <= f.applied {
		if err := f.cfg.Log.Scan(first, f.applied, scan); err != nil {
			return fmt.Errorf("rebuild: scan log [%d, %d]: %w", first, f.applied, err)
		}
	}
	for _, q := range need {
		if err := f.writeRebuilt(q, bufs[q], skipped[q]); err != nil {
			return err
		}
	}
	return f.store.takeSyncWork().run()
}

func (f *FSM) writeRebuilt(q *queue, buf []byte, skipped uint64) error {
	// Units below the log start are below min (TruncatePrefix moved it
	// past them), and the duplicates among their records are forgotten:
	// count only the units from there, unless the queue still needs older
	// ones (its min did not move: it was broken when retention ran).
	k := 0
	for k < len(buf) && getUnit(buf[k:]).Index < f.logStart {
		k += UnitSize
	}
	if q.next-uint64((len(buf)-k)/UnitSize) <= q.min {
		buf = buf[k:]
	}
	n := uint64(len(buf) / UnitSize)
	if n > q.next {
		return fmt.Errorf("%w: rebuild of %s/%d found %d units, next is %d", ErrCorrupt, q.topic, q.id, n, q.next)
	}
	start := q.next - n
	if start > q.min && start-q.min <= skipped {
		return fmt.Errorf("%w: %s/%d needs offsets from %d, found them from %d after skipping %d records the dedup list marks as duplicates",
			ErrCorrupt, q.topic, q.id, q.min, start, skipped)
	}
	if start > q.min {
		return fmt.Errorf("%w: %s/%d needs offsets from %d, log holds them from %d", ErrLogShort, q.topic, q.id, q.min, start)
	}
	for i := uint64(0); i < n; i++ {
		off := start + i
		if off < q.min {
			continue
		}
		if err := f.store.write(q, off, getUnit(buf[i*UnitSize:])); err != nil {
			return fmt.Errorf("rebuild %s/%d: %w", q.topic, q.id, err)
		}
	}
	f.log.Info("rebuilt consume queue", "topic", q.topic, "queue-id", q.id, "min", q.min, "next", q.next)
	return nil
}
