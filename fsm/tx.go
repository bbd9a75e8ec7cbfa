package fsm

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
)

// Transactional messages, written once. A record whose properties hold
// TRAN_MSG=true is a half message: applying its batch gives it no unit
// but a pending half {record, target queue, store time, check count},
// invisible to every reader. EndTx ends halves: a commit appends the
// unit to the target queue pointing at the half's record (a delivered
// unit, as for timers: its Index is the EndTx entry, the record's entry
// is in the queue's delivered table), a rollback forgets the half; a
// half no longer pending (ended by an earlier EndTx, a repeated end or a
// late answer) is left alone, so a message is committed once. CheckTx
// counts the broker's check-backs of a half with the time of the last
// one, so a new leader continues the count. Halves pin their records
// (PinnedIndex); rebuild replays a commit of a half the scan saw stored.

// PropTransaction marks a half message (RocketMQ's TRAN_MSG).
const PropTransaction = "TRAN_MSG"

// MaxTxItems bounds one EndTx or CheckTx.
const MaxTxItems = 1024

// maxTxDiscards is how many halves rolled back by the broker itself (a
// producer that never answered its checks) Discards remembers.
const maxTxDiscards = 64

var tranMsgKey = []byte(PropTransaction + "\x01true")

// isHalf reports whether a record's properties mark it a half message.
// It runs in Apply for every message with properties and allocates
// nothing.
func isHalf(props []byte) bool {
	if len(props) == 0 || !bytes.Contains(props, tranMsgKey) {
		return false
	}
	for p := props; len(p) > 0; {
		var pair []byte
		if i := bytes.IndexByte(p, propSep); i >= 0 {
			pair, p = p[:i], p[i+1:]
		} else {
			pair, p = p, nil
		}
		if bytes.Equal(pair, tranMsgKey) {
			return true
		}
	}
	return false
}

// OffsetHalf is the BatchResult offset of a half message: it gets a queue
// offset if and when it is committed.
const OffsetHalf = -3

type halfKey struct {
	index uint64
	pos   uint32
}

// half is one pending half message (48 bytes packed).
type half struct {
	size, tagHash    uint32
	topicID, queueID uint32
	storeTime        int64
	checks           uint32
	lastCheck        int64
}

// TxRef names a half message by its record.
type TxRef struct {
	Index uint64 `msgpack:"i"`
	Pos   uint32 `msgpack:"p"`
}

// TxEnd ends one half: commit or roll back. ByBroker marks a rollback
// the broker decided (the producer never answered its checks): it is
// counted and remembered for operators (Discards).
type TxEnd struct {
	TxRef
	Commit   bool `msgpack:"c,omitempty"`
	ByBroker bool `msgpack:"b,omitempty"`
}

// EndTx ends halves. Apply result: *EndTxResult.
type EndTx struct {
	Now   int64   `msgpack:"now"`
	Items []TxEnd `msgpack:"items"`
}

// TxOutcome is what an EndTx item did.
type TxOutcome uint8

// TxOutcome values.
const (
	TxCommitted  TxOutcome = iota + 1 // the unit was appended; Offset is its queue offset
	TxRolledBack                      // the half was discarded
	TxNotPending                      // no such pending half: ended already, or never stored
	TxTopicGone                       // committed, but its topic incarnation is gone: dropped
)

// EndTxResult is the Apply result of EndTx, one entry per item.
type EndTxResult struct {
	Outcomes []TxOutcome
	Offsets  []uint64
}

// CheckTx records a check-back of each listed pending half at Now.
// Apply result: nil.
type CheckTx struct {
	Now   int64   `msgpack:"now"`
	Items []TxRef `msgpack:"items"`
}

func (EndTx) Type() CommandType   { return CmdEndTx }
func (CheckTx) Type() CommandType { return CmdCheckTx }

func (c *EndTx) validate() error {
	if len(c.Items) == 0 || len(c.Items) > MaxTxItems {
		return invalid("end of %d transactions (1..%d)", len(c.Items), MaxTxItems)
	}
	return nil
}

func (c *CheckTx) validate() error {
	if len(c.Items) == 0 || len(c.Items) > MaxTxItems {
		return invalid("check of %d transactions (1..%d)", len(c.Items), MaxTxItems)
	}
	return nil
}

// TxDiscard is a half the broker rolled back itself.
type TxDiscard struct {
	TxRef
	TopicID uint32
	QueueID uint32
	Stored  int64 // store time, unix ms
	At      int64 // rollback time, unix ms
	Checks  uint32
}

// TxStats counts ended transactions since the group began.
type TxStats struct {
	Committed, RolledBack, BrokerRolledBack uint64
}

func (c *EndTx) apply(f *FSM, index uint64) any {
	res := &EndTxResult{Outcomes: make([]TxOutcome, len(c.Items)), Offsets: make([]uint64, len(c.Items))}
	for i, it := range c.Items {
		k := halfKey{it.Index, it.Pos}
		h := f.halves[k]
		if h == nil {
			res.Outcomes[i] = TxNotPending
			continue
		}
		delete(f.halves, k)
		if !it.Commit {
			res.Outcomes[i] = TxRolledBack
			f.txStats.RolledBack++
			if it.ByBroker {
				f.txStats.BrokerRolledBack++
				f.txDiscards = append(f.txDiscards, TxDiscard{TxRef: it.TxRef, TopicID: h.topicID, QueueID: h.queueID,
					Stored: h.storeTime, At: c.Now, Checks: h.checks})
				if len(f.txDiscards) > maxTxDiscards {
					f.txDiscards = append(f.txDiscards[:0:0], f.txDiscards[len(f.txDiscards)-maxTxDiscards:]...)
				}
			}
			continue
		}
		q := f.queueByID(h.topicID, h.queueID)
		if q == nil {
			res.Outcomes[i] = TxTopicGone
			continue
		}
		f.appendUnit(q, Unit{Index: index, Pos: it.Pos, Size: h.size | unitDelivered, TagHash: h.tagHash, StoreTime: c.Now})
		q.delivered.add(q.next-1, it.Index, nil)
		f.txStats.Committed++
		res.Outcomes[i], res.Offsets[i] = TxCommitted, q.next-1
	}
	return res
}

func (c *CheckTx) apply(f *FSM, _ uint64) any {
	for _, it := range c.Items {
		if h := f.halves[halfKey{it.Index, it.Pos}]; h != nil {
			h.checks++
			h.lastCheck = c.Now
		}
	}
	return nil
}

// HalfMessage is a pending half message, for the broker's checks and
// operators.
type HalfMessage struct {
	TxRef
	Size      uint32
	TopicID   uint32
	QueueID   uint32
	StoreTime int64 // unix ms
	Checks    uint32
	LastCheck int64 // unix ms, 0 before the first check
}

// Halves returns the pending half messages, oldest first.
func (f *FSM) Halves() []HalfMessage {
	f.mu.RLock()
	out := make([]HalfMessage, 0, len(f.halves))
	for k, h := range f.halves {
		out = append(out, HalfMessage{TxRef: TxRef{Index: k.index, Pos: k.pos}, Size: h.size, TopicID: h.topicID, QueueID: h.queueID,
			StoreTime: h.storeTime, Checks: h.checks, LastCheck: h.lastCheck})
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b HalfMessage) int {
		return cmp.Or(cmp.Compare(a.StoreTime, b.StoreTime), cmp.Compare(a.Index, b.Index), cmp.Compare(a.Pos, b.Pos))
	})
	return out
}

// DueHalves returns up to max pending halves due for a check at now:
// stored at least timeout ms ago, and never checked or last checked at
// least interval ms ago; oldest first. It scans the halves.
func (f *FSM) DueHalves(now, timeout, interval int64, max int) []HalfMessage {
	var out []HalfMessage
	for _, h := range f.Halves() {
		if h.StoreTime+timeout > now || h.LastCheck != 0 && h.LastCheck+interval > now {
			continue
		}
		out = append(out, h)
		if len(out) == max {
			break
		}
	}
	return out
}

// TxInfo returns the transaction counters and the latest halves the
// broker rolled back itself.
func (f *FSM) TxInfo() (TxStats, []TxDiscard) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.txStats, slices.Clone(f.txDiscards)
}

const halfPackLen = 8 + 4 + 4 + 4 + 4 + 4 + 8 + 4 + 8

func packHalves(hs map[halfKey]*half) []byte {
	keys := make([]halfKey, 0, len(hs))
	for k := range hs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b halfKey) int { return cmp.Or(cmp.Compare(a.index, b.index), cmp.Compare(a.pos, b.pos)) })
	b := make([]byte, 0, len(keys)*halfPackLen)
	for _, k := range keys {
		h := hs[k]
		b = binary.BigEndian.AppendUint64(b, k.index)
		b = binary.BigEndian.AppendUint32(b, k.pos)
		b = binary.BigEndian.AppendUint32(b, h.size)
		b = binary.BigEndian.AppendUint32(b, h.tagHash)
		b = binary.BigEndian.AppendUint32(b, h.topicID)
		b = binary.BigEndian.AppendUint32(b, h.queueID)
		b = binary.BigEndian.AppendUint64(b, uint64(h.storeTime))
		b = binary.BigEndian.AppendUint32(b, h.checks)
		b = binary.BigEndian.AppendUint64(b, uint64(h.lastCheck))
	}
	return b
}

func unpackHalves(b []byte) (map[halfKey]*half, error) {
	if len(b)%halfPackLen != 0 {
		return nil, fmt.Errorf("%w: snapshot half messages are %d bytes, not a multiple of %d", ErrCorrupt, len(b), halfPackLen)
	}
	out := make(map[halfKey]*half, len(b)/halfPackLen)
	for ; len(b) > 0; b = b[halfPackLen:] {
		k := halfKey{index: binary.BigEndian.Uint64(b), pos: binary.BigEndian.Uint32(b[8:])}
		if out[k] != nil {
			return nil, fmt.Errorf("%w: snapshot half message %d/%d twice", ErrCorrupt, k.index, k.pos)
		}
		out[k] = &half{
			size:      binary.BigEndian.Uint32(b[12:]),
			tagHash:   binary.BigEndian.Uint32(b[16:]),
			topicID:   binary.BigEndian.Uint32(b[20:]),
			queueID:   binary.BigEndian.Uint32(b[24:]),
			storeTime: int64(binary.BigEndian.Uint64(b[28:])),
			checks:    binary.BigEndian.Uint32(b[36:]),
			lastCheck: int64(binary.BigEndian.Uint64(b[40:])),
		}
	}
	return out, nil
}
