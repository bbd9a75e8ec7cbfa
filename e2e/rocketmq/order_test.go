package rocketmq_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// TestOrderlyShardingKey sends interleaved sequences for eight keys with
// the hash queue selector (msg.WithShardingKey) and consumes them with an
// orderly push consumer: every key stays on one queue and its messages
// arrive in the order sent.
func TestOrderlyShardingKey(t *testing.T) {
	skipUnderRace(t)
	const keys, perKey = 8, 50
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 4)
	p := newProducer(t, d.ns, producer.WithQueueSelector(producer.NewHashQueueSelector()))
	run := uniqueName(t, "m")
	queueOf := map[string]int{}
	for seq := 0; seq < perKey; seq++ {
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("order-%d", k)
			s := msgSpec{body: fmt.Sprintf("%s/%s/%02d", run, key, seq), tag: "ord",
				props: map[string]string{"okey": key, "seq": strconv.Itoa(seq)}}
			m := s.message(topic)
			m.WithShardingKey(key)
			res := mustSendSync(t, p, m)
			q, seen := queueOf[key]
			if !seen {
				queueOf[key] = res.MessageQueue.QueueId
			} else if q != res.MessageQueue.QueueId {
				t.Fatalf("key %s sent to queue %d, earlier to %d", key, res.MessageQueue.QueueId, q)
			}
		}
	}

	type delivery struct {
		seq, queue  int
		shardingKey string
	}
	var mu sync.Mutex
	got := map[string][]delivery{}
	var total atomic.Int64
	h := func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			seq, _ := strconv.Atoi(m.GetProperty("seq"))
			key := m.GetProperty("okey")
			got[key] = append(got[key], delivery{seq, m.Queue.QueueId, m.GetShardingKey()})
			total.Add(1)
		}
		return consumer.ConsumeSuccess, nil
	}
	newPushConsumer(t, d.ns, uniqueName(t, "G"), topic, subAll, h, consumer.WithConsumerOrder(true))
	eventually(t, 60*time.Second, "orderly consume", func() error {
		if n := total.Load(); n < keys*perKey {
			return fmt.Errorf("%d of %d messages delivered", n, keys*perKey)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("order-%d", k)
		ds := got[key]
		if len(ds) != perKey {
			t.Errorf("key %s: %d deliveries, want %d", key, len(ds), perKey)
		}
		for i, d := range ds {
			if d.seq != i {
				t.Errorf("key %s: delivery %d has seq %d, want %d (order broken)", key, i, d.seq, i)
				break
			}
			if d.queue != queueOf[key] || d.shardingKey != key {
				t.Errorf("key %s: seq %d from queue %d with SHARDING_KEY %q, want queue %d and %q", key, d.seq, d.queue, d.shardingKey, queueOf[key], key)
				break
			}
		}
	}
	t.Logf("%d keys x %d messages consumed in order over %d queues", keys, perKey, distinctQueues(queueOf))
}

func distinctQueues(m map[string]int) int {
	seen := map[int]bool{}
	for _, q := range m {
		seen[q] = true
	}
	return len(seen)
}

// TestTagFilter subscribes with "a || b" and gets exactly the messages
// tagged a or b. The topic has one queue and the consumer one consume
// goroutine, so delivery follows the queue order: once the last message
// (tagged a) is in, every earlier one would have been too.
func TestTagFilter(t *testing.T) {
	skipUnderRace(t)
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 1)
	p := newProducer(t, d.ns)
	run := uniqueName(t, "m")
	var want []msgSpec
	tags := []string{"a", "b", "c"}
	for i := 0; i < 30; i++ {
		s := msgSpec{body: fmt.Sprintf("%s/%02d", run, i), tag: tags[i%3], keys: []string{"k" + strconv.Itoa(i)}}
		mustSendSync(t, p, s.message(topic))
		if s.tag != "c" {
			want = append(want, s)
		}
	}
	last := msgSpec{body: run + "/last", tag: "a"}
	mustSendSync(t, p, last.message(topic))
	want = append(want, last)

	col := newCollector()
	newPushConsumer(t, d.ns, uniqueName(t, "G"), topic,
		consumer.MessageSelector{Type: consumer.TAG, Expression: "a || b"}, col.handle,
		consumer.WithConsumeGoroutineNums(1))
	col.waitFor(t, 30*time.Second, []string{last.body})
	missing, unexpected := compareSets(specBodies(want), col.bodies())
	if len(missing) > 0 || len(unexpected) > 0 {
		t.Errorf("filter a || b: %d missing (%s), %d unexpected (%s)", len(missing), sample(missing), len(unexpected), sample(unexpected))
	}
	for _, s := range want {
		if m := col.get(s.body); m != nil {
			if err := s.check(m); err != nil {
				t.Error(err)
			}
		}
	}
}

// TestConsumeFromTimestamp starts a new group at a timestamp between two
// batches of messages on a young queue: it gets only the later batch.
//
// RocketMQ 4.x answers QUERY_CONSUMER_OFFSET for a group with no offset
// with 0 while the queue still holds offset 0, which would defeat
// ConsumeFromTimestamp here; rmq answers QUERY_NOT_FOUND to a group whose
// heartbeat says CONSUME_FROM_TIMESTAMP, so the client searches the
// offset by time (compat/doc.go).
func TestConsumeFromTimestamp(t *testing.T) {
	skipUnderRace(t)
	const n = 20
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 1)
	p := newProducer(t, d.ns)
	run := uniqueName(t, "m")
	for i := 0; i < n; i++ {
		mustSendSync(t, p, primitive.NewMessage(topic, []byte(fmt.Sprintf("%s/before/%02d", run, i))))
	}
	// The Go client takes the timestamp to the second ("20060102150405",
	// UTC): wait for the next whole second, so every earlier message was
	// stored before it and every later one after it. This sleep makes the
	// time condition the test is about; it waits for nothing else.
	boundary := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(boundary) + 10*time.Millisecond)
	var after []string
	for i := 0; i < n; i++ {
		s := msgSpec{body: fmt.Sprintf("%s/after/%02d", run, i)}
		mustSendSync(t, p, s.message(topic))
		after = append(after, s.body)
	}

	col := newCollector()
	newPushConsumer(t, d.ns, uniqueName(t, "G"), topic, subAll, col.handle,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromTimestamp),
		consumer.WithConsumeTimestamp(boundary.UTC().Format("20060102150405")),
		consumer.WithConsumeGoroutineNums(1)) // one queue, in order: the last message comes last
	col.waitFor(t, 30*time.Second, after)
	for b := range col.bodies() {
		if !strings.Contains(b, "/after/") {
			t.Errorf("%s was stored before %s but consumed", b, boundary.Format(time.RFC3339))
		}
	}
}

// TestOffsetsSurviveRestart consumes half of a topic, shuts the consumer
// down (the Go client commits its offsets then) and starts a new member
// of the same group: it gets the other half. The first consumer consumes
// with one goroutine, so its offsets are exactly what it consumed and no
// redelivery is expected; redeliveries are counted and logged.
func TestOffsetsSurviveRestart(t *testing.T) {
	skipUnderRace(t)
	const total, half = 400, 200
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 4)
	p := newProducer(t, d.ns)
	run := uniqueName(t, "m")
	var sent []string
	for i := 0; i < total; i += 10 { // batches of 10, each to one queue
		var batch []*primitive.Message
		for j := i; j < i+10; j++ {
			s := msgSpec{body: fmt.Sprintf("%s/%03d", run, j)}
			batch = append(batch, s.message(topic))
			sent = append(sent, s.body)
		}
		mustSendSync(t, p, batch...)
	}

	group := uniqueName(t, "G")
	first := newCollector()
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	var mu sync.Mutex
	h1 := func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		if first.distinct() < half {
			first.add(msgs...)
			mu.Unlock()
			return consumer.ConsumeSuccess, nil
		}
		mu.Unlock()
		// Hold the one consume goroutine until the consumer is shut
		// down: this message is not consumed, and its queue's offset
		// stays before it.
		<-gate
		return consumer.ConsumeSuccess, nil
	}
	c1 := newPushConsumer(t, d.ns, group, topic, subAll, h1, consumer.WithConsumeGoroutineNums(1))
	eventually(t, 30*time.Second, "first half consumed", func() error {
		if n := first.distinct(); n < half {
			return fmt.Errorf("%d of %d consumed", n, half)
		}
		return nil
	})
	if err := c1.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	release()
	// The shutdown sent the offsets one way; wait until the broker has
	// them so that the next member starts from them.
	err := waitFor(10*time.Second, func() error {
		sum, err := committedOffsets(d.ns, group, topic)
		if err != nil {
			return err
		}
		if sum != half {
			return fmt.Errorf("committed offsets of %s sum to %d, want %d", topic, sum, half)
		}
		return nil
	})
	if err != nil {
		t.Errorf("offsets after shutdown (read with rmq's admin client): %v", err)
	}

	second := newCollector()
	newPushConsumer(t, d.ns, group, topic, subAll, second.handle)
	var rest []string
	for _, b := range sent {
		if !first.has(b) {
			rest = append(rest, b)
		}
	}
	second.waitFor(t, 60*time.Second, rest)
	redelivered := 0
	for b := range second.bodies() {
		if first.has(b) {
			redelivered++
		}
	}
	t.Logf("first member consumed %d, second %d more; %d of the first half redelivered, %d duplicate deliveries in the second run",
		first.distinct(), len(rest), redelivered, second.duplicates())
	if redelivered > 0 && err == nil {
		t.Errorf("%d messages consumed before the restart were delivered again although their offsets were committed", redelivered)
	}
}
