package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/e2e"
	"github.com/rmq-dev/rmq/fsm"
)

// TestTxList: an open half message is listed with its producer group and
// check count; after the check maximum (no producer answers) it is gone
// from the open list and counted as rolled back by the broker.
func TestTxList(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{Broker: func(cfg *broker.Config) {
		cfg.TransactionTimeout = 200 * time.Millisecond
		cfg.TransactionCheckInterval = 200 * time.Millisecond
		cfg.TransactionCheckMax = 2
	}})
	c := &harness{t: t, ns: cl.NamesrvAddr()}
	c.ok("topic", "create", "orders", "--queues", "1")
	if out := c.ok("tx", "list"); !strings.Contains(out, "open: 0, committed: 0") {
		t.Fatalf("empty tx list:\n%s", out)
	}
	n := cl.Leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Send(ctx, []*fsm.Message{{Topic: "orders", ID: []byte("0123456789abcdef"), Body: []byte("pending order"),
		Properties: map[string]string{fsm.PropTransaction: "true", broker.PropProducerGroup: "shop"}}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if out := c.ok("tx", "list"); !strings.Contains(out, "shop") || !strings.Contains(out, "pending order") || !strings.Contains(out, "open: 1") {
		t.Fatalf("tx list with an open transaction:\n%s", out)
	}
	e2e.Eventually(t, 20*time.Second, func() error {
		if out := c.ok("tx", "list", "--output", "json"); !strings.Contains(out, `"rolled_back_by_broker": 1`) {
			return errString("not rolled back yet: " + out)
		}
		return nil
	})
	out := c.ok("tx", "list")
	if !strings.Contains(out, "open: 0") || !strings.Contains(out, "rolled back by the broker (latest)") {
		t.Fatalf("tx list after the check maximum:\n%s", out)
	}
	c.fails("--limit -1", "tx", "list", "--limit", "-1")
}
