package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/hashicorp/raft"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 4<<20 { // do not pin huge buffers
		bufPool.Put(b)
	}
}

// segmentForLocked returns the segment holding index, or nil. Caller holds mu.
func (s *Store) segmentForLocked(index uint64) *segment {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > index }) - 1
	if i < 0 || !s.segs[i].contains(index) {
		return nil
	}
	return s.segs[i]
}

// readRecordLocked appends the raw bytes of record index to buf. Caller
// holds mu.RLock. It returns raft.ErrLogNotFound for a missing index.
func (s *Store) readRecordLocked(index uint64, buf []byte) (raw []byte, path string, off int64, err error) {
	if s.closed {
		return buf, "", 0, ErrClosed
	}
	sg := s.segmentForLocked(index)
	if sg == nil {
		return buf, "", 0, raft.ErrLogNotFound
	}
	off, end := sg.bounds(index)
	buf = grow(buf, int(end-off))
	if _, err := sg.f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return buf, sg.path, off, fmt.Errorf("raftlog: read %s: %w", sg.path, err)
	}
	return buf, sg.path, off, nil
}

// grow returns buf resized to n bytes, reallocating only if needed.
func grow(buf []byte, n int) []byte {
	if cap(buf) < n {
		return make([]byte, n)
	}
	return buf[:n]
}

// ReadData appends the Data of entry index to dst after checking its CRC.
// It does not allocate a raft.Log. Missing entries return raft.ErrLogNotFound.
func (s *Store) ReadData(index uint64, dst []byte) (raft.LogType, []byte, error) {
	bp := getBuf()
	defer putBuf(bp)
	s.mu.RLock()
	raw, path, off, err := s.readRecordLocked(index, (*bp)[:0])
	s.mu.RUnlock()
	*bp = raw
	if err != nil {
		return 0, dst, err
	}
	rec, _, reason := decodeRecord(raw)
	if reason == "" && rec.index != index {
		reason = decodeReason(fmt.Sprintf("index %d, want %d", rec.index, index))
	}
	if reason != "" {
		return 0, dst, &CorruptError{Path: path, Offset: off, Reason: string(reason)}
	}
	return rec.typ, append(dst, rec.data...), nil
}

// ReadAt appends n bytes of entry index's Data, starting at off, to dst
// with a single pread (two when the segment holds entries with Extensions).
// It does not verify the CRC; use ReadData or Scan for that. A range outside
// the entry's Data returns ErrOutOfBounds.
func (s *Store) ReadAt(index uint64, off, n uint32, dst []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return dst, ErrClosed
	}
	sg := s.segmentForLocked(index)
	if sg == nil {
		return dst, raft.ErrLogNotFound
	}
	recOff, recEnd := sg.bounds(index)
	dataOff := recOff + recHeader
	if sg.hasExt {
		var hdr [recHeader]byte
		if _, err := sg.f.ReadAt(hdr[:], recOff); err != nil {
			return dst, fmt.Errorf("raftlog: read %s: %w", sg.path, err)
		}
		dataOff += int64(binary.LittleEndian.Uint32(hdr[33:]))
	}
	if dataOff > recEnd || uint64(off)+uint64(n) > uint64(recEnd-dataOff) {
		return dst, fmt.Errorf("%w: [%d, %d) of %d bytes at index %d", ErrOutOfBounds, off, uint64(off)+uint64(n), recEnd-dataOff, index)
	}
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := sg.f.ReadAt(dst[start:], dataOff+int64(off)); err != nil && !errors.Is(err, io.EOF) {
		return dst[:start], fmt.Errorf("raftlog: read %s: %w", sg.path, err)
	}
	return dst, nil
}

const scanChunk = 256 << 10

// rawChunk is a run of whole records read from one segment.
type rawChunk struct {
	raw  []byte
	next uint64 // index after the last record in raw
	path string
	off  int64 // file offset of raw[0]
}

// readRawLocked reads whole records [from, ...] from the segment holding
// from, stopping after to, at the segment end, or at about maxBytes (at
// least one record). Caller holds mu.RLock.
func (s *Store) readRawLocked(from, to uint64, maxBytes int64, buf []byte) (rawChunk, error) {
	if s.closed {
		return rawChunk{raw: buf}, ErrClosed
	}
	sg := s.segmentForLocked(from)
	if sg == nil {
		return rawChunk{raw: buf}, raft.ErrLogNotFound
	}
	start, end := sg.bounds(from)
	next := from + 1
	for next <= to && sg.contains(next) {
		_, e := sg.bounds(next)
		if e-start > maxBytes {
			break
		}
		end, next = e, next+1
	}
	c := rawChunk{raw: grow(buf, int(end-start)), next: next, path: sg.path, off: start}
	if _, err := sg.f.ReadAt(c.raw, start); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("raftlog: read %s: %w", sg.path, err)
	}
	return c, nil
}

// Scan calls fn for every entry in [from, min(to, last)] in order, after
// checking each CRC. data is valid only during fn. It returns
// raft.ErrLogNotFound if from is outside [first, last] or an entry vanishes
// mid-scan (concurrent purge or truncation), and stops with fn's error if
// fn returns one. No lock is held while fn runs.
func (s *Store) Scan(from, to uint64, fn func(index uint64, typ raft.LogType, data []byte) error) error {
	s.mu.RLock()
	first, last := s.boundsLocked()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if first == 0 || from < first || from > last {
		return raft.ErrLogNotFound
	}
	to = min(to, last)
	bp := getBuf()
	defer putBuf(bp)
	for from <= to {
		s.mu.RLock()
		c, err := s.readRawLocked(from, to, scanChunk, (*bp)[:0])
		s.mu.RUnlock()
		*bp = c.raw
		if err != nil {
			return err
		}
		if err := scanRecords(c, from, fn); err != nil {
			return err
		}
		from = c.next
	}
	return nil
}

func scanRecords(c rawChunk, from uint64, fn func(uint64, raft.LogType, []byte) error) error {
	var pos int
	for i := from; i < c.next; i++ {
		rec, n, reason := decodeRecord(c.raw[pos:])
		if reason == "" && rec.index != i {
			reason = decodeReason(fmt.Sprintf("index %d, want %d", rec.index, i))
		}
		if reason != "" {
			return &CorruptError{Path: c.path, Offset: c.off + int64(pos), Reason: string(reason)}
		}
		if err := fn(i, rec.typ, rec.data); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

func readAppendedAt(sg *segment, index uint64) (int64, error) {
	off, _ := sg.bounds(index)
	var hdr [recHeader]byte
	if _, err := sg.f.ReadAt(hdr[:], off); err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(hdr[25:])), nil
}
