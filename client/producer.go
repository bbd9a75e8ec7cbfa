package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/rmq-dev/rmq/wire"
)

// SendResult describes a stored message.
type SendResult struct {
	MsgID       string // 32 upper-case hex characters
	Topic       string
	Group       string // broker group
	QueueID     uint32
	QueueOffset uint64 // 0 for a delayed message: it gets its offset when delivered
	StoreTime   time.Time
	// DeliverAt is a delayed message's due time (the broker's clock); zero
	// for a message delivered at once.
	DeliverAt time.Time

	// A transactional half message's name at its broker group (tx.go).
	half         bool
	halfIndex    uint64
	halfPosition uint32
}

// Producer sends messages. It is safe for concurrent use; concurrent
// sends to the same leader share SendRequests.
type Producer struct {
	cfg    ProducerConfig
	log    hclog.Logger
	pool   *pool
	router *router
	faults *faults // broker groups to avoid (fault.go)
	ids    *idGen
	srv    serverRequests // broker requests this producer answers (serverreq.go)
	trace  *tracer        // nil unless ProducerConfig.Trace (trace.go)
	reqs   requests       // Request calls waiting for their replies (request.go)
	dups   atomic.Uint64  // ProducerStats.Duplicates

	base   context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // batchers and SendAsync goroutines

	mu       sync.Mutex
	closed   bool
	batchers map[string]*batcher
	async    int           // SendAsync calls in progress
	idle     chan struct{} // closed while async == 0
	asyncSem chan struct{}
}

// NewProducer validates cfg and returns a Producer. It does no I/O: the
// first Send looks up the route.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.Named("producer")
	p := &Producer{
		cfg:      cfg,
		log:      log,
		pool:     newPool(cfg.TLS).withCredentials(cfg.Credentials),
		ids:      newIDGen(),
		batchers: make(map[string]*batcher),
		idle:     make(chan struct{}),
		asyncSem: make(chan struct{}, cfg.MaxInflightAsync),
	}
	close(p.idle)
	p.router = newRouter(cfg.NameServers, p.pool, log, cfg.AttemptTimeout)
	p.router.cluster = cfg.Cluster
	p.faults = newFaults(cfg.GroupBackoff, cfg.SlowSend)
	p.base, p.cancel = context.WithCancel(context.Background())
	if cfg.TransactionChecker != nil {
		p.startTransactions()
	}
	if cfg.Trace {
		t, err := newTracer(cfg.NameServers, cfg.TLS, cfg.TraceTopic, log)
		if err != nil {
			return nil, err
		}
		p.trace = t
	}
	return p, nil
}

// Send stores msg and returns once a quorum of its group committed it.
// It retries within ProducerConfig.SendTimeout (or ctx's deadline, if
// sooner): through leader failover, on retriable errors, and on the new
// leader. Every retry resends the same MsgID, so a broker that stored an
// earlier attempt answers with that copy's queue and offset instead of
// storing it again (producer dedup, within the group's window, 2 minutes
// by default); where the broker's dedup is off a retry after an
// indeterminate outcome may store a duplicate: at least once.
func (p *Producer) Send(ctx context.Context, msg *Message) (SendResult, error) {
	if err := validateMessage(msg, p.cfg.MaxMessageSize); err != nil {
		return SendResult{}, err
	}
	if p.isClosed() {
		return SendResult{}, ErrClosed
	}
	ctx, cancel := p.sendContext(ctx)
	defer cancel()
	start, id := time.Now(), p.ids.next()
	res, err := p.sendOne(ctx, msg, id, nil)
	p.traceSend(msg, id, res, err, start)
	return res, err
}

// SendAsync sends msg in the background and calls cb with the outcome
// exactly once (on the caller's goroutine if msg is invalid or the
// producer is closed, else on a producer goroutine). ctx must stay live
// until cb runs. It blocks while MaxInflightAsync sends are in progress.
// Flush waits for every SendAsync in progress.
func (p *Producer) SendAsync(ctx context.Context, msg *Message, cb func(SendResult, error)) {
	if err := validateMessage(msg, p.cfg.MaxMessageSize); err != nil {
		cb(SendResult{}, err)
		return
	}
	select {
	case p.asyncSem <- struct{}{}:
	case <-ctx.Done():
		cb(SendResult{}, ctx.Err())
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.asyncSem
		cb(SendResult{}, ErrClosed)
		return
	}
	if p.async == 0 {
		p.idle = make(chan struct{})
	}
	p.async++
	p.wg.Add(1)
	p.mu.Unlock()
	id := p.ids.next()
	start := time.Now()
	done := func(res SendResult, err error) {
		p.traceSend(msg, id, res, err, start)
		cb(res, err)
		<-p.asyncSem
		p.mu.Lock()
		p.async--
		if p.async == 0 {
			close(p.idle)
		}
		p.mu.Unlock()
		p.wg.Done()
	}
	if p.sendFast(ctx, msg, id, done) {
		return
	}
	go p.sendSlow(ctx, msg, id, nil, done) // ends when the send does (SendTimeout)
}

// sendSlow is the full Send path for SendAsync: route look-ups, leader
// rediscovery and retries within SendTimeout, on its own goroutine.
func (p *Producer) sendSlow(ctx context.Context, msg *Message, id []byte, q *Queue, done func(SendResult, error)) {
	sctx, cancel := p.sendContext(ctx)
	res, err := p.sendOne(sctx, msg, id, q)
	cancel()
	done(res, err)
}

// sendFast queues msg straight into its leader's batcher when the route
// and the leader are already known, so a SendAsync costs no goroutine and
// no timer (profiled: those dominated the client's CPU). Any failure
// falls back to sendSlow with the same message id and queue, as a retry
// of Send, so that the group that may have stored it sees the resend
// (producer dedup). It reports false when it cannot take the fast path.
func (p *Producer) sendFast(ctx context.Context, msg *Message, id []byte, done func(SendResult, error)) bool {
	tr := p.router.cached(msg.Topic)
	if tr == nil {
		return false
	}
	queues := tr.writable(msg.Topic, uint32(p.cfg.AutoCreateQueues))
	if len(queues) == 0 {
		return false
	}
	q := p.selectQueue(msg, queues, nil)
	addr := p.router.knownLeader(q.Group)
	if addr == "" {
		return false
	}
	b, err := p.batcher(addr)
	if err != nil {
		return false
	}
	it := &sendItem{msg: p.toWire(msg, id, q.QueueID, p.cfg.Now()), ctx: ctx, deadline: time.Now().Add(p.cfg.SendTimeout), group: q.Group}
	if dl, ok := ctx.Deadline(); ok && dl.Before(it.deadline) {
		it.deadline = dl
	}
	it.size = len(it.msg.Body) + len(it.msg.Keys) + len(it.msg.Tags) + 64
	it.cb = func(out sendOutcome) {
		switch {
		case out.err == nil:
			// A success ends an avoidance but never starts one here: an
			// async send's latency is mostly its wait behind this
			// producer's own backlog, not the group's speed.
			p.faults.done(q.Group, 0, time.Now())
			done(p.makeResult(it.msg, q.Group, out.res), nil)
		case classify(out.err) == failFatal || ctx.Err() != nil:
			done(SendResult{}, out.err)
		case p.movable(msg) && retriableElsewhere(out.err) && p.hasOtherGroup(msg.Topic, q.Group):
			// The group is failing: the retry picks a queue elsewhere.
			p.faults.fail(q.Group, time.Now())
			p.router.resends.Add(1)
			go p.sendSlow(ctx, msg, id, nil, done) // ends with the send
		default:
			go p.sendSlow(ctx, msg, id, &q, done) // retry with rediscovery; ends with the send
		}
	}
	b.enqueue(it)
	return true
}

// Flush waits until every SendAsync in progress has called back.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SendOneway writes msg to its group leader as a one-way frame and
// returns without waiting: no result, no retry, no delivery guarantee.
func (p *Producer) SendOneway(ctx context.Context, msg *Message) error {
	if err := validateMessage(msg, p.cfg.MaxMessageSize); err != nil {
		return err
	}
	if p.isClosed() {
		return ErrClosed
	}
	ctx, cancel := p.sendContext(ctx)
	defer cancel()
	q, auto, err := p.pick(ctx, msg)
	if err != nil {
		return err
	}
	addr := p.router.leaderAddr(q.Group)
	if addr == "" {
		if err := p.router.refreshLeaders(ctx); err != nil {
			return err
		}
		if addr = p.router.leaderAddr(q.Group); addr == "" {
			return fmt.Errorf("%w: group %s", ErrNoLeader, q.Group)
		}
	}
	req := wire.SendRequest{Messages: []wire.Message{p.toWire(msg, p.ids.next(), q.QueueID, p.cfg.Now())}}
	if auto {
		req.AutoCreateQueues = uint32(p.cfg.AutoCreateQueues)
	}
	return p.pool.send(ctx, addr, wire.CodeSend, req)
}

// SendBatch stores msgs, which must share one topic, in one request to
// one queue: all or none are stored (per-message apply errors aside),
// in order, at consecutive offsets.
//
// A batch none of whose messages has a sharding key moves to another
// broker group's queue when its group fails in a way another may not
// (as Send does, see fault.go), keeping its message ids; each group is
// tried at most once.
func (p *Producer) SendBatch(ctx context.Context, msgs []*Message) ([]SendResult, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	var total int64
	movable := true
	for i, m := range msgs {
		if err := validateMessage(m, p.cfg.MaxMessageSize); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		if m.Topic != msgs[0].Topic {
			return nil, invalidf("batch mixes topics %q and %q", msgs[0].Topic, m.Topic)
		}
		total += int64(len(m.Body))
		movable = movable && p.movable(m)
	}
	if limit := int64(wire.DefaultMaxFrame - 1<<20); total > limit {
		return nil, &Error{Code: wire.CodeMessageTooLarge, Message: fmt.Sprintf("batch bodies total %d bytes, limit %d", total, limit)}
	}
	if p.isClosed() {
		return nil, ErrClosed
	}
	ctx, cancel := p.sendContext(ctx)
	defer cancel()
	ids := make([][]byte, len(msgs))
	for i := range ids {
		ids[i] = p.ids.next()
	}
	now := p.cfg.Now()
	var skip []string // groups this batch gave up on
	for {
		q, auto, other, err := p.pickSkip(ctx, msgs[0], skip)
		if err != nil {
			return nil, err
		}
		req := wire.SendRequest{Messages: make([]wire.Message, len(msgs)), Atomic: true}
		for i, m := range msgs {
			req.Messages[i] = p.toWire(m, ids[i], q.QueueID, now)
		}
		if auto {
			req.AutoCreateQueues = uint32(p.cfg.AutoCreateQueues)
		}
		var giveUp func(error) bool
		if movable && other {
			giveUp = retriableElsewhere
		}
		start := time.Now()
		resp, err := leaderCallOpts(ctx, p.router, q.Group, p.cfg.Retries, giveUp, func(ctx context.Context, addr string) (wire.SendResponse, error) {
			req := req // attempts may overlap (see leaderCall): each has its own copy
			req.TimeoutMillis = remainingMillis(ctx)
			var resp wire.SendResponse
			if err := p.pool.call(ctx, addr, wire.CodeSend, req, &resp); err != nil {
				return resp, err
			}
			if len(resp.Results) != len(req.Messages) {
				return resp, &Error{Code: wire.CodeInternal, Message: fmt.Sprintf("%d results for %d messages", len(resp.Results), len(req.Messages))}
			}
			return resp, nil
		})
		var ee *errElsewhere
		if errors.As(err, &ee) {
			p.faults.fail(q.Group, time.Now())
			if ee.maybe {
				p.router.resends.Add(1)
			}
			p.log.Debug("broker group failing, sending the batch to another", "group", q.Group, "topic", msgs[0].Topic, "error", ee.err)
			skip = append(skip, q.Group)
			continue
		}
		if err != nil {
			for i, m := range msgs {
				p.traceSend(m, ids[i], SendResult{}, err, now)
			}
			return nil, err
		}
		done := time.Now()
		p.faults.done(q.Group, done.Sub(start), done)
		out := make([]SendResult, len(msgs))
		var firstErr error
		for i, r := range resp.Results {
			var merr error
			if r.ErrorCode != 0 {
				merr = resultError(r)
				if firstErr == nil {
					firstErr = fmt.Errorf("message %d: %w", i, merr)
				}
			}
			out[i] = p.makeResult(req.Messages[i], q.Group, r)
			p.traceSend(msgs[i], ids[i], out[i], merr, now)
		}
		return out, firstErr
	}
}

// Close fails new sends with ErrClosed, waits (within ctx) for SendAsync
// calls in progress, then stops the batchers and closes connections.
// It is idempotent.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.Flush(ctx)
	p.cancel()
	p.wg.Wait()
	if p.trace != nil {
		if terr := p.trace.close(ctx); err == nil {
			err = terr
		}
	}
	p.pool.close()
	p.router.wait()
	return err
}

// ProducerStats are counters since NewProducer.
type ProducerStats struct {
	// Resends counts attempts made while an earlier attempt of the same
	// send had an unknown outcome: resent to a newer leader after
	// AttemptTimeout without an answer, or retried after a timeout, a
	// lost connection or an indeterminate answer. Each may have stored a
	// duplicate (same MsgID).
	Resends uint64
	// Trace counts trace records sent and dropped (ProducerConfig.Trace).
	Trace TraceStats
	// Duplicates counts sends the broker answered as resends of a message
	// it had stored (same MsgID, within its dedup window): not stored
	// again, answered with the stored copy's queue and offset.
	Duplicates uint64
}

// Stats returns the producer's counters.
func (p *Producer) Stats() ProducerStats {
	st := ProducerStats{Resends: p.router.resends.Load(), Duplicates: p.dups.Load()}
	if p.trace != nil {
		st.Trace = TraceStats{Sent: p.trace.sent.Load(), Dropped: p.trace.dropped.Load()}
	}
	return st
}

func (p *Producer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// sendContext applies SendTimeout and ends when the producer closes.
func (p *Producer) sendContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.SendTimeout)
	stop := context.AfterFunc(p.base, cancel)
	return ctx, func() { stop(); cancel() }
}

// pick resolves msg's route and selects its queue. auto is true when the
// topic does not exist yet and the send should create it.
func (p *Producer) pick(ctx context.Context, msg *Message) (q Queue, auto bool, err error) {
	q, auto, _, err = p.pickSkip(ctx, msg, nil)
	return q, auto, err
}

// pickSkip is pick that also avoids the groups in skip (if msg is
// movable) and reports whether the route has a group to go to if q's
// fails.
func (p *Producer) pickSkip(ctx context.Context, msg *Message, skip []string) (q Queue, auto, other bool, err error) {
	allowAuto := p.cfg.AutoCreateQueues > 0
	bo := newBackoff()
	for {
		tr, err := p.router.route(ctx, msg.Topic, allowAuto, routeMaxAge)
		if err == nil {
			queues := tr.writable(msg.Topic, uint32(p.cfg.AutoCreateQueues))
			if len(queues) > 0 {
				q := p.selectQueue(msg, queues, skip)
				return q, tr.auto, otherGroup(queues, q.Group, skip), nil
			}
			err = fmt.Errorf("%w: no writable queue for topic %q", ErrNoLeader, msg.Topic)
			p.router.invalidate(msg.Topic)
		} else if classify(err) == failFatal {
			return Queue{}, false, false, err
		}
		if !bo.wait(ctx) {
			return Queue{}, false, false, budgetErr(ctx.Err(), err)
		}
	}
}

func writableQueues(topic string, tr *topicRoute, autoQueues uint32) []Queue {
	var qs []Queue
	for _, g := range tr.groups {
		if g.Perm != 0 && g.Perm&permWrite == 0 {
			continue
		}
		n := g.Queues
		if tr.auto {
			n = autoQueues
		}
		for i := uint32(0); i < n; i++ {
			qs = append(qs, Queue{Topic: topic, Group: g.Group, QueueID: i})
		}
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].less(qs[j]) })
	return qs
}

// Topic permission bits (RocketMQ PermName).
const (
	permRead  = 4
	permWrite = 2
)

// sendOne sends msg as id to its queue (picked here if q is nil: a retry
// keeps the queue of its first attempt) and its group's leader.
//
// A movable message (fault.go) whose group fails in a way another group
// may not goes on to another group's queue, at most once per group; the
// last group it tries, it stays on as any other send does.
//
// A send that auto-creates its topic picks its queue without a route (as
// if the topic had AutoCreateQueues queues); when the topic exists by
// then with fewer queues, the broker refuses that queue as an invalid
// argument and stores nothing. The send then looks the route up again
// (the NameServer hears of the topic within a registration, so for at
// most maxReroutes tries with backoff) and picks among the real queues.
func (p *Producer) sendOne(ctx context.Context, msg *Message, id []byte, q *Queue) (SendResult, error) {
	movable := p.movable(msg)
	var skip []string // groups this send gave up on
	reroutes := 0
	var bo *backoff
	for {
		var pq Queue
		auto, other := false, false
		if q != nil && len(skip) == 0 {
			pq = *q
			other = movable && p.hasOtherGroup(msg.Topic, pq.Group)
		} else {
			var err error
			if pq, auto, other, err = p.pickSkip(ctx, msg, skip); err != nil {
				return SendResult{}, err
			}
			other = other && movable
		}
		res, err := p.sendTo(ctx, msg, id, pq, auto, other)
		if auto && reroutes < maxReroutes && errors.Is(err, ErrInvalidArgument) {
			p.log.Debug("auto-created send refused, looking the route up again", "topic", msg.Topic, "queue", pq.QueueID, "error", err)
			p.router.invalidate(msg.Topic)
			if bo == nil {
				bo = newBackoff()
			}
			if !bo.wait(ctx) {
				return res, err
			}
			reroutes, q = reroutes+1, nil
			continue
		}
		var ee *errElsewhere
		if !errors.As(err, &ee) {
			return res, err
		}
		p.faults.fail(pq.Group, time.Now())
		if ee.maybe {
			p.router.resends.Add(1)
		}
		p.log.Debug("broker group failing, sending to another", "group", pq.Group, "topic", msg.Topic, "error", ee.err)
		skip = append(skip, pq.Group)
	}
}

// maxReroutes bounds sendOne's route look-ups after a blind auto-create
// send was refused: about 2s at the backoff's 50ms ceiling.
const maxReroutes = 40

// hasOtherGroup reports whether topic's cached route has a writable group
// other than group.
func (p *Producer) hasOtherGroup(topic, group string) bool {
	tr := p.router.cached(topic)
	return tr != nil && otherGroup(tr.writable(topic, uint32(p.cfg.AutoCreateQueues)), group, nil)
}

// sendTo sends msg to q's group; with elsewhere set it returns an
// *errElsewhere instead of waiting for the group to recover.
func (p *Producer) sendTo(ctx context.Context, msg *Message, id []byte, q Queue, auto, elsewhere bool) (SendResult, error) {
	it := &sendItem{msg: p.toWire(msg, id, q.QueueID, p.cfg.Now()), auto: auto}
	it.size = len(it.msg.Body) + len(it.msg.Keys) + len(it.msg.Tags) + 64
	var giveUp func(error) bool
	if elsewhere {
		giveUp = retriableElsewhere
	}
	start := time.Now()
	res, err := leaderCallOpts(ctx, p.router, q.Group, p.cfg.Retries, giveUp, func(ctx context.Context, addr string) (wire.SendResult, error) {
		b, err := p.batcher(addr)
		if err != nil {
			return wire.SendResult{}, err
		}
		// Attempts may overlap (see leaderCall): each queues its own item,
		// which its batcher skips once the attempt was abandoned.
		return b.submit(ctx, &sendItem{msg: it.msg, size: it.size, auto: it.auto, ctx: ctx, done: make(chan sendOutcome, 1)})
	})
	if err != nil {
		return SendResult{}, err
	}
	now := time.Now()
	p.faults.done(q.Group, now.Sub(start), now)
	return p.makeResult(it.msg, q.Group, res), nil
}

func (p *Producer) makeResult(m wire.Message, group string, r wire.SendResult) SendResult {
	if r.Duplicate {
		p.dups.Add(1)
	}
	res := SendResult{
		MsgID:       FormatMsgID(m.ID),
		Topic:       m.Topic,
		Group:       group,
		QueueID:     r.QueueID,
		QueueOffset: r.QueueOffset,
		StoreTime:   time.UnixMilli(r.StoreTime),
	}
	if r.DeliverAt > 0 {
		res.DeliverAt = time.UnixMilli(r.DeliverAt)
	}
	if r.Half {
		res.half, res.halfIndex, res.halfPosition = true, r.RaftIndex, r.Pos
	}
	return res
}

func resultError(r wire.SendResult) error {
	return &Error{Code: r.ErrorCode, Retriable: wire.Info(r.ErrorCode).Retriable, Message: r.Error}
}

func remainingMillis(ctx context.Context) int64 {
	if d, ok := ctx.Deadline(); ok {
		if ms := time.Until(d).Milliseconds(); ms > 0 {
			return ms
		}
		return 1
	}
	return 0
}

// toWire is the message as sent, marked for broker dedup if the
// producer is Idempotent or the message is a transactional half.
func (p *Producer) toWire(m *Message, id []byte, queueID uint32, now time.Time) wire.Message {
	w := toWire(m, id, queueID, now)
	if p.cfg.Idempotent || w.Properties[propTransaction] == "true" {
		props := make(map[string]string, len(w.Properties)+1)
		for k, v := range w.Properties {
			props[k] = v
		}
		props[propIdempotent] = "1"
		w.Properties = props
	}
	return w
}

// propIdempotent asks the broker to store the message once (fsm.PropIdempotent).
const propIdempotent = "__IDEMPOTENT__"
