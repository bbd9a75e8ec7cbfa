package rocketmq_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// Helpers around the unmodified rocketmq-client-go v2.1.2 API. Every
// producer and consumer gets its own instance name, so each has its own
// internal client (the library shares one per ip@instance, and refuses a
// second one with other NameServers), and is shut down by t.Cleanup; the
// table below lets TestMain check that none is left running.

// clientTable holds every RocketMQ producer and consumer not shut down.
type clientTable struct {
	mu   sync.Mutex
	open map[*tracked]struct{}
}

var rocketClients = &clientTable{open: map[*tracked]struct{}{}}

// tracked is one started RocketMQ client; Shutdown is idempotent.
type tracked struct {
	name     string
	once     sync.Once
	shutdown func() error
	err      error
}

func track(name string, shutdown func() error) *tracked {
	c := &tracked{name: name, shutdown: shutdown}
	rocketClients.mu.Lock()
	rocketClients.open[c] = struct{}{}
	rocketClients.mu.Unlock()
	return c
}

func (c *tracked) Shutdown() error {
	c.once.Do(func() {
		c.err = c.shutdown()
		rocketClients.mu.Lock()
		delete(rocketClients.open, c)
		rocketClients.mu.Unlock()
	})
	return c.err
}

func (ct *clientTable) shutdownAll() []string {
	ct.mu.Lock()
	var cs []*tracked
	var names []string
	for c := range ct.open {
		cs = append(cs, c)
		names = append(names, c.name)
	}
	ct.mu.Unlock()
	for _, c := range cs {
		_ = c.Shutdown()
	}
	sort.Strings(names)
	return names
}

func (ct *clientTable) count() int {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return len(ct.open)
}

// skipUnderRace skips a test that drives RocketMQ clients when the race
// detector is on: rocketmq-client-go v2.1.2 has known data races of its
// own (apache/rocketmq-client-go#790, #1115), which would fail the test
// whatever rmq does. RMQ_E2E_RACE=1 runs them under -race anyway.
func skipUnderRace(t testing.TB) {
	t.Helper()
	if raceEnabled && os.Getenv("RMQ_E2E_RACE") != "1" {
		t.Skip("rocketmq-client-go v2.1.2 is not race-clean; run without -race (or set RMQ_E2E_RACE=1)")
	}
}

// uniqueName is prefix, the test's name and a random suffix, within
// RocketMQ's topic and group alphabet [a-zA-Z0-9_-] and length limits.
func uniqueName(t testing.TB, prefix string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, strings.TrimPrefix(t.Name(), "Test"))
	if len(name) > 60 {
		name = name[:60]
	}
	return prefix + "_" + name + "_" + hex.EncodeToString(b[:])
}

// rocketProducer is a started RocketMQ producer.
type rocketProducer struct {
	rocketmq.Producer
	tr *tracked
}

func (p *rocketProducer) Shutdown() error { return p.tr.Shutdown() }

// newProducer starts a RocketMQ producer on NameServer ns with its own
// group and instance name; opts come after the defaults and win.
func newProducer(t testing.TB, ns string, opts ...producer.Option) *rocketProducer {
	t.Helper()
	name := uniqueName(t, "P")
	base := []producer.Option{
		producer.WithNameServer(primitive.NamesrvAddr{ns}),
		producer.WithGroupName(name),
		producer.WithInstanceName(name),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(3 * time.Second),
	}
	p, err := rocketmq.NewProducer(append(base, opts...)...)
	if err != nil {
		t.Fatalf("new RocketMQ producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start RocketMQ producer: %v", err)
	}
	rp := &rocketProducer{Producer: p, tr: track("producer "+name, p.Shutdown)}
	t.Cleanup(func() { _ = rp.Shutdown() })
	return rp
}

// rocketConsumer is a started RocketMQ push consumer.
type rocketConsumer struct {
	rocketmq.PushConsumer
	tr *tracked
}

func (c *rocketConsumer) Shutdown() error { return c.tr.Shutdown() }

type handler = func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error)

// subAll subscribes to every tag.
var subAll = consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}

// newPushConsumer starts a RocketMQ push consumer of group on topic.
// Defaults: clustering, from the first offset (for a group with no
// committed offset), its own instance name; opts come after and win.
func newPushConsumer(t testing.TB, ns, group, topic string, sel consumer.MessageSelector, h handler, opts ...consumer.Option) *rocketConsumer {
	t.Helper()
	instance := uniqueName(t, "C")
	base := []consumer.Option{
		consumer.WithNameServer(primitive.NamesrvAddr{ns}),
		consumer.WithGroupName(group),
		consumer.WithInstance(instance),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	}
	c, err := rocketmq.NewPushConsumer(append(base, opts...)...)
	if err != nil {
		t.Fatalf("new RocketMQ push consumer: %v", err)
	}
	if err := c.Subscribe(topic, sel, h); err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	// A failed Start has shut the consumer down itself (no route) or never
	// started it (bad options): calling Shutdown then would touch state
	// that only a started consumer has.
	if err := c.Start(); err != nil {
		t.Fatalf("start RocketMQ push consumer of %s: %v", topic, err)
	}
	rc := &rocketConsumer{PushConsumer: c, tr: track("consumer "+group+" "+instance, c.Shutdown)}
	t.Cleanup(func() { _ = rc.Shutdown() })
	return rc
}

// removeLocalOffsets deletes the offset files that broadcasting
// consumers of group keep in the library's local store
// ($rocketmq.client.localOffsetStoreDir, default $HOME/.rocketmq_client_go;
// v2.1.2 writes <store>/<group>/<ip>@<instance>/offset.json), and the
// store directory itself if this test created it and left it empty. Call
// it before starting the consumers: cleanups run last-in first-out, and
// the consumers write their offsets when they shut down.
func removeLocalOffsets(t testing.TB, group string) {
	t.Helper()
	dir := os.Getenv("rocketmq.client.localOffsetStoreDir")
	if dir == "" {
		dir = filepath.Join(os.Getenv("HOME"), ".rocketmq_client_go")
	}
	_, err := os.Stat(dir)
	existed := err == nil
	t.Cleanup(func() {
		if err := os.RemoveAll(filepath.Join(dir, group)); err != nil {
			t.Errorf("remove local offsets: %v", err)
		}
		if !existed {
			_ = os.Remove(dir) // only if empty
		}
	})
}

// msgSpec is a message to send: a unique body plus what must arrive.
type msgSpec struct {
	body  string
	tag   string
	keys  []string
	props map[string]string
}

func (s msgSpec) message(topic string) *primitive.Message {
	m := primitive.NewMessage(topic, []byte(s.body))
	for k, v := range s.props {
		m.WithProperty(k, v)
	}
	if s.tag != "" {
		m.WithTag(s.tag)
	}
	if len(s.keys) > 0 {
		m.WithKeys(s.keys)
	}
	return m
}

// check compares a received message with what was sent.
func (s msgSpec) check(m *primitive.MessageExt) error {
	var bad []string
	if string(m.Body) != s.body {
		bad = append(bad, fmt.Sprintf("body %q, want %q", m.Body, s.body))
	}
	if m.GetTags() != s.tag {
		bad = append(bad, fmt.Sprintf("tag %q, want %q", m.GetTags(), s.tag))
	}
	if want := strings.Join(s.keys, primitive.PropertyKeySeparator); m.GetKeys() != want {
		bad = append(bad, fmt.Sprintf("keys %q, want %q", m.GetKeys(), want))
	}
	for k, v := range s.props {
		if got := m.GetProperty(k); got != v {
			bad = append(bad, fmt.Sprintf("property %s=%q, want %q", k, got, v))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("message %s: %s", s.body, strings.Join(bad, "; "))
	}
	return nil
}

// collector records what a push consumer delivered, by body.
type collector struct {
	mu    sync.Mutex
	count map[string]int
	first map[string]*primitive.MessageExt
	order []string // bodies in delivery order, first deliveries only
}

func newCollector() *collector {
	return &collector{count: map[string]int{}, first: map[string]*primitive.MessageExt{}}
}

func (c *collector) add(msgs ...*primitive.MessageExt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		b := string(m.Body)
		if c.count[b] == 0 {
			c.first[b] = m
			c.order = append(c.order, b)
		}
		c.count[b]++
	}
}

// handle is a push consumer handler that records and acknowledges.
func (c *collector) handle(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	c.add(msgs...)
	return consumer.ConsumeSuccess, nil
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.count)
}

// duplicates counts deliveries beyond the first of each message.
func (c *collector) duplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.count {
		n += k - 1
	}
	return n
}

func (c *collector) has(body string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count[body] > 0
}

func (c *collector) get(body string) *primitive.MessageExt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first[body]
}

func (c *collector) bodies() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.count))
	for k, v := range c.count {
		out[k] = v
	}
	return out
}

// waitFor waits until every body in want was delivered.
func (c *collector) waitFor(t testing.TB, timeout time.Duration, want []string) {
	t.Helper()
	eventually(t, timeout, "consume", func() error {
		missing := c.missing(want)
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d messages not delivered yet (e.g. %s)", len(missing), len(want), sample(missing))
		}
		return nil
	})
}

func (c *collector) missing(want []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, b := range want {
		if c.count[b] == 0 {
			out = append(out, b)
		}
	}
	return out
}

// sample shows at most five of xs.
func sample(xs []string) string {
	sort.Strings(xs)
	if len(xs) > 5 {
		return strings.Join(xs[:5], ", ") + ", ..."
	}
	return strings.Join(xs, ", ")
}

// compareSets reports what differs between the sent and the delivered
// bodies: missing ones and unexpected ones.
func compareSets(sent []string, got map[string]int) (missing, unexpected []string) {
	want := make(map[string]bool, len(sent))
	for _, b := range sent {
		want[b] = true
		if got[b] == 0 {
			missing = append(missing, b)
		}
	}
	for b := range got {
		if !want[b] {
			unexpected = append(unexpected, b)
		}
	}
	return missing, unexpected
}

// sendCtx is the context of one send: a little over the producer's own
// timeout and retries, so a hung connection cannot stall a test.
func sendCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 15*time.Second)
}

// mustSendSync sends one message and fails the test unless it was stored.
func mustSendSync(t testing.TB, p rocketmq.Producer, msgs ...*primitive.Message) *primitive.SendResult {
	t.Helper()
	ctx, cancel := sendCtx()
	defer cancel()
	res, err := p.SendSync(ctx, msgs...)
	if err != nil {
		t.Fatalf("RocketMQ SendSync to %s: %v", msgs[0].Topic, err)
	}
	if res.Status != primitive.SendOK {
		t.Fatalf("RocketMQ SendSync to %s: status %d, want SendOK: %s", msgs[0].Topic, res.Status, res)
	}
	return res
}
