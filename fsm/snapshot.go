package fsm

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rmq-dev/rmq/internal/msgpackguard"
)

// snapshotVersion is the first byte of a persisted snapshot. Fields added
// to snapState later are omitempty and optional, so a snapshot written
// before them (or without such state) is unchanged and still restores;
// the version changes only for an incompatible layout.
const snapshotVersion = 1

// MaxSnapshotSize bounds a persisted snapshot (version byte + msgpack
// state). The state is O(topics x queues + offsets): a million queues with
// offsets for a hundred groups is a few hundred MiB.
const MaxSnapshotSize = 1 << 30

type snapState struct {
	Applied     uint64            `msgpack:"applied"`
	LogStart    uint64            `msgpack:"log_start"`
	LastTopicID uint32            `msgpack:"last_topic_id"`
	Topics      []snapTopic       `msgpack:"topics"`
	Groups      []snapGroup       `msgpack:"groups"`
	ResetEpochs map[string]uint64 `msgpack:"reset_epochs,omitempty"`
	Nodes       map[string]string `msgpack:"nodes,omitempty"`
	Locks       []snapLock        `msgpack:"locks,omitempty"`
	// Timers: the pending delayed messages, packed (timers.go packTimers),
	// and the metadata of those that are retries (retry.go).
	Timers     []byte           `msgpack:"timers,omitempty"`
	TimerRetry []snapTimerRetry `msgpack:"timer_retry,omitempty"`
	// Pops: pop consumers' in-flight items per group queue (pop.go).
	Pops []snapPop `msgpack:"pops,omitempty"`
	// Transactions (tx.go): pending halves packed, counters, the latest
	// broker rollbacks.
	Halves     []byte      `msgpack:"halves,omitempty"`
	TxStats    TxStats     `msgpack:"tx_stats,omitempty"`
	TxDiscards []TxDiscard `msgpack:"tx_discards,omitempty"`
	// Dedup: the producer dedup settings, window and duplicates (dedup.go).
	Dedup *snapDedup `msgpack:"dedup,omitempty"`
}

type snapTimerRetry struct {
	Index   uint64    `msgpack:"i"`
	Pos     uint32    `msgpack:"p"`
	TopicID uint32    `msgpack:"t"`
	QueueID uint32    `msgpack:"q"`
	Retry   RetryInfo `msgpack:"r"`
}

// snapLock is one queue lock (sorted by group, topic, queue).
type snapLock struct {
	Group   string `msgpack:"g"`
	Topic   string `msgpack:"t"`
	QueueID uint32 `msgpack:"q"`
	Owner   string `msgpack:"o"`
	Granted int64  `msgpack:"at"`
	Expires int64  `msgpack:"exp"`
}

type snapTopic struct {
	Name       string            `msgpack:"name"`
	ID         uint32            `msgpack:"id"`
	Perm       uint8             `msgpack:"perm"`
	CreatedAt  int64             `msgpack:"created_at"`
	Attributes map[string]string `msgpack:"attrs,omitempty"`
	Min        []uint64          `msgpack:"min"`   // per queue; len is the queue count
	Next       []uint64          `msgpack:"next"`  // per queue
	Since      []uint64          `msgpack:"since"` // per queue: raft index that created it
	// Delivered: per queue with delivered delayed messages, the offsets
	// of their units and their records' entries.
	Delivered []snapDelivered `msgpack:"delivered,omitempty"`
}

type snapDelivered struct {
	QueueID uint32      `msgpack:"q"`
	Offsets []uint64    `msgpack:"o"`
	Orig    []uint64    `msgpack:"i"`
	Meta    []RetryInfo `msgpack:"m,omitempty"` // empty, or one per entry
}

type snapGroup struct {
	Name    string        `msgpack:"name"`
	Offsets []OffsetEntry `msgpack:"offsets"`
}

type fsmSnapshot struct {
	f     *FSM
	state snapState
	dedup dedupCopy // packed into state by Persist
}

// Snapshot copies the small state (never messages or units). It is O(topics
// x queues + offsets) and does no I/O.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return nil, ErrClosed
	}
	st := snapState{Applied: f.applied, LogStart: f.logStart, LastTopicID: f.lastTopicID,
		ResetEpochs: maps.Clone(f.resetEpochs), Nodes: maps.Clone(f.nodes), Timers: packTimers(f.timers)}
	for k, r := range f.retryMeta {
		st.TimerRetry = append(st.TimerRetry, snapTimerRetry{Index: k.index, Pos: k.pos, TopicID: k.topicID, QueueID: k.queueID, Retry: r})
	}
	st.Topics = make([]snapTopic, 0, len(f.topics))
	for _, t := range f.topics {
		s := snapTopic{Name: t.Name, ID: t.ID, Perm: t.Perm, CreatedAt: t.CreatedAt, Attributes: t.Attributes,
			Min: make([]uint64, t.Queues), Next: make([]uint64, t.Queues), Since: make([]uint64, t.Queues)}
		for i, q := range t.queues {
			s.Min[i], s.Next[i], s.Since[i] = q.min, q.next, q.since
			if len(q.delivered.offsets) > 0 {
				s.Delivered = append(s.Delivered, snapDelivered{QueueID: uint32(i),
					Offsets: slices.Clone(q.delivered.offsets), Orig: slices.Clone(q.delivered.orig),
					Meta: slices.Clone(q.delivered.meta)})
			}
		}
		st.Topics = append(st.Topics, s)
	}
	st.Pops = f.snapPops()
	if len(f.halves) > 0 {
		st.Halves = packHalves(f.halves)
	}
	st.TxStats, st.TxDiscards = f.txStats, slices.Clone(f.txDiscards)
	for g, gl := range f.locks {
		for k, l := range gl {
			st.Locks = append(st.Locks, snapLock{Group: g, Topic: k.topic, QueueID: k.queue, Owner: l.owner, Granted: l.granted, Expires: l.expires})
		}
	}
	st.Groups = make([]snapGroup, 0, len(f.groups))
	for g, offs := range f.groups {
		sg := snapGroup{Name: g, Offsets: make([]OffsetEntry, 0, len(offs))}
		for k, v := range offs {
			sg.Offsets = append(sg.Offsets, OffsetEntry{Topic: k.topic, QueueID: k.queue, Offset: v})
		}
		st.Groups = append(st.Groups, sg)
	}
	return &fsmSnapshot{f: f, state: st, dedup: f.dedup.copy()}, nil
}

// Persist first syncs the consume queues, so every unit below each
// snapshotted next offset is durable, then writes the state.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.f.Sync(); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("sync consume queues before snapshot: %w", err)
	}
	s.state.Dedup = s.dedup.pack()
	if err := writeSnapshot(sink, &s.state); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release is a no-op: the snapshot holds only copies.
func (s *fsmSnapshot) Release() {}

func writeSnapshot(w io.Writer, st *snapState) error {
	// Sort so equal states encode to equal bytes.
	slices.SortFunc(st.Topics, func(a, b snapTopic) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(st.Groups, func(a, b snapGroup) int { return cmp.Compare(a.Name, b.Name) })
	for _, g := range st.Groups {
		sortOffsets(g.Offsets)
	}
	slices.SortFunc(st.TimerRetry, func(a, b snapTimerRetry) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Pos, b.Pos), cmp.Compare(a.TopicID, b.TopicID), cmp.Compare(a.QueueID, b.QueueID))
	})
	slices.SortFunc(st.Locks, func(a, b snapLock) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.QueueID, b.QueueID))
	})
	bw := bufio.NewWriter(w)
	if err := bw.WriteByte(snapshotVersion); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	enc := msgpack.NewEncoder(bw)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(st); err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// readSnapshot reads the whole state before decoding it, so the guarded
// decode can compare every declared length with the bytes really there: a
// snapshot claiming four billion topics is refused, not allocated.
func readSnapshot(r io.Reader) (*snapState, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSnapshotSize+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("read snapshot: %w", io.ErrUnexpectedEOF)
	}
	if len(b) > MaxSnapshotSize {
		return nil, fmt.Errorf("%w: snapshot larger than %d bytes", ErrCorrupt, MaxSnapshotSize)
	}
	if b[0] != snapshotVersion {
		return nil, fmt.Errorf("%w: %d", ErrSnapshotVersion, b[0])
	}
	var st snapState
	if err := msgpackguard.Unmarshal(b[1:], &st); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %w", ErrCorrupt, err)
	}
	for _, t := range st.Topics {
		if len(t.Min) != len(t.Next) || len(t.Since) != len(t.Next) || len(t.Next) == 0 || len(t.Next) > MaxQueues || t.ID > st.LastTopicID {
			return nil, fmt.Errorf("%w: snapshot topic %q", ErrCorrupt, t.Name)
		}
		for i := range t.Min {
			if t.Min[i] > t.Next[i] {
				return nil, fmt.Errorf("%w: snapshot topic %q queue %d min > next", ErrCorrupt, t.Name, i)
			}
		}
	}
	for _, l := range st.Locks {
		if l.Group == "" || l.Owner == "" {
			return nil, fmt.Errorf("%w: snapshot lock on %q/%d without group or owner", ErrCorrupt, l.Topic, l.QueueID)
		}
	}
	return &st, nil
}

// Restore replaces all state with the snapshot's, validates the consume
// queue files against it and rebuilds the queues whose files are missing or
// short from Config.Log.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.dropAllFiles()
	f.resetState()
	f.applied, f.logStart, f.lastTopicID = st.Applied, st.LogStart, st.LastTopicID
	for g, e := range st.ResetEpochs {
		f.resetEpochs[g] = e
	}
	for id, addr := range st.Nodes {
		f.nodes[id] = addr
	}
	for _, l := range st.Locks {
		gl := f.locks[l.Group]
		if gl == nil {
			gl = map[queueKey]lockState{}
			f.locks[l.Group] = gl
		}
		gl[queueKey{l.Topic, l.QueueID}] = lockState{owner: l.Owner, granted: l.Granted, expires: l.Expires}
	}
	var all []*queue
	for _, s := range st.Topics {
		t := &topicState{Topic: Topic{Name: s.Name, ID: s.ID, Perm: s.Perm, CreatedAt: s.CreatedAt, Attributes: s.Attributes}}
		f.growQueues(t, uint32(len(s.Next)), 0)
		for i, q := range t.queues {
			q.min, q.next, q.since = s.Min[i], s.Next[i], s.Since[i]
		}
		for _, d := range s.Delivered {
			if int(d.QueueID) >= len(t.queues) || len(d.Offsets) != len(d.Orig) || len(d.Meta) != 0 && len(d.Meta) != len(d.Offsets) {
				return fmt.Errorf("%w: snapshot delivered table of %s/%d", ErrCorrupt, s.Name, d.QueueID)
			}
			t.queues[d.QueueID].delivered = deliveredTable{offsets: d.Offsets, orig: d.Orig, meta: d.Meta}
		}
		f.topics[t.Name] = t
		all = append(all, t.queues...)
	}
	if f.timers, err = unpackTimers(st.Timers); err != nil {
		return err
	}
	for _, r := range st.TimerRetry {
		f.retryMeta[timerKey{index: r.Index, pos: r.Pos, topicID: r.TopicID, queueID: r.QueueID}] = r.Retry
	}
	if err := f.restorePops(st.Pops); err != nil {
		return err
	}
	if f.halves, err = unpackHalves(st.Halves); err != nil {
		return err
	}
	if len(st.TxDiscards) > maxTxDiscards {
		return fmt.Errorf("%w: snapshot lists %d transaction discards", ErrCorrupt, len(st.TxDiscards))
	}
	f.txStats, f.txDiscards = st.TxStats, st.TxDiscards
	if f.dedup, err = restoreDedup(st.Dedup); err != nil {
		return err
	}
	for _, g := range st.Groups {
		offs := make(map[queueKey]uint64, len(g.Offsets))
		for _, e := range g.Offsets {
			offs[queueKey{e.Topic, e.QueueID}] = e.Offset
		}
		f.groups[g.Name] = offs
	}
	f.removeStaleDirs()
	var need []*queue
	for _, q := range all {
		if err := f.validateQueue(q); err != nil {
			f.log.Info("consume queue needs rebuild", "topic", q.topic, "queue-id", q.id, "reason", err)
			if err := closeQueue(q); err != nil {
				return err
			}
			if err := os.RemoveAll(q.dir); err != nil {
				return fmt.Errorf("remove stale consume queue: %w", err)
			}
			need = append(need, q)
		}
	}
	if len(need) > 0 {
		if err := f.rebuild(need); err != nil {
			return err
		}
	}
	if err := f.catchUpIndex(); err != nil {
		f.log.Warn("message index catch-up from the log failed; lookups may miss older messages", "error", err)
	}
	f.log.Info("restored snapshot", "index", f.applied, "topics", len(f.topics), "rebuilt-queues", len(need))
	return nil
}

// dropAllFiles closes every mapped file and forgets pending sync work.
func (f *FSM) dropAllFiles() {
	w := f.store.takeSyncWork()
	w.dirty, w.dirs = nil, nil // state is being replaced; retired files still get removed
	if err := w.run(); err != nil {
		f.log.Warn("cleanup of retired consume queue files", "error", err)
	}
	for _, t := range f.topics {
		for _, q := range t.queues {
			if err := closeQueue(q); err != nil {
				f.log.Warn("close consume queue", "topic", q.topic, "queue-id", q.id, "error", err)
			}
		}
	}
}

// removeStaleDirs deletes topic dirs not in the state and queue files wholly
// below a queue's min.
func (f *FSM) removeStaleDirs() {
	live := map[string]*topicState{}
	for _, t := range f.topics {
		live[strconv.FormatUint(uint64(t.ID), 10)] = t
	}
	ents, _ := os.ReadDir(f.store.root)
	for _, e := range ents {
		if live[e.Name()] == nil {
			_ = os.RemoveAll(filepath.Join(f.store.root, e.Name()))
		}
	}
	for _, t := range f.topics {
		for _, q := range t.queues {
			files, _ := os.ReadDir(q.dir)
			for _, e := range files {
				base, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), ".cq"), 10, 64)
				if err == nil && base+f.store.upf <= q.min {
					_ = os.Remove(filepath.Join(q.dir, e.Name()))
				}
			}
		}
	}
}

// validateQueue opens the files holding [min, next) and checks the first and
// last units look like the ones the snapshot describes.
func (f *FSM) validateQueue(q *queue) error {
	if q.next == q.min {
		return nil
	}
	upf := f.store.upf
	for no := q.min / upf; no <= (q.next-1)/upf; no++ {
		if _, err := f.store.open(q, no, false); err != nil {
			return err
		}
	}
	first, _ := f.store.read(q, q.min)
	last, _ := f.store.read(q, q.next-1)
	switch {
	case first.Index == 0 || last.Index == 0:
		return errors.New("missing units")
	case last.Index > f.applied || first.Index > last.Index || first.Index < f.logStart:
		return fmt.Errorf("units [%d, %d] outside log range [%d, %d]", first.Index, last.Index, f.logStart, f.applied)
	}
	return nil
}
