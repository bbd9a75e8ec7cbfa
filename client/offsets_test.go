package client_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestConsumerCorrectsOffsetAboveMax: a running consumer whose topic is
// deleted and recreated under it pulls above the new queue's max offset;
// the broker answers offset-moved with the range and the consumer (From
// FromFirst) restarts at the queue's start instead of waiting at an
// offset the new queue has not reached, skipping its first messages.
func TestConsumerCorrectsOffsetAboveMax(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "reborn", 1)
	p := newProducer(t, c, nil)
	a := newAdmin(t, c)
	ctx := ctxT(t, 60*time.Second)
	r := newRecorder()
	cons := newConsumer(t, c, "rebirth", map[string]string{"reborn": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.LongPollWait = time.Second
	})
	if err := cons.Start(ctx, pushInto(r, "c")); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := p.Send(ctx, &client.Message{Topic: "reborn", Body: fmt.Appendf(nil, "old-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	r.waitDistinct(t, 10, 20*time.Second) // the consumer now pulls at offset 10

	if err := a.DeleteTopic(ctx, "reborn"); err != nil {
		t.Fatal(err)
	}
	createTopic(t, c, "reborn", 1)
	for i := range 3 {
		if _, err := p.Send(ctx, &client.Message{Topic: "reborn", Body: fmt.Appendf(nil, "new-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	r.waitDistinct(t, 13, 20*time.Second)
	e2e.Eventually(t, 10*time.Second, func() error {
		d, err := a.DescribeGroup(ctx, "rebirth")
		if err != nil {
			return err
		}
		if len(d.Queues) != 1 || d.Queues[0].ConsumerOffset != 3 {
			return fmt.Errorf("group progress %+v, want committed offset 3 (the new queue's end)", d.Queues)
		}
		return nil
	})
}

// TestCommitAboveMaxRefusedPerQueue: a Poll user commits a batch polled
// before its topic was recreated. The broker refuses that queue's offset
// (above the new queue's end) with ErrOffsetIllegal; the consumer still
// stores the other queue's offset from the same commit.
func TestCommitAboveMaxRefusedPerQueue(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "keep", 1)
	createTopic(t, c, "redo", 1)
	p := newProducer(t, c, nil)
	a := newAdmin(t, c)
	ctx := ctxT(t, 60*time.Second)
	cons := newConsumer(t, c, "stale", map[string]string{"keep": "*", "redo": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.CommitInterval = time.Hour // only the explicit Commit below commits
	})
	for _, topic := range []string{"keep", "redo"} {
		for i := range 5 {
			if _, err := p.Send(ctx, &client.Message{Topic: topic, Body: fmt.Appendf(nil, "%s-%d", topic, i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var batch client.Batch
	got := map[string]int{}
	for range 50 {
		if got["keep"] == 5 && got["redo"] == 5 {
			break
		}
		b, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, qb := range b.Queues {
			if qb.Err == nil {
				got[qb.Queue.Topic] += len(qb.Messages)
				batch.Queues = append(batch.Queues, qb)
			}
		}
	}
	if got["keep"] != 5 || got["redo"] != 5 {
		t.Fatalf("polled %v, want 5 messages of each topic", got)
	}
	if err := a.DeleteTopic(ctx, "redo"); err != nil {
		t.Fatal(err)
	}
	createTopic(t, c, "redo", 1)

	err := cons.Commit(ctx, batch)
	if !errors.Is(err, client.ErrOffsetIllegal) || !strings.Contains(err.Error(), "commit offset 5 of redo/0 is above the queue's max offset 0") {
		t.Errorf("Commit: got %v, want ErrOffsetIllegal naming redo/0 and its max offset 0", err)
	}
	d, err := a.DescribeGroup(ctx, "stale")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range d.Queues {
		want := map[string]uint64{"keep": 5, "redo": 0}[q.Queue.Topic]
		if q.ConsumerOffset != want {
			t.Errorf("%v: committed offset %d, want %d", q.Queue, q.ConsumerOffset, want)
		}
	}
}
