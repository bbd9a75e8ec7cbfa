//go:build rmqfault

package fault

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// harness is an Injector over a control file with a fake clock and a
// kill that only counts.
type harness struct {
	t     *testing.T
	in    *Injector
	file  string
	out   strings.Builder
	kills int
	clock time.Time
}

func newHarness(t *testing.T, env map[string]string) *harness {
	h := &harness{t: t, file: filepath.Join(t.TempDir(), "faults"), clock: time.Now()}
	env["RMQ_FAULT_FILE"] = h.file
	h.in = New(func(k string) string { return env[k] }, &h.out, func() { h.kills++ })
	h.in.now = func() time.Time { return h.clock }
	return h
}

// write replaces the control file and lets the throttle pass.
func (h *harness) write(text string) {
	h.t.Helper()
	tmp := h.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.file); err != nil {
		h.t.Fatal(err)
	}
	h.clock = h.clock.Add(time.Second)
}

func TestNewWithoutEnvIsNil(t *testing.T) {
	if in := New(func(string) string { return "" }, os.Stderr, func() {}); in != nil {
		t.Fatalf("got an injector without RMQ_FAULT_ variables")
	}
}

func TestParse(t *testing.T) {
	c, err := Parse("# comment\nfsync-delay = 50ms\nfsync-error-after=3 # trailing\nfsync-on=log,fsm\ncrash-at=segment-roll\ncrash-step=2\ncrash-op=write\ncrash-path=.idx\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{FsyncDelay: 50 * time.Millisecond, FsyncErrorAfter: 3, FsyncOn: []string{Log, FSM},
		CrashAt: "segment-roll", CrashStep: 2, CrashOp: "write", CrashPath: ".idx"}
	if c.String() != want.String() {
		t.Fatalf("got %s, want %s", c, want)
	}
	if _, err := Parse("nonsense\nfsync-on=disk\ncrash-step=-1\nbogus=1\n"); err == nil || strings.Count(err.Error(), "line") != 4 {
		t.Fatalf("got %v, want four bad lines", err)
	}
}

func TestFsyncErrorAfterAndReload(t *testing.T) {
	h := newHarness(t, map[string]string{"RMQ_FAULT_FSYNC_ERROR_AFTER": "2"})
	for i := 0; i < 2; i++ {
		if err := h.in.Sync(Log, "a"); err != nil {
			t.Fatalf("fsync %d: %v", i+1, err)
		}
	}
	if err := h.in.Sync(FSM, "b"); err != nil {
		t.Fatalf("fsm fsync outside fsync-on: %v", err)
	}
	err := h.in.Sync(Log, "a")
	if !errors.Is(err, ErrInjected) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("third fsync got %v, want an injected EIO", err)
	}
	h.write("# nothing\n")
	if err := h.in.Sync(Log, "a"); err != nil {
		t.Fatalf("after clearing the control file: %v", err)
	}
	h.write("fsync-error-after=0\nfsync-on=fsm\n")
	if err := h.in.Sync(FSM, "b"); err == nil {
		t.Fatal("fsm fsync passed with fsync-error-after=0 on fsm")
	}
	if err := os.Remove(h.file); err != nil {
		t.Fatal(err)
	}
	h.clock = h.clock.Add(time.Second)
	if err := h.in.Sync(FSM, "b"); err != nil {
		t.Fatalf("without a control file (env: log only): %v", err)
	}
	if got := strings.Count(h.out.String(), "rmqfault: loaded"); got != 4 {
		t.Fatalf("got %d loaded lines, want 4:\n%s", got, h.out.String())
	}
}

func TestCrashAtEventStart(t *testing.T) {
	h := newHarness(t, map[string]string{})
	h.write("crash-at=purge\ncrash-after=1\n")
	h.in.Event("segment-roll", Log)()
	h.in.Event("purge", Log)()
	if h.kills != 0 {
		t.Fatal("crashed at the skipped first occurrence")
	}
	h.in.Event("purge", Log)()
	if h.kills != 1 || !strings.Contains(h.out.String(), "crash at purge #2 step 0") {
		t.Fatalf("kills %d, output:\n%s", h.kills, h.out.String())
	}
}

func TestCrashStepCounting(t *testing.T) {
	h := newHarness(t, map[string]string{})
	h.write("crash-at=install\ncrash-op=rename\ncrash-step=2\n")
	end := h.in.Event("install", Log, Snapshot)
	steps := []struct {
		kind, op string
		due      bool
	}{{Log, "write", false}, {Log, "rename", false}, {Snapshot, "snapshot-write", false}, {FSM, "rename", false}, {Log, "rename", true}}
	for i, s := range steps {
		if got := h.in.Step(s.kind, s.op, "p"); got != s.due {
			t.Fatalf("step %d (%s %s): due %v, want %v", i, s.kind, s.op, got, s.due)
		}
	}
	h.in.Crash("rename p")
	end()
	if h.kills != 1 || !strings.Contains(h.out.String(), "crash at install #1 step 2: rename p") {
		t.Fatalf("kills %d, output:\n%s", h.kills, h.out.String())
	}
	if strings.Contains(h.out.String(), "not reached") {
		t.Fatalf("end after the crash reported a miss:\n%s", h.out.String())
	}
}

func TestEventEndsBeforeStep(t *testing.T) {
	h := newHarness(t, map[string]string{})
	h.write("crash-at=snapshot\ncrash-step=3\n")
	end := h.in.Event("snapshot", Snapshot)
	if h.in.Step(Log, "write", "seg") || h.in.Step(Snapshot, "snapshot-write", "s") || h.in.Step(Snapshot, "snapshot-commit", "s") {
		t.Fatal("due before step 3")
	}
	end()
	if !strings.Contains(h.out.String(), "snapshot #1 ended after 2 matching operations; step 3 not reached") {
		t.Fatalf("output:\n%s", h.out.String())
	}
	end = h.in.Event("snapshot", Snapshot) // the next occurrence is armed again
	for i := 0; i < 2; i++ {
		h.in.Step(Snapshot, "snapshot-write", "s")
	}
	if !h.in.Step(Snapshot, "snapshot-commit", "s") {
		t.Fatal("step 3 of the second occurrence not due")
	}
	end()
}
