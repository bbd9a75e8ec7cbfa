package fsm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestConsumeQueueENOSPCRealTmpfs: consume-queue and index files are
// sparse and mapped, and a store into a mapped hole on a full file system
// raises SIGBUS, which kills the process. With their blocks reserved
// ahead (reserve.go), a full tmpfs instead marks the queue broken with
// ENOSPC (Sync reports it); once space is back, a restart that replays
// the log rebuilds every unit. Skipped where a tmpfs cannot be mounted.
func TestConsumeQueueENOSPCRealTmpfs(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	dir := filepath.Join(mnt, "fsm")
	open := func() *FSM {
		cfg := DefaultConfig()
		cfg.Dir, cfg.UnitsPerFile, cfg.Logger = dir, 1<<16, testLogger(t)
		f, err := New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return f
	}
	log := &memLog{}
	h := &harness{t: t, f: open(), log: log}
	h.mustCmd(&CreateTopic{Name: "t", Queues: 1, Perm: 6})
	tid := h.topicID("t")
	sendN := func(from, n int) {
		for i := from; i < from+n; i += 100 {
			var msgs []Message
			for j := i; j < i+100 && j < from+n; j++ {
				m := msg("t", tid, 0, fmt.Sprint(j))
				m.ID = []byte(fmt.Sprintf("id-%06d", j))
				msgs = append(msgs, m)
			}
			h.send(1, msgs...)
		}
	}
	sendN(0, 1000)
	if err := h.f.Sync(); err != nil {
		t.Fatal(err)
	}
	// Fill the file system.
	filler := filepath.Join(mnt, "filler")
	fl, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for i := 0; i < 1024; i++ {
		if _, err := fl.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	fl.Close()
	// 5000 more units cross the reserved 16 KiB (585 units): the next
	// reservation fails instead of the store faulting.
	sendN(1000, 5000)
	if _, err := h.f.Units("t", 0, 0, 10, nil); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Units after ENOSPC got %v, want the queue's ENOSPC", err)
	}
	if err := h.f.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Sync after ENOSPC got %v, want ENOSPC", err)
	}
	_, next, _ := h.f.QueueRange("t", 0)
	if next != 6000 {
		t.Fatalf("next %d, want 6000: replicated state advances whatever the local files", next)
	}
	_ = h.f.Close() // reports the broken queue
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// Restart without a snapshot: raft replays the log.
	h2 := &harness{t: t, f: open(), log: &memLog{}}
	t.Cleanup(func() {
		if err := h2.f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, l := range log.logs {
		h2.idx = l.Index - 1
		h2.applyLog(l.Type, l.Data)
	}
	units, err := h2.f.Units("t", 0, 0, 6000, nil)
	if err != nil || len(units) != 6000 {
		t.Fatalf("after the restart: %d units, %v; want 6000", len(units), err)
	}
	for i, u := range units {
		want := uint64(2 + i/100) // entry 1 created the topic; 100 messages per entry
		if u.Index != want {
			t.Fatalf("unit %d points at entry %d, want %d", i, u.Index, want)
		}
	}
	if err := h2.f.Sync(); err != nil {
		t.Fatalf("Sync after the restart: %v", err)
	}
}
