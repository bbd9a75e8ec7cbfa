package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// responder starts a push consumer of topic that answers every request
// by reply(request) through Consumer.Reply; it returns the requests seen.
func responder(t *testing.T, c *e2e.Cluster, topic string, reply func(*client.MessageExt) []byte) *requestLog {
	t.Helper()
	log := &requestLog{}
	cons := newConsumer(t, c, "responders-"+topic, map[string]string{topic: "*"}, func(cfg *client.ConsumerConfig) {
		cfg.LongPollWait = time.Second
	})
	if err := cons.Start(ctxT(t, 10*time.Second), func(ctx context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		for _, m := range msgs {
			log.add(m)
			body := reply(m)
			if body == nil {
				continue
			}
			if err := cons.Reply(ctx, m, body); err != nil {
				log.fail(err)
			}
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}
	return log
}

type requestLog struct {
	mu   sync.Mutex
	seen []*client.MessageExt
	errs []error
}

func (l *requestLog) add(m *client.MessageExt) {
	l.mu.Lock()
	l.seen = append(l.seen, m)
	l.mu.Unlock()
}
func (l *requestLog) fail(err error) { l.mu.Lock(); l.errs = append(l.errs, err); l.mu.Unlock() }

func (l *requestLog) replyErrors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

func (l *requestLog) find(body string) *client.MessageExt {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.seen {
		if string(m.Body) == body {
			return m
		}
	}
	return nil
}

// TestRequestReply: a request reaches a responder with its correlation
// id, reply-to client, TTL and the cluster stamped by the broker, and
// the reply comes back to Request. The requester sent a plain message
// first, so its connection predates its first Request.
func TestRequestReply(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "rpc", 4)
	log := responder(t, c, "rpc", func(m *client.MessageExt) []byte { return append([]byte("re:"), m.Body...) })
	p := newProducer(t, c, func(cfg *client.ProducerConfig) { cfg.ClientID = "requester-1" })
	ctx := ctxT(t, 30*time.Second)
	if _, err := p.Send(ctx, &client.Message{Topic: "rpc", Body: []byte("plain")}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		body := fmt.Sprintf("ping-%d", i)
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		reply, err := p.Request(rctx, &client.Message{Topic: "rpc", Body: []byte(body), Properties: map[string]string{"k": "v"}})
		cancel()
		if err != nil {
			t.Fatalf("request %d: %v (responder errors: %v)", i, err, log.replyErrors())
		}
		if got, want := string(reply.Body), "re:"+body; got != want {
			t.Fatalf("reply body %q, want %q", got, want)
		}
		req := log.find(body)
		if req == nil {
			t.Fatalf("the responder never saw %s", body)
		}
		if reply.Properties[client.PropCorrelationID] != req.Properties[client.PropCorrelationID] || req.Properties[client.PropCorrelationID] == "" {
			t.Fatalf("reply correlation id %q, request's %q", reply.Properties[client.PropCorrelationID], req.Properties[client.PropCorrelationID])
		}
		if req.Properties[client.PropReplyTo] != "requester-1" || req.Properties["CLUSTER"] != "rmq" || req.Properties["k"] != "v" {
			t.Fatalf("request properties %v: want REPLY_TO_CLIENT requester-1, CLUSTER rmq, k=v", req.Properties)
		}
		if ttl := req.Properties[client.PropTTL]; ttl == "" || ttl == "0" || len(ttl) > 5 {
			t.Fatalf("request TTL %q, want the budget in ms (about 10000)", ttl)
		}
		if reply.Topic != "rmq_REPLY_TOPIC" || reply.Queue.Group == "" {
			t.Fatalf("reply topic %q group %q, want rmq_REPLY_TOPIC and the pushing group", reply.Topic, reply.Queue.Group)
		}
	}
}

// TestRequestTimeout: with no responder, Request fails at its deadline
// with an error naming the request and matching ErrNoReply and
// context.DeadlineExceeded.
func TestRequestTimeout(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "nobody", 1)
	p := newProducer(t, c, nil)
	if _, err := p.Send(ctxT(t, 10*time.Second), &client.Message{Topic: "nobody", Body: []byte("warm up")}); err != nil {
		t.Fatal(err)
	}
	const budget = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	_, err := p.Request(ctx, &client.Message{Topic: "nobody", Body: []byte("hello?")})
	took := time.Since(start)
	if !errors.Is(err, client.ErrNoReply) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrNoReply and DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "no reply to request ") || !strings.Contains(err.Error(), "within 1s") {
		t.Fatalf("error %q does not say which request went unanswered within what", err)
	}
	if took < budget {
		t.Fatalf("Request gave up after %v, before its %v deadline", took, budget)
	}
	t.Logf("no reply: %v after %v", err, took)
}

// TestRequestLateReplyDropped: a reply to a Request that gave up is
// taken and dropped by the requester (the responder's Reply succeeds),
// and the next Request gets its own reply. A reply to a message that is
// no request is refused locally.
func TestRequestLateReplyDropped(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "late", 1)
	gaveUp := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gaveUp) }) }
	log := responder(t, c, "late", func(m *client.MessageExt) []byte {
		if string(m.Body) == "slow" {
			<-gaveUp
		}
		return append([]byte("re:"), m.Body...)
	})
	t.Cleanup(release) // before the responder's Close: a failed test must not leave its handler blocked
	p := newProducer(t, c, nil)
	if _, err := p.Request(ctxT(t, 15*time.Second), &client.Message{Topic: "late", Body: []byte("warm up")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := p.Request(ctx, &client.Message{Topic: "late", Body: []byte("slow")})
	cancel()
	if !errors.Is(err, client.ErrNoReply) {
		t.Fatalf("slow request: %v, want ErrNoReply", err)
	}
	release()
	reply, err := p.Request(ctxT(t, 15*time.Second), &client.Message{Topic: "late", Body: []byte("fast")})
	if err != nil {
		t.Fatal(err)
	}
	if string(reply.Body) != "re:fast" {
		t.Fatalf("reply %q, want re:fast (not the late re:slow)", reply.Body)
	}
	if errs := log.replyErrors(); len(errs) > 0 {
		t.Fatalf("responder's replies failed: %v", errs)
	}
	err = p.Reply(ctxT(t, 5*time.Second), log.find("fast"), nil)
	if err != nil {
		t.Fatalf("a second reply to an answered request: %v (want it taken and dropped)", err)
	}
	plain := &client.MessageExt{Message: client.Message{Topic: "late", Body: []byte("x")}, Queue: reply.Queue}
	if err := p.Reply(ctxT(t, 5*time.Second), plain, []byte("y")); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("reply to a plain message: %v, want ErrInvalidArgument", err)
	}
}

// TestReplyRequesterGone: once the requester closed, every node of the
// group answers that it is not connected, and Reply says so.
func TestReplyRequesterGone(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "gone", 1)
	got := make(chan *client.MessageExt, 1)
	cons := newConsumer(t, c, "responders", map[string]string{"gone": "*"}, nil)
	if err := cons.Start(ctxT(t, 10*time.Second), func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		for _, m := range msgs {
			got <- m
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, c, func(cfg *client.ProducerConfig) { cfg.ClientID = "gone-requester" })
	done := make(chan error, 1)
	go func() {
		_, err := p.Request(ctxT(t, 30*time.Second), &client.Message{Topic: "gone", Body: []byte("q")})
		done <- err
	}()
	var req *client.MessageExt
	select {
	case req = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the request never reached the consumer")
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Request during Close: %v, want ErrClosed", err)
	}
	// The nodes notice the closed connection asynchronously.
	e2e.Eventually(t, 10*time.Second, func() error {
		err := cons.Reply(ctxT(t, 5*time.Second), req, []byte("a"))
		if err == nil {
			return errors.New("a reply to a closed requester succeeded")
		}
		if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "gone-requester") {
			t.Fatalf("reply to a gone requester: %v, want ErrUnavailable naming it", err)
		}
		return nil
	})
}

// TestRequestRoundTrip logs the request-reply round trip at one client
// (sequential requests, one responder, a 3-node group on loopback). It
// asserts nothing about time.
func TestRequestRoundTrip(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "rtt", 4)
	responder(t, c, "rtt", func(m *client.MessageExt) []byte { return m.Body })
	p := newProducer(t, c, nil)
	body := make([]byte, 128)
	ctx := ctxT(t, 120*time.Second)
	n := 300
	if testing.Short() {
		n = 50
	}
	var rtts []time.Duration
	for i := range n + 20 {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := p.Request(rctx, &client.Message{Topic: "rtt", Body: body})
		cancel()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if i >= 20 { // the first ones also find routes and connections
			rtts = append(rtts, time.Since(start))
		}
	}
	slices.Sort(rtts)
	pct := func(q float64) time.Duration { return rtts[int(q*float64(len(rtts)-1))] }
	t.Logf("request-reply round trip, %d sequential requests of 128 B, 1 client: min %v p50 %v p90 %v p99 %v max %v",
		len(rtts), rtts[0], pct(0.5), pct(0.9), pct(0.99), rtts[len(rtts)-1])
}

// TestRequestPopResponder: a SimpleConsumer receives the request and
// answers it with its own Reply.
func TestRequestPopResponder(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "poprpc", 2)
	sc := newSimple(t, c, "pop-responders", map[string]string{"poprpc": "*"}, nil)
	p := newProducer(t, c, nil)
	done := make(chan error, 1)
	var reply *client.MessageExt
	go func() {
		var err error
		reply, err = p.Request(ctxT(t, 20*time.Second), &client.Message{Topic: "poprpc", Body: []byte("pop?")})
		done <- err
	}()
	e2e.Eventually(t, 15*time.Second, func() error {
		ms, err := sc.Receive(ctxT(t, 5*time.Second), 1, 10*time.Second)
		if err != nil || len(ms) == 0 {
			return fmt.Errorf("nothing received yet (%v)", err)
		}
		if err := sc.Reply(ctxT(t, 5*time.Second), ms[0].MessageExt, []byte("popped")); err != nil {
			t.Fatalf("reply: %v", err)
		}
		return sc.Ack(ctxT(t, 5*time.Second), ms[0].Handle)
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if string(reply.Body) != "popped" {
		t.Fatalf("reply %q, want popped", reply.Body)
	}
}
