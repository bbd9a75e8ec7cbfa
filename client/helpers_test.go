package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

func newProducer(t *testing.T, c *e2e.Cluster, mod func(*client.ProducerConfig)) *client.Producer {
	t.Helper()
	cfg := client.ProducerConfig{NameServers: []string{c.NamesrvAddr()}, Logger: e2e.TestLogger(t)}
	if mod != nil {
		mod(&cfg)
	}
	p, err := client.NewProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func newAdmin(t *testing.T, c *e2e.Cluster) *client.Admin {
	t.Helper()
	a, err := client.NewAdmin(client.AdminConfig{NameServers: []string{c.NamesrvAddr()}, Logger: e2e.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func newConsumer(t *testing.T, c *e2e.Cluster, group string, subs map[string]string, mod func(*client.ConsumerConfig)) *client.Consumer {
	t.Helper()
	cfg := client.ConsumerConfig{
		NameServers:   []string{c.NamesrvAddr()},
		Group:         group,
		Subscriptions: subs,
		From:          client.FromFirst,
		LongPollWait:  2 * time.Second,
		Logger:        e2e.TestLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	cons, err := client.NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cons.Close(context.Background()) })
	return cons
}

func createTopic(t *testing.T, c *e2e.Cluster, name string, queues uint32) {
	t.Helper()
	a := newAdmin(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.CreateTopic(ctx, client.TopicSpec{Name: name, Queues: queues}); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	// Wait until the NameServer routes the topic.
	e2e.Eventually(t, 10*time.Second, func() error {
		_, err := a.TopicStatus(ctx, name)
		return err
	})
}

// recorder collects consumed messages by body.
type recorder struct {
	mu    sync.Mutex
	count map[string]int
	by    map[string]string         // body -> consumer name (last)
	pos   map[string]map[string]int // body -> "queue@offset" -> deliveries
	total int
}

func newRecorder() *recorder {
	return &recorder{count: map[string]int{}, by: map[string]string{}, pos: map[string]map[string]int{}}
}

func (r *recorder) add(who string, msgs []*client.MessageExt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.count[string(m.Body)]++
		r.by[string(m.Body)] = who
		if r.pos[string(m.Body)] == nil {
			r.pos[string(m.Body)] = map[string]int{}
		}
		r.pos[string(m.Body)][fmt.Sprintf("%v@%d", m.Queue, m.QueueOffset)]++
		r.total++
	}
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

func (r *recorder) waitDistinct(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	e2e.Eventually(t, timeout, func() error {
		if d := r.distinct(); d < n {
			return fmt.Errorf("consumed %d distinct messages, want %d", d, n)
		}
		return nil
	})
}

func (r *recorder) dups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := 0
	for _, c := range r.count {
		d += c - 1
	}
	return d
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dupKinds splits duplicate deliveries into redeliveries of one stored
// message and extra stored copies (a send retried after an indeterminate
// outcome stores the same message twice).
func (r *recorder) dupKinds() (redelivered, storedCopies int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ps := range r.pos {
		storedCopies += len(ps) - 1
		for _, n := range ps {
			redelivered += n - 1
		}
	}
	return redelivered, storedCopies
}
