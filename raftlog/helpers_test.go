package raftlog

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: testWriter{t}, Level: hclog.Debug})
}

func testConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.SegmentSize = 64 << 10
	cfg.Logger = testLogger(t)
	return cfg
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mkLog builds a deterministic entry; size controls the Data length.
func mkLog(index, term uint64, size int) *raft.Log {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(index*31 + uint64(i)*7)
	}
	copy(data, fmt.Sprintf("entry-%d", index))
	return &raft.Log{Index: index, Term: term, Type: raft.LogCommand, Data: data,
		AppendedAt: time.Unix(0, int64(index)*1000+1)}
}

func mkLogs(from, to, term uint64, size int) []*raft.Log {
	var ls []*raft.Log
	for i := from; i <= to; i++ {
		ls = append(ls, mkLog(i, term, size))
	}
	return ls
}

func mustStore(t testing.TB, s *Store, ls []*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(ls); err != nil {
		t.Fatalf("StoreLogs [%d..]: %v", ls[0].Index, err)
	}
}

func bounds(t testing.TB, s *Store) (uint64, uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return f, l
}

func wantBounds(t testing.TB, s *Store, first, last uint64) {
	t.Helper()
	f, l := bounds(t, s)
	if f != first || l != last {
		t.Fatalf("bounds got [%d, %d], want [%d, %d]", f, l, first, last)
	}
}

// checkEntry reads index through GetLog and ReadData and compares to want.
func checkEntry(t testing.TB, s *Store, want *raft.Log) {
	t.Helper()
	var got raft.Log
	if err := s.GetLog(want.Index, &got); err != nil {
		t.Fatalf("GetLog(%d): %v", want.Index, err)
	}
	if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) ||
		!got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("GetLog(%d) got {idx %d term %d type %v len %d}, want {idx %d term %d len %d}",
			want.Index, got.Index, got.Term, got.Type, len(got.Data), want.Index, want.Term, len(want.Data))
	}
	typ, data, err := s.ReadData(want.Index, nil)
	if err != nil || typ != want.Type || !bytes.Equal(data, want.Data) {
		t.Fatalf("ReadData(%d) got (%v, %d bytes, %v), want (%v, %d bytes)", want.Index, typ, len(data), err, want.Type, len(want.Data))
	}
}

// reopen closes s and opens a new store on the same config with a cold cache.
func reopen(t testing.TB, s *Store, cfg Config) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openStore(t, cfg)
}
