package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestLockRenewalCost: queue locks are Raft entries on the broker, so
// idle members must not renew them every heartbeat round. Two members
// rebalancing every 50ms for 2s would write ~80 lock entries if they
// renewed each round; they renew every 20s.
func TestLockRenewalCost(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "lockcost", 8)
	ctx := ctxT(t, 60*time.Second)
	var cs []*client.Consumer
	for i := 0; i < 2; i++ {
		cc := newConsumer(t, c, "lockcost", map[string]string{"lockcost": "*"}, func(cfg *client.ConsumerConfig) {
			cfg.Orderly = true
			cfg.HeartbeatInterval = 50 * time.Millisecond
		})
		if err := cc.Start(ctx, func(context.Context, []*client.MessageExt) client.ConsumeResult { return client.ConsumeSuccess }); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, cc)
	}
	waitOwned(t, []int{4, 4}, cs...)
	l := c.Leader(5 * time.Second)
	before := l.Status().StateIndex
	time.Sleep(2 * time.Second) // about 40 rebalance rounds per member
	if n := l.Status().StateIndex - before; n > 4 {
		t.Errorf("two idle members wrote %d state entries in 2s, want at most 4 (locks renew every 20s)", n)
	}
	if got := owned(cs...); got[0] != 4 || got[1] != 4 {
		t.Errorf("owned queues %v after 2s, want [4 4]", got)
	}
}
