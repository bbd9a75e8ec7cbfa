package raftlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// buildLog writes entries 1..n with 100-byte Data into 4 KiB segments and
// returns the config, the last segment's path and its record offsets.
func buildLog(t *testing.T, n uint64) (Config, string, []int64, int64) {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.SegmentSize = MinSegmentSize
	s := openStore(t, cfg)
	for i := uint64(1); i <= n; i += 7 {
		mustStore(t, s, mkLogs(i, min(i+6, n), 1, 100))
	}
	segs := s.Segments()
	if len(segs) < 2 {
		t.Fatalf("got %d segments, want >= 2", len(segs))
	}
	last := segs[len(segs)-1]
	s.mu.RLock()
	sg := s.segs[len(s.segs)-1]
	var offs []int64
	for _, o := range sg.offs {
		offs = append(offs, int64(o))
	}
	s.mu.RUnlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if last.Last != n || len(offs) < 4 {
		t.Fatalf("last segment [%d, %d] with %d records, want to end at %d with >= 4", last.First, last.Last, len(offs), n)
	}
	return cfg, last.Path, offs, last.Bytes
}

// copyDir clones the log directory so each case starts from the same bytes.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "log")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestRecoverTruncatedTailAtEveryOffset(t *testing.T) {
	const n = 70
	cfg, path, offs, size := buildLog(t, n)
	segFirst := n - uint64(len(offs)) + 1
	start := offs[len(offs)-3]
	for cut := start; cut <= size; cut++ {
		dir := copyDir(t, cfg.Dir)
		p := filepath.Join(dir, filepath.Base(path))
		if err := os.Truncate(p, cut); err != nil {
			t.Fatal(err)
		}
		complete := uint64(0)
		for i, o := range offs {
			end := size
			if i+1 < len(offs) {
				end = offs[i+1]
			}
			if end <= cut {
				complete = segFirst + uint64(i)
			}
			_ = o
		}
		c := cfg
		c.Dir = dir
		s, err := Open(c)
		if err != nil {
			t.Fatalf("cut at %d: Open got %v, want success", cut, err)
		}
		_, last := bounds(t, s)
		if last != complete {
			t.Fatalf("cut at %d: last got %d, want %d", cut, last, complete)
		}
		checkEntry(t, s, mkLog(last, 1, 100))
		// The log accepts the next entry after the cut.
		mustStore(t, s, []*raft.Log{mkLog(last+1, 2, 100)})
		checkEntry(t, s, mkLog(last+1, 2, 100))
		s.Close()
		os.RemoveAll(dir)
	}
}

func TestRecoverFlippedByteAtEveryOffset(t *testing.T) {
	const n = 70
	cfg, path, offs, size := buildLog(t, n)
	lastRec := offs[len(offs)-1]
	for at := offs[len(offs)-3]; at < size; at++ {
		dir := copyDir(t, cfg.Dir)
		p := filepath.Join(dir, filepath.Base(path))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[at] ^= 0x40
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.Dir = dir
		s, err := Open(c)
		if at >= lastRec {
			if err != nil {
				t.Fatalf("flip at %d (last record): Open got %v, want the record cut", at, err)
			}
			wantBounds(t, s, 1, n-1)
			s.Close()
		} else {
			recStart := offs[0]
			for _, o := range offs {
				if o <= at {
					recStart = o
				}
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Path != p || ce.Offset != recStart {
				t.Fatalf("flip at %d: Open got %v, want CorruptError{Path %s, Offset %d}", at, err, p, recStart)
			}
		}
		os.RemoveAll(dir)
	}
}

func TestRebuildSealedIndex(t *testing.T) {
	cfg, _, _, _ := buildLog(t, 70)
	segs, err := filepath.Glob(filepath.Join(cfg.Dir, "*.idx"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("got %d idx files (%v), want some", len(segs), err)
	}
	for name, damage := range map[string]func(p string){
		"flipped":   func(p string) { b, _ := os.ReadFile(p); b[len(b)/2] ^= 1; os.WriteFile(p, b, 0o644) },
		"truncated": func(p string) { os.Truncate(p, 10) },
		"missing":   func(p string) { os.Remove(p) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyDir(t, cfg.Dir)
			p := filepath.Join(dir, filepath.Base(segs[0]))
			good, _ := os.ReadFile(p)
			damage(p)
			c := cfg
			c.Dir = dir
			s := openStore(t, c)
			wantBounds(t, s, 1, 70)
			for i := uint64(1); i <= 70; i++ {
				checkEntry(t, s, mkLog(i, 1, 100))
			}
			rebuilt, err := os.ReadFile(p)
			if err != nil || string(rebuilt) != string(good) {
				t.Fatalf("rebuilt idx differs from the original (err %v)", err)
			}
		})
	}
}

func TestCorruptSealedSegment(t *testing.T) {
	cfg, _, _, _ := buildLog(t, 70)
	segs := openStore(t, cfg).Segments()
	first := segs[0]
	b, _ := os.ReadFile(first.Path)
	b[segHeader+50] ^= 1 // inside record 1's data
	os.WriteFile(first.Path, b, 0o644)

	// With its .idx intact, open is lazy and the read reports the damage.
	c := cfg
	c.Dir = copyDir(t, cfg.Dir)
	s := openStore(t, c)
	var l raft.Log
	var ce *CorruptError
	if err := s.GetLog(1, &l); !errors.As(err, &ce) || ce.Offset != segHeader {
		t.Fatalf("GetLog(1) got %v, want CorruptError at offset %d", err, segHeader)
	}
	if _, _, err := s.ReadData(1, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadData(1) got %v, want ErrCorrupt", err)
	}
	if err := s.Scan(1, 5, func(uint64, raft.LogType, []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Scan got %v, want ErrCorrupt", err)
	}
	// Without it, the rebuild scan refuses the sealed segment.
	os.Remove(filepath.Join(c.Dir, filepath.Base(first.Path[:len(first.Path)-4]+".idx")))
	s.Close()
	_, err := Open(c)
	if !errors.As(err, &ce) || ce.Offset != segHeader || filepath.Base(ce.Path) != filepath.Base(first.Path) {
		t.Fatalf("Open got %v, want CorruptError in %s at %d", err, first.Path, segHeader)
	}
}
