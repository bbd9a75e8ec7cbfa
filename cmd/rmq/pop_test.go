package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/e2e"
)

// TestConsumePop: consume --pop prints and acks; --no-ack leaves the
// messages to come back after --invisible, marked with their count; the
// group description shows them in flight meanwhile; bad flag mixes fail.
func TestConsumePop(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{})
	c := &harness{t: t, ns: cl.NamesrvAddr()}
	c.ok("topic", "create", "jobs", "--queues", "2")
	for _, b := range []string{"a", "b", "c"} {
		c.ok("send", "jobs", b)
	}
	out, errOut, err := c.run("consume", "jobs", "--pop", "--group", "poppers", "--from", "first", "--no-ack", "--invisible", "1s", "--count", "2")
	if err != nil || strings.Count(out, "broker-a#") != 2 || !strings.Contains(errOut, "received 2 messages, not acked") {
		t.Fatalf("first pop: %v, printed:\n%s%s", err, out, errOut)
	}
	if out := c.ok("group", "describe", "poppers"); !strings.Contains(out, "IN FLIGHT") {
		t.Fatalf("describe of a pop group:\n%s", out)
	}
	var again string
	e2e.Eventually(t, 20*time.Second, func() error {
		again += c.ok("consume", "jobs", "--pop", "--group", "poppers", "--exit")
		if strings.Count(again, "/retry1") < 2 || !strings.Contains(again, " c\n") {
			return errString("not all back yet:\n" + again)
		}
		return nil
	})
	if out, errOut, err := c.run("consume", "jobs", "--pop", "--group", "poppers", "--exit"); err != nil || out != "" || !strings.Contains(errOut, "caught up (--exit): received 0 messages") {
		t.Fatalf("after acking everything: %v\n%s%s", err, out, errOut)
	}
	c.fails("do not mix", "consume", "jobs", "--pop", "--group", "poppers", "--orderly")
	c.fails("needs --pop", "consume", "jobs", "--group", "poppers", "--no-ack")
	c.fails("--invisible 10ms", "consume", "jobs", "--pop", "--group", "poppers", "--invisible", "10ms")
	c.fails("--group is required", "consume", "jobs", "--pop")
}

type errString string

func (e errString) Error() string { return string(e) }
