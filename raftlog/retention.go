package raftlog

import (
	"sync"
)

// PurgeResult reports what Purge removed.
type PurgeResult struct {
	Segments   int    // segment files deleted
	Bytes      int64  // segment bytes deleted
	FirstIndex uint64 // first index after the purge (0 if the log is empty)
}

// Pin protects entries >= from from Purge until unpin is called. unpin is
// idempotent. Pins do not block truncation or an install swap.
func (s *Store) Pin(from uint64) (unpin func()) {
	s.mu.Lock()
	s.pinSeq++
	id := s.pinSeq
	s.pins[id] = from
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.pins, id)
			s.mu.Unlock()
		})
	}
}

// AllowedPrefix returns the highest index raft's prefix DeleteRange has
// allowed to be deleted. It lives in memory and is 0 after Open, until raft
// next compacts (after its next snapshot).
func (s *Store) AllowedPrefix() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.allowedPrefix
}

// purgeLimitLocked is min(upTo, AllowedPrefix, lowest pin - 1).
func (s *Store) purgeLimitLocked(upTo uint64) uint64 {
	limit := min(upTo, s.allowedPrefix)
	for _, from := range s.pins {
		if from == 0 {
			return 0
		}
		limit = min(limit, from-1)
	}
	return limit
}

// Purge is retention: it deletes whole sealed segments, oldest first, whose
// last index is <= min(upTo, AllowedPrefix(), lowest pin - 1). The active
// segment is never deleted. It is the only way old entries disappear.
func (s *Store) Purge(upTo uint64) (PurgeResult, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writableLocked(); err != nil {
		return PurgeResult{}, err
	}
	s.mu.Lock()
	limit := s.purgeLimitLocked(upTo)
	var victims []*segment
	for len(s.segs) > 1 && s.segs[0].sealed && s.segs[0].last() <= limit {
		victims = append(victims, s.segs[0])
		s.segs = s.segs[1:]
	}
	for _, sg := range victims {
		sg.f.Close() // readers are excluded by mu; nobody can reach it now
	}
	first, _ := s.boundsLocked()
	s.mu.Unlock()

	res := PurgeResult{FirstIndex: first}
	for _, sg := range victims {
		if err := removeSegmentFiles(s.fs, sg); err != nil {
			return res, s.fail(err)
		}
		res.Segments++
		res.Bytes += sg.end
	}
	if len(victims) > 0 {
		if err := s.fs.SyncDir(s.dir); err != nil {
			return res, s.fail(err)
		}
		s.log.Info("purged segments", "segments", res.Segments, "bytes", res.Bytes, "first-index", first)
	}
	return res, nil
}

// Segments describes every segment, oldest first.
func (s *Store) Segments() []SegmentInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]SegmentInfo, 0, len(s.segs))
	for _, sg := range s.segs {
		out = append(out, sg.info())
	}
	return out
}

// DiskBytes is the total size of the segment files.
func (s *Store) DiskBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, sg := range s.segs {
		n += sg.end
	}
	return n
}
