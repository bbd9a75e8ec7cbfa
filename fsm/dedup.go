package fsm

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// Producer dedup: a replicated window of recently stored message IDs (see
// "Producer dedup" in doc.go). A message of a batch whose non-empty ID was
// stored on the same topic incarnation within the window is not stored
// again; its BatchResult offset is the original's and BatchResult.
// Duplicates says so. The window lives in the FSM state, so every replica
// keeps the same one, a new leader continues with it and snapshots carry
// it. Its settings are replicated too (SetDedup), never read from local
// config.

// Dedup limits, checked by SetDedup.
const (
	// DefaultDedupWindow (ms) and DefaultDedupMax are what the broker
	// proposes unless configured otherwise (NATS JetStream's duplicate
	// window is also 2 minutes).
	DefaultDedupWindow = 2 * 60 * 1000
	DefaultDedupMax    = 1_000_000
	// MaxDedupWindow bounds SetDedup.Window (ms): one day.
	MaxDedupWindow = 24 * 60 * 60 * 1000
	// MaxDedupEntries bounds SetDedup.Max (about 100 bytes each).
	MaxDedupEntries = 1 << 24
	// maxDupRefs bounds the duplicates remembered for a consume-queue
	// rebuild (12 bytes each in a snapshot, 16 in memory). While it is
	// full a duplicate is stored like any message.
	maxDupRefs = 1 << 20
)

// dedupKeyLen is the length of an ID used as a key as is (rmq's and
// RocketMQ's 16-byte message IDs); other IDs are keyed by their SHA-256,
// truncated to this length.
const dedupKeyLen = 16

// SetDedup sets the producer dedup window: Window is in ms of batch store
// time (0 turns dedup off and forgets the window), Max the most IDs kept
// (the oldest go first). A smaller setting evicts at once. The leader
// proposes it when its configuration differs from the applied one. Apply
// result: nil or ErrInvalidCommand.
type SetDedup struct {
	Window int64  `msgpack:"window"`
	Max    uint32 `msgpack:"max"`
	// All dedups every message with an ID; otherwise only messages whose
	// producer asked for it (property PropIdempotent), since the window
	// costs produce throughput (measured: about 14 % with every message).
	All bool `msgpack:"all,omitempty"`
}

// PropIdempotent marks a message its producer wants deduplicated
// (ProducerConfig.Idempotent; transactional halves always): "1".
const PropIdempotent = "__IDEMPOTENT__"

var idempotentKey = []byte(PropIdempotent + "\x011")

// wantsDedup reports whether a record's properties ask for dedup.
func wantsDedup(props []byte) bool {
	if len(props) == 0 || !bytes.Contains(props, idempotentKey) {
		return false
	}
	for p := props; len(p) > 0; {
		var pair []byte
		if i := bytes.IndexByte(p, propSep); i >= 0 {
			pair, p = p[:i], p[i+1:]
		} else {
			pair, p = p, nil
		}
		if bytes.Equal(pair, idempotentKey) {
			return true
		}
	}
	return false
}

// Type implements Command.
func (SetDedup) Type() CommandType { return CmdSetDedup }

func (c *SetDedup) validate() error {
	switch {
	case c.Window < 0 || c.Window > MaxDedupWindow:
		return invalid("dedup window %d ms outside [0, %d]", c.Window, MaxDedupWindow)
	case c.Max > MaxDedupEntries || c.Window > 0 && c.Max == 0:
		return invalid("dedup max %d outside [1, %d]", c.Max, MaxDedupEntries)
	}
	return nil
}

func (c *SetDedup) apply(f *FSM, _ uint64) any {
	f.dedup.configure(c.Window, int(c.Max))
	f.dedup.all = c.All && c.Window != 0
	return nil
}

// Duplicate is a message of a batch that was not stored because a message
// with the same ID and topic was, within the window: the original. Its
// BatchResult offset is the original's (OffsetDelayed for a delayed
// original, -1 if the original was refused).
type Duplicate struct {
	Msg       int    // position in the batch
	QueueID   uint32 // the original's queue
	Index     uint64 // the original's entry
	Pos       uint32 // the original's record position in that entry
	StoreTime int64  // the original's store time (unix ms)
	DeliverAt int64  // a delayed original's due time (unix ms)
}

// DedupInfo describes the dedup state (FSM.Dedup).
type DedupInfo struct {
	Window   int64 // ms; 0: off
	Max      int
	All      bool // every message, not only those asking for it
	Entries  int  // IDs in the window
	Retained int  // duplicates remembered for rebuild (until retention drops their entries)
}

type dedupKey struct {
	id      [dedupKeyLen]byte
	topicID uint32
}

// dedupEntry is one stored message in the window (56 bytes).
type dedupEntry struct {
	key     dedupKey
	queueID uint32
	ts      int64  // store time, unix ms
	index   uint64 // entry
	off     int64  // queue offset, the due time if delayed, or while its batch is applied its position there
	pos     uint32
	delayed bool
}

// dupRef locates a duplicate's record in the log.
type dupRef struct {
	index uint64
	pos   uint32
}

func (a dupRef) compare(b dupRef) int {
	return cmp.Or(cmp.Compare(a.index, b.index), cmp.Compare(a.pos, b.pos))
}

// dedupState is the window: entries in store order in a ring (oldest at
// head), and an index from key to the entry's sequence number
// (dedup_table.go). Neither holds pointers, so the garbage collector does
// not scan them.
type dedupState struct {
	window int64 // ms; 0: off
	max    int
	all    bool  // every message with an ID, or only those asking (PropIdempotent)
	now    int64 // latest store time seen (unix ms, never decreases while on)

	ring    []dedupEntry // len is a power of two
	head    int          // ring slot of the oldest entry
	n       int
	headSeq uint32 // sequence number of the oldest entry
	index   dedupTable

	// dups are the duplicates whose entries are at or above the log
	// start, by (index, pos): a consume-queue rebuild skips them as Apply
	// did (rebuild.go). TruncatePrefix drops the older ones.
	dups []dupRef

	// The batch being applied: the sequence numbers of its entries, and
	// its duplicates of its own earlier messages (Duplicates position,
	// original message), completed by finishBatch.
	batch    []uint32
	inBatch  [][2]int
	warnFull bool
}

func (d *dedupState) configure(window int64, max int) {
	if window == 0 {
		*d = dedupState{dups: d.dups}
		return
	}
	d.window, d.max = window, max
	d.advance(d.now)
	for d.n > d.max {
		d.evict()
	}
}

// advance moves the window's end to ts (if later) and evicts what fell out.
func (d *dedupState) advance(ts int64) {
	d.now = max(d.now, ts)
	for d.n > 0 && d.ring[d.head].ts <= d.now-d.window {
		d.evict()
	}
	d.shrink()
}

// evict drops the oldest entry; its index slot goes stale (dedup_table.go).
func (d *dedupState) evict() {
	d.head = (d.head + 1) & (len(d.ring) - 1)
	d.headSeq++
	d.n--
}

// slot returns the ring slot of entry seq, or false if it was evicted.
func (d *dedupState) slot(seq uint32) (int, bool) {
	age := seq - d.headSeq // wraps: sequence numbers are mod 2^32, n is far less
	if age >= uint32(d.n) {
		return 0, false
	}
	return (d.head + int(age)) & (len(d.ring) - 1), true
}

// push appends e, whose key (with hash tag) is not in the window; free
// is the index slot lookup found for it.
func (d *dedupState) push(e dedupEntry, tag uint32, free int) uint32 {
	for d.n >= d.max {
		d.evict()
	}
	if d.n == len(d.ring) {
		d.resize(max(64, 2*len(d.ring)))
	}
	d.ring[(d.head+d.n)&(len(d.ring)-1)] = e
	seq := d.headSeq + uint32(d.n)
	d.n++
	d.insert(tag, seq, free)
	return seq
}

// resize copies the entries, oldest first, into a ring of size c (a power
// of two >= n).
func (d *dedupState) resize(c int) {
	r := make([]dedupEntry, c)
	for i := 0; i < d.n; i++ {
		r[i] = d.ring[(d.head+i)&(len(d.ring)-1)]
	}
	d.ring, d.head = r, 0
}

// shrink gives the ring's memory back after a burst (the index shrinks
// itself): a window that held a million IDs would keep 56 MB.
func (d *dedupState) shrink() {
	if len(d.ring) > 4096 && 8*d.n < len(d.ring) {
		d.resize(len(d.ring) / 2)
	}
	if d.n == 0 && len(d.index.slots) > minTableSlots {
		d.index.slots, d.index.used = nil, 0 // all stale
	}
}

func makeDedupKey(id []byte, topicID uint32) dedupKey {
	k := dedupKey{topicID: topicID}
	if len(id) == dedupKeyLen {
		copy(k.id[:], id)
	} else {
		h := sha256.Sum256(id)
		copy(k.id[:], h[:])
	}
	return k
}

// dedupe is Apply's check of message i of a batch (entry index, store
// time ts) whose topic t exists: it reports true if the message is a
// duplicate, after filling in its result; else it enters the message in
// the window (finishBatch completes the entry once Apply has decided its
// offset).
func (f *FSM) dedupe(res *BatchResult, i int, ref *recRef, t *topicState, index uint64, ts int64) bool {
	d := &f.dedup
	if d.window == 0 || len(ref.r.id) == 0 || !d.all && !wantsDedup(ref.r.props) {
		return false
	}
	d.advance(ts)
	key := makeDedupKey(ref.r.id, t.ID)
	tag := d.index.hash(&key)
	seq, hit, free := d.lookup(&key, tag)
	if !hit {
		d.batch = append(d.batch, d.push(dedupEntry{key: key, queueID: ref.r.queueID, ts: ts, index: index, off: int64(i), pos: ref.pos}, tag, free))
		return false
	}
	if len(d.dups) >= maxDupRefs {
		if !d.warnFull {
			d.warnFull = true
			f.log.Warn("too many duplicates kept in the log: storing duplicates until retention drops them", "limit", maxDupRefs)
		}
		return false // stored; its ID keeps pointing at the original
	}
	d.dups = append(d.dups, dupRef{index: index, pos: ref.pos})
	s, _ := d.slot(seq)
	e := &d.ring[s]
	if e.index == index { // an earlier message of this batch (e.off): finishBatch answers
		d.inBatch = append(d.inBatch, [2]int{len(res.Duplicates), int(e.off)})
		res.Duplicates = append(res.Duplicates, Duplicate{Msg: i})
		return true
	}
	dup := Duplicate{Msg: i, QueueID: e.queueID, Index: e.index, Pos: e.pos, StoreTime: e.ts}
	res.Offsets[i] = e.off
	switch {
	case e.delayed:
		res.Offsets[i], dup.DeliverAt = OffsetDelayed, e.off
	case e.off == -1:
		res.Rejected++
	}
	res.Duplicates = append(res.Duplicates, dup)
	return true
}

// finishBatch completes the window entries of the batch just applied with
// the outcome Apply gave each message, and answers the duplicates of
// messages of the same batch.
func (f *FSM) finishBatch(res *BatchResult, refs []recRef, index uint64, ts int64) {
	d := &f.dedup
	for _, seq := range d.batch {
		s, ok := d.slot(seq)
		if !ok {
			continue // already evicted by count
		}
		e := &d.ring[s]
		msg := e.off
		e.off = res.Offsets[msg]
		if e.off == OffsetDelayed {
			e.delayed = true
			e.off, _ = delayed(refs[msg].r.props, ts)
		}
	}
	for _, p := range d.inBatch {
		dup, orig := &res.Duplicates[p[0]], p[1]
		*dup = Duplicate{Msg: dup.Msg, QueueID: refs[orig].r.queueID, Index: index, Pos: refs[orig].pos, StoreTime: ts}
		res.Offsets[dup.Msg] = res.Offsets[orig]
		if res.Offsets[orig] == OffsetDelayed {
			dup.DeliverAt, _ = delayed(refs[orig].r.props, ts)
		}
		if res.Offsets[orig] == -1 {
			res.Rejected++
		}
	}
	d.batch, d.inBatch = d.batch[:0], d.inBatch[:0]
}

// dropDupsThrough forgets the duplicates in entries <= upTo (TruncatePrefix).
func (d *dedupState) dropDupsThrough(upTo uint64) {
	i, _ := slices.BinarySearchFunc(d.dups, dupRef{index: upTo + 1}, dupRef.compare)
	if i > 0 {
		d.dups = append(d.dups[:0:0], d.dups[i:]...)
		d.warnFull = false
	}
}

// dupCursor walks the duplicates in log order during a rebuild scan.
type dupCursor struct{ dups []dupRef }

// skip reports whether the record at (index, pos) is a duplicate; calls
// must come in (index, pos) order.
func (c *dupCursor) skip(index uint64, pos uint32) bool {
	r := dupRef{index: index, pos: pos}
	for len(c.dups) > 0 && c.dups[0].compare(r) < 0 {
		c.dups = c.dups[1:]
	}
	return len(c.dups) > 0 && c.dups[0] == r
}

// Dedup returns the producer dedup settings and sizes.
func (f *FSM) Dedup() DedupInfo {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return DedupInfo{Window: f.dedup.window, Max: f.dedup.max, All: f.dedup.all, Entries: f.dedup.n, Retained: len(f.dedup.dups)}
}

// snapDedup is the dedup state in a snapshot: settings, the window's end,
// its entries oldest first and the duplicates' positions (dupPackLen
// bytes each, big-endian). An entry is
//
//	[16]byte key ID | uvarint topic ID | uvarint queue | varint store time
//	- the previous entry's (the first: - Now) | varint entry - the
//	previous entry's | varint offset or due time | uvarint position | flags
//
// (flags 1: delayed): 27 bytes a typical entry, where fixed fields
// would take 53 (a million-entry window: 26.5 MB, measured).
type snapDedup struct {
	Window  int64  `msgpack:"w"`
	Max     int    `msgpack:"m"`
	All     bool   `msgpack:"a,omitempty"`
	Now     int64  `msgpack:"n"`
	Entries []byte `msgpack:"e,omitempty"`
	Dups    []byte `msgpack:"d,omitempty"`
}

const (
	dedupMinPackLen = dedupKeyLen + 7
	dedupMaxPackLen = dedupKeyLen + 2*binary.MaxVarintLen32 + 3*binary.MaxVarintLen64 + binary.MaxVarintLen32 + 1
	dupPackLen      = 8 + 4
)

// dedupCopy is the dedup state copied for a snapshot: a plain copy under
// the state lock (a memmove, not to stall Apply), packed by Persist.
type dedupCopy struct {
	window, now int64
	max         int
	all         bool
	entries     []dedupEntry // oldest first
	dups        []dupRef
}

func (d *dedupState) copy() dedupCopy {
	c := dedupCopy{window: d.window, now: d.now, max: d.max, all: d.all, dups: slices.Clone(d.dups)}
	if d.n > 0 {
		c.entries = make([]dedupEntry, d.n)
		k := copy(c.entries, d.ring[d.head:min(d.head+d.n, len(d.ring))])
		copy(c.entries[k:], d.ring)
	}
	return c
}

// pack returns the state to persist, nil if there is none.
func (c *dedupCopy) pack() *snapDedup {
	if c.window == 0 && len(c.dups) == 0 {
		return nil
	}
	s := &snapDedup{Window: c.window, Max: c.max, All: c.all, Now: c.now}
	if len(c.entries) > 0 {
		s.Entries = make([]byte, 0, len(c.entries)*32)
	}
	ts, index := c.now, uint64(0)
	for i := range c.entries {
		s.Entries = appendDedupEntry(s.Entries, &c.entries[i], ts, index)
		ts, index = c.entries[i].ts, c.entries[i].index
	}
	if len(c.dups) > 0 {
		s.Dups = make([]byte, 0, len(c.dups)*dupPackLen)
	}
	for _, r := range c.dups {
		s.Dups = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(s.Dups, r.index), r.pos)
	}
	return s
}

func appendDedupEntry(b []byte, e *dedupEntry, prevTs int64, prevIndex uint64) []byte {
	b = append(b, e.key.id[:]...)
	b = binary.AppendUvarint(b, uint64(e.key.topicID))
	b = binary.AppendUvarint(b, uint64(e.queueID))
	b = binary.AppendVarint(b, e.ts-prevTs)
	b = binary.AppendVarint(b, int64(e.index-prevIndex))
	b = binary.AppendVarint(b, e.off)
	b = binary.AppendUvarint(b, uint64(e.pos))
	flag := byte(0)
	if e.delayed {
		flag = 1
	}
	return append(b, flag)
}

// parseDedupEntry reads one entry from b (see snapDedup) and returns the
// rest of b.
func parseDedupEntry(b []byte, prevTs int64, prevIndex uint64) (dedupEntry, []byte, bool) {
	var e dedupEntry
	if len(b) < dedupMinPackLen {
		return e, nil, false
	}
	copy(e.key.id[:], b)
	b = b[dedupKeyLen:]
	ok := true
	uv := func(limit uint64) uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > limit {
			ok = false
			return 0
		}
		b = b[n:]
		return v
	}
	sv := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			ok = false
			return 0
		}
		b = b[n:]
		return v
	}
	e.key.topicID = uint32(uv(1<<32 - 1))
	e.queueID = uint32(uv(1<<32 - 1))
	e.ts = prevTs + sv()
	e.index = prevIndex + uint64(sv())
	e.off = sv()
	e.pos = uint32(uv(1<<32 - 1))
	if !ok || len(b) == 0 || b[0] > 1 {
		return e, nil, false
	}
	e.delayed = b[0] == 1
	return e, b[1:], true
}

// restoreDedup loads a snapshot's dedup state (nil: none), checking that
// Apply could have produced it.
func restoreDedup(s *snapDedup) (dedupState, error) {
	var d dedupState
	if s == nil {
		return d, nil
	}
	bad := func(format string, args ...any) (dedupState, error) {
		return dedupState{}, fmt.Errorf("%w: snapshot dedup: "+format, append([]any{ErrCorrupt}, args...)...)
	}
	c := SetDedup{Window: s.Window, Max: uint32(min(max(s.Max, 0), MaxDedupEntries+1))}
	switch {
	case c.validate() != nil || s.Max != int(c.Max):
		return bad("window %d ms, max %d", s.Window, s.Max)
	case len(s.Dups)%dupPackLen != 0:
		return bad("%d duplicate bytes", len(s.Dups))
	case len(s.Entries) > s.Max*dedupMaxPackLen || s.Window == 0 && (len(s.Entries) > 0 || s.Now != 0 || s.Max != 0):
		return bad("%d entry bytes with window %d ms, max %d", len(s.Entries), s.Window, s.Max)
	case len(s.Dups)/dupPackLen > maxDupRefs:
		return bad("%d duplicates", len(s.Dups)/dupPackLen)
	case s.Now < 0:
		return bad("window end %d", s.Now)
	}
	d.window, d.max, d.now, d.all = s.Window, s.Max, s.Now, s.All && s.Window != 0
	ts, index := s.Now, uint64(0)
	for b := s.Entries; len(b) > 0; {
		e, rest, ok := parseDedupEntry(b, ts, index)
		if !ok {
			return bad("entry %d is malformed", d.n)
		}
		if d.n == d.max {
			return bad("more than %d entries", d.max)
		}
		b, ts, index = rest, e.ts, e.index
		// An entry may be older than the window: eviction goes in store
		// order, and a new leader's clock may be behind the last one's.
		if e.ts > d.now {
			return bad("entry stored at %d after the window's end %d", e.ts, d.now)
		}
		tag := d.index.hash(&e.key)
		_, dup, free := d.lookup(&e.key, tag)
		if dup {
			return bad("an ID listed twice")
		}
		d.push(e, tag, free)
	}
	for b := s.Dups; len(b) > 0; b = b[dupPackLen:] {
		r := dupRef{index: binary.BigEndian.Uint64(b), pos: binary.BigEndian.Uint32(b[8:])}
		if len(d.dups) > 0 && d.dups[len(d.dups)-1].compare(r) >= 0 {
			return bad("duplicates out of order")
		}
		d.dups = append(d.dups, r)
	}
	return d, nil
}
