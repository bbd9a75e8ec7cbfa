package main

import (
	"context"
	"fmt"
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

// TestConsumeShowsRetries: a redelivery from the group's retry queue is
// marked as such, with its failure count.
func TestConsumeShowsRetries(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{Broker: func(cfg *broker.Config) {
		cfg.DelayLevels = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
		cfg.TimerPoll = 10 * time.Millisecond
	}})
	c := &harness{t: t, ns: cl.NamesrvAddr()}
	c.ok("topic", "create", "jobs", "--queues", "1")
	n := cl.Leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Send(ctx, []*fsm.Message{{Topic: "jobs", ID: []byte("0123456789abcdef"), Body: []byte("again")}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	c.ok("consume", "jobs", "--group", "workers", "--from", "first", "--count", "1")
	if _, err := n.SendBack(ctx, broker.SendBackRequest{Group: "workers", Topic: "jobs", Offset: res[0].QueueOffset}); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		if _, next, err := n.QueueRange(broker.RetryTopic("workers"), 0); err != nil || next != 1 {
			return fmt.Errorf("retry queue next %d %v", next, err)
		}
		return nil
	})
	out := c.ok("consume", "jobs", "--group", "workers", "--count", "1")
	if !strings.Contains(out, "broker-a#0/retry1") || !strings.Contains(out, "again") {
		t.Fatalf("consume of the retry printed:\n%s", out)
	}
}
