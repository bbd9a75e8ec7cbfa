package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Segment header (24 bytes): u32 magic "RMQL" | u32 version | u64 first | u32 crc32c(previous 16 bytes) | u32 zero.
const (
	segMagic   = 0x4c514d52 // "RMQL" little endian
	segVersion = 1
	segHeader  = 24
	idxMagic   = 0x49514d52 // "RMQI"
	// idx header: magic, version, first, count, flags, end, firstAt, lastAt.
	idxHeader  = 4 + 4 + 8 + 4 + 4 + 4 + 8 + 8
	idxFlagExt = 1
)

// segment is one <first>.seg file. Fields other than path, first and f are
// guarded by Store.mu; the file bytes past end are owned by the writer.
type segment struct {
	path    string
	first   uint64
	f       File
	offs    []uint32 // offs[i] is the byte offset of entry first+i
	end     int64    // end of the last published record
	alloc   int64    // writer-owned: file size, zero-filled past end
	sealed  bool
	hasExt  bool  // some record has Extensions (ReadAt then reads the header)
	firstAt int64 // appendedAt of the first record, unix nanos
	lastAt  int64
}

func segName(first uint64) string { return fmt.Sprintf("%020d.seg", first) }
func idxPath(segPath string) string {
	return strings.TrimSuffix(segPath, ".seg") + ".idx"
}

// parseSegName returns the first index encoded in a segment file name.
func parseSegName(name string) (uint64, bool) {
	if !strings.HasSuffix(name, ".seg") || len(name) != 24 {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSuffix(name, ".seg"), 10, 64)
	return v, err == nil
}

func (sg *segment) count() uint64 { return uint64(len(sg.offs)) }

// last is first-1 for an empty segment.
func (sg *segment) last() uint64 { return sg.first + sg.count() - 1 }

func (sg *segment) contains(i uint64) bool { return i >= sg.first && i-sg.first < sg.count() }

// bounds returns the byte range of entry i, which must be contained.
func (sg *segment) bounds(i uint64) (off, end int64) {
	k := i - sg.first
	off = int64(sg.offs[k])
	if k+1 < sg.count() {
		return off, int64(sg.offs[k+1])
	}
	return off, sg.end
}

func encodeSegHeader(first uint64) []byte {
	b := make([]byte, segHeader)
	le := binary.LittleEndian
	le.PutUint32(b[0:], segMagic)
	le.PutUint32(b[4:], segVersion)
	le.PutUint64(b[8:], first)
	le.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	return b
}

func checkSegHeader(b []byte, first uint64) string {
	le := binary.LittleEndian
	switch {
	case len(b) < segHeader:
		return "short header"
	case le.Uint32(b[0:]) != segMagic:
		return "bad magic"
	case le.Uint32(b[16:]) != crc32.Checksum(b[:16], castagnoli):
		return "header crc mismatch"
	case le.Uint32(b[4:]) != segVersion:
		return "unsupported version"
	case le.Uint64(b[8:]) != first:
		return "header first index does not match file name"
	}
	return ""
}

// createSegment creates an empty segment file and makes it durable. On
// failure (a full disk) it removes the file again, so Open does not find
// a segment without a header; one left by a crash mid-create is dropped
// by Open (errTornCreate).
func createSegment(fs VFS, dir string, first uint64) (*segment, error) {
	path := filepath.Join(dir, segName(first))
	f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	fail := func(what string, err error) (*segment, error) {
		f.Close()
		_ = fs.Remove(path)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	sg := &segment{path: path, first: first, f: f, end: segHeader, alloc: segHeader}
	if _, err := f.WriteAt(encodeSegHeader(first), 0); err != nil {
		return fail("write segment header", err)
	}
	if err := f.Sync(); err != nil {
		return fail("sync segment header", err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return fail("sync dir", err)
	}
	return sg, nil
}

// errTornCreate marks a last segment whose header was never completely
// written (a crash or a full disk while it was created): it holds no
// record and is removed on Open.
var errTornCreate = errors.New("raftlog: segment header never written")

// openSegment opens an existing segment file. Sealed segments load their
// .idx (rebuilding it by a strict scan if missing or invalid); the active
// segment is scanned and a torn tail is cut.
func openSegment(fs VFS, path string, first uint64, active bool, log logger) (*segment, error) {
	f, err := fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	sg := &segment{path: path, first: first, f: f}
	if err := sg.load(fs, active, log); err != nil {
		f.Close()
		return nil, err
	}
	return sg, nil
}

type logger interface {
	Info(msg string, args ...interface{})
	Warn(msg string, args ...interface{})
}

func (sg *segment) load(fs VFS, active bool, log logger) error {
	st, err := sg.f.Stat()
	if err != nil {
		return fmt.Errorf("stat segment: %w", err)
	}
	size := st.Size()
	hdr := make([]byte, segHeader)
	n, err := sg.f.ReadAt(hdr, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read segment header: %w", err)
	}
	// Only the bytes read: a file cut inside the header's zero word
	// passed the check and then panicked scanning from past its end
	// (found by FuzzOpenSegment).
	if reason := checkSegHeader(hdr[:n], sg.first); reason != "" {
		if active && size < segHeader {
			return errTornCreate // too short to hold a record
		}
		if active && size == segHeader {
			if zero, err := allZero(sg.f, 0, size); err == nil && zero {
				return errTornCreate
			}
		}
		return &CorruptError{Path: sg.path, Offset: 0, Reason: reason}
	}
	if active {
		_ = fs.Remove(idxPath(sg.path)) // the active segment is always scanned
		sg.alloc = size
		return sg.scan(size, true, log)
	}
	sg.alloc = size // the file's size, whatever it holds past end
	ierr := sg.loadIndex(fs, size)
	if ierr == nil {
		sg.sealed = true
		return nil
	}
	log.Warn("rebuilding segment index", "path", sg.path, "error", ierr)
	if err := sg.scan(size, false, log); err != nil {
		return err
	}
	if err := sg.seal(fs); err != nil {
		return err
	}
	sg.sealed = true
	return nil
}

// scan reads every record of the segment. On the active segment a record
// that fails validation is a torn tail (cut) unless a valid record follows
// it, which is corruption; on a sealed segment any failure is corruption.
func (sg *segment) scan(size int64, active bool, log logger) error {
	sg.offs, sg.end, sg.hasExt = sg.offs[:0], segHeader, false
	r := newScanReader(sg.f, segHeader, size)
	for {
		off := r.pos
		rec, reason, err := r.next()
		if err != nil {
			return fmt.Errorf("scan segment %s: %w", sg.path, err)
		}
		if reason == "" && rec == nil {
			return nil // clean end
		}
		want := sg.first + sg.count()
		if reason == "" && rec.index != want {
			reason = decodeReason(fmt.Sprintf("index %d, want %d", rec.index, want))
		}
		if reason != "" {
			return sg.badRecord(off, size, want-1, string(reason), active, log)
		}
		sg.appendMeta(uint32(off), r.pos, rec)
	}
}

func (sg *segment) appendMeta(off uint32, end int64, rec *record) {
	if len(sg.offs) == 0 {
		sg.firstAt = rec.appendedAt
	}
	sg.offs = append(sg.offs, off)
	sg.end = end
	sg.lastAt = rec.appendedAt
	if len(rec.ext) > 0 {
		sg.hasExt = true
	}
}

func (sg *segment) badRecord(off, size int64, lastGood uint64, reason string, active bool, log logger) error {
	if !active {
		return &CorruptError{Path: sg.path, Offset: off, Reason: reason}
	}
	at, err := findValidRecord(sg.f, off+1, size, lastGood)
	if err != nil {
		return fmt.Errorf("scan segment %s: %w", sg.path, err)
	}
	if at >= 0 {
		return &CorruptError{Path: sg.path, Offset: off, Reason: fmt.Sprintf("%s (valid record follows at offset %d)", reason, at)}
	}
	if zero, err := allZero(sg.f, off, size); err != nil {
		return err
	} else if zero {
		log.Info("trimming preallocated tail", "path", sg.path, "offset", off)
	} else {
		log.Warn("truncating torn tail", "path", sg.path, "offset", off, "reason", reason, "dropped-bytes", size-off)
	}
	sg.alloc = off
	if err := sg.f.Truncate(off); err != nil {
		return fmt.Errorf("truncate torn tail: %w", err)
	}
	if err := sg.f.Sync(); err != nil {
		return fmt.Errorf("sync torn tail: %w", err)
	}
	return nil
}

// unseal makes a sealed segment loaded by Open the active one again (the
// next segment's creation never finished): its .idx goes, as the active
// segment has none, and appends continue at its end.
func (sg *segment) unseal(fs VFS) error {
	if err := fs.Remove(idxPath(sg.path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("raftlog: remove index of %s: %w", sg.path, err)
	}
	sg.sealed = false
	return nil
}

// seal writes the .idx sidecar (tmp file + rename + dir fsync). The caller
// sets sealed (under Store.mu when readers may exist).
func (sg *segment) seal(fs VFS) error {
	b := make([]byte, idxHeader, idxHeader+4*len(sg.offs)+4)
	le := binary.LittleEndian
	le.PutUint32(b[0:], idxMagic)
	le.PutUint32(b[4:], segVersion)
	le.PutUint64(b[8:], sg.first)
	le.PutUint32(b[16:], uint32(len(sg.offs)))
	if sg.hasExt {
		le.PutUint32(b[20:], idxFlagExt)
	}
	le.PutUint32(b[24:], uint32(sg.end))
	le.PutUint64(b[28:], uint64(sg.firstAt))
	le.PutUint64(b[36:], uint64(sg.lastAt))
	for _, o := range sg.offs {
		b = le.AppendUint32(b, o)
	}
	b = le.AppendUint32(b, crc32.Checksum(b, castagnoli))
	path := idxPath(sg.path)
	if err := writeFileAtomic(fs, path, b); err != nil {
		return fmt.Errorf("write index %s: %w", path, err)
	}
	return nil
}

func (sg *segment) loadIndex(fs VFS, size int64) error {
	path := idxPath(sg.path)
	b, err := readFile(fs, path)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	if len(b) < idxHeader+4 || le.Uint32(b[0:]) != idxMagic {
		return &CorruptError{Path: path, Reason: "bad index header"}
	}
	if crc32.Checksum(b[:len(b)-4], castagnoli) != le.Uint32(b[len(b)-4:]) {
		return &CorruptError{Path: path, Reason: "index crc mismatch"}
	}
	n := int(le.Uint32(b[16:]))
	if le.Uint64(b[8:]) != sg.first || len(b) != idxHeader+4*n+4 || int64(le.Uint32(b[24:])) != size || n == 0 {
		return &CorruptError{Path: path, Reason: "index does not match segment"}
	}
	sg.offs = make([]uint32, n)
	prev := uint32(segHeader)
	for i := range sg.offs {
		o := le.Uint32(b[idxHeader+4*i:])
		if o < prev || int64(o) >= size || (i == 0 && o != segHeader) {
			return &CorruptError{Path: path, Offset: int64(idxHeader + 4*i), Reason: "index offset out of order"}
		}
		sg.offs[i], prev = o, o+recHeader
	}
	sg.hasExt = le.Uint32(b[20:])&idxFlagExt != 0
	sg.end = size
	sg.firstAt = int64(le.Uint64(b[28:]))
	sg.lastAt = int64(le.Uint64(b[36:]))
	return nil
}

func (sg *segment) info() SegmentInfo {
	return SegmentInfo{
		Path: sg.path, First: sg.first, Last: sg.last(), Bytes: sg.end, Sealed: sg.sealed,
		FirstAppendedAt: fromUnixNano(sg.firstAt), LastAppendedAt: fromUnixNano(sg.lastAt),
	}
}

// SegmentInfo describes one segment file. Last is First-1 for an empty segment.
type SegmentInfo struct {
	Path            string
	First, Last     uint64
	Bytes           int64
	Sealed          bool
	FirstAppendedAt time.Time
	LastAppendedAt  time.Time
}

func writeFileAtomic(fs VFS, path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(path))
}

func readFile(fs VFS, path string) ([]byte, error) {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// allZero reports whether [from, to) of f holds only zero bytes.
func allZero(f File, from, to int64) (bool, error) {
	buf := make([]byte, min(to-from, 1<<20))
	for off := from; off < to; {
		n := min(int64(len(buf)), to-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		off += n
	}
	return true, nil
}
