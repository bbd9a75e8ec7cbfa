package raftlog

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestStoreBasic(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s := openStore(t, cfg)
	wantBounds(t, s, 0, 0)
	var l raft.Log
	if err := s.GetLog(1, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog on empty got %v, want raft.ErrLogNotFound", err)
	}
	ls := mkLogs(1, 500, 1, 1000)
	for i := 0; i < len(ls); i += 37 {
		mustStore(t, s, ls[i:min(i+37, len(ls))])
	}
	wantBounds(t, s, 1, 500)
	for _, w := range ls {
		checkEntry(t, s, w)
	}
	if len(s.Segments()) < 5 {
		t.Fatalf("got %d segments, want several with 64 KiB segments", len(s.Segments()))
	}
	s = reopen(t, s, cfg)
	wantBounds(t, s, 1, 500)
	for _, w := range ls {
		checkEntry(t, s, w)
	}
	mustStore(t, s, mkLogs(501, 600, 1, 1000))
	wantBounds(t, s, 1, 600)
	if err := s.GetLog(601, &l); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog(601) got %v, want raft.ErrLogNotFound", err)
	}
	if err := s.StoreLogs([]*raft.Log{mkLog(601, 1, 1), mkLog(603, 1, 1)}); !errors.Is(err, ErrNonContiguous) {
		t.Fatalf("non-contiguous got %v, want ErrNonContiguous", err)
	}
}

func TestDeleteRange(t *testing.T) {
	tests := []struct {
		name        string
		min, max    uint64
		wantErr     error
		first, last uint64
		allowed     uint64
	}{
		{"prefix is only recorded", 1, 150, nil, 1, 300, 150},
		{"prefix covering the whole log deletes nothing", 1, 300, nil, 1, 300, 300},
		{"prefix below first", 0, 10, nil, 1, 300, 10},
		{"suffix is honoured", 201, 300, nil, 1, 200, 0},
		{"suffix with max past last", 250, 1000, nil, 1, 249, 0},
		{"suffix across segments", 20, 300, nil, 1, 19, 0},
		{"middle range is refused", 100, 200, ErrMiddleRange, 1, 300, 0},
		{"range past last is a no-op", 301, 400, nil, 1, 300, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			s := openStore(t, cfg)
			ls := mkLogs(1, 300, 1, 900)
			mustStore(t, s, ls)
			err := s.DeleteRange(tc.min, tc.max)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("DeleteRange got %v, want %v", err, tc.wantErr)
			}
			wantBounds(t, s, tc.first, tc.last)
			if got := s.AllowedPrefix(); got != tc.allowed {
				t.Fatalf("AllowedPrefix got %d, want %d", got, tc.allowed)
			}
			s = reopen(t, s, cfg)
			wantBounds(t, s, tc.first, tc.last)
			for _, w := range ls[tc.first-1 : tc.last] {
				checkEntry(t, s, w)
			}
			var l raft.Log
			if err := s.GetLog(tc.last+1, &l); err != raft.ErrLogNotFound {
				t.Fatalf("GetLog(last+1) got %v, want raft.ErrLogNotFound", err)
			}
			// The log continues after a truncation.
			next := mkLogs(tc.last+1, tc.last+50, 2, 900)
			mustStore(t, s, next)
			for _, w := range next {
				checkEntry(t, s, w)
			}
		})
	}
}

func TestStoreLogsOverwriteAndReset(t *testing.T) {
	tests := []struct {
		name        string
		from, to    uint64
		first, last uint64
	}{
		{"overwrite tail", 250, 260, 1, 260},
		{"overwrite into sealed segment", 10, 20, 1, 20},
		{"overwrite from first resets", 1, 5, 1, 5},
		{"gap after last resets", 400, 410, 400, 410},
		{"below first resets", 1, 3, 1, 3},
		{"plain append", 301, 310, 1, 310},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			s := openStore(t, cfg)
			base := uint64(1)
			if tc.name == "below first resets" {
				base = 100
			}
			old := mkLogs(base, 300, 1, 900)
			mustStore(t, s, old)
			for _, w := range old { // warm the cache so invalidation matters
				var l raft.Log
				_ = s.GetLog(w.Index, &l)
			}
			neu := mkLogs(tc.from, tc.to, 2, 500)
			mustStore(t, s, neu)
			if tc.name == "below first resets" {
				tc.first = tc.from
			}
			wantBounds(t, s, tc.first, tc.last)
			check := func(s *Store) {
				for i := tc.first; i <= tc.last; i++ {
					if i >= tc.from {
						checkEntry(t, s, neu[i-tc.from])
					} else {
						checkEntry(t, s, old[i-base])
					}
				}
			}
			check(s)
			s = reopen(t, s, cfg)
			wantBounds(t, s, tc.first, tc.last)
			check(s)
		})
	}
}

func TestStickyWriteError(t *testing.T) {
	for _, mode := range []string{"write", "sync"} {
		t.Run(mode, func(t *testing.T) {
			fs := newFaultFS()
			cfg := testConfig(t, t.TempDir())
			cfg.FS = fs
			s := openStore(t, cfg)
			mustStore(t, s, mkLogs(1, 10, 1, 100))
			if mode == "write" {
				fs.failWrite.Store(true)
			} else {
				fs.failSync.Store(true)
			}
			err := s.StoreLogs(mkLogs(11, 20, 1, 100))
			var fse *FailStopError
			if !errors.As(err, &fse) || !errors.Is(err, errInjected) {
				t.Fatalf("StoreLogs got %v, want *FailStopError wrapping the injected error", err)
			}
			fs.failWrite.Store(false)
			fs.failSync.Store(false)
			for _, op := range []func() error{
				func() error { return s.StoreLogs(mkLogs(11, 20, 1, 100)) },
				func() error { return s.StoreLog(mkLog(11, 1, 1)) },
				func() error { return s.DeleteRange(5, 10) },
				func() error { _, err := s.Purge(10); return err },
				s.Sync,
			} {
				if got := op(); got != err {
					t.Fatalf("later write got %v, want the same sticky error %v", got, err)
				}
			}
			// Reads still work and the durable prefix survives a restart.
			checkEntry(t, s, mkLog(10, 1, 100))
			s.Close()
			s = openStore(t, cfg)
			_, last := bounds(t, s)
			if last < 10 {
				t.Fatalf("last after restart got %d, want >= 10", last)
			}
			checkEntry(t, s, mkLog(10, 1, 100))
		})
	}
}

func TestAsyncFlush(t *testing.T) {
	fs := newFaultFS()
	cfg := testConfig(t, t.TempDir())
	cfg.FS = fs
	cfg.FlushMode = FlushAsync
	cfg.FlushInterval = time.Millisecond
	s := openStore(t, cfg)
	mustStore(t, s, mkLogs(1, 10, 1, 100)) // creates the segment (one sync)
	fs.mu.Lock()
	before := fs.syncs
	fs.mu.Unlock()
	mustStore(t, s, mkLogs(11, 20, 1, 100)) // no sync in async mode
	deadline := time.Now().Add(10 * time.Second)
	for {
		fs.mu.Lock()
		n := fs.syncs
		fs.mu.Unlock()
		if n > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("async flusher never fsynced")
		}
		runtime.Gosched()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close got %v, want nil", err)
	}
	if err := s.StoreLog(mkLog(21, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("StoreLog after Close got %v, want ErrClosed", err)
	}
}

// TestAsyncFlushErrorIsSticky: an fsync failure in the background flusher
// fail-stops the store like a failed synchronous write.
func TestAsyncFlushErrorIsSticky(t *testing.T) {
	fs := newFaultFS()
	cfg := testConfig(t, t.TempDir())
	cfg.FS = fs
	cfg.FlushMode = FlushAsync
	cfg.FlushInterval = time.Millisecond
	s := openStore(t, cfg)
	mustStore(t, s, mkLogs(1, 10, 1, 100))
	// Flush those first: otherwise the 1ms flusher may meet the injected
	// failure with them and fail-stop the store before the next write,
	// which then fails instead of being the dirty data below.
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	fs.failSync.Store(true)
	mustStore(t, s, mkLogs(11, 20, 1, 100)) // dirty: the flusher will try
	// Probe with a write that does no I/O (a prefix DeleteRange only records
	// permission) until the flusher's failure shows as the sticky error.
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for err == nil {
		if time.Now().After(deadline) {
			t.Fatal("a failed background fsync never fail-stopped the store")
		}
		runtime.Gosched()
		err = s.DeleteRange(1, 1)
	}
	var fse *FailStopError
	if !errors.As(err, &fse) || !errors.Is(err, errInjected) {
		t.Fatalf("got %v, want *FailStopError wrapping the injected error", err)
	}
	fs.failSync.Store(false)
	if got := s.Sync(); got != err {
		t.Fatalf("Sync after the failure got %v, want the same sticky error", got)
	}
}

func TestReadAtAndScan(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s := openStore(t, cfg)
	ls := mkLogs(1, 200, 1, 700)
	ls[50].Extensions = []byte("ext-bytes") // one segment with extensions
	mustStore(t, s, ls)
	for _, i := range []int{0, 50, 51, 199} {
		w := ls[i]
		got, err := s.ReadAt(w.Index, 10, 20, []byte("x"))
		if err != nil || !bytes.Equal(got, append([]byte("x"), w.Data[10:30]...)) {
			t.Fatalf("ReadAt(%d) got (%q, %v), want data[10:30]", w.Index, got, err)
		}
		if _, err := s.ReadAt(w.Index, 690, 11, nil); !errors.Is(err, ErrOutOfBounds) {
			t.Fatalf("ReadAt past end got %v, want ErrOutOfBounds", err)
		}
		if got, err := s.ReadAt(w.Index, 690, 10, nil); err != nil || !bytes.Equal(got, w.Data[690:]) {
			t.Fatalf("ReadAt tail got (%q, %v)", got, err)
		}
	}
	if _, err := s.ReadAt(201, 0, 1, nil); err != raft.ErrLogNotFound {
		t.Fatalf("ReadAt(201) got %v, want raft.ErrLogNotFound", err)
	}
	next := uint64(20)
	err := s.Scan(20, 1000, func(i uint64, typ raft.LogType, data []byte) error {
		if i != next || !bytes.Equal(data, ls[i-1].Data) || typ != raft.LogCommand {
			t.Fatalf("Scan got index %d, want %d with matching data", i, next)
		}
		next++
		return nil
	})
	if err != nil || next != 201 {
		t.Fatalf("Scan got (next %d, %v), want (201, nil)", next, err)
	}
	stop := errors.New("stop")
	if err := s.Scan(1, 10, func(uint64, raft.LogType, []byte) error { return stop }); err != stop {
		t.Fatalf("Scan got %v, want fn's error", err)
	}
	if err := s.Scan(201, 300, func(uint64, raft.LogType, []byte) error { return nil }); err != raft.ErrLogNotFound {
		t.Fatalf("Scan past last got %v, want raft.ErrLogNotFound", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{SegmentSize: 1, FlushMode: 7}.Validate()
	for _, want := range []string{"Dir is required", "SegmentSize", "FlushMode", "Logger", "FS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate got %v, want it to mention %q", err, want)
		}
	}
	cfg := DefaultConfig()
	cfg.Dir = "x"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig with Dir got %v, want nil", err)
	}
	for _, m := range []FlushMode{FlushSync, FlushAsync} {
		got, err := ParseFlushMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseFlushMode(%q) got (%v, %v)", m.String(), got, err)
		}
	}
	if _, err := ParseFlushMode("sometimes"); err == nil {
		t.Fatal("ParseFlushMode(sometimes) got nil error")
	}
}
