package raftlog

import (
	"errors"
	"testing"

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
