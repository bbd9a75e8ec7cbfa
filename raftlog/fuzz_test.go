package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// segmentSeeds builds a small log (entries with and without
// Extensions, rolled over several 4 KiB segments) and returns its files:
// the first sealed segment, its .idx and the active segment, each cut to
// its published end, with the active segment's first index.
func segmentSeeds(tb testing.TB) (sealed, idx, active []byte, activeFirst uint64) {
	tb.Helper()
	cfg := testConfig(tb, tb.TempDir())
	cfg.Logger, cfg.SegmentSize, cfg.FlushMode = hclog.NewNullLogger(), MinSegmentSize, FlushAsync
	s, err := Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ls := mkLogs(1, 60, 1, 150)
	for i, l := range ls {
		if i%3 == 0 {
			l.Extensions = []byte("ext")
		}
	}
	if err := s.StoreLogs(ls); err != nil {
		tb.Fatal(err)
	}
	segs := s.Segments()
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	read := func(p string, n int64) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		if n >= 0 && int64(len(b)) > n {
			b = b[:n]
		}
		return b
	}
	last := segs[len(segs)-1]
	return read(segs[0].Path, segs[0].Bytes), read(idxPath(segs[0].Path), -1), read(last.Path, last.Bytes), last.First
}

// fixChecksums rewrites the header CRC and every record CRC of a
// segment image (following its length fields), so the fuzzer reaches
// the checks behind them.
func fixChecksums(seg []byte) {
	le := binary.LittleEndian
	if len(seg) < segHeader {
		return
	}
	le.PutUint32(seg[16:], crc32.Checksum(seg[:16], castagnoli))
	for pos := segHeader; pos+recHeader <= len(seg); {
		end := pos + recPrefix + int(le.Uint32(seg[pos:]))
		if end > len(seg) || end < pos+recHeader {
			return
		}
		le.PutUint32(seg[pos+4:], crc32.Checksum(seg[pos+recPrefix:end], castagnoli))
		pos = end
	}
}

// fuzzDir returns a function giving an emptied directory at a fixed path
// under base for each fuzz input: a fresh t.TempDir has a random name,
// whose varying length makes every run look like new coverage, and the
// fuzzer then spends its time confirming inputs instead of running them.
func fuzzDir(base string) func(t *testing.T) string {
	return func(t *testing.T) string {
		dir := filepath.Join(base, "d")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
}

// fixIndexChecksum rewrites the trailing CRC of an .idx image.
func fixIndexChecksum(idx []byte) {
	if len(idx) >= idxHeader+4 {
		binary.LittleEndian.PutUint32(idx[len(idx)-4:], crc32.Checksum(idx[:len(idx)-4], castagnoli))
	}
}

// FuzzOpenSegment opens arbitrary bytes as a segment file (first index
// first), as the active segment or as a sealed one with an arbitrary
// .idx. It may only fail with a *CorruptError (or, active, by dropping a
// segment whose header was never written). What it accepts must be
// consistent: offsets ascending from the header and inside the file, the
// active segment cut to its last good record with every record decoding
// at its index, the same state when opened again, and an index that
// seals and loads back to the same offsets.
func FuzzOpenSegment(f *testing.F) {
	sealed, idx, active, activeFirst := segmentSeeds(f)
	f.Add(sealed, idx, uint64(1), false, false)
	f.Add(sealed, []byte(nil), uint64(1), false, false) // no .idx: rebuilt by a scan
	f.Add(sealed, idx[:len(idx)-8], uint64(1), false, true)
	f.Add(active, []byte(nil), activeFirst, true, false)
	f.Add(append(bytes.Clone(active), make([]byte, 300)...), []byte(nil), activeFirst, true, false) // preallocated tail
	f.Add(active[:len(active)-7], []byte(nil), activeFirst, true, false)                            // torn tail
	f.Add(encodeSegHeader(9), []byte(nil), uint64(9), true, false)
	f.Add(make([]byte, segHeader), []byte(nil), uint64(1), true, false)
	tempDir := fuzzDir(f.TempDir())
	f.Fuzz(func(t *testing.T, seg, idx []byte, first uint64, isActive, fixCRC bool) {
		if fixCRC {
			seg, idx = bytes.Clone(seg), bytes.Clone(idx)
			fixChecksums(seg)
			fixIndexChecksum(idx)
		}
		dir := tempDir(t)
		fs := noSyncFS{OSFS()}
		path := filepath.Join(dir, segName(first))
		if err := os.WriteFile(path, seg, 0o644); err != nil {
			t.Fatal(err)
		}
		if !isActive && len(idx) > 0 {
			if err := os.WriteFile(idxPath(path), idx, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sg, err := openSegment(fs, path, first, isActive, hclog.NewNullLogger())
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) && !(isActive && errors.Is(err, errTornCreate)) {
				t.Fatalf("open: got %T %v, want a *CorruptError", err, err)
			}
			if ce != nil && (ce.Path == "" || ce.Reason == "") {
				t.Fatalf("open: %+v does not name the file and the problem", ce)
			}
			return
		}
		defer sg.f.Close()
		st, err := sg.f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		checkOffsets(t, sg, st.Size())
		scanned := isActive || !bytes.Equal(idx, mustRead(t, idxPath(path)))
		if scanned { // every record was read and checked by the scan
			for i := sg.first; sg.contains(i); i++ {
				off, end := sg.bounds(i)
				raw := make([]byte, end-off)
				if _, err := sg.f.ReadAt(raw, off); err != nil && !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				rec, n, reason := decodeRecord(raw)
				if reason != "" || n != len(raw) || rec.index != i {
					t.Fatalf("entry %d at [%d, %d): decode got (index %d, %d bytes, %q)", i, off, end, rec.index, n, reason)
				}
			}
		}
		if isActive {
			if st.Size() != sg.end {
				t.Fatalf("active segment is %d bytes after open, its records end at %d", st.Size(), sg.end)
			}
			again, err := openSegment(fs, path, first, true, hclog.NewNullLogger())
			if err != nil {
				t.Fatalf("reopen after recovery: %v", err)
			}
			defer again.f.Close()
			if again.count() != sg.count() || again.end != sg.end {
				t.Fatalf("reopen: %d entries ending at %d, first open %d ending at %d", again.count(), again.end, sg.count(), sg.end)
			}
		}
		if sg.count() == 0 {
			// Never sealed so (a roll needs a record); a sealed one left
			// empty by a rebuild fails Open's contiguity check.
			return
		}
		// The index round-trips: seal it and load it back.
		if err := sg.seal(fs); err != nil {
			t.Fatal(err)
		}
		back := &segment{path: sg.path, first: sg.first, f: sg.f}
		if err := back.loadIndex(fs, sg.end); err != nil {
			t.Fatalf("load of the sealed index: %v", err)
		}
		if !equalOffs(back.offs, sg.offs) || back.hasExt != sg.hasExt || back.firstAt != sg.firstAt || back.lastAt != sg.lastAt || back.end != sg.end {
			t.Fatalf("index round trip: got %d offsets ext=%v at [%d, %d] end %d, want %d ext=%v at [%d, %d] end %d",
				len(back.offs), back.hasExt, back.firstAt, back.lastAt, back.end, len(sg.offs), sg.hasExt, sg.firstAt, sg.lastAt, sg.end)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

func equalOffs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkOffsets: offsets start after the header, ascend by at least a
// record header, and the last record ends inside the file.
func checkOffsets(t *testing.T, sg *segment, size int64) {
	t.Helper()
	if sg.end > size || (len(sg.offs) > 0 && sg.offs[0] != segHeader) {
		t.Fatalf("%d offsets from %v, end %d, file %d bytes", len(sg.offs), sg.offs[:min(1, len(sg.offs))], sg.end, size)
	}
	for i, o := range sg.offs {
		next := sg.end
		if i+1 < len(sg.offs) {
			next = int64(sg.offs[i+1])
		}
		if next-int64(o) < recHeader {
			t.Fatalf("entry %d: [%d, %d) is shorter than a record header", sg.first+uint64(i), o, next)
		}
	}
}

// FuzzOpenStore opens a directory holding a sealed segment (first index
// 1, with its .idx) and an active one (first index second) built from
// arbitrary bytes. Open may only fail with a *CorruptError; an opened
// log must serve every entry in [first, last] at its index (GetLog,
// ReadData, Scan) or name the damage with a *CorruptError, take the next
// entry, and reopen to the same bounds.
func FuzzOpenStore(f *testing.F) {
	sealed, idx, active, activeFirst := segmentSeeds(f)
	f.Add(sealed, idx, active, uint16(activeFirst), false)
	f.Add(sealed, []byte(nil), active, uint16(activeFirst), false)
	f.Add(sealed, idx, active[:len(active)/2], uint16(activeFirst), false)
	f.Add(sealed, idx, []byte(nil), uint16(0), false)
	tempDir := fuzzDir(f.TempDir())
	f.Fuzz(func(t *testing.T, sealed, idx, active []byte, second uint16, fixCRC bool) {
		if fixCRC {
			sealed, idx, active = bytes.Clone(sealed), bytes.Clone(idx), bytes.Clone(active)
			fixChecksums(sealed)
			fixIndexChecksum(idx)
			fixChecksums(active)
		}
		dir := tempDir(t)
		write := func(name string, b []byte) {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(segName(1), sealed)
		if len(idx) > 0 {
			write(idxPath(segName(1)), idx)
		}
		if second > 1 {
			write(segName(uint64(second)), active)
		}
		cfg := DefaultConfig()
		cfg.Dir, cfg.SegmentSize, cfg.Logger, cfg.FS, cfg.CacheEntries = dir, MinSegmentSize, hclog.NewNullLogger(), noSyncFS{OSFS()}, -1
		s, err := Open(cfg)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: got %v, want a *CorruptError", err)
			}
			return
		}
		defer s.Close()
		first, last := bounds(t, s)
		for i := first; i != 0 && i <= last; i++ {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("GetLog(%d): got %v, want an entry or ErrCorrupt", i, err)
				}
				continue
			}
			if l.Index != i {
				t.Fatalf("GetLog(%d) returned entry %d", i, l.Index)
			}
			if _, data, err := s.ReadData(i, nil); err != nil || !bytes.Equal(data, l.Data) {
				t.Fatalf("ReadData(%d): %d bytes, %v; GetLog read %d", i, len(data), err, len(l.Data))
			}
			if len(l.Data) > 0 {
				if b, err := s.ReadAt(i, 0, uint32(len(l.Data)), nil); err != nil || !bytes.Equal(b, l.Data) {
					t.Fatalf("ReadAt(%d): %d bytes, %v; GetLog read %d", i, len(b), err, len(l.Data))
				}
			}
		}
		if first != 0 {
			n := uint64(0)
			err := s.Scan(first, last, func(i uint64, _ raft.LogType, _ []byte) error {
				if i != first+n {
					t.Fatalf("Scan gave %d after %d entries from %d", i, n, first)
				}
				n++
				return nil
			})
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Scan: %v", err)
			}
		}
		next := mkLog(last+1, 2, 10)
		if err := s.StoreLogs([]*raft.Log{next}); err != nil {
			t.Fatalf("StoreLogs(%d) after open: %v", last+1, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(cfg)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer s2.Close()
		f2, l2 := bounds(t, s2)
		if l2 != last+1 || (first != 0 && f2 != first) {
			t.Fatalf("reopen: bounds [%d, %d], want [%d, %d]", f2, l2, first, last+1)
		}
	})
}

// FuzzSnapshotState reads the FSM state out of arbitrary snapshot
// streams as a restoring node does: it must never panic, must refuse
// declared state sizes above MaxStateSize, and must yield at most the
// bytes the stream holds (the declared size exactly, or the whole plain
// stream).
func FuzzSnapshotState(f *testing.F) {
	stream := smallShipStream(f)
	f.Add(stream)
	f.Add(stream[:20])
	f.Add([]byte("plain fsm state"))
	f.Add(shipHeader(1<<40, nil, 0, 0, 0)[:16])
	f.Add([]byte(shipMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		rc, err := SnapshotState(io.NopCloser(bytes.NewReader(data)))
		if err != nil {
			if len(data) >= 16 && string(data[:8]) == shipMagic &&
				binary.LittleEndian.Uint64(data[8:]) <= MaxStateSize {
				t.Fatalf("a stream declaring %d state bytes refused: %v", binary.LittleEndian.Uint64(data[8:]), err)
			}
			return
		}
		defer rc.Close()
		got, err := io.ReadAll(io.LimitReader(rc, int64(len(data))+1))
		isShip := len(data) >= 8 && string(data[:8]) == shipMagic
		switch {
		case !isShip:
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("plain stream: got %d bytes (%v), want it unchanged (%d)", len(got), err, len(data))
			}
		default:
			want := binary.LittleEndian.Uint64(data[8:])
			if err == nil && uint64(len(got)) != want {
				t.Fatalf("shipped stream: read %d state bytes without error, declared %d", len(got), want)
			}
			if uint64(len(got)) > want || len(got) > len(data)-16 {
				t.Fatalf("shipped stream: read %d state bytes, declared %d, stream %d", len(got), want, len(data))
			}
		}
	})
}

// TestTornRollThenAppend: a crash in a segment roll after the new file
// was created but before its header was durable leaves it empty or
// short; Open drops it, and the sealed segment before it is the active
// one again. An entry small enough to fit in its room (a new leader's
// no-op) was appended to it as if it were still sealed, with no writable
// end: sync mode zero-filled it from offset 0, so the next Open found no
// header and every entry in it was lost. Found by FuzzOpenStore.
func TestTornRollThenAppend(t *testing.T) {
	for _, tc := range []struct {
		name string
		file func(first uint64) []byte
	}{
		{"empty", func(uint64) []byte { return nil }},
		{"10 zero bytes", func(uint64) []byte { return make([]byte, 10) }},
		{"zero header", func(uint64) []byte { return make([]byte, segHeader) }},
		// Cut in the header's final zero word: the bytes present check
		// out. Open panicked (scanning from past the end of the file).
		{"header cut at 20", func(first uint64) []byte { return encodeSegHeader(first)[:20] }},
		{"header only", encodeSegHeader}, // complete: an empty active segment
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.SegmentSize = MinSegmentSize
			s := openStore(t, cfg)
			mustStore(t, s, mkLogs(1, 40, 1, 100))
			segs := s.Segments()
			last := segs[len(segs)-1]
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// The roll to the last segment was cut short: its file holds
			// no complete header (a zero header counts as none).
			if err := os.WriteFile(last.Path, tc.file(last.First), 0o644); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, cfg)
			wantBounds(t, s, 1, last.First-1)
			// A small entry (a new leader's no-op) fits in the sealed
			// segment's room.
			mustStore(t, s, []*raft.Log{mkLog(last.First, 2, 10)})
			s = reopen(t, s, cfg)
			wantBounds(t, s, 1, last.First)
			for i := uint64(1); i < last.First; i++ {
				checkEntry(t, s, mkLog(i, 1, 100))
			}
			checkEntry(t, s, mkLog(last.First, 2, 10))
		})
	}
}
