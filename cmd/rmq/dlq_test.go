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

// TestDLQListResend: a dead-lettered message is listed with its failures
// and origin, resent by id, and the group description counts it.
func TestDLQListResend(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{})
	c := &harness{t: t, ns: cl.NamesrvAddr()}
	c.ok("topic", "create", "jobs", "--queues", "1")
	n := cl.Leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Send(ctx, []*fsm.Message{{Topic: "jobs", ID: []byte("0123456789abcdef"), Body: []byte("poison pill")}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if _, err := n.SendBack(ctx, broker.SendBackRequest{Group: "workers", Topic: "jobs", Offset: res[0].QueueOffset, DelayLevel: -1}); err != nil {
		t.Fatal(err)
	}
	out := c.ok("dlq", "list", "workers")
	if !strings.Contains(out, "3031323334353637383961626364656") || !strings.Contains(out, `"poison pill"`) || !strings.Contains(out, "jobs") {
		t.Fatalf("dlq list printed:\n%s", out)
	}
	c.fails("--id ID (repeatable) or --all", "dlq", "resend", "workers")
	c.fails("not hex", "dlq", "resend", "workers", "--id", "zz")
	if out := c.ok("dlq", "resend", "workers", "--all"); !strings.Contains(out, "resent 1 dead letter") {
		t.Fatalf("dlq resend printed %q", out)
	}
	if _, next, err := n.QueueRange(broker.RetryTopic("workers"), 0); err != nil || next != 1 {
		t.Fatalf("retry queue after the resend: next %d %v, want 1", next, err)
	}
	c.fails("no dead-letter queue", "dlq", "list", "nobody")
}
