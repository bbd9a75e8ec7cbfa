package leakcheck

import (
	"strings"
	"testing"
	"time"
)

// A goroutine that ends within the patience is not reported; one that
// does not end is, by name.
func TestWait(t *testing.T) {
	done := make(chan struct{})
	go lingering(done)
	stop := time.AfterFunc(1500*time.Millisecond, func() { close(done) }) // later than one goleak.Find
	defer stop.Stop()
	if err := wait(5 * time.Second); err != nil {
		t.Fatalf("a goroutine that ended after 1.5 s was reported: %v", err)
	}

	block := make(chan struct{})
	go stuck(block)
	defer close(block)
	err := wait(2 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "leakcheck.stuck") {
		t.Fatalf("a goroutine that never ends: got %v, want a report naming leakcheck.stuck", err)
	}
}

func lingering(done <-chan struct{}) { <-done }

func stuck(block <-chan struct{}) { <-block }
