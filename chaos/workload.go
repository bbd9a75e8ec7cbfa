package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/client"
)

// WorkloadConfig shapes the clients of a run.
type WorkloadConfig struct {
	NameServers []string
	// Topic is created with Queues queues (default 4). Required; use a
	// fresh name per run.
	Topic  string
	Queues uint32
	// Group is the consumer group. Default "chaos-consumers".
	Group string
	Mode  Mode
	// Producers is the number of concurrent send loops (default 4). When
	// keyed, each has its own sharding key and sends one message at a
	// time (SendAsync waits for the callback), so the key's order is its
	// send order; unkeyed async loops keep Window sends in flight.
	Producers int
	Window    int // default 8
	// Interval paces each loop between sends. Default 5ms.
	Interval time.Duration
	// Consumers is the number of group members (default 2); member i is
	// named c<i> and heartbeats every 200ms (even i) or 1s (odd i), so
	// rebalances after a failover reach them at different times.
	Consumers int
	// Churn, if positive, replaces one consumer every Churn: the oldest
	// member leaves cleanly (commit, unlock, leave) and a new one joins,
	// so queues change hands (orderly locks, offset handovers) during
	// the faults as well.
	Churn time.Duration
	// SendTimeout is the producer's budget per send. Default 5s.
	SendTimeout time.Duration
	// AtLeastOnce turns the producers' dedup off: a retried send may
	// then be stored twice (counted, not a violation).
	AtLeastOnce bool
	Logger      hclog.Logger
}

func (c WorkloadConfig) withDefaults() WorkloadConfig {
	if c.Queues == 0 {
		c.Queues = 4
	}
	if c.Group == "" {
		c.Group = "chaos-consumers"
	}
	if c.Producers == 0 {
		c.Producers = 4
	}
	if c.Window == 0 {
		c.Window = 8
	}
	if c.Interval == 0 {
		c.Interval = 5 * time.Millisecond
	}
	if c.Consumers == 0 {
		c.Consumers = 2
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Workload produces and consumes while the nemesis works, and records
// every operation's history for the checker. Start it with
// StartWorkload; StopProducing, Drain and Close end it in that order.
type Workload struct {
	cfg  WorkloadConfig
	log  hclog.Logger
	run  string
	prod *client.Producer
	cons []*client.Consumer

	stopping  atomic.Bool
	stopOnce  sync.Once
	stopCh    chan struct{}  // closed by StopProducing: ends the pacing waits
	prodWG    sync.WaitGroup // send loops and their async callbacks
	churnWG   sync.WaitGroup
	stopChurn chan struct{}

	mu       sync.Mutex
	h        History
	acked    int
	received map[string]bool // send id -> delivered at least once
	members  int             // consumers started so far, for names
	closed   bool
}

// StartWorkload creates the topic and starts the consumers and
// producers. On error nothing is left running.
func StartWorkload(ctx context.Context, cfg WorkloadConfig) (*Workload, error) {
	cfg = cfg.withDefaults()
	if cfg.Topic == "" || len(cfg.NameServers) == 0 {
		return nil, errors.New("chaos: workload needs a topic and NameServers")
	}
	w := &Workload{cfg: cfg, log: cfg.Logger, run: strconv.FormatInt(time.Now().UnixNano(), 36), received: map[string]bool{},
		stopCh: make(chan struct{})}
	w.h = History{Run: w.run, Topic: cfg.Topic, Queues: cfg.Queues, Mode: cfg.Mode, AtLeastOnce: cfg.AtLeastOnce, Start: time.Now()}
	if err := w.createTopic(ctx); err != nil {
		return nil, err
	}
	var err error
	w.prod, err = client.NewProducer(client.ProducerConfig{NameServers: cfg.NameServers, SendTimeout: cfg.SendTimeout,
		Idempotent: !cfg.AtLeastOnce, Logger: w.log.Named("producer")})
	if err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Consumers; i++ {
		if err := w.addConsumer(ctx); err != nil {
			return nil, errors.Join(err, w.Close(ctx))
		}
	}
	w.stopChurn = make(chan struct{})
	if cfg.Churn > 0 {
		w.churnWG.Add(1)
		go w.churn() // ends when Close closes stopChurn
	}
	for p := 0; p < cfg.Producers; p++ {
		w.prodWG.Add(1)
		go w.produce(p) // ends after StopProducing
	}
	return w, nil
}

// addConsumer starts member c<k>, k the number started before.
func (w *Workload) addConsumer(ctx context.Context) error {
	w.mu.Lock()
	i := w.members
	w.members++
	w.mu.Unlock()
	name := "c" + strconv.Itoa(i)
	hb := 200 * time.Millisecond
	if i%2 == 1 {
		hb = time.Second
	}
	cc, err := client.NewConsumer(client.ConsumerConfig{NameServers: w.cfg.NameServers, Group: w.cfg.Group,
		Subscriptions: map[string]string{w.cfg.Topic: "*"}, From: client.FromFirst, Orderly: w.cfg.Mode.Orderly,
		ClientID: name, HeartbeatInterval: hb, LongPollWait: time.Second, Logger: w.log.Named(name)})
	if err != nil {
		return fmt.Errorf("chaos: consumer %s: %w", name, err)
	}
	if err := cc.Start(ctx, w.handler(name)); err != nil {
		return fmt.Errorf("chaos: start consumer %s: %w", name, err)
	}
	w.mu.Lock()
	w.cons = append(w.cons, cc)
	w.mu.Unlock()
	w.log.Info("consumer joined", "member", name)
	return nil
}

// churn replaces the oldest consumer every Churn until Close.
func (w *Workload) churn() {
	defer w.churnWG.Done()
	for {
		select {
		case <-w.stopChurn:
			return
		case <-time.After(w.cfg.Churn): // the churn period
		}
		w.mu.Lock()
		if len(w.cons) == 0 || w.closed {
			w.mu.Unlock()
			return
		}
		old := w.cons[0]
		w.cons = w.cons[1:]
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := old.Close(ctx); err != nil {
			w.log.Warn("consumer close", "member", old.ClientID(), "error", err)
		}
		w.log.Info("consumer left", "member", old.ClientID())
		err := w.addConsumer(ctx)
		cancel()
		if err != nil {
			w.log.Error("consumer replacement failed", "error", err)
		}
	}
}

func (w *Workload) createTopic(ctx context.Context) error {
	admin, err := client.NewAdmin(client.AdminConfig{NameServers: w.cfg.NameServers, Timeout: 3 * time.Second})
	if err != nil {
		return err
	}
	defer admin.Close()
	return poll(ctx, 100*time.Millisecond, func() error {
		if _, err := admin.CreateTopic(ctx, client.TopicSpec{Name: w.cfg.Topic, Queues: w.cfg.Queues}); err != nil && !errors.Is(err, client.ErrTopicExists) {
			return err
		}
		_, err := admin.TopicStatus(ctx, w.cfg.Topic)
		return err
	})
}

func (w *Workload) message(p, seq int) (*client.Message, Send) {
	id := fmt.Sprintf("%s-%d-%d", w.run, p, seq)
	body := fmt.Appendf(nil, "%s|%064d", id, seq)
	s := Send{ID: id, Seq: seq, BodyHash: hashBody(body)}
	m := &client.Message{Topic: w.cfg.Topic, Properties: map[string]string{"chaos-id": id}, Body: body}
	if w.cfg.Mode.Keyed {
		s.Key = "k" + strconv.Itoa(p)
		m.ShardingKey = s.Key
	}
	return m, s
}

// begin records a send about to be issued and returns its index.
func (w *Workload) begin(s Send) int {
	s.Start = time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.h.Sends = append(w.h.Sends, s)
	return len(w.h.Sends) - 1
}

func (w *Workload) finish(i int, res client.SendResult, err error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &w.h.Sends[i]
	s.End = now
	if err != nil {
		s.Err = err.Error()
		return
	}
	s.OK, s.MsgID, s.Queue, s.Offset = true, res.MsgID, res.QueueID, res.QueueOffset
	w.acked++
}

func (w *Workload) produce(p int) {
	defer w.prodWG.Done()
	async := w.cfg.Mode.Async
	window := make(chan struct{}, w.cfg.Window) // unkeyed async: sends in flight
	if w.cfg.Mode.Keyed || !async {
		window = make(chan struct{}, 1)
	}
	// Sends are not cancelled by StopProducing: each ends within
	// SendTimeout with its real outcome.
	ctx := context.Background()
	for seq := 0; !w.stopping.Load(); seq++ {
		m, s := w.message(p, seq)
		window <- struct{}{}
		i := w.begin(s)
		if !async {
			res, err := w.prod.Send(ctx, m)
			w.finish(i, res, err)
			<-window
		} else {
			w.prodWG.Add(1)
			w.prod.SendAsync(ctx, m, func(res client.SendResult, err error) {
				defer w.prodWG.Done()
				w.finish(i, res, err)
				<-window
			})
		}
		select {
		case <-w.stopCh:
		case <-time.After(w.cfg.Interval): // pacing the workload
		}
	}
	for i := 0; i < cap(window); i++ {
		window <- struct{}{} // every send of this loop has its outcome
	}
}

func (w *Workload) handler(name string) client.Handler {
	return func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		start := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		end := time.Now()
		for _, m := range msgs {
			if m.Queue.Topic != w.cfg.Topic {
				continue // a retry topic's delivery; the handler never asks for one
			}
			id := m.Properties["chaos-id"]
			w.h.Receives = append(w.h.Receives, Receive{Index: len(w.h.Receives), Consumer: name, ID: id, MsgID: m.MsgID,
				BodyHash: hashBody(m.Body), Queue: m.Queue.QueueID, Offset: m.QueueOffset, Start: start, End: end})
			w.received[id] = true
		}
		return client.ConsumeSuccess
	}
}

// Acked is the number of acknowledged sends so far.
func (w *Workload) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked
}

// WaitAcked waits until n sends in all were acknowledged.
func (w *Workload) WaitAcked(ctx context.Context, n int) error {
	return poll(ctx, 20*time.Millisecond, func() error {
		if got := w.Acked(); got < n {
			return fmt.Errorf("%d of %d sends acknowledged", got, n)
		}
		return nil
	})
}

// AddFault records a fault in the history; the returned index is for
// FaultDone.
func (w *Workload) AddFault(f FaultRecord) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.h.Faults = append(w.h.Faults, f)
	return len(w.h.Faults) - 1
}

// FaultDone completes fault i's record.
func (w *Workload) FaultDone(i int, healed, recovered time.Time, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f := &w.h.Faults[i]
	f.Healed, f.Recovered = healed, recovered
	if err != nil {
		f.Err = err.Error()
	}
}

// AddOffsets appends committed-offset samples to the history.
func (w *Workload) AddOffsets(s []OffsetSample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.h.Offsets = append(w.h.Offsets, s...)
}

// StopProducing issues no more sends and waits until every send issued
// has its outcome (at most about SendTimeout).
func (w *Workload) StopProducing() {
	w.stopping.Store(true)
	w.stopOnce.Do(func() { close(w.stopCh) })
	w.prodWG.Wait()
}

// Drain waits (within ctx) until every acknowledged send was received.
func (w *Workload) Drain(ctx context.Context) error {
	return poll(ctx, 50*time.Millisecond, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		missing, example := 0, ""
		for i := range w.h.Sends {
			if s := &w.h.Sends[i]; s.OK && !w.received[s.ID] {
				missing++
				example = s.ID
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d acknowledged sends not received yet, e.g. %s", missing, example)
		}
		return nil
	})
}

// Close stops producing (if not yet), closes the consumers (committing
// their offsets) and the producer. Idempotent.
func (w *Workload) Close(ctx context.Context) error {
	w.StopProducing()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	if w.stopChurn != nil {
		close(w.stopChurn)
		w.churnWG.Wait()
	}
	w.mu.Lock()
	cons := append([]*client.Consumer(nil), w.cons...)
	w.mu.Unlock()
	var errs []error
	for _, cc := range cons {
		errs = append(errs, cc.Close(ctx))
	}
	if w.prod != nil {
		errs = append(errs, w.prod.Close(ctx))
	}
	w.mu.Lock()
	w.h.End = time.Now()
	w.mu.Unlock()
	return errors.Join(errs...)
}

// History returns a copy of the history so far.
func (w *Workload) History() *History {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.h
	h.Sends = append([]Send(nil), w.h.Sends...)
	h.Receives = append([]Receive(nil), w.h.Receives...)
	h.Offsets = append([]OffsetSample(nil), w.h.Offsets...)
	h.Faults = append([]FaultRecord(nil), w.h.Faults...)
	h.Resets = append([]time.Time(nil), w.h.Resets...)
	if h.End.IsZero() {
		h.End = time.Now()
	}
	return &h
}
