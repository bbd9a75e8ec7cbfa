package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestPollSurfacesReadPermissionPerQueue: once a topic loses read
// permission the broker refuses its pulls, and a Poll consumer sees the
// refusal on that topic's queue while its other topic keeps flowing.
func TestPollSurfacesReadPermissionPerQueue(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "open", 1)
	createTopic(t, c, "closed", 1)
	p := newProducer(t, c, nil)
	a := newAdmin(t, c)
	ctx := ctxT(t, 60*time.Second)
	cons := newConsumer(t, c, "permg", map[string]string{"open": "*", "closed": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.LongPollWait = 20 * time.Second // a refusal must not wait for it
	})
	send := func(topic, body string) {
		t.Helper()
		if _, err := p.Send(ctx, &client.Message{Topic: topic, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	// pollUntil polls until f accepts a queue batch.
	pollUntil := func(what string, f func(client.QueueBatch) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			pctx, cancel := context.WithDeadline(ctx, deadline)
			b, err := cons.Poll(pctx)
			cancel()
			if err != nil {
				t.Fatalf("waiting for %s: Poll: %v", what, err)
			}
			for _, qb := range b.Queues {
				if qb.Err == nil {
					if err := cons.Commit(ctx, client.Batch{Queues: []client.QueueBatch{qb}}); err != nil {
						t.Fatal(err)
					}
				}
				if f(qb) {
					return
				}
			}
		}
		t.Fatalf("no %s within 20s", what)
	}
	send("open", "o1")
	send("closed", "c1")
	seen := map[string]bool{}
	pollUntil("both first messages", func(qb client.QueueBatch) bool {
		for _, m := range qb.Messages {
			seen[string(m.Body)] = true
		}
		return seen["o1"] && seen["c1"]
	})

	start := time.Now()
	if _, err := a.UpdateTopic(ctx, client.TopicUpdate{Name: "closed", Perm: new(uint8(2))}); err != nil {
		t.Fatal(err)
	}
	pollUntil("a refusal on topic closed", func(qb client.QueueBatch) bool {
		if qb.Err == nil {
			return false
		}
		var ce *client.Error
		if qb.Queue.Topic != "closed" || !errors.Is(qb.Err, client.ErrNoPermission) || !errors.As(qb.Err, &ce) ||
			ce.Retriable || !strings.Contains(qb.Err.Error(), `topic "closed" is not readable`) {
			t.Fatalf("queue %v: got error %v, want a non-retriable ErrNoPermission naming topic closed", qb.Queue, qb.Err)
		}
		return true
	})
	t.Logf("refusal surfaced %v after the perm change", time.Since(start))
	send("open", "o2")
	pollUntil("o2 on topic open", func(qb client.QueueBatch) bool {
		return len(qb.Messages) > 0 && string(qb.Messages[0].Body) == "o2"
	})
}
