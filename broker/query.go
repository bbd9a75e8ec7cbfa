package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// Message queries for operators (RocketMQ's queryMsgById / ByKey and the
// dashboard's time-range view): by message ID and by (topic, key) through
// the fsm's message index (fsm/index.go), by topic and store-time range
// through the consume queues' store times. Any replica answers from its
// own state; the index and the log are the same on every replica, so
// the answers are too. Each index candidate is read and checked (IDs
// and keys are hashed), so a hash collision never shows.

// QueriedMessage is a message found by a query. Pending says why it has
// no queue offset yet: "delayed" (its delivery time has not come) or
// "transaction" (an open half message).
type QueriedMessage struct {
	StoredMessage
	Pending string
}

// MaxQueryResults bounds one query's answer.
const MaxQueryResults = 1024

// recordAt decodes the record at pos, whatever its queue state.
func (n *Node) recordAt(pos fsm.RecordRef) (fsm.Message, error) {
	var lenBuf [4]byte
	b, err := n.store.ReadAt(pos.Index, pos.Pos, 4, lenBuf[:0])
	if err != nil {
		return fsm.Message{}, err
	}
	size := binary.BigEndian.Uint32(b)
	if size < 4 || size > fsm.MaxBodyLen+1<<20 {
		return fsm.Message{}, errors.New("no record starts there")
	}
	rec, err := n.store.ReadAt(pos.Index, pos.Pos, size, nil)
	if err != nil {
		return fsm.Message{}, err
	}
	return fsm.DecodeMessage(rec)
}

// queried turns an index candidate into a result, or false if it is not
// a live message matching keep.
func (n *Node) queried(ref fsm.RecordRef, keep func(*fsm.Message) bool) (QueriedMessage, bool) {
	m, err := n.recordAt(ref)
	if err != nil || !keep(&m) {
		return QueriedMessage{}, false
	}
	t, ok := n.fsm.Topic(m.Topic)
	if !ok || t.ID != m.TopicID {
		return QueriedMessage{}, false // its topic is gone or was recreated
	}
	if sm, err := n.MessageAt(Position{Index: ref.Index, Pos: ref.Pos}); err == nil {
		return QueriedMessage{StoredMessage: sm}, true
	}
	q := QueriedMessage{StoredMessage: StoredMessage{Message: m, RaftIndex: ref.Index, Pos: ref.Pos}}
	switch {
	case m.Properties[fsm.PropTransaction] == "true":
		q.Pending = "transaction"
	case m.Properties[fsm.PropDeliverAt] != "":
		q.Pending = "delayed"
	default:
		return QueriedMessage{}, false // rejected when sent, or purged from its queue
	}
	return q, true
}

// MessagesByID returns the stored messages with message ID id, newest
// first (a resent message may be stored more than once).
func (n *Node) MessagesByID(id []byte, limit int) []QueriedMessage {
	max := queryLimit(limit)
	var out []QueriedMessage
	for _, ref := range n.fsm.LookupID(id, max*4) {
		if q, ok := n.queried(ref, func(m *fsm.Message) bool { return bytes.Equal(m.ID, id) }); ok {
			out = append(out, q)
			if len(out) == max {
				break
			}
		}
	}
	return out
}

// MessagesByKey returns topic's messages carrying key among their keys,
// newest first.
func (n *Node) MessagesByKey(topic, key string, limit int) ([]QueriedMessage, error) {
	if err := ValidateTopicName(topic); err != nil {
		return nil, err
	}
	if key == "" || strings.ContainsAny(key, " ") {
		return nil, fmt.Errorf("%w: key %q: want one non-empty key without spaces", ErrInvalidArgument, key)
	}
	if _, ok := n.fsm.Topic(topic); !ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicNotFound, topic)
	}
	max := queryLimit(limit)
	var out []QueriedMessage
	for _, ref := range n.fsm.LookupKey(topic, key, max*4) {
		q, ok := n.queried(ref, func(m *fsm.Message) bool { return m.Topic == topic && slices.Contains(strings.Fields(m.Keys), key) })
		if ok {
			out = append(out, q)
			if len(out) == max {
				break
			}
		}
	}
	return out, nil
}

// MessagesByTime returns topic's messages stored in [since, until), oldest
// first per queue, queue by queue, up to max in all; the bool reports
// whether more were left out.
func (n *Node) MessagesByTime(topic string, since, until time.Time, limit int) ([]QueriedMessage, bool, error) {
	if err := ValidateTopicName(topic); err != nil {
		return nil, false, err
	}
	if !until.After(since) {
		return nil, false, fmt.Errorf("%w: empty time range [%s, %s)", ErrInvalidArgument, since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	t, ok := n.fsm.Topic(topic)
	if !ok {
		return nil, false, fmt.Errorf("%w: %q", ErrTopicNotFound, topic)
	}
	max := queryLimit(limit)
	var out []QueriedMessage
	for q := uint32(0); q < t.Queues; q++ {
		from, err := n.fsm.OffsetForTime(topic, q, since.UnixMilli())
		if err != nil {
			return out, false, mapFSMError(err)
		}
		to, err := n.fsm.OffsetForTime(topic, q, until.UnixMilli())
		if err != nil {
			return out, false, mapFSMError(err)
		}
		for off := from; off < to; {
			if len(out) == max {
				return out, true, nil
			}
			res, err := n.readOnce(ReadRequest{Topic: topic, QueueID: q, Offset: off, MaxMessages: min(256, max-len(out)), MaxBytes: 4 << 20, operator: true})
			if err != nil {
				return out, false, err
			}
			for _, m := range res.Messages {
				if m.QueueOffset < to && len(out) < max {
					out = append(out, QueriedMessage{StoredMessage: m})
				}
			}
			if res.NextOffset <= off {
				break
			}
			off = res.NextOffset
		}
	}
	return out, false, nil
}

func queryLimit(limit int) int {
	if limit < 1 {
		return 1
	}
	return min(limit, MaxQueryResults)
}
