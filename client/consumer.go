package client

import (
	"context"
	"errors"
	"iter"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// ConsumeResult is a push handler's verdict on a batch.
type ConsumeResult int

const (
	// ConsumeSuccess marks the batch consumed; its offsets will commit.
	ConsumeSuccess ConsumeResult = iota
	// ConsumeRetryLater redelivers the batch later: in a Clustering group
	// through the group's retry queue, after a backoff that grows with
	// each failure, then to its dead-letter queue after MaxReconsume
	// failures; see ConsumerConfig.LocalRetry for orderly and
	// broadcasting groups.
	ConsumeRetryLater
)

// Handler consumes one batch of messages of one queue, in offset order.
// Handlers for different queues run concurrently.
type Handler func(ctx context.Context, msgs []*MessageExt) ConsumeResult

// Consumer is a member of a consumer group. Use either Start (push) or
// Poll/Commit (pull), not both. Its methods are safe for concurrent use.
type Consumer struct {
	cfg    ConsumerConfig
	log    hclog.Logger
	pool   *pool
	router *router
	subs   map[string]TagExpression
	local  *localOffsets // Broadcasting only

	// base ends the whole consumer (handlers included); loops ends the
	// heartbeat and commit loops first.
	base        context.Context
	cancelBase  context.CancelFunc
	loops       context.Context
	cancelLoops context.CancelFunc
	loopWG      sync.WaitGroup // heartbeat/rebalance and commit loops
	queueWG     sync.WaitGroup // one goroutine per owned queue

	polled chan QueueBatch // queue goroutines -> Poll; unbuffered handoff

	delivered    atomic.Uint64
	redelivered  atomic.Uint64
	retried      atomic.Uint64 // sent back to the retry queue
	deadLettered atomic.Uint64
	dropped      atomic.Uint64 // broadcasting retries dropped
	timedOut     atomic.Uint64 // handler calls past ConsumeTimeout
	retryTopic   string        // the subscription to %RETRY%group added by New, if any
	trace        *tracer       // nil unless ConsumerConfig.Trace (trace.go)

	mu       sync.Mutex
	state    int // stateNew, stateStarted, stateClosed
	handler  Handler
	queues   map[Queue]*queueRun
	seen     map[Queue]uint64 // highest offset delivered + 1, per queue
	epochs   map[string]uint64
	hbLeader map[string]string // broker group -> address of the last good heartbeat
	settle   map[string]int    // broker group -> rounds to wait before moving queues
	groups   []string          // broker groups heartbeated last round
	settled  bool              // the last rebalance round ran every allocated queue (Progress)
}

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// NewConsumer validates cfg and returns a stopped Consumer.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Consumer{
		cfg:      cfg,
		log:      cfg.Logger.Named("consumer").With("group", cfg.Group, "client-id", cfg.ClientID),
		pool:     newPool(cfg.TLS).withCredentials(cfg.Credentials),
		subs:     make(map[string]TagExpression),
		polled:   make(chan QueueBatch),
		queues:   make(map[Queue]*queueRun),
		seen:     make(map[Queue]uint64),
		epochs:   make(map[string]uint64),
		hbLeader: make(map[string]string),
		settle:   make(map[string]int),
	}
	for t, e := range cfg.Subscriptions {
		c.subs[t], _ = ParseTagExpression(e) // validated
	}
	for t := range cfg.SQLSubscriptions {
		c.subs[t], _ = ParseTagExpression("*") // the broker filters; every answer passes here
	}
	if cfg.Mode == Clustering && !cfg.Orderly && !cfg.LocalRetry {
		// Retries come back through the group's retry queue; the broker
		// creates it on the first send-back.
		c.retryTopic = "%RETRY%" + cfg.Group
		c.subs[c.retryTopic], _ = ParseTagExpression("*")
	}
	c.router = newRouter(cfg.NameServers, c.pool, c.log, cfg.AttemptTimeout)
	c.router.cluster = cfg.Cluster
	if cfg.Mode == Broadcasting {
		lo, err := loadLocalOffsets(cfg.OffsetDir, cfg.Group)
		if err != nil {
			return nil, err
		}
		c.local = lo
	}
	if cfg.Trace {
		t, err := newTracer(cfg.NameServers, cfg.TLS, cfg.TraceTopic, c.log)
		if err != nil {
			return nil, err
		}
		c.trace = t
	}
	c.base, c.cancelBase = context.WithCancel(context.Background())
	c.loops, c.cancelLoops = context.WithCancel(c.base)
	return c, nil
}

// Start joins the group and consumes with handler until Close. It runs
// one rebalance round before returning, so errors such as
// ErrGroupModeMismatch surface here; later failures are retried.
func (c *Consumer) Start(ctx context.Context, handler Handler) error {
	if handler == nil {
		return invalidf("nil handler")
	}
	return c.start(ctx, handler)
}

func (c *Consumer) start(ctx context.Context, handler Handler) error {
	c.mu.Lock()
	switch c.state {
	case stateClosed:
		c.mu.Unlock()
		return ErrClosed
	case stateStarted:
		c.mu.Unlock()
		if handler != nil {
			return errors.New("client: consumer already started")
		}
		return nil
	}
	c.state = stateStarted
	c.handler = handler
	c.mu.Unlock()
	if err := c.rebalance(ctx); err != nil && (errors.Is(err, ErrGroupModeMismatch) || errors.Is(err, ErrAccessDenied)) {
		c.mu.Lock()
		c.state = stateNew
		c.mu.Unlock()
		c.releaseAll(ctx)
		return err
	}
	c.loopWG.Add(2)
	go func() {
		defer c.loopWG.Done()
		c.rebalanceLoop()
	}()
	go func() {
		defer c.loopWG.Done()
		c.commitLoop()
	}()
	return nil
}

// Batch is the result of one Poll: messages grouped by queue, each
// group in offset order. Per-queue failures are in QueueBatch.Err.
type Batch struct {
	Queues []QueueBatch
}

// QueueBatch is one queue's part of a Batch.
type QueueBatch struct {
	Queue    Queue
	Messages []*MessageExt
	// Err is a persistent failure of this queue (e.g. topic deleted);
	// transient ones (failover) are retried inside the consumer.
	Err error

	run  *queueRun
	gen  uint64
	next uint64 // offset to commit once this batch is done
}

// Messages returns every message of b, queue by queue.
func (b Batch) Messages() []*MessageExt {
	var out []*MessageExt
	for _, q := range b.Queues {
		out = append(out, q.Messages...)
	}
	return out
}

// Len counts b's messages.
func (b Batch) Len() int {
	n := 0
	for _, q := range b.Queues {
		n += len(q.Messages)
	}
	return n
}

// maxPollQueues caps how many queue batches one Poll gathers.
const maxPollQueues = 64

// Poll waits for messages (starting the consumer on first use) and
// returns those ready now. The error is only for whole-call failures:
// ErrClosed or ctx. Call Commit after processing a batch; a queue taken
// away by rebalance waits (up to releaseWait) for its uncommitted
// batches before handing over, else they are redelivered to the new owner.
func (c *Consumer) Poll(ctx context.Context) (Batch, error) {
	if err := c.start(ctx, nil); err != nil {
		return Batch{}, err
	}
	var b Batch
	select {
	case qb := <-c.polled:
		b.Queues = append(b.Queues, qb)
	case <-ctx.Done():
		return Batch{}, ctx.Err()
	case <-c.loops.Done():
		return Batch{}, ErrClosed
	}
	for len(b.Queues) < maxPollQueues {
		select {
		case qb := <-c.polled:
			b.Queues = append(b.Queues, qb)
			continue
		default:
		}
		break
	}
	return b, nil
}

// Batches is Poll in a loop, for range-over-func; it stops after the
// first error (ErrClosed or ctx) or when the loop breaks. Commit each
// batch yourself.
func (c *Consumer) Batches(ctx context.Context) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		for {
			b, err := c.Poll(ctx)
			if !yield(b, err) || err != nil {
				return
			}
		}
	}
}

// Commit marks b consumed and stores the offsets after it on the broker
// (or locally, when broadcasting) before returning. Queues this consumer
// no longer owns, or whose offsets were reset since b was polled, are
// skipped.
func (c *Consumer) Commit(ctx context.Context, b Batch) error {
	var runs []*queueRun
	for _, qb := range b.Queues {
		if qb.run == nil || len(qb.Messages) == 0 && qb.Err != nil {
			continue
		}
		if qb.run.markConsumed(qb.gen, qb.next) {
			runs = append(runs, qb.run)
		}
	}
	return c.commitRuns(ctx, runs)
}

// ConsumerStats are counters since NewConsumer.
type ConsumerStats struct {
	Delivered uint64 // messages handed to the handler or Poll
	// Redelivered counts messages delivered again at an offset at or
	// below one this consumer already delivered for that queue.
	Redelivered uint64
	// Retried counts messages sent back to the group's retry queue,
	// DeadLettered those moved to its dead-letter queue, Dropped those a
	// broadcasting handler asked to retry, TimedOut the handler calls
	// that ran past ConsumeTimeout.
	Retried, DeadLettered, Dropped, TimedOut uint64
	Owned                                    []Queue // queues currently consumed
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	c.mu.Lock()
	owned := make([]Queue, 0, len(c.queues))
	for q := range c.queues {
		owned = append(owned, q)
	}
	c.mu.Unlock()
	sort.Slice(owned, func(i, j int) bool { return owned[i].less(owned[j]) })
	return ConsumerStats{Delivered: c.delivered.Load(), Redelivered: c.redelivered.Load(), Owned: owned,
		Retried: c.retried.Load(), DeadLettered: c.deadLettered.Load(), Dropped: c.dropped.Load(), TimedOut: c.timedOut.Load()}
}

// ClientID is this member's id in the group.
func (c *Consumer) ClientID() string { return c.cfg.ClientID }

// Close leaves the group cleanly: it stops pulling, lets running
// handlers finish, commits every queue's offset, releases queue locks
// and sends LeaveGroup, so other members take over exactly where this
// one stopped. If ctx ends first, handlers' contexts are cancelled and
// Close returns ctx's error after everything stopped. Idempotent.
func (c *Consumer) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return nil
	}
	started := c.state == stateStarted
	c.state = stateClosed
	c.mu.Unlock()
	c.cancelLoops()
	c.loopWG.Wait()
	var err error
	if started {
		done := make(chan struct{})
		go func() { // ends when every queue goroutine ended
			c.releaseAll(ctx)
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
			c.cancelBase()
			<-done
		}
		c.leave(ctx)
		if c.local != nil {
			if perr := c.local.persist(); perr != nil && err == nil {
				err = perr
			}
		}
	}
	c.cancelBase()
	c.queueWG.Wait()
	if c.trace != nil {
		if terr := c.trace.close(ctx); err == nil {
			err = terr
		}
	}
	c.pool.close()
	c.router.wait()
	return err
}

// releaseAll stops every queue (commit + unlock) and waits for them.
func (c *Consumer) releaseAll(ctx context.Context) {
	c.mu.Lock()
	runs := make([]*queueRun, 0, len(c.queues))
	for _, qr := range c.queues {
		runs = append(runs, qr)
	}
	c.mu.Unlock()
	for _, qr := range runs {
		qr.requestStop(true)
	}
	for _, qr := range runs {
		<-qr.done
	}
}
