package raftlog

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// cached lists the indexes c serves, checking its invariants on the way.
func cached(t *testing.T, c *entryCache) []uint64 {
	t.Helper()
	var got []uint64
	var bytes int64
	for i := c.lo; c.n > 0 && i <= c.hi; i++ {
		l := c.get(i)
		if l == nil || l.Index != i {
			t.Fatalf("get(%d) got %v inside the run [%d, %d]", i, l, c.lo, c.hi)
		}
		got = append(got, i)
		bytes += entryCost(l)
	}
	if len(got) != c.n || bytes != c.bytes {
		t.Fatalf("cache counts %d entries / %d bytes, holds %d / %d", c.n, c.bytes, len(got), bytes)
	}
	if c.n > len(c.slots) || c.bytes > c.maxBytes {
		t.Fatalf("cache holds %d entries / %d bytes, bounds %d / %d", c.n, c.bytes, len(c.slots), c.maxBytes)
	}
	return got
}

func TestEntryCacheBounds(t *testing.T) {
	cost := entryCost(mkLog(1, 1, 1000))
	type step struct {
		add      []*raft.Log
		dropFrom uint64 // applied after add when non-zero
		clear    bool
		want     []uint64
	}
	cases := []struct {
		name     string
		entries  int
		maxBytes int64
		steps    []step
	}{
		{"count bound", 4, 100 * cost, []step{
			{add: mkLogs(1, 3, 1, 1000), want: []uint64{1, 2, 3}},
			{add: mkLogs(4, 9, 1, 1000), want: []uint64{6, 7, 8, 9}},
		}},
		{"byte bound", 100, 3 * cost, []step{
			{add: mkLogs(1, 5, 1, 1000), want: []uint64{3, 4, 5}},
			{add: []*raft.Log{mkLog(6, 1, 1500)}, want: []uint64{5, 6}},
		}},
		{"entry larger than the budget", 100, 3 * cost, []step{
			{add: mkLogs(1, 2, 1, 1000), want: []uint64{1, 2}},
			{add: []*raft.Log{mkLog(3, 1, 4000)}, want: nil},
			{add: []*raft.Log{mkLog(4, 1, 1000)}, want: []uint64{4}},
		}},
		{"a gap starts a new run", 100, 100 * cost, []step{
			{add: mkLogs(1, 3, 1, 1000), want: []uint64{1, 2, 3}},
			{add: mkLogs(10, 11, 1, 1000), want: []uint64{10, 11}},
		}},
		{"suffix truncation then overwrite", 100, 100 * cost, []step{
			{add: mkLogs(1, 6, 1, 1000), dropFrom: 4, want: []uint64{1, 2, 3}},
			{add: mkLogs(4, 5, 2, 1000), want: []uint64{1, 2, 3, 4, 5}},
			{dropFrom: 1, want: nil},
		}},
		{"clear", 8, 100 * cost, []step{
			{add: mkLogs(1, 12, 1, 1000), clear: true, want: nil},
			{add: mkLogs(13, 14, 1, 1000), want: []uint64{13, 14}},
		}},
		{"disabled", -1, 100 * cost, []step{{add: mkLogs(1, 3, 1, 1000), want: nil}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newEntryCache(tc.entries, tc.maxBytes)
			for i, st := range tc.steps {
				for _, l := range st.add {
					c.add(l)
				}
				if st.dropFrom != 0 {
					c.dropFrom(st.dropFrom)
				}
				if st.clear {
					c.clear()
				}
				if got := cached(t, &c); !equalIndexes(got, st.want) {
					t.Fatalf("step %d: cached got %v, want %v", i, got, st.want)
				}
			}
		})
	}
}

func equalIndexes(a, b []uint64) bool {
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

// TestStoreCacheBytes checks that GetLog serves the newest entries that
// fit CacheBytes from memory (sharing Data with the stored entry) and the
// rest from disk, and that an overwrite is never served stale.
func TestStoreCacheBytes(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	const size = 1000
	cfg.CacheBytes = 3 * (size + entryOverhead)
	s := openStore(t, cfg)
	ls := mkLogs(1, 10, 1, size)
	mustStore(t, s, ls)
	for _, want := range ls {
		var got raft.Log
		if err := s.GetLog(want.Index, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", want.Index, err)
		}
		if !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("GetLog(%d) returned other data", want.Index)
		}
		fromCache := &got.Data[0] == &want.Data[0]
		if wantCached := want.Index >= 8; fromCache != wantCached {
			t.Fatalf("GetLog(%d) from the cache got %v, want %v", want.Index, fromCache, wantCached)
		}
	}
	over := mkLogs(9, 10, 2, size)
	over[0].Data[0]++ // differs from the overwritten entry
	mustStore(t, s, over)
	for _, want := range over {
		var got raft.Log
		if err := s.GetLog(want.Index, &got); err != nil {
			t.Fatalf("GetLog(%d) after overwrite: %v", want.Index, err)
		}
		if got.Term != 2 || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("GetLog(%d) after overwrite got term %d, want the new entry (term 2)", want.Index, got.Term)
		}
	}
}

func TestConfigCacheBounds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.CacheEntries = MaxCacheEntries + 1
	if err := cfg.Validate(); err == nil {
		t.Fatalf("Validate with CacheEntries %d got nil, want an error", cfg.CacheEntries)
	}
	cfg = Config{Dir: cfg.Dir}.withDefaults()
	if cfg.CacheBytes != DefaultCacheBytes || cfg.CacheEntries != DefaultCacheEntries {
		t.Fatalf("defaults got %d entries / %d bytes, want %d / %d", cfg.CacheEntries, cfg.CacheBytes, DefaultCacheEntries, DefaultCacheBytes)
	}
}
