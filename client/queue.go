package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

const (
	// releaseWait bounds how long a queue taken away by rebalance waits
	// for Poll users to commit batches already delivered.
	releaseWait = 30 * time.Second
	// orderlyLockValid is how long an Orderly consumer trusts its queue
	// lock, counted from when it sent the request that granted or renewed
	// it (RocketMQ client: 30s). The broker's lease is longer (60s) and
	// replicated, so it never lapses while the owner still trusts it.
	orderlyLockValid = wire.LockTrust
	// lockRenew is how often a member renews the locks of the queues it
	// owns (RocketMQ lockInterval 20s): well within orderlyLockValid, so
	// a failed renewal can be retried before delivery pauses. Each renewal
	// is one Raft entry on the broker.
	lockRenew = 20 * time.Second
	// pullSlack is added to the long-poll wait for the pull's own timeout.
	pullSlack = 5 * time.Second
)

// queueRun is one owned queue. Its goroutine (run) pulls and delivers;
// the rebalancer and Commit touch the fields under mu.
type queueRun struct {
	c      *Consumer
	q      Queue
	filter TagExpression

	stopPull context.Context // cancelled to stop pulling
	cancel   context.CancelFunc
	done     chan struct{} // closed when run returns

	mu        sync.Mutex
	release   bool   // on stop: commit and unlock
	gen       uint64 // bumped by offset resets; stale commits are ignored
	reset     bool   // re-read the committed offset before the next pull
	next      uint64 // next pull offset
	consumed  uint64 // offset after the last consumed message
	hasCons   bool
	committed uint64
	hasComm   bool
	delivered uint64 // offset after the last delivered batch (Poll mode)
	lockedAt  time.Time
	max       uint64             // the queue's max offset in the latest pull answer (Progress)
	pulled    bool               // max is from a pull answer since init or moveTo
	pullStop  context.CancelFunc // interrupts the pull in progress (reset)
	commitCh  chan struct{}      // signalled (buffer 1) by markConsumed
}

// startQueue starts a run of q whose lock request was sent at lockedAt.
func (c *Consumer) startQueue(q Queue, lockedAt time.Time) *queueRun {
	ctx, cancel := context.WithCancel(c.base)
	qr := &queueRun{
		c: c, q: q, filter: c.subs[q.Topic],
		stopPull: ctx, cancel: cancel,
		done:     make(chan struct{}),
		lockedAt: lockedAt,
		commitCh: make(chan struct{}, 1),
	}
	c.queues[q] = qr
	c.queueWG.Add(1)
	go func() {
		defer c.queueWG.Done()
		defer close(qr.done)
		qr.run()
	}()
	return qr
}

// requestStop ends the queue; with release it commits and unlocks first.
func (qr *queueRun) requestStop(release bool) {
	qr.mu.Lock()
	qr.release = qr.release || release
	qr.mu.Unlock()
	qr.cancel()
}

func (qr *queueRun) requestReset() {
	qr.mu.Lock()
	qr.reset = true
	qr.gen++
	qr.hasCons = false
	qr.pulled = false
	if qr.pullStop != nil {
		qr.pullStop()
	}
	qr.mu.Unlock()
}

// markConsumed records that everything before next is consumed (if gen
// still matches) and reports whether the queue has something to commit.
func (qr *queueRun) markConsumed(gen, next uint64) bool {
	qr.mu.Lock()
	defer qr.mu.Unlock()
	if gen != qr.gen {
		return false
	}
	if !qr.hasCons || next > qr.consumed {
		qr.consumed, qr.hasCons = next, true
	}
	select {
	case qr.commitCh <- struct{}{}:
	default:
	}
	return true
}

// toCommit returns the offset to commit, if it moved.
func (qr *queueRun) toCommit() (uint64, bool) {
	qr.mu.Lock()
	defer qr.mu.Unlock()
	if !qr.hasCons || qr.hasComm && qr.committed == qr.consumed {
		return 0, false
	}
	return qr.consumed, true
}

func (qr *queueRun) markCommitted(off uint64) {
	qr.mu.Lock()
	qr.committed, qr.hasComm = off, true
	qr.mu.Unlock()
}

func (qr *queueRun) run() {
	c := qr.c
	log := c.log.With("queue", qr.q.String())
	defer qr.finish()
	if !qr.init(log) {
		return
	}
	bo := newBackoff()
	bo.max = time.Second
	var lastErrCode uint16
	for qr.stopPull.Err() == nil {
		qr.mu.Lock()
		reset, off, gen := qr.reset, qr.next, qr.gen
		qr.mu.Unlock()
		if reset {
			if !qr.init(log) {
				return
			}
			continue
		}
		pctx, pcancel := context.WithCancel(qr.stopPull)
		qr.mu.Lock()
		qr.pullStop = pcancel
		qr.mu.Unlock()
		resp, err := c.pull(pctx, qr.q, qr.filter, off)
		pcancel()
		qr.mu.Lock()
		qr.pullStop = nil
		stale := qr.gen != gen
		qr.mu.Unlock()
		if stale {
			continue // offsets were reset during the pull
		}
		if err != nil {
			if qr.stopPull.Err() != nil {
				return
			}
			var e *Error
			if errors.As(err, &e) && e.Code == wire.CodeOffsetMoved {
				to := c.correctOffset(qr.stopPull, qr.q, off, e)
				log.Info("offset out of range", "offset", off, "min-offset", e.MinOffset, "max-offset", e.MaxOffset, "to", to)
				qr.moveTo(gen, to)
				continue
			}
			if errors.As(err, &e) && !e.Retriable && e.Code != lastErrCode {
				lastErrCode = e.Code
				log.Warn("pull failed", "error", err)
				qr.deliverErr(err)
			} else {
				log.Debug("pull failed", "error", err)
			}
			bo.wait(qr.stopPull)
			continue
		}
		bo = newBackoff()
		bo.max = time.Second
		lastErrCode = 0
		qr.notePull(gen, resp.MaxOffset)
		msgs := c.convert(qr.q, qr.filter, resp.Messages)
		if len(msgs) == 0 {
			// Only filtered messages (or none): advance; commit the skip
			// if nothing delivered is outstanding.
			qr.mu.Lock()
			if qr.gen == gen && resp.NextOffset > qr.next {
				qr.next = resp.NextOffset
				if !qr.outstandingLocked() {
					qr.consumed, qr.hasCons = resp.NextOffset, true
					qr.delivered = resp.NextOffset
				}
			}
			qr.mu.Unlock()
			continue
		}
		c.markSeen(qr.q, msgs)
		if c.handler != nil {
			if !qr.consume(gen, msgs, resp.NextOffset) {
				return
			}
		} else if !qr.hand(gen, msgs, resp.NextOffset) {
			return
		}
	}
}

// outstandingLocked reports whether Poll users hold delivered batches
// not yet committed (push handlers run inline, so never).
func (qr *queueRun) outstandingLocked() bool {
	return qr.c.handler == nil && qr.hasCons && qr.consumed < qr.delivered
}

// moveTo restarts the queue at off after an out-of-range pull and, unless
// Poll users hold delivered batches, marks it consumed up to off so the
// corrected position is committed (a next owner starts there too).
func (qr *queueRun) moveTo(gen, off uint64) {
	qr.mu.Lock()
	defer qr.mu.Unlock()
	if qr.gen != gen {
		return
	}
	qr.next = off
	qr.pulled = false
	if !qr.outstandingLocked() {
		qr.consumed, qr.hasCons, qr.delivered = off, true, off
	}
}

// correctOffset picks where a queue continues after the broker answered
// that off is outside [MinOffset, MaxOffset] (RocketMQ PULL_OFFSET_MOVED).
// Below the minimum, retention removed the messages: continue at the
// oldest one left. Above the maximum (the topic was recreated, or offsets
// were set by hand), follow ConsumerConfig.From as for a queue without a
// committed offset: FromFirst takes the whole queue, FromLast its end,
// FromTimestamp the first message stored at or after the timestamp.
func (c *Consumer) correctOffset(ctx context.Context, q Queue, off uint64, e *Error) uint64 {
	if off < e.MinOffset || e.MaxOffset < e.MinOffset {
		return e.MinOffset // also what a broker that sends no MaxOffset means
	}
	switch c.startFrom(q) {
	case FromFirst:
		return e.MinOffset
	case FromTimestamp:
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var resp wire.QueryOffsetResponse
		err := c.router.callLeader(ctx, q.Group, 1, wire.CodeSearchOffset,
			wire.SearchOffsetRequest{Topic: q.Topic, QueueID: q.QueueID, Timestamp: c.cfg.FromTimestamp.UnixMilli()}, &resp)
		if err == nil && resp.Found && resp.Offset >= e.MinOffset && resp.Offset <= e.MaxOffset {
			return resp.Offset
		}
	}
	return e.MaxOffset
}

// startFrom is where a queue without a committed offset starts:
// ConsumerConfig.From, except for the group's retry queue, which holds
// only this group's redeliveries and is always read from its start (a
// retry stored before the first member read that queue is not skipped).
func (c *Consumer) startFrom(q Queue) ConsumeFrom {
	if q.Topic == c.retryTopic {
		return FromFirst
	}
	return c.cfg.From
}

func (qr *queueRun) setNext(gen, off uint64) {
	qr.mu.Lock()
	if qr.gen == gen {
		qr.next = off
	}
	qr.mu.Unlock()
}

// init reads the start offset, retrying until it succeeds or the queue
// stops.
func (qr *queueRun) init(log interface{ Warn(string, ...any) }) bool {
	bo := newBackoff()
	bo.max = time.Second
	for {
		off, fromCommitted, err := qr.c.startOffset(qr.stopPull, qr.q)
		if err == nil {
			qr.mu.Lock()
			qr.reset = false
			qr.next = off
			qr.pulled = false
			qr.delivered = off
			if fromCommitted {
				qr.committed, qr.hasComm = off, true
				qr.consumed, qr.hasCons = off, true
			} else {
				// Commit the position chosen by From at once, so a next
				// owner starts here too and nothing is skipped.
				qr.consumed, qr.hasCons = off, true
				qr.hasComm = false
			}
			qr.mu.Unlock()
			if !fromCommitted {
				_ = qr.c.commitRuns(qr.stopPull, []*queueRun{qr})
			}
			return true
		}
		if qr.stopPull.Err() != nil {
			return false
		}
		log.Warn("read start offset", "error", err)
		if !bo.wait(qr.stopPull) {
			return false
		}
	}
}

// consume runs the push handler on msgs until it succeeds or the batch is
// otherwise settled (see ConsumerConfig.LocalRetry). It returns false if
// the consumer is closing hard.
func (qr *queueRun) consume(gen uint64, msgs []*MessageExt, next uint64) bool {
	c := qr.c
	pending := msgs
	for attempt := 0; ; attempt++ {
		if c.cfg.Orderly && !qr.waitLock() {
			return false
		}
		for _, m := range pending {
			m.ReconsumeTimes = m.reconsumed + attempt
		}
		c.delivered.Add(uint64(len(pending)))
		start := time.Now()
		if qr.handle(pending) == ConsumeSuccess {
			c.traceDelivery(pending, start, "success")
			qr.markConsumed(gen, next)
			qr.setNext(gen, next)
			return true
		}
		c.traceDelivery(pending, start, "retry")
		switch {
		case c.cfg.Mode == Broadcasting:
			c.dropped.Add(uint64(len(pending)))
			c.log.Warn("dropping messages the handler asked to retry: broadcasting groups do not retry",
				"queue", qr.q.String(), "messages", len(pending))
			pending = nil
		case c.cfg.Orderly:
			if attempt+1 >= c.cfg.MaxReconsume { // in place up to the maximum, then the DLQ
				pending = qr.sendBack(pending, -1)
			}
		case !c.cfg.LocalRetry:
			pending = qr.sendBack(pending, 0)
		}
		if len(pending) == 0 {
			qr.markConsumed(gen, next)
			qr.setNext(gen, next)
			return true
		}
		t := time.NewTimer(c.cfg.RetryBackoff)
		select {
		case <-t.C:
		case <-qr.stopPull.Done():
			t.Stop()
			return false // not consumed: the next owner gets it
		}
	}
}

// handle runs the push handler on msgs within ConsumeTimeout: past it the
// handler's context is cancelled and the batch counts as failed, even if
// the handler returns success afterwards (its goroutine is left to end on
// its own). The handler runs in this goroutine when there is no timeout.
func (qr *queueRun) handle(msgs []*MessageExt) ConsumeResult {
	c := qr.c
	if c.cfg.ConsumeTimeout < 0 {
		return c.handler(c.base, msgs)
	}
	ctx, cancel := context.WithTimeout(c.base, c.cfg.ConsumeTimeout)
	defer cancel()
	done := make(chan ConsumeResult, 1)
	go func() { done <- c.handler(ctx, msgs) }() // ends when the handler returns
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
		if c.base.Err() == nil {
			c.timedOut.Add(1)
			c.log.Warn("handler exceeded ConsumeTimeout; the batch counts as failed", "queue", qr.q.String(),
				"messages", len(msgs), "timeout", c.cfg.ConsumeTimeout)
		}
		return ConsumeRetryLater
	}
}

// sendBack asks the leader to redeliver msgs through the group's retry
// queue (level 0: the backoff for the failure count) or, with level -1,
// to dead-letter them. It returns those the broker did not take, to retry
// in place.
func (qr *queueRun) sendBack(msgs []*MessageExt, level int) []*MessageExt {
	c := qr.c
	var left []*MessageExt
	for _, m := range msgs {
		ctx, cancel := context.WithTimeout(qr.stopPull, 5*time.Second)
		req := wire.SendBackRequest{Group: c.cfg.Group, Topic: m.Queue.Topic, QueueID: m.Queue.QueueID, Offset: m.QueueOffset,
			DelayLevel: level, MaxReconsume: c.cfg.MaxReconsume}
		var resp wire.SendBackResponse
		err := c.router.callLeader(ctx, m.Queue.Group, 0, wire.CodeSendBack, req, &resp)
		cancel()
		if err != nil {
			c.log.Warn("send back failed; retrying in place", "queue", m.Queue.String(), "offset", m.QueueOffset, "error", err)
			left = append(left, m)
			continue
		}
		if resp.DLQ {
			c.traceDeadLetter(m)
			c.deadLettered.Add(1)
			c.log.Warn("message moved to the dead-letter queue", "msg-id", m.MsgID, "failures", resp.Reconsume)
		} else {
			c.retried.Add(1)
		}
	}
	return left
}

// waitLock blocks an Orderly queue while its lock may have expired.
func (qr *queueRun) waitLock() bool {
	for {
		qr.mu.Lock()
		ok := qr.c.cfg.Now().Sub(qr.lockedAt) < orderlyLockValid
		qr.mu.Unlock()
		if ok || qr.c.cfg.Mode == Broadcasting {
			return true
		}
		t := time.NewTimer(qr.c.cfg.HeartbeatInterval)
		select {
		case <-t.C:
		case <-qr.stopPull.Done():
			t.Stop()
			return false
		}
	}
}

// hand gives msgs to Poll.
func (qr *queueRun) hand(gen uint64, msgs []*MessageExt, next uint64) bool {
	qb := QueueBatch{Queue: qr.q, Messages: msgs, run: qr, gen: gen, next: next}
	select {
	case qr.c.polled <- qb:
		qr.c.delivered.Add(uint64(len(msgs)))
		qr.mu.Lock()
		if qr.gen == gen {
			qr.delivered = next
			qr.next = next
		}
		qr.mu.Unlock()
		return true
	case <-qr.stopPull.Done():
		return false
	}
}

func (qr *queueRun) deliverErr(err error) {
	if qr.c.handler != nil {
		return // logged; push handlers see only messages
	}
	select {
	case qr.c.polled <- QueueBatch{Queue: qr.q, Err: err}:
	case <-qr.stopPull.Done():
	}
}

// finish runs when the queue stops: on release it waits for delivered
// Poll batches to be committed (bounded), commits synchronously and
// unlocks, then forgets the queue.
func (qr *queueRun) finish() {
	c := qr.c
	qr.mu.Lock()
	release := qr.release
	qr.mu.Unlock()
	if release && c.base.Err() == nil {
		ctx, cancel := context.WithTimeout(c.base, releaseWait)
		if c.handler == nil {
			for {
				qr.mu.Lock()
				out := qr.outstandingLocked()
				qr.mu.Unlock()
				if !out {
					break
				}
				select {
				case <-qr.commitCh:
				case <-ctx.Done():
				}
				if ctx.Err() != nil {
					break
				}
			}
		}
		if err := c.commitRuns(ctx, []*queueRun{qr}); err != nil {
			c.log.Warn("commit on release", "queue", qr.q.String(), "error", err)
		}
		if c.cfg.Mode == Clustering {
			c.unlock(ctx, qr.q)
		}
		cancel()
	}
	c.mu.Lock()
	if c.queues[qr.q] == qr {
		delete(c.queues, qr.q)
	}
	c.mu.Unlock()
}

// convert turns pulled messages into MessageExt, re-checking the tag
// filter (the broker filters too).
func (c *Consumer) convert(q Queue, f TagExpression, in []wire.StoredMessage) []*MessageExt {
	out := make([]*MessageExt, 0, len(in))
	for i := range in {
		if !f.Match(in[i].Tags) {
			continue
		}
		m := fromStored(&in[i], q.Group)
		m.Queue = q
		out = append(out, m)
	}
	return out
}

// markSeen flags messages at offsets this consumer already delivered.
func (c *Consumer) markSeen(q Queue, msgs []*MessageExt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hi, ok := c.seen[q]
	for _, m := range msgs {
		if ok && m.QueueOffset < hi {
			m.Redelivered = true
			c.redelivered.Add(1)
		}
	}
	if last := msgs[len(msgs)-1].QueueOffset + 1; !ok || last > hi {
		c.seen[q] = last
	}
}

// pull reads q from off on any replica (the leader when known).
func (c *Consumer) pull(ctx context.Context, q Queue, f TagExpression, off uint64) (wire.PullResponse, error) {
	addr := c.router.readAddr(q.Group)
	if addr == "" {
		if err := c.router.refreshLeaders(ctx); err != nil {
			return wire.PullResponse{}, err
		}
		if addr = c.router.readAddr(q.Group); addr == "" {
			return wire.PullResponse{}, ErrNoLeader
		}
	}
	req := wire.PullRequest{
		Topic: q.Topic, QueueID: q.QueueID, Offset: off,
		MaxMessages: c.cfg.PullBatch, WaitMillis: c.cfg.LongPollWait.Milliseconds(),
		Tags: f.String(), SQL: c.cfg.SQLSubscriptions[q.Topic], ConsumerGroup: c.cfg.Group,
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.LongPollWait+pullSlack)
	defer cancel()
	var resp wire.PullResponse
	err := c.watchedCall(cctx, q.Group, addr, func(ctx context.Context) error {
		return c.pool.call(ctx, addr, wire.CodePull, req, &resp)
	})
	if err != nil && ctx.Err() == nil {
		if isTransport(err) || cctx.Err() != nil {
			c.router.noteFailed(q.Group, addr, true)
		}
	}
	return resp, err
}

// errLeaderMoved ends a pull to a node that no longer leads its group.
var errLeaderMoved = &Error{Code: wire.CodeNotLeader, Retriable: true, Message: "pull abandoned: another node leads now"}

// watchedCall runs call (a long poll to addr) and abandons it once the
// router knows another node leads group, so a frozen leader does not hold
// the queue for the whole long-poll wait: the heartbeat (or a producer in
// the same process) finds the newer leader within an attempt timeout.
// The router's state is checked every AttemptTimeout; no request is made.
func (c *Consumer) watchedCall(ctx context.Context, group, addr string, call func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }() // ends with call; waited for below
	t := time.NewTicker(c.cfg.AttemptTimeout)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
			if l := c.router.knownLeader(group); l != "" && l != addr {
				cancel()
				<-done
				return errLeaderMoved
			}
		}
	}
}

// startOffset is where q starts: the group's committed offset, else
// ConsumerConfig.From.
func (c *Consumer) startOffset(ctx context.Context, q Queue) (off uint64, committed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if c.local != nil {
		if off, ok := c.local.get(q); ok {
			return off, true, nil
		}
	} else {
		var resp wire.QueryOffsetResponse
		err := c.router.callLeader(ctx, q.Group, 1, wire.CodeQueryOffset,
			wire.QueryOffsetRequest{Group: c.cfg.Group, Topic: q.Topic, QueueID: q.QueueID}, &resp)
		if err != nil {
			return 0, false, err
		}
		if resp.Found {
			return resp.Offset, true, nil
		}
	}
	switch c.startFrom(q) {
	case FromFirst:
		return 0, false, nil
	case FromTimestamp:
		var resp wire.QueryOffsetResponse
		err := c.router.callLeader(ctx, q.Group, 1, wire.CodeSearchOffset,
			wire.SearchOffsetRequest{Topic: q.Topic, QueueID: q.QueueID, Timestamp: c.cfg.FromTimestamp.UnixMilli()}, &resp)
		if err == nil && resp.Found {
			return resp.Offset, false, nil
		}
		if err != nil && classify(err) != failFatal {
			return 0, false, err
		}
		// Nothing stored at or after the timestamp: start at the end.
	}
	var st wire.TopicStatus
	if err := c.router.callLeader(ctx, q.Group, 1, wire.CodeTopicStatus, wire.TopicRequest{Name: q.Topic}, &st); err != nil {
		return 0, false, err
	}
	for _, qs := range st.Queues {
		if qs.QueueID == q.QueueID {
			return qs.MaxOffset, false, nil
		}
	}
	return 0, false, nil
}
