package drill

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/client"
)

// Config shapes a drill workload.
type Config struct {
	NameServers []string
	TLS         *tls.Config // for every connection of the drill's clients; nil: plaintext
	Topic       string      // default "drill"
	Queues      uint32      // default 8
	Group       string      // consumer group; default "drill-consumers"
	// Producers is the number of producer goroutines; each has its own
	// sharding key, so its messages go to one queue in send order.
	Producers int // default 4
	// Interval paces each producer (0: send back to back).
	Interval time.Duration
	BodySize int // default 128
	// Unkeyed sends without a sharding key: the producer spreads messages
	// over every group's queues and may move a send to another group when
	// one fails (client latency fault tolerance). Per-producer order is
	// then not checked, and a send moved after an unknown outcome may be
	// stored twice (once on each group).
	Unkeyed bool
	Logger  hclog.Logger
}

func (c *Config) defaults() {
	if c.Topic == "" {
		c.Topic = "drill"
	}
	if c.Queues == 0 {
		c.Queues = 8
	}
	if c.Group == "" {
		c.Group = "drill-consumers"
	}
	if c.Producers == 0 {
		c.Producers = 4
	}
	if c.BodySize == 0 {
		c.BodySize = 128
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Workload runs producers and a clustering consumer against a group and
// accounts for every message. Start launches it; Stop ends it and reports.
type Workload struct {
	cfg    Config
	run    string // this run's id: messages of earlier drills on the same topic are ignored
	prod   *client.Producer
	cons   *client.Consumer
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	acked       map[string]ack     // msg key -> ack
	received    map[string]int     // msg key -> deliveries
	stored      map[string][]where // msg key -> distinct stored copies delivered
	lastSeq     map[int]int        // producer -> highest first-delivered seq
	orderErrs   []string           // first few order violations
	disruptions []disruption       // marks, in order
	sendErrs    map[string]int     // error text -> count
	firstAfter  map[int]time.Time  // disruption index -> first ack issued after it
	lastAck     time.Time          // latest acknowledgement, any producer
	pauses      []pause            // gaps between acknowledgements over PauseThreshold
	// gaps holds, per disruption index (-1: before the first mark), the
	// longest gap between acknowledgements ending in its window, however
	// short.
	gaps       map[int]time.Duration
	longestGap time.Duration // longest gap between acknowledgements
}

// where is a stored copy of a message: a redelivery has the same one, a
// second stored copy (a resend stored again) another.
type where struct {
	queue  client.Queue
	offset uint64
}

type ack struct {
	producer, seq int
	issued, at    time.Time
}

// PauseThreshold is the gap between two acknowledgements (from any
// producer) that the report counts as a write pause. Producers send every
// few milliseconds, so a longer gap means the group could not commit.
const PauseThreshold = 100 * time.Millisecond

type pause struct {
	from time.Time
	d    time.Duration
}

type disruption struct {
	name string
	at   time.Time
}

// Start creates the topic if needed and starts the consumer and producers.
func Start(ctx context.Context, cfg Config) (*Workload, error) {
	cfg.defaults()
	admin, err := client.NewAdmin(client.AdminConfig{NameServers: cfg.NameServers, TLS: cfg.TLS})
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if _, err := admin.CreateTopic(ctx, client.TopicSpec{Name: cfg.Topic, Queues: cfg.Queues}); err != nil && !errors.Is(err, client.ErrTopicExists) {
		return nil, fmt.Errorf("drill: create topic %q: %w", cfg.Topic, err)
	}
	w := &Workload{
		cfg: cfg, run: strconv.FormatInt(time.Now().UnixNano(), 36), acked: map[string]ack{}, received: map[string]int{}, stored: map[string][]where{}, lastSeq: map[int]int{},
		sendErrs: map[string]int{}, firstAfter: map[int]time.Time{},
	}
	// Idempotent: a send retried across a forced leader change is stored
	// once (the broker's dedup window), so stored duplicates count as a
	// failure, not as at-least-once noise.
	if w.prod, err = client.NewProducer(client.ProducerConfig{NameServers: cfg.NameServers, TLS: cfg.TLS, SendTimeout: 10 * time.Second,
		Idempotent: true, Logger: cfg.Logger.Named("producer")}); err != nil {
		return nil, err
	}
	w.cons, err = client.NewConsumer(client.ConsumerConfig{
		NameServers: cfg.NameServers, TLS: cfg.TLS, Group: cfg.Group, From: client.FromFirst,
		Subscriptions: map[string]string{cfg.Topic: "*"}, Logger: cfg.Logger.Named("consumer"),
	})
	if err != nil {
		w.prod.Close(ctx)
		return nil, err
	}
	if err := w.cons.Start(ctx, w.consume); err != nil {
		w.prod.Close(ctx)
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for p := 0; p < cfg.Producers; p++ {
		w.wg.Add(1)
		go w.produce(pctx, p) // stopped by Stop through cancel
	}
	return w, nil
}

func key(producer, seq int) string { return strconv.Itoa(producer) + "-" + strconv.Itoa(seq) }

func (w *Workload) produce(ctx context.Context, p int) {
	defer w.wg.Done()
	body := make([]byte, w.cfg.BodySize)
	for seq := 0; ctx.Err() == nil; seq++ {
		k := key(p, seq)
		issued := time.Now()
		msg := &client.Message{
			Topic: w.cfg.Topic, Keys: []string{k}, ShardingKey: "producer-" + strconv.Itoa(p), Body: body,
			Properties: map[string]string{"drill-run": w.run, "drill-producer": strconv.Itoa(p), "drill-seq": strconv.Itoa(seq)},
		}
		if w.cfg.Unkeyed {
			msg.ShardingKey = ""
		}
		_, err := w.prod.Send(ctx, msg)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.sendErrs[err.Error()]++
			w.mu.Unlock()
			seq-- // retry the same sequence number so order stays checkable
			continue
		}
		now := time.Now()
		w.mu.Lock()
		w.acked[k] = ack{producer: p, seq: seq, issued: issued, at: now}
		if !w.lastAck.IsZero() {
			w.longestGap = max(w.longestGap, now.Sub(w.lastAck))
		}
		if !w.lastAck.IsZero() && now.Sub(w.lastAck) > PauseThreshold {
			w.pauses = append(w.pauses, pause{from: w.lastAck, d: now.Sub(w.lastAck)})
		}
		if !w.lastAck.IsZero() {
			i := len(w.disruptions) - 1 // marks are in time order; this gap ends now, after the latest
			if w.gaps == nil {
				w.gaps = map[int]time.Duration{}
			}
			w.gaps[i] = max(w.gaps[i], now.Sub(w.lastAck))
		}
		w.lastAck = now
		for i, d := range w.disruptions {
			if _, done := w.firstAfter[i]; !done && issued.After(d.at) {
				w.firstAfter[i] = now
			}
		}
		w.mu.Unlock()
		if w.cfg.Interval > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(w.cfg.Interval):
			}
		}
	}
}

func (w *Workload) consume(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range msgs {
		if m.Properties["drill-run"] != w.run {
			continue // left over from an earlier drill on this topic
		}
		p, _ := strconv.Atoi(m.Properties["drill-producer"])
		seq, _ := strconv.Atoi(m.Properties["drill-seq"])
		k := key(p, seq)
		w.received[k]++
		if at := (where{m.Queue, m.QueueOffset}); !slices.Contains(w.stored[k], at) {
			w.stored[k] = append(w.stored[k], at)
		}
		if w.received[k] > 1 {
			continue
		}
		if last, ok := w.lastSeq[p]; ok && seq < last && len(w.orderErrs) < 10 && !w.cfg.Unkeyed {
			w.orderErrs = append(w.orderErrs, fmt.Sprintf("producer %d: seq %d delivered after %d", p, seq, last))
		}
		w.lastSeq[p] = max(w.lastSeq[p], seq)
	}
	return client.ConsumeSuccess
}

// Mark records a disruption (a kill, a transfer) happening now; the report
// gives the time from it to the first acknowledged send issued after it.
func (w *Workload) Mark(name string) {
	w.mu.Lock()
	w.disruptions = append(w.disruptions, disruption{name: name, at: time.Now()})
	w.mu.Unlock()
}

// Marks is how many disruptions Mark has recorded.
func (w *Workload) Marks() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.disruptions)
}

// WaitAcked blocks until at least n messages were acknowledged in total.
func (w *Workload) WaitAcked(ctx context.Context, n int) error {
	for {
		w.mu.Lock()
		got := len(w.acked)
		w.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drill: %d of %d messages acknowledged: %w", got, n, ctx.Err())
		case <-time.After(10 * time.Millisecond): // polling the counter
		}
	}
}

// Acked is the number of acknowledged messages so far.
func (w *Workload) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// Stop ends the producers, waits (up to drain) until the consumer has
// received every acknowledged message, stops the consumer and reports.
func (w *Workload) Stop(ctx context.Context, drain time.Duration) (Report, error) {
	w.cancel()
	w.wg.Wait()
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) {
		if w.missing() == 0 {
			break
		}
		select {
		case <-ctx.Done():
			deadline = time.Now()
		case <-time.After(20 * time.Millisecond): // polling for the consumer to catch up
		}
	}
	errs := errors.Join(w.cons.Close(ctx), w.prod.Close(ctx))
	return w.report(), errs
}

func (w *Workload) missing() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for k := range w.acked {
		if w.received[k] == 0 {
			n++
		}
	}
	return n
}
