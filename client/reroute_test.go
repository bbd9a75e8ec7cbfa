package client_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// raceSelector creates the topic with fewer queues the first time it is
// asked to pick blind (an auto-create route), then picks the last queue
// offered, as if another client had created the topic between this
// producer's route look-up and its send.
type raceSelector struct {
	create func()
	mu     sync.Mutex
	calls  []int // queue counts offered, in order
}

func (s *raceSelector) Select(_ *client.Message, queues []client.Queue) client.Queue {
	s.mu.Lock()
	first := len(s.calls) == 0
	s.calls = append(s.calls, len(queues))
	s.mu.Unlock()
	if first {
		s.create()
	}
	return queues[len(queues)-1]
}

// TestAutoCreateSendReroutesWhenTopicExists: a send that looked up an
// unknown topic picks a queue among AutoCreateQueues (8); the topic is
// created meanwhile with 4, so the broker refuses queue 7. The producer
// looks the route up again and stores the message on a real queue
// instead of failing with "queue 7 of topic ... (it has 4)".
func TestAutoCreateSendReroutesWhenTopicExists(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	a, err := client.NewAdmin(client.AdminConfig{NameServers: c.NamesrvAddrs(), Logger: e2e.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const topic = "raced"
	sel := &raceSelector{create: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := a.CreateTopic(ctx, client.TopicSpec{Name: topic, Queues: 4}); err != nil {
			t.Errorf("create topic: %v", err)
		}
	}}
	p := newProducer(t, c, func(cfg *client.ProducerConfig) {
		cfg.AutoCreateQueues = 8
		cfg.QueueSelector = sel
	})
	res, err := p.Send(ctxT(t, 20*time.Second), &client.Message{Topic: topic, Body: []byte("first")})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if res.QueueID != 3 {
		t.Errorf("stored on queue %d, want 3 (the last of the topic's 4)", res.QueueID)
	}
	sel.mu.Lock()
	defer sel.mu.Unlock()
	if len(sel.calls) < 2 || sel.calls[0] != 8 || sel.calls[len(sel.calls)-1] != 4 {
		t.Errorf("selector offered %v queues, want 8 first and 4 last", sel.calls)
	}
}
