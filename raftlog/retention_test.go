package raftlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestPurge(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s := openStore(t, cfg)
	mustStore(t, s, mkLogs(1, 600, 1, 900)) // ~68 entries per 64 KiB segment
	segs := s.Segments()
	if len(segs) < 5 {
		t.Fatalf("got %d segments, want >= 5", len(segs))
	}

	// Nothing is allowed until raft compacts.
	if res, err := s.Purge(600); err != nil || res.Segments != 0 || res.FirstIndex != 1 {
		t.Fatalf("Purge with AllowedPrefix 0 got (%+v, %v), want nothing purged", res, err)
	}
	if err := s.DeleteRange(1, segs[2].Last); err != nil {
		t.Fatal(err)
	}
	// A pin inside segment 1 keeps segment 1 and later.
	unpin := s.Pin(segs[1].First + 1)
	res, err := s.Purge(600)
	if err != nil || res.Segments != 1 || res.FirstIndex != segs[1].First || res.Bytes != segs[0].Bytes {
		t.Fatalf("Purge with pin got (%+v, %v), want segment 0 only", res, err)
	}
	unpin()
	unpin() // idempotent
	// upTo below a segment's last keeps it.
	if res, err := s.Purge(segs[2].Last - 1); err != nil || res.Segments != 1 || res.FirstIndex != segs[2].First {
		t.Fatalf("Purge(upTo) got (%+v, %v), want segment 1 only", res, err)
	}
	// AllowedPrefix stops it.
	if res, err := s.Purge(600); err != nil || res.Segments != 1 || res.FirstIndex != segs[3].First {
		t.Fatalf("Purge got (%+v, %v), want up to AllowedPrefix", res, err)
	}
	var l raft.Log
	if err := s.GetLog(segs[3].First-1, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog(purged) got %v, want raft.ErrLogNotFound", err)
	}
	// Even when everything is allowed, the active segment stays.
	if err := s.DeleteRange(1, 600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purge(600); err != nil {
		t.Fatal(err)
	}
	got := s.Segments()
	if len(got) != 1 || got[0].Sealed || got[0].Last != 600 {
		t.Fatalf("after full purge got %+v, want only the active segment", got)
	}
	wantBounds(t, s, got[0].First, 600)
	if s.DiskBytes() != got[0].Bytes {
		t.Fatalf("DiskBytes got %d, want %d", s.DiskBytes(), got[0].Bytes)
	}
	s = reopen(t, s, cfg)
	wantBounds(t, s, got[0].First, 600)
	if s.AllowedPrefix() != 0 {
		t.Fatalf("AllowedPrefix after reopen got %d, want 0", s.AllowedPrefix())
	}
}

// TestConcurrentReaders runs readers against appends, overwrites and
// purges; run with -race. Data depends only on the index, so any successful
// read must return exactly mkLog(index).Data.
func TestConcurrentReaders(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.CacheEntries = 64
	s := openStore(t, cfg)
	const size = 500
	mustStore(t, s, mkLogs(1, 100, 1, size))
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	errc := make(chan error, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for i := uint64(r); !stop.Load(); i++ {
				first, last := bounds(t, s)
				if last == 0 {
					continue
				}
				idx := first + i%(last-first+1)
				want := mkLog(idx, 0, size).Data
				var l raft.Log
				err := s.GetLog(idx, &l)
				if err == nil && !bytes.Equal(l.Data, want) {
					err = errors.New("GetLog returned wrong data")
				}
				if err == nil {
					_, d, e := s.ReadData(idx, nil)
					if e == nil && !bytes.Equal(d, want) {
						e = errors.New("ReadData returned wrong data")
					}
					err = e
				}
				if err == nil {
					err = s.Scan(idx, idx+20, func(i uint64, _ raft.LogType, d []byte) error {
						if !bytes.Equal(d, mkLog(i, 0, size).Data) {
							return errors.New("Scan returned wrong data")
						}
						return nil
					})
				}
				if err != nil && err != raft.ErrLogNotFound {
					errc <- err
					return
				}
				reads.Add(1)
			}
		}(r)
	}
	last := uint64(100)
	for round := 0; round < 300 && len(errc) == 0; round++ {
		switch round % 10 {
		case 3: // raft overwrite of the tail
			last -= 5
			mustStore(t, s, mkLogs(last+1, last+3, uint64(round), size))
			last += 3
		case 7:
			if err := s.DeleteRange(last-2, last); err != nil {
				t.Fatal(err)
			}
			last -= 3
		case 9:
			if err := s.DeleteRange(1, last-50); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Purge(last - 50); err != nil {
				t.Fatal(err)
			}
		default:
			mustStore(t, s, mkLogs(last+1, last+10, uint64(round), size))
			last += 10
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if reads.Load() == 0 {
		t.Fatal("readers made no progress")
	}
}

// TestPurgeDoesNotBlockAppends: giving a purged segment's blocks back is
// slow (about 0.6 s for a 1 GiB segment on ext4 with online discard), and
// it used to run under writeMu, so every StoreLogs of the node waited for
// it: the ~650 ms stall of `rmq bench e2e` (BENCHMARKS.md). Appends and
// reads must go on while the blocks are being freed.
func TestPurgeDoesNotBlockAppends(t *testing.T) {
	fs := newSlowFreeFS()
	cfg := testConfig(t, t.TempDir())
	cfg.FS = fs
	s := openStore(t, cfg)
	mustStore(t, s, mkLogs(1, 300, 1, 900)) // ~68 entries per 64 KiB segment
	segs := s.Segments()
	if len(segs) < 4 {
		t.Fatalf("got %d segments, want >= 4", len(segs))
	}
	if err := s.DeleteRange(1, segs[1].Last); err != nil {
		t.Fatal(err)
	}
	fs.hold()
	t.Cleanup(fs.release) // runs before the store's Close (LIFO)

	type purgeResult struct {
		res PurgeResult
		err error
	}
	purged := make(chan purgeResult, 1)
	go func() {
		res, err := s.Purge(300)
		purged <- purgeResult{res, err}
	}()
	select {
	case <-fs.freeing:
	case r := <-purged:
		t.Fatalf("Purge returned (%+v, %v) without freeing any segment", r.res, r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("Purge did not start freeing a segment within 10s")
	}

	stored := make(chan error, 1)
	go func() { stored <- s.StoreLogs(mkLogs(301, 310, 1, 900)) }()
	select {
	case err := <-stored:
		if err != nil {
			t.Fatalf("StoreLogs during Purge: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("StoreLogs still blocked after 5s: it waits for Purge to free a deleted segment's blocks")
	}
	var l raft.Log
	if err := s.GetLog(305, &l); err != nil || !bytes.Equal(l.Data, mkLog(305, 1, 900).Data) {
		t.Fatalf("GetLog(305) during Purge: %v", err)
	}
	if err := s.GetLog(segs[1].Last, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog(purged index %d) got %v, want raft.ErrLogNotFound", segs[1].Last, err)
	}

	fs.release()
	var r purgeResult
	select {
	case r = <-purged:
	case <-time.After(10 * time.Second):
		t.Fatal("Purge did not return within 10s of the blocks being released")
	}
	if r.err != nil || r.res.Segments != 2 || r.res.FirstIndex != segs[2].First || r.res.Bytes != segs[0].Bytes+segs[1].Bytes {
		t.Fatalf("Purge got (%+v, %v), want segments 0 and 1 (%d bytes), first index %d",
			r.res, r.err, segs[0].Bytes+segs[1].Bytes, segs[2].First)
	}
	for _, sg := range segs[:2] {
		if _, err := os.Stat(filepath.Join(cfg.Dir, segName(sg.First))); !os.IsNotExist(err) {
			t.Fatalf("purged segment %d still on disk: %v", sg.First, err)
		}
	}
	s = reopen(t, s, cfg)
	wantBounds(t, s, segs[2].First, 310)
}
