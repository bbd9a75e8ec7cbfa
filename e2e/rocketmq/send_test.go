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
)

// devGroup is the broker group name of `rmq dev`, which RocketMQ clients
// see as the brokerName.
const devGroup = "broker-a"

// TestSendModes sends with every mode of the RocketMQ producer (sync,
// async, oneway, a batch to one queue, a body large enough for the client
// to compress) and checks that a push consumer gets each message with its
// body, tag, keys and properties, at the queue and offset the send
// reported.
func TestSendModes(t *testing.T) {
	skipUnderRace(t)
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 4)
	p := newProducer(t, d.ns)
	run := uniqueName(t, "m")
	spec := func(mode string, i int) msgSpec {
		return msgSpec{
			body:  fmt.Sprintf("%s/%s/%d", run, mode, i),
			tag:   "tag-" + mode,
			keys:  []string{fmt.Sprintf("%s-key-%d", mode, i), "shared-key"},
			props: map[string]string{"mode": mode, "seq": strconv.Itoa(i), "note": "a b=c;d"},
		}
	}
	var want []msgSpec
	type placed struct{ queue, offset int64 }
	at := map[string]placed{}  // body -> where SendSync said it was stored
	ids := map[string]string{} // body -> SendResult.MsgID (UNIQ_KEY)

	for i := 0; i < 5; i++ {
		s := spec("sync", i)
		res := mustSendSync(t, p, s.message(topic))
		if res.MessageQueue.Topic != topic || res.MessageQueue.BrokerName != devGroup || res.MsgID == "" {
			t.Errorf("sync send result %s: want topic %s, broker %s and a MsgID", res, topic, devGroup)
		}
		at[s.body] = placed{int64(res.MessageQueue.QueueId), res.QueueOffset}
		ids[s.body] = res.MsgID
		want = append(want, s)
	}

	big := spec("big", 0)
	big.body += "/" + strings.Repeat("0123456789abcdef", 512) // 8 KiB: sent compressed (over 4 KiB)
	mustSendSync(t, p, big.message(topic))
	want = append(want, big)

	var wg sync.WaitGroup
	var asyncErrs []error
	var mu sync.Mutex
	for i := 0; i < 10; i++ {
		s := spec("async", i)
		want = append(want, s)
		wg.Add(1)
		ctx, cancel := sendCtx()
		err := p.SendAsync(ctx, func(_ context.Context, res *primitive.SendResult, err error) {
			defer wg.Done()
			defer cancel()
			if err == nil && res.Status != primitive.SendOK {
				err = fmt.Errorf("status %d", res.Status)
			}
			if err != nil {
				mu.Lock()
				asyncErrs = append(asyncErrs, fmt.Errorf("%s: %w", s.body, err))
				mu.Unlock()
			}
		}, s.message(topic))
		if err != nil {
			wg.Done()
			cancel()
			t.Fatalf("SendAsync: %v", err)
		}
	}
	waitGroup(t, &wg, 30*time.Second, "async send callbacks")
	for _, err := range asyncErrs {
		t.Errorf("async send: %v", err)
	}

	for i := 0; i < 5; i++ {
		s := spec("oneway", i)
		want = append(want, s)
		ctx, cancel := sendCtx()
		err := p.SendOneWay(ctx, s.message(topic))
		cancel()
		if err != nil {
			t.Fatalf("SendOneWay: %v", err)
		}
	}

	var batch []*primitive.Message
	var batchSpecs []msgSpec
	for i := 0; i < 5; i++ {
		s := spec("batch", i)
		batchSpecs = append(batchSpecs, s)
		batch = append(batch, s.message(topic))
	}
	bres := mustSendSync(t, p, batch...)
	want = append(want, batchSpecs...)

	col := newCollector()
	newPushConsumer(t, d.ns, uniqueName(t, "G"), topic, subAll, col.handle)
	col.waitFor(t, 30*time.Second, specBodies(want))

	for _, s := range want {
		m := col.get(s.body)
		if err := s.check(m); err != nil {
			t.Error(err)
		}
		if pl, ok := at[s.body]; ok && (int64(m.Queue.QueueId) != pl.queue || m.QueueOffset != pl.offset) {
			t.Errorf("%s consumed from queue %d offset %d; SendSync said queue %d offset %d", s.body, m.Queue.QueueId, m.QueueOffset, pl.queue, pl.offset)
		}
		if id, ok := ids[s.body]; ok && m.MsgId != id {
			t.Errorf("%s consumed with MsgId %q; SendSync said %q", s.body, m.MsgId, id)
		}
	}
	// A batch is stored in one queue, at consecutive offsets from the
	// one its result reports.
	for i, s := range batchSpecs {
		m := col.get(s.body)
		if m.Queue.QueueId != bres.MessageQueue.QueueId || m.QueueOffset != bres.QueueOffset+int64(i) {
			t.Errorf("batch message %d at queue %d offset %d, want queue %d offset %d", i, m.Queue.QueueId, m.QueueOffset, bres.MessageQueue.QueueId, bres.QueueOffset+int64(i))
		}
	}
	t.Logf("%d messages sent in 5 modes, all consumed; %d duplicate deliveries", len(want), col.duplicates())
}

// TestAutoCreateTopic sends to a topic nobody created: the Go client
// finds no route, falls back to route TBW102 and the broker creates the
// topic on that first send. The topic then exists for rmq's admin client
// and can be consumed.
func TestAutoCreateTopic(t *testing.T) {
	skipUnderRace(t)
	d := startDev(t)
	topic := uniqueName(t, "auto")
	p := newProducer(t, d.ns)
	s := msgSpec{body: uniqueName(t, "first"), tag: "auto", keys: []string{"auto-key"}, props: map[string]string{"p": "v"}}
	res := mustSendSync(t, p, s.message(topic))
	if res.MessageQueue.BrokerName != devGroup {
		t.Errorf("first send went to broker %q, want %s", res.MessageQueue.BrokerName, devGroup)
	}
	a, err := newAdmin(d.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var queues int
	eventually(t, 10*time.Second, "auto-created topic routed", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		qs, err := a.TopicStatus(ctx, topic)
		if err != nil {
			return err
		}
		queues = len(qs)
		if queues == 0 {
			return fmt.Errorf("topic %s has no queues", topic)
		}
		return nil
	})
	t.Logf("topic %s auto-created with %d queues on %s", topic, queues, devGroup)

	col := newCollector()
	newPushConsumer(t, d.ns, uniqueName(t, "G"), topic, subAll, col.handle)
	col.waitFor(t, 30*time.Second, []string{s.body})
	if err := s.check(col.get(s.body)); err != nil {
		t.Error(err)
	}
}

// TestClustering10k sends 10 000 messages, half with SendSync from eight
// goroutines and half with SendAsync, while a clustering push consumer
// consumes them: the consumed set must be exactly the sent set, with
// every tag, key and property intact. Duplicates are counted and logged.
func TestClustering10k(t *testing.T) {
	skipUnderRace(t)
	const total, syncWorkers, asyncWindow = 10000, 8, 128
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 8)
	p := newProducer(t, d.ns)
	run := uniqueName(t, "m")
	spec := func(i int) msgSpec {
		return msgSpec{
			body:  fmt.Sprintf("%s/%05d", run, i),
			tag:   fmt.Sprintf("t%d", i%3),
			keys:  []string{fmt.Sprintf("k%d", i)},
			props: map[string]string{"seq": strconv.Itoa(i)},
		}
	}
	col := newCollector()
	newPushConsumer(t, d.ns, uniqueName(t, "G"), topic, subAll, col.handle)

	mustSendSync(t, p, spec(0).message(topic)) // fails fast if sending does not work at all
	start := time.Now()
	var failed atomic.Int64
	var errMu sync.Mutex
	var firstErrs []error
	fail := func(i int, err error) {
		failed.Add(1)
		errMu.Lock()
		if len(firstErrs) < 5 {
			firstErrs = append(firstErrs, fmt.Errorf("message %d: %w", i, err))
		}
		errMu.Unlock()
	}
	const maxFailures = 20 // then stop sending: the run has failed anyway
	var wg sync.WaitGroup
	// Even numbers go sync, odd ones async.
	var next atomic.Int64
	next.Store(2)
	for w := 0; w < syncWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failed.Load() < maxFailures {
				i := int(next.Add(2) - 2)
				if i >= total {
					return
				}
				ctx, cancel := sendCtx()
				res, err := p.SendSync(ctx, spec(i).message(topic))
				cancel()
				if err == nil && res.Status != primitive.SendOK {
					err = fmt.Errorf("status %d", res.Status)
				}
				if err != nil {
					fail(i, err)
				}
			}
		}()
	}
	window := make(chan struct{}, asyncWindow)
	var asyncWG sync.WaitGroup
	for i := 1; i < total && failed.Load() < maxFailures; i += 2 {
		select {
		case window <- struct{}{}:
		case <-time.After(30 * time.Second):
			t.Fatalf("no async send completed in 30s (%d in flight)", asyncWindow)
		}
		asyncWG.Add(1)
		ctx, cancel := sendCtx()
		err := p.SendAsync(ctx, func(_ context.Context, res *primitive.SendResult, err error) {
			defer func() { cancel(); <-window; asyncWG.Done() }()
			if err == nil && res.Status != primitive.SendOK {
				err = fmt.Errorf("status %d", res.Status)
			}
			if err != nil {
				fail(i, err)
			}
		}, spec(i).message(topic))
		if err != nil {
			cancel()
			<-window
			asyncWG.Done()
			fail(i, err)
		}
	}
	waitGroup(t, &wg, 60*time.Second, "sync senders")
	waitGroup(t, &asyncWG, 60*time.Second, "async send callbacks")
	sendTime := time.Since(start)
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d sends failed, first: %v", n, firstErrs)
	}

	sent := make([]string, total)
	for i := range sent {
		sent[i] = spec(i).body
	}
	col.waitFor(t, 60*time.Second, sent)
	missing, unexpected := compareSets(sent, col.bodies())
	if len(missing) > 0 || len(unexpected) > 0 {
		t.Errorf("consumed set differs from sent set: %d missing (%s), %d unexpected (%s)", len(missing), sample(missing), len(unexpected), sample(unexpected))
	}
	bad := 0
	for i := 0; i < total; i++ {
		if err := spec(i).check(col.get(spec(i).body)); err != nil {
			if bad++; bad <= 5 {
				t.Error(err)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d messages arrived altered", bad, total)
	}
	t.Logf("%d messages sent in %v (%d sync goroutines + async window %d) and consumed in %v; %d duplicate deliveries",
		total, sendTime.Round(time.Millisecond), syncWorkers, asyncWindow, time.Since(start).Round(time.Millisecond), col.duplicates())
}

// TestBroadcasting runs two broadcasting consumers of one group: each
// gets every message.
func TestBroadcasting(t *testing.T) {
	skipUnderRace(t)
	const total = 200
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 4)
	group := uniqueName(t, "G")
	removeLocalOffsets(t, group) // broadcasting keeps offsets in local files
	cols := []*collector{newCollector(), newCollector()}
	for _, col := range cols {
		newPushConsumer(t, d.ns, group, topic, subAll, col.handle, consumer.WithConsumerModel(consumer.BroadCasting))
	}
	p := newProducer(t, d.ns)
	run := uniqueName(t, "m")
	var sent []string
	for i := 0; i < total; i++ {
		s := msgSpec{body: fmt.Sprintf("%s/%03d", run, i), tag: "bc"}
		mustSendSync(t, p, s.message(topic))
		sent = append(sent, s.body)
	}
	for i, col := range cols {
		col.waitFor(t, 30*time.Second, sent)
		if _, unexpected := compareSets(sent, col.bodies()); len(unexpected) > 0 {
			t.Errorf("consumer %d got %d unexpected messages: %s", i, len(unexpected), sample(unexpected))
		}
		t.Logf("broadcasting consumer %d got all %d messages, %d duplicate deliveries", i, total, col.duplicates())
	}
}

func specBodies(specs []msgSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.body
	}
	return out
}

// waitGroup waits for wg, failing the test after timeout.
func waitGroup(t testing.TB, wg *sync.WaitGroup, timeout time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }() // ends when wg does; leaks only on a failed test
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("%s not done after %v", what, timeout)
	}
}
