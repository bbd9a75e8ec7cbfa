package raftlog

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

const (
	benchEntry = 1024
	benchBatch = 64
)

func benchBatches(n int) [][]*raft.Log {
	out := make([][]*raft.Log, n)
	idx := uint64(1)
	now := time.Now()
	data := make([]byte, benchEntry)
	for i := range out {
		out[i] = make([]*raft.Log, benchBatch)
		for j := range out[i] {
			out[i][j] = &raft.Log{Index: idx, Term: 1, Data: data, AppendedAt: now}
			idx++
		}
	}
	return out
}

func runStoreLogs(b *testing.B, s raft.LogStore) {
	batches := benchBatches(b.N)
	b.SetBytes(benchEntry * benchBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.StoreLogs(batches[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkStoreLogs(b *testing.B) {
	for _, mode := range []FlushMode{FlushSync, FlushAsync} {
		b.Run("raftlog-"+mode.String(), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Dir = b.TempDir()
			cfg.FlushMode = mode
			cfg.SegmentSize = 64 << 20
			s, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			runStoreLogs(b, s)
		})
	}
	b.Run("boltdb", func(b *testing.B) {
		s, err := raftboltdb.NewBoltStore(filepath.Join(b.TempDir(), "bolt.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		runStoreLogs(b, s)
	})
}

func benchStore(b *testing.B, n int) *Store {
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	cfg.SegmentSize = 8 << 20
	cfg.FlushMode = FlushAsync
	cfg.CacheEntries = -1 // measure disk reads, not the cache
	cfg.Logger = hclog.NewNullLogger()
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for _, batch := range benchBatches(n / benchBatch) {
		if err := s.StoreLogs(batch); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkGetLog(b *testing.B) {
	const n = 64 * 256
	s := benchStore(b, n)
	b.Run("GetLog", func(b *testing.B) {
		b.SetBytes(benchEntry)
		b.ReportAllocs()
		var l raft.Log
		for i := 0; i < b.N; i++ {
			if err := s.GetLog(uint64(i%n)+1, &l); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadData", func(b *testing.B) {
		b.SetBytes(benchEntry)
		b.ReportAllocs()
		buf := make([]byte, 0, benchEntry)
		for i := 0; i < b.N; i++ {
			var err error
			if _, buf, err = s.ReadData(uint64(i%n)+1, buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, size := range []uint32{64, 1024} {
		b.Run(fmt.Sprintf("ReadAt-%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			buf := make([]byte, 0, size)
			for i := 0; i < b.N; i++ {
				var err error
				if buf, err = s.ReadAt(uint64(i%n)+1, 0, size, buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Scan", func(b *testing.B) {
		b.SetBytes(benchEntry * 1024)
		for i := 0; i < b.N; i++ {
			from := uint64(i*1024%(n-1024)) + 1
			if err := s.Scan(from, from+1023, func(uint64, raft.LogType, []byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
