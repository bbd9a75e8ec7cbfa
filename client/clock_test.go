package client

import (
	"context"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// TestOrderlyLockTrustUsesConfigNow: an Orderly queue trusts its lock for
// wire.LockTrust on ConsumerConfig.Now, so a test can expire the trust
// window by moving the clock instead of waiting 30 seconds.
func TestOrderlyLockTrustUsesConfigNow(t *testing.T) {
	sent := time.Now()
	now := sent
	c := &Consumer{cfg: ConsumerConfig{Mode: Clustering, HeartbeatInterval: 10 * time.Millisecond,
		Now: func() time.Time { return now }}}
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	qr := &queueRun{c: c, stopPull: stop, lockedAt: sent}
	if !qr.waitLock() {
		t.Fatal("a lock sent just now is not trusted")
	}
	now = sent.Add(wire.LockTrust + time.Second) // set before waitLock runs below
	got := make(chan bool, 1)
	go func() { got <- qr.waitLock() }()
	cancel() // a stopped queue ends the wait; it must not have returned trusted
	select {
	case ok := <-got:
		if ok {
			t.Fatal("lock trusted past wire.LockTrust on the consumer's clock")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitLock did not end within 5s of the queue stopping")
	}
}
