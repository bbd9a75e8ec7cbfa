//go:build rmqfault

package raftlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/internal/fault"
)

// These tests run with -tags rmqfault: they crash a Store at every step
// of a storage event through the same hooks a fault-build broker uses,
// with a kill that panics instead of ending the process, and check what
// Open recovers from the files left behind (the page cache survives a
// process crash, so every completed write counts).

type crashPanic struct{}

// crashFS returns a file system whose injector crashes at step of event.
func crashFS(t *testing.T, event string, step int) (VFS, *bytes.Buffer) {
	t.Helper()
	out := new(bytes.Buffer)
	env := map[string]string{"RMQ_FAULT_CRASH_AT": event, "RMQ_FAULT_CRASH_STEP": strconv.Itoa(step)}
	in := fault.New(func(k string) string { return env[k] }, out, func() { panic(crashPanic{}) })
	if in == nil {
		t.Fatal("no injector")
	}
	return injectFS{VFS: osFS{}, in: in}, out
}

// crashes runs f and reports whether it crashed at the injected point.
func crashes(f func()) (crashed bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crashPanic); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	f()
	return false
}

// crashLine is the injector's report of where it crashed.
func crashLine(out *bytes.Buffer) string {
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "crash at") {
			return l
		}
	}
	return ""
}

// TestCrashAtEverySegmentRollStep crashes a sync-mode store at each
// operation of a segment roll (records written, trimmed, fsynced, sealed,
// next segment created) and checks that Open keeps every acknowledged
// entry and appends go on, a small entry first (a new leader's no-op
// fits where the rolling entry did not).
func TestCrashAtEverySegmentRollStep(t *testing.T) {
	const size = 1000
	steps := 0
	for step := 1; step <= 40; step++ {
		dir := t.TempDir()
		fs, out := crashFS(t, "segment-roll", step)
		cfg := testConfig(t, dir)
		cfg.FS = fs
		s := openStore(t, cfg)
		acked := uint64(0)
		crashed := crashes(func() {
			for i := uint64(1); i <= 200; i += 2 {
				mustStore(t, s, mkLogs(i, i+1, 1, size)) // batches of two: some rolls write part of one
				acked = i + 1
			}
		})
		s.Close()
		if !crashed {
			steps = step - 1
			break
		}
		t.Logf("step %d: %s", step, crashLine(out))
		cfg.FS = OSFS()
		s = openStore(t, cfg)
		first, last := bounds(t, s)
		if first != 1 || last < acked || last > acked+2 {
			t.Fatalf("step %d: bounds [%d, %d] after a crash with %d acknowledged", step, first, last, acked)
		}
		for i := uint64(1); i <= last; i++ {
			checkEntry(t, s, mkLog(i, 1, size))
		}
		mustStore(t, s, mkLogs(last+1, last+1, 2, 10))
		mustStore(t, s, mkLogs(last+2, last+80, 2, size))
		s = reopen(t, s, cfg)
		wantBounds(t, s, 1, last+80)
		for i := uint64(1); i <= last; i++ {
			checkEntry(t, s, mkLog(i, 1, size))
		}
		checkEntry(t, s, mkLog(last+1, 2, 10))
		checkEntry(t, s, mkLog(last+80, 2, size))
		s.Close()
	}
	if steps < 10 {
		t.Fatalf("a roll had %d steps, want at least 10 (write, trim, sync, seal, create)", steps)
	}
}

// TestCrashAtEveryPurgeStep crashes a purge of several segments at each
// step (index and segment unlinks, the directory fsync): the reopened
// log is a contiguous suffix ending at the last entry, intact.
func TestCrashAtEveryPurgeStep(t *testing.T) {
	steps := 0
	for step := 1; step <= 40; step++ {
		dir := t.TempDir()
		fs, out := crashFS(t, "purge", step)
		cfg := testConfig(t, dir)
		cfg.FS = fs
		s := openStore(t, cfg)
		mustStore(t, s, mkLogs(1, 600, 1, 900))
		if err := s.DeleteRange(1, 400); err != nil {
			t.Fatal(err)
		}
		crashed := crashes(func() {
			if _, err := s.Purge(400); err != nil {
				t.Fatal(err)
			}
		})
		s.Close()
		if !crashed {
			steps = step - 1
			break
		}
		t.Logf("step %d: %s", step, crashLine(out))
		cfg.FS = OSFS()
		s = openStore(t, cfg)
		first, last := bounds(t, s)
		if last != 600 || first > 401 {
			t.Fatalf("step %d: bounds [%d, %d], want [<= 401, 600]", step, first, last)
		}
		for i := first; i <= last; i++ {
			checkEntry(t, s, mkLog(i, 1, 900))
		}
		s.Close()
	}
	if steps < 5 {
		t.Fatalf("the purge had %d steps, want at least 5", steps)
	}
}

// TestCrashAtEveryInstallStep crashes a follower receiving a shipped
// snapshot at every step, from the first staged write to the swap, and
// at every step of finishing it. After a restart (Open, then
// NewSnapshotStore) the follower has either its old log and no new
// snapshot, or the installed log and the snapshot, never a mix, and no
// staging or old directory is left.
func TestCrashAtEveryInstallStep(t *testing.T) {
	_, stream, _ := leaderWithSnapshot(t)
	for _, event := range []string{"install", "install-finish"} {
		t.Run(event, func(t *testing.T) {
			steps := 0
			for step := 1; step <= 400; step++ {
				fs, out := crashFS(t, event, step)
				cfg := testConfig(t, filepath.Join(t.TempDir(), "log"))
				cfg.Logger = hclog.NewNullLogger()
				cfg.FS = fs
				snapDir := t.TempDir()
				b := openStore(t, cfg)
				mustStore(t, b, mkLogs(1, 50, 2, 100))
				snapB, err := NewSnapshotStore(snapDir, 2, b, hclog.NewNullLogger())
				if err != nil {
					t.Fatal(err)
				}
				var sink raft.SnapshotSink
				crashed := crashes(func() {
					sink, err = snapB.Create(raft.SnapshotVersionMax, snapIndex, 1, raft.Configuration{}, 1, nil)
					if err != nil {
						t.Fatal(err)
					}
					for p := stream; len(p) > 0; p = p[min(len(p), 4000):] {
						if _, err := sink.Write(p[:min(len(p), 4000)]); err != nil {
							t.Fatal(err)
						}
					}
					if err := sink.Close(); err != nil {
						t.Fatal(err)
					}
				})
				if k, ok := sink.(*shipSink); ok && k.staged != nil {
					k.staged.Close() // its flusher goroutine; a crash ends it with the process
				}
				b.Close()
				if !crashed {
					steps = step - 1
					break
				}
				cfg.FS = OSFS()
				b = openStore(t, cfg)
				snapB, err = NewSnapshotStore(snapDir, 2, b, hclog.NewNullLogger())
				if err != nil {
					t.Fatalf("step %d (%s): reopen snapshots: %v", step, crashLine(out), err)
				}
				metas, err := snapB.List()
				if err != nil {
					t.Fatal(err)
				}
				first, last := bounds(t, b)
				switch {
				case len(metas) == 0 && first == 1 && last == 50:
					checkEntry(t, b, mkLog(50, 2, 100))
				case len(metas) == 1 && metas[0].Index == snapIndex && last == snapIndex:
					for i := first; i <= last; i++ {
						checkEntry(t, b, mkLog(i, 1, 900))
					}
				default:
					t.Fatalf("step %d (%s): %d snapshots, log [%d, %d]: neither the old log nor the installed one",
						step, crashLine(out), len(metas), first, last)
				}
				for _, p := range []string{b.stagingDir(), b.dir + oldSuffix, filepath.Join(b.dir, markerName)} {
					if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("step %d (%s): %s left behind: %v", step, crashLine(out), p, err)
					}
				}
				b.Close()
			}
			t.Logf("%s: crashed at each of %d steps", event, steps)
			if steps < 8 {
				t.Fatalf("%s had %d steps, want at least 8", event, steps)
			}
		})
	}
}
