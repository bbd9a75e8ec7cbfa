package client_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestPipelinedSendsKeepQueueOrder: SendAsync of one sharding key with
// small requests, four of them in flight at once, stores the messages in
// the order they were sent (the broker takes a connection's sends in frame
// order), and the callbacks run in that order too.
func TestPipelinedSendsKeepQueueOrder(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{Nodes: 3})
	createTopic(t, c, "piped", 4)
	p := newProducer(t, c, func(cfg *client.ProducerConfig) {
		cfg.MaxInflightRequests = 4
		cfg.MaxBatchMessages = 3 // many small requests, so several are in flight
		// A send that times out in the queue is retried behind later ones
		// (order is kept only without failures); under -race on a loaded
		// machine 1 000 small requests can take longer than the default.
		cfg.SendTimeout = time.Minute
	})
	const n = 3000
	ctx := ctxT(t, 60*time.Second)
	// Learn the route and leader first: SendAsync without them takes the
	// slow path, a goroutine per message, whose order nothing keeps.
	if _, err := p.Send(ctx, &client.Message{Topic: "piped", ShardingKey: "k", Body: []byte("-1")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acked []uint64 // queue offsets in callback order
	var failed int
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		p.SendAsync(ctx, &client.Message{Topic: "piped", ShardingKey: "k", Body: []byte(strconv.Itoa(i))}, func(r client.SendResult, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			acked = append(acked, r.QueueOffset)
		})
	}
	wg.Wait()
	if failed > 0 || len(acked) != n {
		t.Fatalf("%d sends failed, %d acknowledged", failed, len(acked))
	}
	for i := 1; i < n; i++ {
		if acked[i] <= acked[i-1] {
			t.Fatalf("callback %d got offset %d after %d: out of order (producer %+v)", i, acked[i], acked[i-1], p.Stats())
		}
	}
	got := []int{}
	seenWarmUp := false
	done := make(chan struct{})
	cons := newConsumer(t, c, "piped-reader", map[string]string{"piped": "*"}, nil)
	if err := cons.Start(ctx, func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			v, err := strconv.Atoi(string(m.Body))
			if err != nil {
				t.Errorf("body %q", m.Body)
			}
			if v == -1 && !seenWarmUp {
				seenWarmUp = true
				continue
			}
			got = append(got, v)
		}
		if len(got) == n {
			close(done)
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("consumed %d of %d", len(got), n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range got {
		if v != i {
			t.Fatalf("stored message %d is send %d: the queue is out of send order (first 20: %v)", i, v, got[:min(20, len(got))])
		}
	}
}
