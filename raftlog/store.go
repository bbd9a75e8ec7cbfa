package raftlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Store is a segmented raft.LogStore. See doc.go for the design.
type Store struct {
	cfg Config
	fs  VFS
	log hclog.Logger
	dir string

	// writeMu serializes every mutation (appends, truncation, reset,
	// purge, install swap, fsync). It is held across file writes.
	writeMu sync.Mutex
	buf     []byte                        // encode buffer, reused across StoreLogs
	failErr error                         // sticky *FailStopError
	failed  atomic.Pointer[FailStopError] // failErr, for Err without writeMu
	dirty   bool                          // async mode: written but not yet fsynced

	// mu guards the in-memory view readers use: segs, their offsets and
	// ends, the cache, pins, allowedPrefix and closed. Readers hold RLock
	// across their preads, so files are closed or truncated only under Lock.
	mu            sync.RWMutex
	segs          []*segment
	cache         entryCache
	closed        bool
	allowedPrefix uint64
	pins          map[uint64]uint64
	pinSeq        uint64

	stopFlush chan struct{}
	flushDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ raft.LogStore = (*Store)(nil)

// Open opens or creates the log in cfg.Dir, recovering a torn tail and
// finishing an interrupted snapshot install whose swap had already begun.
func Open(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, fs: cfg.FS, log: cfg.Logger.Named("raftlog"), dir: filepath.Clean(cfg.Dir), pins: map[uint64]uint64{}}
	s.cache = newEntryCache(cfg.CacheEntries, cfg.CacheBytes)
	if err := s.recoverInstall(); err != nil {
		return nil, err
	}
	if err := s.fs.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftlog: create dir: %w", err)
	}
	segs, err := loadSegments(s.fs, s.dir, s.log)
	if err != nil {
		return nil, err
	}
	s.segs = segs
	first, last := s.boundsLocked()
	s.log.Info("opened log", "dir", s.dir, "segments", len(segs), "first-index", first, "last-index", last)
	if cfg.FlushMode == FlushAsync {
		s.stopFlush, s.flushDone = make(chan struct{}), make(chan struct{})
		go s.flushLoop()
	}
	return s, nil
}

// loadSegments opens every segment in dir in index order and checks that
// they are contiguous.
func loadSegments(fs VFS, dir string, log hclog.Logger) ([]*segment, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("raftlog: read dir: %w", err)
	}
	var firsts []uint64
	for _, n := range names {
		if first, ok := parseSegName(n); ok {
			firsts = append(firsts, first) // names are zero padded, so sorted
		} else if filepath.Ext(n) == ".tmp" {
			_ = fs.Remove(filepath.Join(dir, n))
		}
	}
	var segs []*segment
	closeAll := func() {
		for _, sg := range segs {
			sg.f.Close()
		}
	}
	for i, first := range firsts {
		path := filepath.Join(dir, segName(first))
		sg, err := openSegment(fs, path, first, i == len(firsts)-1, log)
		if errors.Is(err, errTornCreate) {
			log.Warn("removing a segment whose creation did not finish", "path", path)
			if err := fs.Remove(path); err != nil {
				closeAll()
				return nil, fmt.Errorf("raftlog: remove torn segment: %w", err)
			}
			// The segment before it was sealed by the roll that created
			// it, and is the active one now: drop its .idx and reopen it
			// as such (scanned, writable end). Appending to it as sealed
			// zero-filled it from offset 0 (found by FuzzOpenStore and by
			// the ENOSPC tests).
			if n := len(segs); n > 0 {
				prev := segs[n-1]
				if err := prev.unseal(fs); err != nil {
					closeAll()
					return nil, err
				}
				segs = segs[:n-1]
				prev.f.Close()
				sg, err := openSegment(fs, prev.path, prev.first, true, log)
				if err != nil {
					closeAll()
					return nil, err
				}
				segs = append(segs, sg)
			}
			break
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		if i > 0 {
			prev := segs[i-1]
			if prev.count() == 0 || prev.last()+1 != first {
				sg.f.Close()
				closeAll()
				return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("segment starts at %d, previous ends at %d", first, prev.last())}
			}
		}
		segs = append(segs, sg)
	}
	return segs, nil
}

// boundsLocked returns the first and last index, 0,0 when empty. Caller
// holds mu (either mode) or writeMu.
func (s *Store) boundsLocked() (first, last uint64) {
	if len(s.segs) == 0 {
		return 0, 0
	}
	lastSeg := s.segs[len(s.segs)-1]
	if s.segs[0].count() == 0 {
		return 0, 0 // only possible for a single empty segment
	}
	return s.segs[0].first, lastSeg.last()
}

// FirstIndex implements raft.LogStore. It returns 0 for an empty log.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	first, _ := s.boundsLocked()
	return first, nil
}

// LastIndex implements raft.LogStore. It returns 0 for an empty log.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	_, last := s.boundsLocked()
	return last, nil
}

// GetLog implements raft.LogStore. It returns raft.ErrLogNotFound itself
// (not wrapped) for an index outside [first, last]. Entries served from the
// cache share Data with the *raft.Log that was stored.
func (s *Store) GetLog(index uint64, out *raft.Log) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	if c := s.cachedLocked(index); c != nil {
		*out = *c
		s.mu.RUnlock()
		return nil
	}
	bp := getBuf()
	defer putBuf(bp)
	raw, path, off, err := s.readRecordLocked(index, (*bp)[:0])
	s.mu.RUnlock()
	*bp = raw
	if err != nil {
		return err
	}
	rec, _, reason := decodeRecord(raw)
	if reason != "" {
		return &CorruptError{Path: path, Offset: off, Reason: string(reason)}
	}
	if rec.index != index {
		return &CorruptError{Path: path, Offset: off, Reason: fmt.Sprintf("index %d, want %d", rec.index, index)}
	}
	rec.toLog(out)
	return nil
}

func (s *Store) cachedLocked(index uint64) *raft.Log {
	if c := s.cache.get(index); c != nil && c.Index == index {
		first, last := s.boundsLocked()
		if index >= first && index <= last {
			return c
		}
	}
	return nil
}

// invalidateCacheLocked drops cached entries >= from. Caller holds mu.Lock.
func (s *Store) invalidateCacheLocked(from uint64) { s.cache.dropFrom(from) }

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore. See doc.go for overwrite and gap
// handling. In FlushSync mode the entries are on stable storage when it
// returns nil.
func (s *Store) StoreLogs(ls []*raft.Log) error {
	if len(ls) == 0 {
		return nil
	}
	for i := 1; i < len(ls); i++ {
		if ls[i].Index != ls[i-1].Index+1 {
			return fmt.Errorf("%w: index %d follows %d", ErrNonContiguous, ls[i].Index, ls[i-1].Index)
		}
	}
	for _, l := range ls {
		if recordSize(l) > MaxRecordSize {
			return fmt.Errorf("%w: index %d is %d bytes", ErrEntryTooLarge, l.Index, recordSize(l))
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	if err := s.prepareAppendLocked(ls[0].Index); err != nil {
		return s.fail(err)
	}
	if err := s.appendLocked(ls); err != nil {
		return s.fail(err)
	}
	return nil
}

// writableLocked reports the sticky failure or ErrClosed. Caller holds writeMu.
func (s *Store) writableLocked() error {
	if s.failErr != nil {
		return s.failErr
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return nil
}

// Err returns the sticky *FailStopError once a write or fsync has failed
// (every later write returns it too), nil before. It does not wait for
// writes in progress.
func (s *Store) Err() error {
	if fse := s.failed.Load(); fse != nil {
		return fse
	}
	return nil
}

// fail records err as the sticky fail-stop error. Caller holds writeMu.
func (s *Store) fail(err error) error {
	if s.failErr == nil {
		fse := &FailStopError{Err: err}
		s.failErr = fse
		s.failed.Store(fse)
		s.log.Error("log store failed, refusing further writes", "error", err)
	}
	return s.failErr
}

// prepareAppendLocked makes the log end at next-1: a no-op for a plain
// append, a suffix truncation for an overwrite, a reset for a gap.
func (s *Store) prepareAppendLocked(next uint64) error {
	first, last := s.boundsLocked()
	switch {
	case len(s.segs) > 0 && first == 0 && s.segs[0].first == next:
		return nil // a single empty segment waiting for exactly this index
	case first == 0 || next < first || next > last+1 || next == first:
		if first != 0 {
			s.log.Info("resetting log", "first-index", first, "last-index", last, "new-first-index", next)
		}
		return s.resetLocked(next)
	case next <= last:
		return s.truncateSuffixLocked(next)
	}
	return nil
}

// appendLocked encodes ls into one buffer per segment touched, writes it
// with one WriteAt, and publishes the offsets after the write (and the
// fsync in sync mode).
func (s *Store) appendLocked(ls []*raft.Log) error {
	active := s.segs[len(s.segs)-1]
	s.buf = s.buf[:0]
	var offs []uint32
	start := active.end
	for i, l := range ls {
		size := int64(recordSize(l))
		pos := start + int64(len(s.buf))
		if pos+size > s.cfg.SegmentSize && (active.count() > 0 || len(offs) > 0) {
			next, err := s.rollLocked(active, start, offs, ls[i-len(offs):i])
			if err != nil {
				return err
			}
			active, start, offs, s.buf = next, next.end, offs[:0], s.buf[:0]
			pos = start
		}
		offs = append(offs, uint32(pos))
		s.buf = appendRecord(s.buf, l)
	}
	if err := s.writeLocked(active, start); err != nil {
		return err
	}
	if s.cfg.FlushMode == FlushSync {
		if err := s.syncFile(active.f); err != nil {
			return fmt.Errorf("sync %s: %w", active.path, err)
		}
	} else {
		s.dirty = true
	}
	s.publish(active, offs, start+int64(len(s.buf)), ls[len(ls)-len(offs):])
	return nil
}

func (s *Store) writeLocked(sg *segment, at int64) error {
	if err := s.preallocLocked(sg, at+int64(len(s.buf))); err != nil {
		return err
	}
	if _, err := sg.f.WriteAt(s.buf, at); err != nil {
		return fmt.Errorf("write %s: %w", sg.path, err)
	}
	return nil
}

// preallocChunk is how far ahead of the write position the active segment
// is zero-filled. Writing into already allocated blocks lets fdatasync skip
// the file-system journal, which is most of the cost of a small fsync.
const preallocChunk = 8 << 20

var zeroChunk = make([]byte, 1<<20)

// preallocLocked zero-fills the active segment up to at least need, so a
// sync-mode fdatasync never has to journal a size change. Async mode
// fsyncs only every FlushInterval, so it lets writes extend the file: the
// zero-filling (and its extra fsync) cost ~15% of a broker's CPU at
// 120k msgs/s for no benefit there.
func (s *Store) preallocLocked(sg *segment, need int64) error {
	if need <= sg.alloc {
		return nil
	}
	if s.cfg.FlushMode == FlushAsync {
		sg.alloc = need
		return nil
	}
	target := max(need, min(sg.alloc+preallocChunk, s.cfg.SegmentSize))
	for off := sg.alloc; off < target; {
		n := min(int64(len(zeroChunk)), target-off)
		if _, err := sg.f.WriteAt(zeroChunk[:n], off); err != nil {
			return fmt.Errorf("preallocate %s: %w", sg.path, err)
		}
		off += n
	}
	if err := sg.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", sg.path, err)
	}
	sg.alloc = target
	return nil
}

// rollLocked writes the pending buffer to sg, seals it (fsync + .idx) and
// creates the next segment.
func (s *Store) rollLocked(sg *segment, start int64, offs []uint32, pending []*raft.Log) (*segment, error) {
	defer s.faultEvent("segment-roll", faultLog)()
	if len(offs) > 0 {
		if err := s.writeLocked(sg, start); err != nil {
			return nil, err
		}
	}
	end := start + int64(len(s.buf))
	if sg.alloc > end {
		if err := sg.f.Truncate(end); err != nil { // drop the preallocated tail
			return nil, fmt.Errorf("trim %s: %w", sg.path, err)
		}
		sg.alloc = end
	}
	if err := sg.f.Sync(); err != nil {
		return nil, fmt.Errorf("sync %s: %w", sg.path, err)
	}
	s.publish(sg, offs, start+int64(len(s.buf)), pending)
	// seal reads only writer-owned fields plus offs/end, which only the
	// writer mutates, so it can run without mu.
	if err := sg.seal(s.fs); err != nil {
		return nil, err
	}
	next, err := createSegment(s.fs, s.dir, sg.last()+1)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	sg.sealed = true
	s.segs = append(s.segs, next)
	s.mu.Unlock()
	s.dirty = false
	s.log.Info("rolled segment", "sealed", sg.path, "first-index", sg.first, "last-index", sg.last(), "bytes", sg.end)
	return next, nil
}

// publish makes written records visible to readers and caches them.
func (s *Store) publish(sg *segment, offs []uint32, end int64, ls []*raft.Log) {
	if len(offs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sg.count() == 0 {
		sg.firstAt = unixNano(ls[0].AppendedAt)
	}
	sg.offs = append(sg.offs, offs...)
	sg.end = end
	sg.lastAt = unixNano(ls[len(ls)-1].AppendedAt)
	for _, l := range ls {
		if len(l.Extensions) > 0 {
			sg.hasExt = true
		}
		s.cache.add(l)
	}
}

// resetLocked deletes every segment (oldest first, so a crash leaves a
// contiguous suffix) and starts an empty log at first.
func (s *Store) resetLocked(first uint64) error {
	s.mu.Lock()
	old := s.segs
	s.segs = nil
	s.cache.clear()
	for _, sg := range old {
		sg.f.Close()
	}
	s.mu.Unlock()
	for _, sg := range old {
		if err := removeSegmentFiles(s.fs, sg); err != nil {
			return err
		}
	}
	sg, err := createSegment(s.fs, s.dir, first)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.segs = []*segment{sg}
	s.mu.Unlock()
	s.dirty = false
	return nil
}

func removeSegmentFiles(fs VFS, sg *segment) error {
	if err := fs.Remove(idxPath(sg.path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove index: %w", err)
	}
	if err := fs.Remove(sg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove segment: %w", err)
	}
	return nil
}

// truncateSuffixLocked deletes entries >= from: later segments are removed
// newest first, then the segment holding from is unsealed and cut.
func (s *Store) truncateSuffixLocked(from uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidateCacheLocked(from)
	for len(s.segs) > 1 && s.segs[len(s.segs)-1].first > from {
		sg := s.segs[len(s.segs)-1]
		s.segs = s.segs[:len(s.segs)-1]
		sg.f.Close()
		if err := removeSegmentFiles(s.fs, sg); err != nil {
			return err
		}
	}
	sg := s.segs[len(s.segs)-1]
	if sg.sealed {
		if err := s.fs.Remove(idxPath(sg.path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove index: %w", err)
		}
		sg.sealed = false
	}
	k := from - sg.first
	cut := int64(segHeader)
	if k < sg.count() {
		cut = int64(sg.offs[k])
		sg.offs = sg.offs[:k]
	}
	if err := sg.f.Truncate(cut); err != nil {
		return fmt.Errorf("truncate %s: %w", sg.path, err)
	}
	if err := sg.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", sg.path, err)
	}
	sg.end, sg.alloc = cut, cut
	if sg.count() > 0 {
		if at, err := readAppendedAt(sg, sg.last()); err == nil {
			sg.lastAt = at
		}
	}
	s.dirty = false
	return s.fs.SyncDir(s.dir)
}

// DeleteRange implements raft.LogStore with the retention policy in
// doc.go: a range starting at or below the first index is raft's snapshot
// compaction and only raises AllowedPrefix; a range from above the first
// index to the end is a suffix truncation; anything else is ErrMiddleRange.
func (s *Store) DeleteRange(min, max uint64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	first, last := s.boundsLocked()
	switch {
	case min > max || first == 0 || min > last:
		return nil
	case min <= first:
		s.mu.Lock()
		if max > s.allowedPrefix {
			s.allowedPrefix = max
		}
		s.mu.Unlock()
		return nil
	case max < last:
		return fmt.Errorf("%w: [%d, %d] of [%d, %d]", ErrMiddleRange, min, max, first, last)
	}
	s.log.Info("truncating log suffix", "from", min, "last-index", last)
	if err := s.truncateSuffixLocked(min); err != nil {
		return s.fail(err)
	}
	return nil
}

// Sync fsyncs the active segment.
func (s *Store) Sync() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	return s.syncLocked()
}

func (s *Store) syncLocked() error {
	if len(s.segs) == 0 {
		return nil
	}
	sg := s.segs[len(s.segs)-1]
	if err := s.syncFile(sg.f); err != nil {
		return s.fail(fmt.Errorf("sync %s: %w", sg.path, err))
	}
	s.dirty = false
	return nil
}

// syncFile fsyncs the active segment's file f and reports the time it
// took to Config.OnSync.
func (s *Store) syncFile(f File) error {
	if s.cfg.OnSync == nil {
		return f.Sync()
	}
	start := time.Now()
	err := f.Sync()
	s.cfg.OnSync(time.Since(start))
	return err
}

// flushLoop is the FlushAsync goroutine. Close stops it and waits.
func (s *Store) flushLoop() {
	defer close(s.flushDone)
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopFlush:
			return
		case <-t.C:
			s.flushOnce()
		}
	}
}

// flushOnce fdatasyncs the active segment without holding writeMu, so
// raft's StoreLogs is never stalled behind the periodic fsync. A write
// racing with the fsync sets dirty again and is covered by the next tick.
// If the segment was truncated, purged or swapped out meanwhile, a failed
// sync is moot (the file is gone from the log); otherwise it is the
// sticky fail-stop error.
func (s *Store) flushOnce() {
	s.writeMu.Lock()
	if !s.dirty || s.failErr != nil || len(s.segs) == 0 {
		s.writeMu.Unlock()
		return
	}
	sg := s.segs[len(s.segs)-1]
	s.dirty = false
	s.writeMu.Unlock()
	err := s.syncFile(sg.f)
	if err == nil {
		return
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for _, live := range s.segs {
		if live == sg {
			_ = s.fail(fmt.Errorf("sync %s: %w", sg.path, err)) // becomes the sticky error
			return
		}
	}
}

// Close stops the flusher, fsyncs (async mode) and closes every file. It
// is idempotent; later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stopFlush != nil {
			close(s.stopFlush)
			<-s.flushDone
		}
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		if s.dirty && s.failErr == nil {
			s.closeErr = s.syncLocked()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		for _, sg := range s.segs {
			if err := sg.f.Close(); err != nil && s.closeErr == nil {
				s.closeErr = err
			}
		}
		s.segs = nil
	})
	return s.closeErr
}
