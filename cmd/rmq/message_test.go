package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/e2e"
)

// TestMessageCommands: get by id, find by key and list by time show the
// message with its properties, queue and body; raw bodies go to stdout
// alone; bad flags fail naming the flag.
func TestMessageCommands(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{})
	c := &harness{t: t, ns: cl.NamesrvAddr()}
	c.ok("topic", "create", "orders", "--queues", "2")
	out := c.ok("send", "orders", "order 1001 paid", "--key", "order-1001", "--tag", "paid")
	id := ""
	for _, f := range strings.Fields(out) {
		if len(f) == 32 && strings.ToUpper(f) == f {
			id = f
		}
	}
	if id == "" {
		t.Fatalf("no message id in the send output:\n%s", out)
	}
	c.ok("send", "orders", "order 1002", "--key", "order-1002")
	got := c.ok("message", "get", id)
	for _, want := range []string{id, "orders broker-a#", "offset 0", "tags:", "paid", "keys:", "order-1001", "order 1001 paid"} {
		if !strings.Contains(got, want) {
			t.Fatalf("message get lacks %q:\n%s", want, got)
		}
	}
	if got := c.ok("message", "find", "--topic", "orders", "--key", "order-1002"); !strings.Contains(got, "order 1002") || strings.Contains(got, "1001 paid") {
		t.Fatalf("message find:\n%s", got)
	}
	if got := c.ok("message", "get", id, "--body", "raw"); got != "order 1001 paid" {
		t.Fatalf("raw body %q", got)
	}
	if got := c.ok("message", "get", id, "--body", "hex", "--output", "json"); !strings.Contains(got, `"body_hex": "6f7264657220313030312070616964"`) {
		t.Fatalf("hex body:\n%s", got)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		if got := c.ok("message", "list", "--topic", "orders", "--since", "1m"); strings.Count(got, "msg id:") != 2 {
			return errString("list shows:\n" + got)
		}
		return nil
	})
	c.fails("no stored message has id", "message", "get", "00000000000000000000000000000000")
	c.fails("not hex", "message", "get", "xyz")
	c.fails("--key is required", "message", "find", "--topic", "orders")
	c.fails("--since", "message", "list", "--topic", "orders", "--since", "yesterday")
	c.fails("--until must be after --since", "message", "list", "--topic", "orders", "--since", "1m", "--until", "2m")
	c.fails("--body", "message", "get", id, "--body", "pdf")
}

// TestMessageTraceCommand: send --trace and consume --trace leave a
// timeline that message trace prints in order.
func TestMessageTraceCommand(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{})
	c := &harness{t: t, ns: cl.NamesrvAddr()}
	c.ok("topic", "create", "orders", "--queues", "1")
	out := c.ok("send", "orders", "traced order", "--trace")
	id := ""
	for _, f := range strings.Fields(out) {
		if len(f) == 32 && strings.ToUpper(f) == f {
			id = f
		}
	}
	c.ok("consume", "orders", "--group", "billing", "--from", "first", "--count", "1", "--trace")
	var got string
	e2e.Eventually(t, 20*time.Second, func() error {
		var err error
		got, _, err = c.run("message", "trace", id)
		if err != nil || !strings.Contains(got, "consume") {
			return errString("trace not complete: " + got)
		}
		return nil
	})
	send, deliver, consume := strings.Index(got, "send"), strings.Index(got, "deliver"), strings.Index(got, "consume")
	if send < 0 || deliver < send || consume < deliver || !strings.Contains(got, "success") || !strings.Contains(got, "billing") {
		t.Fatalf("trace:\n%s", got)
	}
	c.fails("no trace records", "message", "trace", "00000000000000000000000000000000")
}
