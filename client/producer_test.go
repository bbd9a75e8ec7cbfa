package client_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

func TestProducerSendModes(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "modes", 4)
	p := newProducer(t, c, nil)
	ctx := ctxT(t, 30*time.Second)

	start := time.Now()
	res, err := p.Send(ctx, &client.Message{Topic: "modes", Tags: "a", Keys: []string{"k1"}, Body: []byte("sync-0")})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	t.Logf("first sync send %v (includes route lookup): %+v", time.Since(start), res)
	if len(res.MsgID) != 32 || strings.ToUpper(res.MsgID) != res.MsgID {
		t.Errorf("MsgID %q, want 32 upper-case hex", res.MsgID)
	}
	start = time.Now()
	if _, err := p.Send(ctx, &client.Message{Topic: "modes", Body: []byte("sync-1")}); err != nil {
		t.Fatal(err)
	}
	t.Logf("second sync send %v", time.Since(start))

	// Async: 200 sends coalesced into few requests.
	var mu sync.Mutex
	var errs []error
	offsets := map[string]bool{}
	for i := 0; i < 200; i++ {
		p.SendAsync(ctx, &client.Message{Topic: "modes", Body: fmt.Appendf(nil, "async-%d", i)}, func(r client.SendResult, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			offsets[fmt.Sprintf("%d/%d", r.QueueID, r.QueueOffset)] = true
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 || len(offsets) != 200 {
		t.Fatalf("async: %d errors (%v), %d distinct positions, want 0 and 200", len(errs), errs, len(offsets))
	}

	// Batch: one queue, consecutive offsets.
	var batch []*client.Message
	for i := 0; i < 10; i++ {
		batch = append(batch, &client.Message{Topic: "modes", Body: fmt.Appendf(nil, "batch-%d", i)})
	}
	rs, err := p.SendBatch(ctx, batch)
	if err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].QueueID != rs[0].QueueID || rs[i].QueueOffset != rs[0].QueueOffset+uint64(i) {
			t.Fatalf("batch result %d = %+v, want queue %d offset %d", i, rs[i], rs[0].QueueID, rs[0].QueueOffset+uint64(i))
		}
	}

	// One-way, then check it arrives via TopicStatus totals.
	if err := p.SendOneway(ctx, &client.Message{Topic: "modes", Body: []byte("oneway")}); err != nil {
		t.Fatalf("SendOneway: %v", err)
	}
	a := newAdmin(t, c)
	e2e.Eventually(t, 5*time.Second, func() error {
		st, err := a.TopicStatus(ctx, "modes")
		if err != nil {
			return err
		}
		var total uint64
		for _, q := range st {
			total += q.MaxOffset - q.MinOffset
		}
		if want := uint64(2 + 200 + 10 + 1); total != want {
			return fmt.Errorf("topic holds %d messages, want %d", total, want)
		}
		return nil
	})
}

func TestProducerRejectsBadInput(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	p := newProducer(t, c, func(cfg *client.ProducerConfig) { cfg.MaxMessageSize = 1024 })
	ctx := ctxT(t, 10*time.Second)

	_, err := p.Send(ctx, &client.Message{Topic: "big", Body: make([]byte, 2000)})
	if !errors.Is(err, client.ErrMessageTooLarge) || !strings.Contains(err.Error(), "2000") || !strings.Contains(err.Error(), "1024") {
		t.Errorf("oversized body: got %v, want ErrMessageTooLarge naming 2000 and 1024", err)
	}
	for _, topic := range []string{"", "has space", "bad/slash", strings.Repeat("x", 128)} {
		_, err := p.Send(ctx, &client.Message{Topic: topic, Body: []byte("x")})
		if !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("topic %.20q: got %v, want ErrInvalidArgument", topic, err)
		}
	}
}

func TestProducerUnknownTopicWithoutAutoCreate(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	p := newProducer(t, c, func(cfg *client.ProducerConfig) { cfg.AutoCreateQueues = -1 })
	ctx := ctxT(t, 10*time.Second)
	start := time.Now()
	_, err := p.Send(ctx, &client.Message{Topic: "nosuch", Body: []byte("x")})
	if !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("got %v, want ErrTopicNotFound", err)
	}
	t.Logf("failed in %v: %v", time.Since(start), err)
}

func TestProducerAutoCreate(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	p := newProducer(t, c, nil)
	ctx := ctxT(t, 10*time.Second)
	for i := 0; i < 8; i++ {
		if _, err := p.Send(ctx, &client.Message{Topic: "auto", Body: []byte("x")}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	st, err := newAdmin(t, c).TopicStatus(ctx, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != client.DefaultQueues {
		t.Errorf("auto-created topic has %d queues, want DefaultQueues (%d), as topic create", len(st), client.DefaultQueues)
	}
}

func TestProducerBrokerAutoCreateOff(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{Broker: func(cfg *brokerConfig) { cfg.DisableAutoCreate = true }})
	p := newProducer(t, c, nil)
	ctx := ctxT(t, 10*time.Second)
	_, err := p.Send(ctx, &client.Message{Topic: "nosuch", Body: []byte("x")})
	if !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("got %v, want ErrTopicNotFound", err)
	}
}
