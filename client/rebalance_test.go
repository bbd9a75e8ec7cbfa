package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// producerLoop sends numbered messages one by one until stop is closed
// and returns the acknowledged bodies.
func producerLoop(t *testing.T, p *client.Producer, topic string, keys int, stop <-chan struct{}) <-chan []string {
	out := make(chan []string, 1)
	go func() { // ends when stop closes
		var acked []string
		seq := make([]int, max(keys, 1))
		for i := 0; ; i++ {
			select {
			case <-stop:
				out <- acked
				return
			default:
			}
			m := &client.Message{Topic: topic}
			if keys > 0 {
				k := i % keys
				m.ShardingKey = fmt.Sprintf("key%d", k)
				m.Body = fmt.Appendf(nil, "key%d:%d", k, seq[k])
			} else {
				m.Body = fmt.Appendf(nil, "m-%d", i)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := p.Send(ctx, m)
			cancel()
			if err != nil {
				t.Errorf("send %s: %v", m.Body, err)
				out <- acked
				return
			}
			if keys > 0 {
				seq[i%keys]++
			}
			acked = append(acked, string(m.Body))
		}
	}()
	return out
}

func owned(cs ...*client.Consumer) []int {
	var n []int
	for _, c := range cs {
		n = append(n, len(c.Stats().Owned))
	}
	return n
}

func waitOwned(t *testing.T, want []int, cs ...*client.Consumer) {
	t.Helper()
	e2e.Eventually(t, 20*time.Second, func() error {
		got := owned(cs...)
		for i := range want {
			if got[i] != want[i] {
				return fmt.Errorf("owned queues %v, want %v", got, want)
			}
		}
		return nil
	})
}

// TestConsumerJoinLeaveExactlyOnce: members join and leave a group while
// messages flow; with no failure injected every message is consumed
// exactly once by the group.
func TestConsumerJoinLeaveExactlyOnce(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "jl", 8)
	p := newProducer(t, c, nil)
	ctx := ctxT(t, 120*time.Second)
	r := newRecorder()
	mk := func(name string) *client.Consumer {
		cons := newConsumer(t, c, "jlg", map[string]string{"jl": "*"}, func(cfg *client.ConsumerConfig) {
			cfg.ClientID = name
			cfg.HeartbeatInterval = 200 * time.Millisecond
			cfg.CommitInterval = 200 * time.Millisecond
		})
		if err := cons.Start(ctx, pushInto(r, name)); err != nil {
			t.Fatal(err)
		}
		return cons
	}
	stop := make(chan struct{})
	ackedCh := producerLoop(t, p, "jl", 0, stop)

	start := time.Now()
	a := mk("A")
	waitOwned(t, []int{8}, a)
	b := mk("B")
	waitOwned(t, []int{4, 4}, a, b)
	cc := mk("C")
	waitOwned(t, []int{3, 3, 2}, a, b, cc)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitOwned(t, []int{4, 4}, b, cc)
	d := mk("D")
	waitOwned(t, []int{3, 3, 2}, b, cc, d)
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitOwned(t, []int{4, 4}, cc, d)
	if err := cc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitOwned(t, []int{8}, d)
	close(stop)
	acked := <-ackedCh
	r.waitDistinct(t, len(acked), 20*time.Second)
	t.Logf("%d messages sent and consumed over %v of joins and leaves; duplicates %d", len(acked), time.Since(start), r.dups())
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, body := range acked {
		if n := r.count[body]; n != 1 {
			t.Errorf("%s consumed %d times, want exactly once", body, n)
		}
	}
	per := map[string]int{}
	for _, who := range r.by {
		per[who]++
	}
	t.Logf("consumed per member: %v", per)
}
