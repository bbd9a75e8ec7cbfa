package broker

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// maxReadSpan caps one coalesced CommitLog read of neighbouring messages.
const maxReadSpan = 1 << 20

// ReadRequest asks for messages of one queue from a logical offset.
type ReadRequest struct {
	Topic       string
	QueueID     uint32
	Offset      uint64
	MaxMessages int           // default 32
	MaxBytes    int           // soft cap on returned bodies; default 4 MiB
	Wait        time.Duration // long poll: wait this long for a message at Offset
	// Filter skips messages whose tag does not match (nil: everything).
	// Skipped messages still advance NextOffset.
	Filter *TagFilter
	// Group is the consumer group reading, if known: a read with a group
	// counts its messages in rocketmq_messages_out_total (metrics.go).
	Group string
	// operator reads regardless of the topic's read permission (the
	// write-only dead-letter queue, for DeadLetters).
	operator bool
}

// filterScanUnits bounds how many consume-queue units one filtered read
// examines, so a selective filter over a long backlog answers promptly
// (with NextOffset advanced) instead of scanning it all.
const filterScanUnits = 4096

// StoredMessage is a committed message with its position.
type StoredMessage struct {
	fsm.Message
	QueueOffset uint64
	StoreTime   int64 // leader time of the entry, unix ms
	RaftIndex   uint64
	Pos         uint32 // byte position of the message's record in the entry
	// Retry is set on a delivery from a retry or dead-letter queue
	// (retry.go): the record is the original message's.
	Retry *RetryView
}

// RetryView is a retried or dead-lettered delivery's metadata.
type RetryView struct {
	Reconsume    uint32 // earlier deliveries that failed
	OriginTopic  string // where the message was first stored ("" if that topic is gone)
	OriginQueue  uint32
	OriginOffset uint64
}

func (n *Node) retryView(r *fsm.RetryInfo) *RetryView {
	if r == nil {
		return nil
	}
	name, _ := n.fsm.TopicName(r.OriginTopicID)
	return &RetryView{Reconsume: r.Reconsume, OriginTopic: name, OriginQueue: r.OriginQueue, OriginOffset: r.OriginOffset}
}

// Position is where a message is stored in the CommitLog: the Raft entry
// and the byte position of its record inside the entry. It is the same
// on every replica, for as long as retention keeps the entry.
type Position struct {
	Index uint64
	Pos   uint32
}

// ReadResult holds messages from Offset on and the queue's bounds.
type ReadResult struct {
	Messages   []StoredMessage
	NextOffset uint64 // where the next read should start
	MinOffset  uint64 // oldest retained offset
	MaxOffset  uint64 // next offset to be assigned (exclusive)
}

// Read returns committed messages. Any replica serves reads; a follower
// lags the leader by about one round trip (CommitTimeout when idle). With
// Wait > 0 (capped at LongPollMax) an empty read waits until a message is
// applied to the queue, the wait elapses or ctx ends.
func (n *Node) Read(ctx context.Context, req ReadRequest) (ReadResult, error) {
	if err := ValidateTopicName(req.Topic); err != nil {
		return ReadResult{}, err
	}
	req.Wait = min(req.Wait, n.cfg.LongPollMax)
	if req.MaxMessages <= 0 {
		req.MaxMessages = 32
	}
	if req.MaxBytes <= 0 {
		req.MaxBytes = 4 << 20
	}
	var timer <-chan time.Time
	if req.Wait > 0 {
		t := time.NewTimer(req.Wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		// Register before reading so an append in between is not missed.
		wake := n.notify.wait(req.Topic, req.QueueID)
		res, err := n.readOnce(req)
		if err != nil || len(res.Messages) > 0 || timer == nil {
			if err == nil && n.metrics != nil && req.Group != "" && ValidateGroupName(req.Group) == nil {
				n.metrics.delivered(req.Topic, req.Group, len(res.Messages), storedBodyBytes(res.Messages))
			}
			return res, err
		}
		req.Offset = res.NextOffset // past messages the filter skipped
		select {
		case <-wake:
		case <-timer:
			timer = nil // one last read, then return what is there
		case <-ctx.Done():
			return res, ctx.Err()
		case <-n.stopCh:
			return res, ErrClosed
		}
	}
}

func (n *Node) readOnce(req ReadRequest) (ReadResult, error) {
	// Checked on every pass, so a long poll ends once the perm is revoked.
	t, ok := n.fsm.Topic(req.Topic)
	if !ok {
		return ReadResult{}, fmt.Errorf("%w: %q", ErrTopicNotFound, req.Topic)
	}
	if t.Perm&permRead == 0 && !req.operator {
		return ReadResult{}, fmt.Errorf("%w: topic %q is not readable (perm %d)", ErrNoPermission, req.Topic, t.Perm)
	}
	min, next, err := n.fsm.QueueRange(req.Topic, req.QueueID)
	if err != nil {
		return ReadResult{}, mapFSMError(err)
	}
	res := ReadResult{NextOffset: req.Offset, MinOffset: min, MaxOffset: next}
	if req.Offset < min || req.Offset > next && n.checkWritable() == nil {
		return res, &OffsetMovedError{Topic: req.Topic, QueueID: req.QueueID, Requested: req.Offset, Min: min, Max: next}
	}
	if req.Offset >= next {
		// At next: wait for it. Above next on a follower: it may lag, so
		// wait too; only the serving leader knows the queue's end.
		return res, nil
	}
	want := req.MaxMessages
	if req.Filter != nil {
		want = filterScanUnits
	}
	units, err := n.fsm.Units(req.Topic, req.QueueID, req.Offset, want, nil)
	if err != nil {
		return res, mapFSMError(err)
	}
	// Keep matching units (by tag hash) up to MaxMessages; offs[i] is the
	// queue offset of kept[i].
	kept, offs := units[:0:0], []uint64(nil)
	scanned := uint64(len(units))
	for i, u := range units {
		if len(kept) == req.MaxMessages && !req.Filter.readsBodies() {
			scanned = uint64(i)
			break
		}
		if req.Filter.matchHash(u.TagHash) {
			kept = append(kept, u)
			offs = append(offs, req.Offset+uint64(i))
		}
	}
	bytes, done := 0, 0 // done: kept units decoded so far
	for i := 0; i < len(kept) && bytes < req.MaxBytes && len(res.Messages) < req.MaxMessages; {
		j, span := coalesce(kept, i)
		buf, err := n.store.ReadAt(kept[i].Index, kept[i].Pos, span, nil)
		if err != nil {
			return res, fmt.Errorf("broker: read entry %d: %w", kept[i].Index, err)
		}
		for k := i; k < j; k++ {
			if len(res.Messages) == req.MaxMessages {
				j = k // the rest of the run is for the next read
				break
			}
			u := kept[k]
			rel := u.Pos - kept[i].Pos
			m, err := fsm.DecodeMessage(buf[rel : rel+u.Size])
			if err != nil {
				return res, fmt.Errorf("broker: decode message at entry %d pos %d: %w", u.Index, u.Pos, err)
			}
			res.NextOffset = offs[k] + 1
			if !req.Filter.matchMessage(&m) {
				continue // a tag hash collision, or the SQL92 filter said no
			}
			res.Messages = append(res.Messages, StoredMessage{
				Message: m, QueueOffset: offs[k], StoreTime: u.StoreTime, RaftIndex: u.Index, Pos: u.Pos,
				Retry: n.retryView(u.Retry),
			})
			bytes += len(m.Body)
		}
		i, done = j, j
	}
	if done == len(kept) {
		// Every kept unit was decoded: the read covered all it examined,
		// including filtered units after the last match.
		res.NextOffset = req.Offset + scanned
	}
	return res, nil
}

// coalesce returns the end (exclusive) of the run of units from i that sit
// back to back in one entry, and the run's byte span, so it is read once.
func coalesce(units []fsm.Unit, i int) (int, uint32) {
	start, end := units[i].Pos, units[i].Pos+units[i].Size
	j := i + 1
	for j < len(units) && units[j].Index == units[i].Index && units[j].Pos == end &&
		end+units[j].Size-start <= maxReadSpan {
		end += units[j].Size
		j++
	}
	return j, end - start
}

// ErrMessageNotFound means no retained message is stored at a position.
var ErrMessageNotFound = errors.New("broker: message not found")

// MessageAt returns the message whose record is at pos, with its queue
// offset (found by a binary search of its queue's consume queue, which is
// ordered by position). Any replica answers from its own log. A position
// that is not the start of a retained message of a live topic is
// ErrMessageNotFound.
func (n *Node) MessageAt(pos Position) (StoredMessage, error) {
	notFound := func(why string) (StoredMessage, error) {
		return StoredMessage{}, fmt.Errorf("%w at entry %d position %d: %s", ErrMessageNotFound, pos.Index, pos.Pos, why)
	}
	var lenBuf [4]byte
	b, err := n.store.ReadAt(pos.Index, pos.Pos, 4, lenBuf[:0])
	if err != nil {
		return notFound(err.Error())
	}
	size := binary.BigEndian.Uint32(b)
	if size < 4 || size > fsm.MaxBodyLen+1<<20 {
		return notFound("no record starts there")
	}
	rec, err := n.store.ReadAt(pos.Index, pos.Pos, size, nil)
	if err != nil {
		return notFound(err.Error())
	}
	m, err := fsm.DecodeMessage(rec)
	if err != nil {
		return notFound("no record starts there")
	}
	t, ok := n.fsm.Topic(m.Topic)
	if !ok || t.ID != m.TopicID {
		return notFound(fmt.Sprintf("its topic %q no longer exists", m.Topic))
	}
	min, next, err := n.fsm.QueueRange(m.Topic, m.QueueID)
	if err != nil || m.QueueID >= t.Queues {
		return notFound(fmt.Sprintf("its queue %s/%d no longer exists", m.Topic, m.QueueID))
	}
	// The first queue offset whose unit is at or after pos.
	var one [1]fsm.Unit
	var lookErr error
	i := sort.Search(int(next-min), func(i int) bool {
		us, err := n.fsm.Units(m.Topic, m.QueueID, min+uint64(i), 1, one[:0])
		if err != nil || len(us) == 0 {
			lookErr = cmp.Or(err, errors.New("queue shrank"))
			return true
		}
		return us[0].Index > pos.Index || us[0].Index == pos.Index && us[0].Pos >= pos.Pos
	})
	off := min + uint64(i)
	us, err := n.fsm.Units(m.Topic, m.QueueID, off, 1, one[:0])
	if lookErr != nil || err != nil || len(us) == 0 || us[0].Index != pos.Index || us[0].Pos != pos.Pos {
		// A delayed message's unit was added when it was due, out of its
		// record's order: its queue's delivered table knows it.
		if doff, _, ok := n.fsm.LastDelivered(m.Topic, m.QueueID, pos.Index, pos.Pos); ok {
			if us, err = n.fsm.Units(m.Topic, m.QueueID, doff, 1, one[:0]); err == nil && len(us) == 1 {
				return StoredMessage{Message: m, QueueOffset: doff, StoreTime: us[0].StoreTime, RaftIndex: pos.Index, Pos: pos.Pos}, nil
			}
		}
		return notFound(fmt.Sprintf("it is not in the consume queue of %s/%d (topic recreated, or purged)", m.Topic, m.QueueID))
	}
	return StoredMessage{Message: m, QueueOffset: off, StoreTime: us[0].StoreTime, RaftIndex: pos.Index, Pos: pos.Pos}, nil
}

// storedBodyBytes sums the bodies of msgs.
func storedBodyBytes(msgs []StoredMessage) int {
	b := 0
	for i := range msgs {
		b += len(msgs[i].Body)
	}
	return b
}
