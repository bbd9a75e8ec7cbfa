package client

import (
	"testing"
	"time"
)

func TestFaultsBackoff(t *testing.T) {
	f := newFaults(time.Second, 500*time.Millisecond)
	now := time.Unix(1000, 0)
	queues := []Queue{{Group: "a"}, {Group: "a", QueueID: 1}, {Group: "b"}}
	if got := f.filter(queues, nil, now); len(got) != 3 {
		t.Fatalf("nothing avoided: got %d queues, want 3", len(got))
	}
	f.fail("b", now)
	if got := f.filter(queues, nil, now); len(got) != 2 || got[0].Group != "a" || got[1].Group != "a" {
		t.Fatalf("b avoided: got %v, want a's queues", got)
	}
	if !f.avoided("b", now.Add(999*time.Millisecond)) || f.avoided("b", now.Add(time.Second)) {
		t.Fatal("first failure: want b avoided for 1s")
	}
	// A second failure in a row doubles the backoff; 16x at most.
	for i, want := range []time.Duration{2, 4, 8, 16, 16} {
		at := now.Add(time.Duration(i+1) * time.Minute)
		f.fail("b", at)
		if !f.avoided("b", at.Add(want*time.Second-time.Millisecond)) || f.avoided("b", at.Add(want*time.Second)) {
			t.Fatalf("failure %d: want b avoided for %ds", i+2, want)
		}
	}
	// Every group avoided: all queues but those skipped, else all.
	f.fail("a", now)
	if got := f.filter(queues, nil, now); len(got) != 3 {
		t.Fatalf("all avoided: got %d queues, want 3", len(got))
	}
	if got := f.filter(queues, []string{"a"}, now); len(got) != 1 || got[0].Group != "b" {
		t.Fatalf("all avoided, a skipped: got %v, want b's queue", got)
	}
	// A fast success ends the avoidance; a slow one starts it.
	f.done("a", time.Millisecond, now)
	f.done("b", time.Millisecond, now)
	if f.avoided("a", now) || f.avoided("b", now) || f.any.Load() != 0 {
		t.Fatal("fast successes: want nothing avoided")
	}
	f.done("a", 600*time.Millisecond, now)
	if !f.avoided("a", now) {
		t.Fatal("slow success: want a avoided")
	}
	off := newFaults(-1, 0)
	off.fail("a", now)
	if off.avoided("a", now) || len(off.filter(queues, nil, now)) != 3 {
		t.Fatal("avoidance off: want nothing avoided")
	}
}
