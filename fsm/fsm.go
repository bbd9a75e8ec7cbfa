package fsm

import (
	"container/heap"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Topic is a topic's replicated configuration.
type Topic struct {
	Name       string
	ID         uint32 // incarnation id: a new one on every successful create
	Queues     uint32
	Perm       uint8
	CreatedAt  int64 // leader clock at creation, unix ms
	Attributes map[string]string
}

type topicState struct {
	Topic
	queues []*queue
}

type queueKey struct {
	topic string
	queue uint32
}

// BatchResult is the Apply result of a message batch entry.
type BatchResult struct {
	// Offsets holds each message's queue offset, in batch order, or -1 if
	// the message was rejected (unknown topic, stale TopicID, queue out of
	// range), or OffsetDelayed if it waits for its timer (timers.go).
	Offsets []int64
	// Positions holds each message's record position in the entry (the
	// CommitLog position of a message is the entry index and this).
	Positions []uint32
	Rejected  int
	// Duplicates lists the messages not stored because their ID was
	// (producer dedup, dedup.go); nil when there are none.
	Duplicates []Duplicate
}

// OffsetDelayed is the BatchResult offset of a delayed message: it gets a
// queue offset when its timer is delivered.
const OffsetDelayed = -2

type appendNote struct {
	topicID uint32
	topic   string
	queueID uint32
	next    uint64
}

// FSM is the rmq raft.FSM / raft.BatchingFSM. See the package comment for
// the concurrency contract.
type FSM struct {
	cfg Config
	log hclog.Logger

	syncMu sync.Mutex // serialises Sync, Restore and Close; taken before mu
	// syncErr is the first failed fsync, sticky (ErrSyncFailed): guarded
	// by syncMu, mirrored in syncFailed for Err.
	syncErr    error
	syncFailed atomic.Pointer[error]
	mu         sync.RWMutex // guards everything below

	topics      map[string]*topicState
	lastTopicID uint32
	groups      map[string]map[queueKey]uint64
	resetEpochs map[string]uint64 // group -> number of administrative resets
	nodes       map[string]string // broker node ID -> client address
	applied     uint64
	logStart    uint64
	truncReason string // Reason of the TruncatePrefix that set logStart; not snapshotted
	store       cqStore
	closed      bool

	locks map[string]map[queueKey]lockState // consumer group -> queue -> lock

	timers    timerHeap              // pending delayed messages (timers.go)
	retryMeta map[timerKey]RetryInfo // metadata of pending retries (retry.go)
	pops      map[popKey]*popQueue   // pop consumers' in-flight items (pop.go)
	dedup     dedupState             // producer dedup window (dedup.go)

	index *msgIndex // message ID and key index (index.go); a cache of the log, not snapshotted

	halves     map[halfKey]*half // pending half messages (tx.go)
	txStats    TxStats
	txDiscards []TxDiscard

	// Scratch used only by the raft FSM goroutine (Apply, ApplyBatch, Restore).
	refs  []recRef
	notes []appendNote
	gen   uint64
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// New returns an FSM with empty state. Existing consume-queue files under
// cfg.Dir are kept as a cache that Restore validates and Apply overwrites.
func New(cfg Config) (*FSM, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &FSM{cfg: cfg, log: cfg.Logger}
	f.store = cqStore{root: filepath.Join(cfg.Dir, "cq"), upf: uint64(cfg.UnitsPerFile), dirtyDirs: map[string]bool{}}
	f.index = openIndex(filepath.Join(cfg.Dir, "index"), cfg.IndexEntriesPerFile)
	f.resetState()
	return f, nil
}

func (f *FSM) resetState() {
	f.topics = map[string]*topicState{}
	f.groups = map[string]map[queueKey]uint64{}
	f.resetEpochs = map[string]uint64{}
	f.nodes = map[string]string{}
	f.locks = map[string]map[queueKey]lockState{}
	f.timers = nil
	f.retryMeta = map[timerKey]RetryInfo{}
	f.pops = map[popKey]*popQueue{}
	f.halves = map[halfKey]*half{}
	f.txStats, f.txDiscards = TxStats{}, nil
	f.dedup = dedupState{}
	f.lastTopicID, f.applied, f.logStart = 0, 0, 0
	f.truncReason = ""
}

// Apply applies one committed raft entry. See ApplyBatch.
func (f *FSM) Apply(l *raft.Log) interface{} {
	f.mu.Lock()
	f.gen++
	res := f.applyLocked(l)
	notes := f.takeNotes()
	f.mu.Unlock()
	f.notify(notes)
	return res
}

// ApplyBatch applies committed entries in order under one lock
// acquisition. Results: *BatchResult for message batches, *LockResult
// for LockQueues, error (nil on success) for other control commands (and
// for any undecodable or invalid entry), nil for non-command entries.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	res := make([]interface{}, len(logs))
	f.mu.Lock()
	f.gen++
	for i, l := range logs {
		res[i] = f.applyLocked(l)
	}
	notes := f.takeNotes()
	f.mu.Unlock()
	f.notify(notes)
	return res
}

func (f *FSM) applyLocked(l *raft.Log) interface{} {
	if l.Index > f.applied {
		f.applied = l.Index
	}
	if l.Type != raft.LogCommand {
		return nil
	}
	if f.closed {
		return ErrClosed
	}
	if len(l.Data) >= 1 && CommandType(l.Data[0]) == CmdMessageBatch {
		if len(l.Data) < 2 || l.Data[1] != msgBatchVersion {
			return fmt.Errorf("%w: message batch", ErrUnknownVersion)
		}
		return f.applyBatch(l.Index, l.Data)
	}
	c, _, err := decodeControl(l.Data)
	if err != nil {
		f.log.Warn("undecodable command", "index", l.Index, "error", err)
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	return c.apply(f, l.Index)
}

func (f *FSM) applyBatch(index uint64, data []byte) interface{} {
	ts, refs, err := splitBatch(data, f.refs[:0])
	f.refs = refs[:0]
	if err != nil {
		f.log.Warn("malformed message batch", "index", index, "error", err)
		return err
	}
	res := &BatchResult{Offsets: make([]int64, len(refs)), Positions: make([]uint32, len(refs))}
	for i := range refs {
		res.Positions[i] = refs[i].pos
		r := &refs[i].r
		t := f.topics[string(r.topic)]
		if t == nil || t.ID != r.topicID || r.queueID >= t.Queues {
			res.Offsets[i] = -1
			res.Rejected++
			continue
		}
		if f.dedupe(res, i, &refs[i], t, index, ts) {
			continue
		}
		if isHalf(r.props) {
			f.halves[halfKey{index, refs[i].pos}] = &half{size: refs[i].size, tagHash: TagHash(string(r.tags)),
				topicID: t.ID, queueID: r.queueID, storeTime: ts}
			res.Offsets[i] = OffsetHalf
			continue
		}
		if due, ok := delayed(r.props, ts); ok {
			heap.Push(&f.timers, timer{due: due, index: index, pos: refs[i].pos, size: refs[i].size,
				tagHash: TagHash(string(r.tags)), topicID: t.ID, queueID: r.queueID})
			res.Offsets[i] = OffsetDelayed
			continue
		}
		u := Unit{Index: index, Pos: refs[i].pos, Size: refs[i].size, TagHash: TagHash(string(r.tags)), StoreTime: ts}
		res.Offsets[i] = int64(f.appendUnit(t.queues[r.queueID], u))
	}
	f.finishBatch(res, refs, index, ts)
	if index > f.index.through {
		var dup []bool // duplicates are not indexed: their original is
		if len(res.Duplicates) > 0 {
			dup = make([]bool, len(refs))
			for _, d := range res.Duplicates {
				dup[d.Msg] = true
			}
		}
		for i := range refs {
			if res.Offsets[i] != -1 && (dup == nil || !dup[i]) {
				f.index.indexRecord(index, refs[i].pos, string(refs[i].r.topic), refs[i].r.id, refs[i].r.keys)
			}
		}
		f.index.through = index
	}
	return res
}

// appendUnit writes u at q's next offset and returns that offset.
func (f *FSM) appendUnit(q *queue, u Unit) uint64 {
	off := q.next
	if q.err == nil {
		if err := f.store.write(q, off, u); err != nil {
			// State still advances (it must match other replicas); the
			// local CQ is now short and Sync reports it until a restart
			// rebuilds it.
			q.err = fmt.Errorf("write consume queue %s/%d: %w", q.topic, q.id, err)
			f.log.Error("consume queue write failed", "topic", q.topic, "queue-id", q.id, "error", err)
		}
	}
	q.next++
	if q.gen != f.gen {
		q.gen = f.gen
		f.notes = append(f.notes, appendNote{topicID: q.topicID, topic: q.topic, queueID: q.id})
	}
	return off
}

// takeNotes fills in final next offsets of touched queues (under mu).
func (f *FSM) takeNotes() []appendNote {
	if f.cfg.OnAppend == nil || len(f.notes) == 0 {
		f.notes = f.notes[:0]
		return nil
	}
	notes := f.notes[:0]
	for _, n := range f.notes {
		if t := f.topics[n.topic]; t != nil && t.ID == n.topicID { // skip topics deleted meanwhile
			n.next = t.queues[n.queueID].next
			notes = append(notes, n)
		}
	}
	f.notes = f.notes[:0]
	return notes
}

func (f *FSM) notify(notes []appendNote) {
	for _, n := range notes {
		f.cfg.OnAppend(n.topicID, n.topic, n.queueID, n.next)
	}
}

// The apply methods of the control commands (see control). Each result is
// the command's raft Apply result; a nil error is a nil interface.

func (c *CreateTopic) apply(f *FSM, index uint64) any { return f.createTopic(index, c) }
func (c *UpdateTopic) apply(f *FSM, index uint64) any { return f.updateTopic(index, c) }
func (c *DeleteTopic) apply(f *FSM, _ uint64) any     { return f.deleteTopic(c.Name) }

func (c *CommitOffsets) apply(f *FSM, _ uint64) any {
	if e := f.resetEpochs[c.Group]; !c.Reset && c.Epoch < e {
		return fmt.Errorf("%w: group %s is at reset epoch %d, the commit saw %d", ErrStaleEpoch, c.Group, e, c.Epoch)
	}
	f.commitOffsets(c)
	return nil
}

func (c *DeleteGroup) apply(f *FSM, _ uint64) any {
	if _, ok := f.groups[c.Group]; !ok {
		return fmt.Errorf("%w: %s", ErrGroupNotFound, c.Group)
	}
	delete(f.groups, c.Group)
	delete(f.resetEpochs, c.Group)
	f.dropPopsOf(c.Group, 0)
	return nil
}

func (c *RegisterNode) apply(f *FSM, _ uint64) any {
	f.nodes[c.ID] = c.Addr
	return nil
}

func (c *TruncatePrefix) apply(f *FSM, _ uint64) any {
	if c.UpTo >= f.logStart {
		f.truncReason = c.Reason
	}
	f.truncatePrefix(c.UpTo)
	return nil
}

func (f *FSM) createTopic(index uint64, c *CreateTopic) error {
	if _, ok := f.topics[c.Name]; ok {
		return fmt.Errorf("%w: %s", ErrTopicExists, c.Name)
	}
	perm := c.Perm
	if perm == 0 {
		perm = DefaultPerm
	}
	f.lastTopicID++
	t := &topicState{Topic: Topic{
		Name: c.Name, ID: f.lastTopicID, Queues: c.Queues, Perm: perm,
		CreatedAt: c.Time, Attributes: cloneMap(c.Attributes),
	}}
	f.growQueues(t, c.Queues, index)
	f.topics[c.Name] = t
	return nil
}

// growQueues adds queues up to n, created by raft entry index.
func (f *FSM) growQueues(t *topicState, n uint32, index uint64) {
	for id := uint32(len(t.queues)); id < n; id++ {
		q := f.store.newQueue(t, id)
		q.since = index
		t.queues = append(t.queues, q)
	}
	t.Queues = n
}

func (f *FSM) updateTopic(index uint64, c *UpdateTopic) error {
	t := f.topics[c.Name]
	if t == nil {
		return fmt.Errorf("%w: %s", ErrTopicNotFound, c.Name)
	}
	if c.Queues != 0 && c.Queues < t.Queues {
		return fmt.Errorf("%w: %s has %d queues, asked for %d", ErrQueueShrink, c.Name, t.Queues, c.Queues)
	}
	if c.Queues != 0 {
		f.growQueues(t, c.Queues, index)
	}
	if c.Perm != 0 {
		t.Perm = c.Perm
	}
	return nil
}

func (f *FSM) deleteTopic(name string) error {
	t := f.topics[name]
	if t == nil {
		return fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	delete(f.topics, name)
	f.store.retireTopic(t)
	f.dropPopsOf("", t.ID)
	for g, offs := range f.groups {
		for k := range offs {
			if k.topic == name {
				delete(offs, k)
			}
		}
		if len(offs) == 0 {
			delete(f.groups, g)
		}
	}
	return nil
}

func (f *FSM) commitOffsets(c *CommitOffsets) {
	if c.Reset {
		f.resetEpochs[c.Group]++
	}
	offs := f.groups[c.Group]
	for _, e := range c.Offsets {
		t := f.topics[e.Topic]
		if t == nil || e.QueueID >= t.Queues {
			continue
		}
		if offs == nil {
			offs = map[queueKey]uint64{}
			f.groups[c.Group] = offs
		}
		offs[queueKey{e.Topic, e.QueueID}] = e.Offset
	}
}

// truncatePrefix applies retention: entries <= upTo are gone.
func (f *FSM) truncatePrefix(upTo uint64) {
	if upTo < f.logStart {
		return // already truncated further
	}
	f.logStart = upTo + 1
	f.index.retireBelow(f.logStart)
	f.dedup.dropDupsThrough(upTo)
	for _, t := range f.topics {
		for _, q := range t.queues {
			if q.err != nil {
				f.log.Error("cannot move min offset of a broken consume queue", "topic", q.topic, "queue-id", q.id)
				continue
			}
			q.min = f.firstAbove(q, q.min, upTo)
			f.store.retireBelow(q, q.min)
			q.delivered.dropBelow(q.min)
		}
	}
}

// firstAbove returns the first offset in [from, q.next) whose unit's raft
// index is > upTo, or q.next. Units are monotonic in raft index per queue.
func (f *FSM) firstAbove(q *queue, from, upTo uint64) uint64 {
	lo, hi := from, q.next
	for lo < hi {
		mid := lo + (hi-lo)/2
		u, _ := f.store.read(q, mid)
		if u.Index > upTo {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Sync makes every consume-queue unit written so far durable and finishes
// deferred file deletions. Safe to call concurrently with Apply and queries.
//
// A failed fsync is sticky: that Sync and every later one (so every
// snapshot's Persist) return it, wrapped in ErrSyncFailed. The kernel may
// have dropped the unsynced pages and a retried fsync would then succeed
// without writing them, so a later snapshot would vouch for units that a
// power loss can take. A restart restores the last good snapshot and
// re-applies the log after it, rewriting those units; see Err.
func (f *FSM) Sync() error {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	if f.syncErr != nil {
		return f.syncErr
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	w := f.store.takeSyncWork()
	iw := f.index.takeSyncWork()
	broken := f.brokenLocked()
	if broken == nil {
		broken = f.index.broken
	}
	f.mu.Unlock()
	if err := errors.Join(w.run(), iw.run()); err != nil {
		f.syncErr = fmt.Errorf("%w: %w", ErrSyncFailed, err)
		f.syncFailed.Store(&f.syncErr)
		f.log.Error("consume queue or index sync failed, refusing further syncs", "error", err)
		return f.syncErr
	}
	return broken
}

// Err returns the sticky sync failure (ErrSyncFailed) once an fsync of a
// consume-queue or index file has failed, nil before. The broker stops
// the node then: without syncs there are no snapshots either.
func (f *FSM) Err() error {
	if p := f.syncFailed.Load(); p != nil {
		return *p
	}
	return nil
}

// brokenLocked reports the first queue that lost units to a local I/O error.
func (f *FSM) brokenLocked() error {
	for _, t := range f.topics {
		for _, q := range t.queues {
			if q.err != nil {
				return q.err
			}
		}
	}
	return nil
}

// Close syncs and unmaps every consume-queue file. It is idempotent.
func (f *FSM) Close() error {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	err := f.store.takeSyncWork().run()
	if ierr := f.index.takeSyncWork().run(); err == nil {
		err = ierr
	}
	f.index.closeAll()
	for _, t := range f.topics {
		for _, q := range t.queues {
			if cerr := closeQueue(q); err == nil {
				err = cerr
			}
		}
	}
	return err
}
