package chaos

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// History is what the clients saw during a run: the checker's only input
// besides the replicas' stored queues. It is plain data (JSON-encodable)
// so a run can be saved and checked again.
type History struct {
	Run    string `json:"run"`
	Topic  string `json:"topic"`
	Queues uint32 `json:"queues"`
	Mode   Mode   `json:"mode"`
	// AtLeastOnce: the producers did not ask for dedup, so a send retried
	// after an unknown outcome may be stored twice; duplicates are then
	// counted but are no violation.
	AtLeastOnce bool           `json:"at_least_once,omitempty"`
	Start       time.Time      `json:"start"`
	End         time.Time      `json:"end"`
	Sends       []Send         `json:"sends"`
	Receives    []Receive      `json:"receives"`
	Offsets     []OffsetSample `json:"offsets"`
	Resets      []time.Time    `json:"resets,omitempty"` // operator offset resets
	Faults      []FaultRecord  `json:"faults"`
}

// Send is one call of Send or SendAsync and its outcome.
type Send struct {
	ID       string    `json:"id"`            // the workload's own id, in property chaos-id
	Key      string    `json:"key,omitempty"` // sharding key; "" unkeyed
	Seq      int       `json:"seq"`           // position among its key's (or producer's) sends, from 0
	BodyHash string    `json:"body"`          // of the body sent
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	OK       bool      `json:"ok"`
	Err      string    `json:"err,omitempty"`
	// Where the broker said it stored the message (OK only).
	MsgID  string `json:"msg_id,omitempty"`
	Queue  uint32 `json:"queue"`
	Offset uint64 `json:"offset"`
}

// Receive is one message handed to a consumer's handler.
type Receive struct {
	Index    int       `json:"i"` // order in which receives were recorded
	Consumer string    `json:"consumer"`
	ID       string    `json:"id"` // property chaos-id; "" if the message had none
	MsgID    string    `json:"msg_id"`
	BodyHash string    `json:"body"`
	Queue    uint32    `json:"queue"`
	Offset   uint64    `json:"offset"`
	Start    time.Time `json:"start"` // the handler call that got it
	End      time.Time `json:"end"`
}

// OffsetSample is one replica's committed offset for the workload's
// consumer group on one queue, read from that node at At. Incarnation
// counts the node's starts: a restarted node replays its log from the
// beginning, so samples are compared within one incarnation only.
type OffsetSample struct {
	At          time.Time `json:"at"`
	Node        string    `json:"node"`
	Incarnation int       `json:"inc"`
	Queue       uint32    `json:"queue"`
	Offset      uint64    `json:"offset"`
}

// FaultRecord is one injected fault: when it began, when the nemesis
// healed it and when the group was whole again.
type FaultRecord struct {
	Name      string    `json:"name"`
	Start     time.Time `json:"start"`
	Healed    time.Time `json:"healed"`
	Recovered time.Time `json:"recovered"`
	Err       string    `json:"err,omitempty"` // the group did not recover
}

// Replica is one node's stored queues of the workload's topic, read
// directly from that node after the run.
type Replica struct {
	Node   string              `json:"node"`
	Queues map[uint32][]Stored `json:"queues"`
	// Min is, per queue, the first offset the replica still holds: what
	// retention deleted lies below it (absent: 0, nothing deleted).
	Min map[uint32]uint64 `json:"min,omitempty"`
	Err string            `json:"err,omitempty"` // the node could not be read
}

// Stored is one message as a replica holds it.
type Stored struct {
	Offset    uint64 `json:"offset"`
	RaftIndex uint64 `json:"raft_index"`
	StoreTime int64  `json:"store_time"`
	ID        string `json:"id"`
	MsgID     string `json:"msg_id"`
	BodyHash  string `json:"body"`
}

// Hash digests queue q of r: every message's offset, Raft index, store
// time, ids and body, in order.
func (r Replica) Hash(q uint32) string { return r.HashFrom(q, 0) }

// HashFrom is Hash over the messages at offsets from on: replicas that
// read a queue at different moments of a retention purge compare the
// range both still hold.
func (r Replica) HashFrom(q uint32, from uint64) string {
	h := sha256.New()
	var b [24]byte
	for _, m := range r.Queues[q] {
		if m.Offset < from {
			continue
		}
		binary.BigEndian.PutUint64(b[0:], m.Offset)
		binary.BigEndian.PutUint64(b[8:], m.RaftIndex)
		binary.BigEndian.PutUint64(b[16:], uint64(m.StoreTime))
		h.Write(b[:])
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", m.ID, m.MsgID, m.BodyHash)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func hashBody(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// Mode is the workload's shape: how it produces and consumes.
type Mode struct {
	Async   bool `json:"async"`   // SendAsync (else Send)
	Keyed   bool `json:"keyed"`   // a sharding key per sequence (per-key order is checked)
	Orderly bool `json:"orderly"` // orderly consumers (else clustering)
}

func (m Mode) String() string {
	p, k, c := "sync", "unkeyed", "clustering"
	if m.Async {
		p = "async"
	}
	if m.Keyed {
		k = "keyed"
	}
	if m.Orderly {
		c = "orderly"
	}
	return p + "-" + k + "-" + c
}

// ParseMode reads a Mode from words among sync|async, keyed|unkeyed and
// clustering|orderly, separated by '-', ',' or spaces, in any order;
// missing words take sync, keyed and clustering.
func ParseMode(s string) (Mode, error) {
	m := Mode{Keyed: true}
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == ',' || r == ' ' }) {
		switch w {
		case "sync":
			m.Async = false
		case "async":
			m.Async = true
		case "keyed":
			m.Keyed = true
		case "unkeyed":
			m.Keyed = false
		case "clustering":
			m.Orderly = false
		case "orderly":
			m.Orderly = true
		default:
			return m, fmt.Errorf("chaos: mode word %q: want sync|async, keyed|unkeyed, clustering|orderly", w)
		}
	}
	return m, nil
}

// percentiles returns the p50 and max of ds (0, 0 if empty).
func percentiles(ds []time.Duration) (p50, maxd time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)/2], s[len(s)-1]
}
