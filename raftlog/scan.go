package raftlog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

const scanWindow = 1 << 20

// scanReader reads records sequentially from [pos, size) of a file through
// a window buffer, so open-time scans do one large pread per window.
type scanReader struct {
	f      io.ReaderAt
	pos    int64 // file offset of the next record
	size   int64
	buf    []byte
	bufOff int64 // file offset of buf[0]
	rec    record
}

func newScanReader(f io.ReaderAt, start, size int64) *scanReader {
	return &scanReader{f: f, pos: start, size: size, bufOff: start}
}

// window returns the n bytes at pos, or nil if the file is shorter.
func (r *scanReader) window(n int64) ([]byte, error) {
	if r.pos+n > r.size {
		return nil, nil
	}
	if r.pos >= r.bufOff && r.pos+n <= r.bufOff+int64(len(r.buf)) {
		s := r.pos - r.bufOff
		return r.buf[s : s+n], nil
	}
	want := max(n, scanWindow)
	want = min(want, r.size-r.pos)
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	if _, err := r.f.ReadAt(r.buf, r.pos); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	r.bufOff = r.pos
	return r.buf[:n], nil
}

// next decodes the record at pos. It returns (nil, "", nil) at a clean end
// of file and a non-empty reason for a record that fails validation.
func (r *scanReader) next() (*record, decodeReason, error) {
	if r.pos == r.size {
		return nil, "", nil
	}
	p, err := r.window(recPrefix)
	if err != nil || p == nil {
		return nil, reasonShort, err
	}
	body := int64(binary.LittleEndian.Uint32(p))
	if body < recFixed || body > MaxRecordSize-recPrefix {
		return nil, reasonLength, nil
	}
	b, err := r.window(recPrefix + body)
	if err != nil || b == nil {
		return nil, reasonShort, err
	}
	rec, n, reason := decodeRecord(b)
	if reason != "" {
		return nil, reason, nil
	}
	r.rec = rec
	r.pos += int64(n)
	return &r.rec, "", nil
}

// findValidRecord looks for a record with a valid CRC and an index greater
// than lastGood starting at any byte offset in [from, size). It returns its
// offset or -1. A cheap prefilter on length and index keeps this linear.
func findValidRecord(f io.ReaderAt, from, size int64, lastGood uint64) (int64, error) {
	if from < 0 || from >= size {
		return -1, nil
	}
	maxIndex := lastGood + uint64((size-from)/recHeader) + 1
	le := binary.LittleEndian
	buf := make([]byte, min(int64(scanWindow), size-from))
	for base := from; base+recHeader <= size; {
		n := min(int64(len(buf)), size-base)
		w := buf[:n]
		if _, err := f.ReadAt(w, base); err != nil && !errors.Is(err, io.EOF) {
			return -1, err
		}
		for i := int64(0); i+recHeader <= n; i++ {
			body := int64(le.Uint32(w[i:]))
			idx := le.Uint64(w[i+8:])
			if body < recFixed || base+i+recPrefix+body > size || idx <= lastGood || idx > maxIndex {
				continue
			}
			ok, err := crcMatches(f, w, i, base, body)
			if err != nil {
				return -1, err
			}
			if ok {
				return base + i, nil
			}
		}
		if base+n >= size {
			break
		}
		base += n - recHeader + 1
	}
	return -1, nil
}

func crcMatches(f io.ReaderAt, w []byte, i, base, body int64) (bool, error) {
	want := binary.LittleEndian.Uint32(w[i+4:])
	if i+recPrefix+body <= int64(len(w)) {
		return crc32.Checksum(w[i+recPrefix:i+recPrefix+body], castagnoli) == want, nil
	}
	b := make([]byte, body)
	if _, err := f.ReadAt(b, base+i+recPrefix); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return crc32.Checksum(b, castagnoli) == want, nil
}
