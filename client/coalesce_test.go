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

// TestCoalescedSendPerMessageErrors: sends for several topics coalesced
// into one request to the leader each get their own outcome. Healthy
// messages are stored although the same requests carry messages for a
// deleted topic and bodies over the broker's (smaller) size limit.
func TestCoalescedSendPerMessageErrors(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{Broker: func(cfg *brokerConfig) { cfg.MaxMessageSize = 1024 }})
	createTopic(t, c, "healthy", 4)
	createTopic(t, c, "doomed", 4)
	p := newProducer(t, c, nil)
	ctx := ctxT(t, 60*time.Second)
	// Cache both routes and the leader, then delete one topic behind the
	// producer's back: its sends now reach the broker and are refused there.
	for _, topic := range []string{"healthy", "doomed"} {
		if _, err := p.Send(ctx, &client.Message{Topic: topic, Body: []byte("warm-up")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := newAdmin(t, c).DeleteTopic(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}

	const n = 60
	var mu sync.Mutex
	outcomes := map[string]error{}
	record := func(body string) func(client.SendResult, error) {
		return func(_ client.SendResult, err error) {
			mu.Lock()
			outcomes[body] = err
			mu.Unlock()
		}
	}
	// SendAsync queues them back to back, so they share requests.
	for i := range n {
		p.SendAsync(ctx, &client.Message{Topic: "healthy", Body: fmt.Appendf(nil, "async-ok-%d", i)}, record(fmt.Sprintf("async-ok-%d", i)))
		p.SendAsync(ctx, &client.Message{Topic: "doomed", Body: fmt.Appendf(nil, "async-gone-%d", i)}, record(fmt.Sprintf("async-gone-%d", i)))
		if i%10 == 0 {
			big := make([]byte, 2000)
			p.SendAsync(ctx, &client.Message{Topic: "healthy", Body: big}, record(fmt.Sprintf("async-big-%d", i)))
		}
	}
	// Concurrent Sends share requests too.
	var wg sync.WaitGroup
	for i := range n {
		for _, kind := range []string{"ok", "gone"} {
			topic := map[string]string{"ok": "healthy", "gone": "doomed"}[kind]
			body := fmt.Sprintf("sync-%s-%d", kind, i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := p.Send(ctx, &client.Message{Topic: topic, Body: []byte(body)})
				record(body)(client.SendResult{}, err)
			}()
		}
	}
	wg.Wait()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	okCount := 0
	for body, err := range outcomes {
		switch {
		case strings.Contains(body, "-ok-"):
			if err != nil {
				t.Errorf("%s: got %v, want it stored", body, err)
			}
			okCount++
		case strings.Contains(body, "-gone-"):
			var ce *client.Error
			if !errors.Is(err, client.ErrTopicNotFound) || !errors.As(err, &ce) || ce.Retriable {
				t.Errorf("%s: got %v, want a non-retriable ErrTopicNotFound", body, err)
			}
		default: // async-big
			if !errors.Is(err, client.ErrMessageTooLarge) {
				t.Errorf("%s: got %v, want ErrMessageTooLarge", body, err)
			}
		}
	}
	if want := 2*n + 2*n + n/10; len(outcomes) != want {
		t.Errorf("got %d outcomes, want %d", len(outcomes), want)
	}
	st, err := newAdmin(t, c).TopicStatus(ctx, "healthy")
	if err != nil {
		t.Fatal(err)
	}
	var stored uint64
	for _, q := range st {
		stored += q.MaxOffset
	}
	if want := uint64(okCount + 1); stored != want { // + the warm-up
		t.Errorf("healthy holds %d messages, want %d", stored, want)
	}
}

// TestSendBatchAllOrNothing: SendBatch stays atomic although the broker
// checks messages one by one: one message over the broker's size limit
// fails the batch and none of it is stored.
func TestSendBatchAllOrNothing(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{Broker: func(cfg *brokerConfig) { cfg.MaxMessageSize = 1024 }})
	createTopic(t, c, "atomic", 1)
	p := newProducer(t, c, nil)
	ctx := ctxT(t, 30*time.Second)
	batch := []*client.Message{
		{Topic: "atomic", Body: []byte("small")},
		{Topic: "atomic", Body: make([]byte, 2000)},
		{Topic: "atomic", Body: []byte("small too")},
	}
	if _, err := p.SendBatch(ctx, batch); !errors.Is(err, client.ErrMessageTooLarge) || !strings.Contains(err.Error(), "message 1") {
		t.Errorf("SendBatch with an oversized message: got %v, want ErrMessageTooLarge naming message 1", err)
	}
	st, err := newAdmin(t, c).TopicStatus(ctx, "atomic")
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].MaxOffset != 0 {
		t.Errorf("after the refused batch: %+v, want nothing stored", st)
	}
}
