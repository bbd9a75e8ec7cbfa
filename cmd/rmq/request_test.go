package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestRequest: rmq request prints the reply of a responder (rmq's
// Consumer.Reply) as is, or with --output json its correlation id and
// properties; with no responder it fails in one line at --timeout.
func TestRequest(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{})
	c := &harness{t: t, ns: cl.NamesrvAddr()}
	c.ok("topic", "create", "rpc", "--queues", "2")
	c.ok("topic", "create", "nobody", "--queues", "1")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cons, err := client.NewConsumer(client.ConsumerConfig{NameServers: []string{cl.NamesrvAddr()}, Group: "responders",
		Subscriptions: map[string]string{"rpc": "*"}, From: client.FromFirst, LongPollWait: time.Second, Logger: e2e.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close(context.Background())
	// Delivery is at least once: a request whose send was retried across
	// a leader change, or redelivered, can reach the responder again after
	// rmq request has its reply and has exited, and then its reply fails
	// (the requester is gone). Only such repeats may fail.
	var mu sync.Mutex
	deliveries := map[string]int{}
	failed := map[string]error{}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for corr, err := range failed {
			if deliveries[corr] < 2 {
				t.Errorf("reply to request %s, delivered once: %v", corr, err)
			}
		}
	}()
	if err := cons.Start(ctx, func(ctx context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		for _, m := range msgs {
			corr := m.Properties[client.PropCorrelationID]
			mu.Lock()
			deliveries[corr]++
			mu.Unlock()
			reply := "re:" + string(m.Body) + "\ttag=" + m.Tags + " p=" + m.Properties["p"]
			if err := cons.Reply(ctx, m, []byte(reply)); err != nil {
				mu.Lock()
				failed[corr] = err
				mu.Unlock()
			}
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}

	if out := c.ok("request", "rpc", "hello", "--tag", "t1", "--property", "p=v"); out != "re:hello\ttag=t1 p=v\n" {
		t.Fatalf("rmq request printed %q, want the reply body and a newline", out)
	}
	r := decode[requestReply](t, c.ok("request", "rpc", "json please", "-o", "json"))
	if r.Body != "re:json please\ttag= p=" || r.CorrelationID == "" || r.Properties[client.PropCorrelationID] != r.CorrelationID ||
		r.Topic != "rmq_REPLY_TOPIC" || r.BrokerGroup == "" || r.RoundTripMS <= 0 {
		t.Fatalf("rmq request -o json: %+v", r)
	}
	c.fails("no reply within 1s (does a responder consume nobody and reply?)", "request", "nobody", "anyone?", "--timeout", "1s")
	c.fails("body is empty", "request", "rpc", "")
	if _, _, err := c.run("request"); err == nil || !strings.Contains(err.Error(), "TOPIC") {
		t.Fatalf("rmq request without a topic: %v", err)
	}
}
