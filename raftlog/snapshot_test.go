package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const snapIndex = 500

var fsmState = bytes.Repeat([]byte("fsm-state;"), 300)

// rawRecord returns the encoded bytes of entry i.
func rawRecord(t *testing.T, s *Store, i uint64) []byte {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	raw, _, _, err := s.readRecordLocked(i, nil)
	if err != nil {
		t.Fatalf("read raw %d: %v", i, err)
	}
	return raw
}

// leaderWithSnapshot builds store A with 1..600, a purged prefix and a
// local snapshot at snapIndex, and returns the shipped stream of it.
func leaderWithSnapshot(t *testing.T) (*Store, []byte, string) {
	a := openStore(t, testConfig(t, t.TempDir()))
	mustStore(t, a, mkLogs(1, 600, 1, 900))
	if err := a.DeleteRange(1, 300); err != nil {
		t.Fatal(err)
	}
	if res, err := a.Purge(300); err != nil || res.Segments == 0 {
		t.Fatalf("Purge got (%+v, %v), want some segments", res, err)
	}
	snapA, err := NewSnapshotStore(t.TempDir(), 2, a, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := snapA.Create(raft.SnapshotVersionMax, snapIndex, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(fsmState); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("second Close got %v, want nil", err)
	}
	// A local restore reads only the state.
	_, rc, err := snapA.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	st, err := SnapshotState(rc)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(st); !bytes.Equal(got, fsmState) {
		t.Fatalf("SnapshotState got %d bytes, want the %d state bytes", len(got), len(fsmState))
	}
	st.Close()
	// The shipped stream has exactly meta.Size bytes.
	meta, rc, err := snapA.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if int64(len(stream)) != meta.Size {
		t.Fatalf("stream is %d bytes, meta.Size %d", len(stream), meta.Size)
	}
	return a, stream, sink.ID()
}

// install streams a shipped snapshot into a sink from snaps in small chunks.
func install(t *testing.T, snaps *SnapshotStore, stream []byte) (raft.SnapshotSink, error) {
	t.Helper()
	sink, err := snaps.Create(raft.SnapshotVersionMax, snapIndex, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for b := stream; len(b) > 0; {
		n := min(len(b), 1000)
		if _, err := sink.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	return sink, sink.Close()
}

func TestShippedSnapshotRoundTrip(t *testing.T) {
	a, stream, _ := leaderWithSnapshot(t)
	first, _ := bounds(t, a)
	tests := []struct {
		name      string
		stale     []*raft.Log
		wantLast  uint64
		keptStale bool
	}{
		{"empty follower", nil, snapIndex, false},
		{"stale divergent log below the snapshot", mkLogs(1, 400, 9, 300), snapIndex, false},
		{"live log past the snapshot keeps its suffix", mkLogs(1, 520, 9, 300), 520, true},
		{"live log starting after the snapshot", mkLogs(700, 720, 9, 300), snapIndex, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			b := openStore(t, cfg)
			if tc.stale != nil {
				mustStore(t, b, tc.stale)
			}
			snapB, err := NewSnapshotStore(t.TempDir(), 2, b, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			sink, err := install(t, snapB, stream)
			if err != nil {
				t.Fatalf("Close got %v", err)
			}
			if err := sink.Close(); err != nil {
				t.Fatalf("second Close got %v, want nil", err)
			}
			if err := sink.Cancel(); err != nil {
				t.Fatalf("Cancel after Close got %v, want nil", err)
			}
			check := func(b *Store) {
				wantBounds(t, b, first, tc.wantLast)
				for i := first; i <= snapIndex; i++ {
					if !bytes.Equal(rawRecord(t, a, i), rawRecord(t, b, i)) {
						t.Fatalf("entry %d differs from the leader's", i)
					}
				}
				for i := uint64(snapIndex + 1); i <= tc.wantLast; i++ {
					checkEntry(t, b, tc.stale[i-1])
				}
			}
			check(b)
			_, rc, err := snapB.Open(sink.ID())
			if err != nil {
				t.Fatal(err)
			}
			st, _ := SnapshotState(rc)
			if got, _ := io.ReadAll(st); !bytes.Equal(got, fsmState) {
				t.Fatalf("restored state got %d bytes, want %d", len(got), len(fsmState))
			}
			st.Close()
			st.Close()
			check(reopen(t, b, cfg))
			if _, err := os.Stat(b.stagingDir()); !os.IsNotExist(err) {
				t.Fatalf("staging dir left behind: %v", err)
			}
		})
	}
}

func TestShippedSnapshotIncomplete(t *testing.T) {
	_, stream, _ := leaderWithSnapshot(t)
	b := openStore(t, testConfig(t, t.TempDir()))
	mustStore(t, b, mkLogs(1, 50, 2, 100))
	snapDir := t.TempDir()
	snapB, err := NewSnapshotStore(snapDir, 2, b, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sink, _ := snapB.Create(raft.SnapshotVersionMax, snapIndex, 1, raft.Configuration{}, 1, nil)
	sink.Write(stream[:len(stream)-10])
	if err := sink.Close(); !errors.Is(err, ErrIncompleteSnapshot) {
		t.Fatalf("Close got %v, want ErrIncompleteSnapshot", err)
	}
	if err := sink.Cancel(); err != nil {
		t.Fatalf("Cancel after Close got %v", err)
	}
	wantBounds(t, b, 1, 50)
	if metas, _ := snapB.List(); len(metas) != 0 {
		t.Fatalf("got %d snapshots, want none", len(metas))
	}
	if _, err := os.Stat(b.stagingDir()); !os.IsNotExist(err) {
		t.Fatalf("staging dir left behind: %v", err)
	}
}

func TestInterruptedInstall(t *testing.T) {
	_, stream, _ := leaderWithSnapshot(t)
	cases := []struct {
		name       string
		failRename string // rename target that fails during the swap
		fakeMarker bool   // staging with a marker naming an unknown snapshot
		noMarker   bool   // staging without a marker
		rolled     bool
	}{
		{name: "crash before swap rolls forward", failRename: oldSuffix, rolled: true},
		{name: "crash between renames rolls forward", failRename: "/log", rolled: true},
		{name: "marker for an uncommitted snapshot is discarded", fakeMarker: true},
		{name: "staging without marker is discarded", noMarker: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := &renameFS{VFS: OSFS()}
			cfg := testConfig(t, filepath.Join(t.TempDir(), "log"))
			cfg.FS = fs
			snapDir := t.TempDir()
			b := openStore(t, cfg)
			mustStore(t, b, mkLogs(1, 50, 2, 100))
			snapB, err := NewSnapshotStore(snapDir, 2, b, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.failRename != "":
				fs.failSuffix.Store(tc.failRename)
				if _, err := install(t, snapB, stream); !errors.Is(err, errInjected) {
					t.Fatalf("install got %v, want the injected error", err)
				}
				fs.failSuffix.Store("")
			default:
				staged, err := b.openStaging()
				if err != nil {
					t.Fatal(err)
				}
				mustStore(t, staged, mkLogs(1, 10, 3, 10))
				staged.Close()
				if tc.fakeMarker {
					os.WriteFile(filepath.Join(b.stagingDir(), markerName), []byte("1-2-3\n"), 0o644)
				}
			}
			b.Close()
			b = openStore(t, cfg)
			if _, err := NewSnapshotStore(snapDir, 2, b, testLogger(t)); err != nil {
				t.Fatal(err)
			}
			if tc.rolled {
				first, _ := bounds(t, b)
				wantBounds(t, b, first, snapIndex)
				checkEntry(t, b, mkLog(snapIndex, 1, 900))
			} else {
				wantBounds(t, b, 1, 50)
			}
			for _, p := range []string{b.stagingDir(), b.dir + oldSuffix, filepath.Join(b.dir, markerName)} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Fatalf("%s left behind: %v", p, err)
				}
			}
		})
	}
}

// smallShipStream returns the shipped stream of a snapshot at index 15 of a
// store holding entries 1..20 (a seed small enough to mutate quickly).
func smallShipStream(tb testing.TB) []byte {
	tb.Helper()
	cfg := testConfig(tb, tb.TempDir())
	cfg.Logger = hclog.NewNullLogger()
	a, err := Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer a.Close()
	if err := a.StoreLogs(mkLogs(1, 20, 1, 40)); err != nil {
		tb.Fatal(err)
	}
	snaps, err := NewSnapshotStore(tb.TempDir(), 1, a, hclog.NewNullLogger())
	if err != nil {
		tb.Fatal(err)
	}
	sink, err := snaps.Create(raft.SnapshotVersionMax, 15, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := sink.Write([]byte("state")); err != nil {
		tb.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		tb.Fatal(err)
	}
	_, rc, err := snaps.Open(sink.ID())
	if err != nil {
		tb.Fatal(err)
	}
	defer rc.Close()
	stream, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatal(err)
	}
	return stream
}

// shipHeader builds the start of a shipped stream: magic | stateLen |
// state | first | last | logBytes.
func shipHeader(stateLen uint64, state []byte, first, last, logBytes uint64) []byte {
	b := append([]byte(shipMagic), binary.LittleEndian.AppendUint64(nil, stateLen)...)
	b = append(b, state...)
	for _, v := range []uint64{first, last, logBytes} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

func TestShippedSnapshotRejectsBadLengths(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
	}{
		{"state of 4 EiB", shipHeader(1<<62, nil, 0, 0, 0)[:16]},
		{"400 entries in 100 bytes", shipHeader(1, []byte("s"), 1, 400, 100)},
		{"one entry of 2 GiB", shipHeader(1, []byte("s"), 5, 5, 2<<30)},
		{"empty range with log bytes", shipHeader(1, []byte("s"), 6, 5, 64)},
		{"entry zero", shipHeader(1, []byte("s"), 0, 3, 400)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := openStore(t, testConfig(t, t.TempDir()))
			snaps, err := NewSnapshotStore(t.TempDir(), 1, b, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			sink, err := snaps.Create(raft.SnapshotVersionMax, snapIndex, 1, raft.Configuration{}, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sink.Write(tc.stream); !errors.Is(err, ErrBadShipLength) {
				t.Fatalf("Write of the header got %v, want ErrBadShipLength", err)
			}
			if err := sink.Close(); err == nil {
				t.Fatal("Close got nil, want an error")
			}
			if _, err := os.Stat(b.stagingDir()); !os.IsNotExist(err) {
				t.Fatalf("staging dir left behind: %v", err)
			}
		})
	}
	// The reading side refuses the same oversized state.
	rc := io.NopCloser(bytes.NewReader(shipHeader(1<<62, nil, 0, 0, 0)[:16]))
	if _, err := SnapshotState(rc); !errors.Is(err, ErrBadShipLength) {
		t.Fatalf("SnapshotState got %v, want ErrBadShipLength", err)
	}
}

// FuzzSnapshotStream feeds arbitrary streams to the sink a follower
// installs shipped snapshots with. It must never panic or stage more than
// it was given, and whatever it installs must be a readable log inside
// the snapshot's range.
func FuzzSnapshotStream(f *testing.F) {
	stream := smallShipStream(f)
	f.Add(stream)
	f.Add(stream[:len(stream)/2])
	f.Add([]byte("plain fsm state"))
	f.Add(shipHeader(1, []byte("s"), 1, 15, 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := testConfig(t, t.TempDir())
		cfg.Logger, cfg.FS = hclog.NewNullLogger(), noSyncFS{OSFS()}
		b, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		snaps, err := NewSnapshotStore(t.TempDir(), 1, b, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		sink, err := snaps.Create(raft.SnapshotVersionMax, 15, 1, raft.Configuration{}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		for p := data; len(p) > 0; {
			n := min(len(p), 97) // odd chunks split every header and record
			if _, err := sink.Write(p[:n]); err != nil {
				break
			}
			p = p[n:]
		}
		if err := sink.Close(); err != nil {
			if b.DiskBytes() != 0 {
				t.Fatalf("failed install left %d log bytes", b.DiskBytes())
			}
			return
		}
		if b.DiskBytes() > int64(len(data)) {
			t.Fatalf("installed %d log bytes from a %d-byte stream", b.DiskBytes(), len(data))
		}
		first, _ := b.FirstIndex()
		last, _ := b.LastIndex()
		if first == 0 {
			return // plain state or an empty shipped range
		}
		if first > last || last > 15 {
			t.Fatalf("installed range [%d, %d] outside snapshot 15", first, last)
		}
		for i := first; i <= last; i++ {
			var l raft.Log
			if err := b.GetLog(i, &l); err != nil || l.Index != i {
				t.Fatalf("entry %d after install: got index %d, %v", i, l.Index, err)
			}
		}
	})
}

// TestNewSnapshotStoreRemovesTornSnapshots: a crash while raft wrote a
// snapshot leaves <id>.tmp in its directory, which raft skips but never
// removes; opening the store removes it and keeps committed snapshots.
func TestNewSnapshotStoreRemovesTornSnapshots(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	dir := t.TempDir()
	snaps, err := NewSnapshotStore(dir, 2, s, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := snaps.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(fsmState); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	torn := filepath.Join(dir, "snapshots", "1-11-123.tmp")
	if err := os.MkdirAll(torn, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(torn, "state.bin"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if snaps, err = NewSnapshotStore(dir, 2, s, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(torn); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unfinished snapshot still there: %v", err)
	}
	if metas, err := snaps.List(); err != nil || len(metas) != 1 || metas[0].ID != sink.ID() {
		t.Fatalf("List got %v, %v; want the committed snapshot", metas, err)
	}
}
