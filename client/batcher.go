package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// maxRequestWait caps one coalesced SendRequest's wait for its response.
const maxRequestWait = 30 * time.Second

type sendItem struct {
	msg  wire.Message
	size int
	auto bool
	// deadline is the submitter's deadline; expired items are skipped.
	deadline time.Time
	done     chan sendOutcome // buffered 1; nil for callback items
	// cb, when set, receives the outcome on the batcher goroutine instead
	// of done (the SendAsync fast path: no goroutine per message). It
	// must not block. ctx is that sender's context.
	cb  func(sendOutcome)
	ctx context.Context
	// group is a callback item's broker group, and finished makes its
	// first outcome the only one: the batcher may hand an item whose
	// leader went unanswered to the slow path before the late answer.
	group    string
	finished atomic.Bool
}

// finish hands an item its outcome (a callback item only its first).
func (it *sendItem) finish(out sendOutcome) {
	if it.cb != nil {
		if it.finished.CompareAndSwap(false, true) {
			it.cb(out)
		}
		return
	}
	it.done <- out
}

type sendOutcome struct {
	res wire.SendResult
	err error
}

// batcher coalesces the sends queued for one leader address: its
// goroutine takes everything queued while MaxInflightRequests requests
// were awaiting their answers (up to MaxBatchBytes / MaxBatchMessages)
// into one SendRequest. There is no linger: a lone send goes out at once.
type batcher struct {
	p    *Producer
	addr string

	mu    sync.Mutex
	queue []*sendItem
	wake  chan struct{} // buffered 1: "queue may be non-empty"

	// answered, if set (tests), is called when a request's outcome is
	// known, before it waits for the request before it.
	answered func(resp *wire.SendResponse, err error)
}

// batcher returns the batcher of addr, starting its goroutine on first use.
func (p *Producer) batcher(addr string) (*batcher, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b := p.batchers[addr]; b != nil {
		return b, nil
	}
	if p.base.Err() != nil {
		return nil, ErrClosed
	}
	b := &batcher{p: p, addr: addr, wake: make(chan struct{}, 1)}
	p.batchers[addr] = b
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		b.run()
	}()
	return b, nil
}

// enqueue queues it for the next request.
func (b *batcher) enqueue(it *sendItem) {
	b.mu.Lock()
	b.queue = append(b.queue, it)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// submit queues it and waits for its outcome or ctx.
func (b *batcher) submit(ctx context.Context, it *sendItem) (wire.SendResult, error) {
	it.deadline, _ = ctx.Deadline()
	b.enqueue(it)
	select {
	case out := <-it.done:
		return out.res, out.err
	case <-ctx.Done():
		return wire.SendResult{}, ctx.Err()
	case <-b.p.base.Done():
		return wire.SendResult{}, ErrClosed
	}
}

func (b *batcher) run() {
	// A slot per request awaiting its answer: while all are taken, sends
	// keep coalescing in the queue. prev is closed once the last request
	// started has handed out its outcomes (they go out in request order).
	slots := make(chan struct{}, b.p.cfg.MaxInflightRequests)
	first := make(chan struct{})
	close(first)
	var prev <-chan struct{} = first
	for {
		select {
		case <-b.p.base.Done():
			b.failAll(ErrClosed)
			return
		case <-b.wake:
		}
		for {
			select {
			case slots <- struct{}{}:
			case <-b.p.base.Done():
				b.failAll(ErrClosed)
				return
			}
			items, expired := b.take()
			for _, it := range expired {
				it.finish(sendOutcome{err: &Error{Code: wire.CodeTimeout, Retriable: true, Message: "send timed out before it was sent"}})
			}
			if len(items) == 0 {
				<-slots
				if len(expired) == 0 {
					break
				}
				continue
			}
			prev = b.flush(items, prev, func() { <-slots })
		}
	}
}

// take removes the next request's items from the queue, and the expired
// callback items (a waiting sender notices its own deadline).
func (b *batcher) take() (out, expired []*sendItem) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	n, size := 0, 0
	for n < len(b.queue) {
		it := b.queue[n]
		if len(out) > 0 && (len(out) >= b.p.cfg.MaxBatchMessages || int64(size+it.size) > b.p.cfg.MaxBatchBytes) {
			break
		}
		n++
		if (!it.deadline.IsZero() && now.After(it.deadline)) || (it.ctx != nil && it.ctx.Err() != nil) {
			if it.cb != nil {
				expired = append(expired, it)
			}
			continue // its sender gave up
		}
		out = append(out, it)
		size += it.size
	}
	b.queue = append(b.queue[:0], b.queue[n:]...)
	return out, expired
}

func (b *batcher) failAll(err error) {
	b.mu.Lock()
	q := b.queue
	b.queue = nil
	b.mu.Unlock()
	for _, it := range q {
		it.finish(sendOutcome{err: err})
	}
}

// flush sends items as one SendRequest, written now on the batcher's
// goroutine (so requests reach the node in the order they were taken),
// and answers them on a goroutine of its own: after the request's answer,
// and after the request before it (prev) handed out its outcomes. It
// calls release once done and returns the channel it closes then.
func (b *batcher) flush(items []*sendItem, prev <-chan struct{}, release func()) <-chan struct{} {
	req := wire.SendRequest{Messages: make([]wire.Message, len(items))}
	var latest time.Time
	for i, it := range items {
		req.Messages[i] = it.msg
		if it.auto {
			req.AutoCreateQueues = uint32(b.p.cfg.AutoCreateQueues)
			if !slices.Contains(req.AutoTopics, it.msg.Topic) {
				req.AutoTopics = append(req.AutoTopics, it.msg.Topic)
			}
		}
		if it.deadline.After(latest) {
			latest = it.deadline
		}
	}
	wait := maxRequestWait
	if !latest.IsZero() && time.Until(latest) < wait {
		wait = max(time.Until(latest), time.Millisecond)
	}
	req.TimeoutMillis = wait.Milliseconds()
	ctx, cancel := context.WithTimeout(b.p.base, wait)
	pc, err := b.p.pool.start(ctx, b.addr, wire.CodeSend, req)
	done := make(chan struct{})
	b.p.wg.Add(1) // the batcher's own count is held, so Close has not seen zero
	go func() {   // ends with the answer, ctx's end or the producer's close
		defer b.p.wg.Done()
		defer close(done)
		defer release()
		defer cancel()
		var resp wire.SendResponse
		if err == nil {
			err = b.await(ctx, pc, &resp, items)
		}
		if err == nil && len(resp.Results) != len(items) {
			err = &Error{Code: wire.CodeInternal, Message: fmt.Sprintf("%d results for %d messages", len(resp.Results), len(items))}
		}
		if err != nil && b.p.base.Err() != nil {
			err = ErrClosed
		}
		if err != nil && ctx.Err() != nil {
			// Our own wait ran out, not the caller's: the outcome is unknown.
			err = &Error{Code: wire.CodeTimeout, Retriable: true, Message: "no response from " + b.addr}
		}
		if b.answered != nil {
			b.answered(&resp, err)
		}
		<-prev // outcomes in request order
		for i, it := range items {
			if err != nil {
				it.finish(sendOutcome{err: err})
				continue
			}
			r := resp.Results[i]
			if r.ErrorCode != 0 {
				it.finish(sendOutcome{err: resultError(r)})
				continue
			}
			it.finish(sendOutcome{res: r})
		}
	}()
	return done
}

// await waits for the answer to the request pc. Sync
// sends notice an unanswered leader in their own leaderCall; callback
// items (the SendAsync fast path) have none, so while they wait here
// call checks every AttemptTimeout whether the NameServer names another
// leader for their group. If so they go to the slow path, which resends
// them there, and their late outcome from this request is dropped
// (sendItem.finish); callback items still queued for this node follow.
// call keeps waiting for the answer either way: sync items want it.
func (b *batcher) await(ctx context.Context, pc *wire.Pending, resp *wire.SendResponse, items []*sendItem) error {
	pending := 0
	for _, it := range items {
		if it.cb != nil {
			pending++
		}
	}
	if pending == 0 {
		return fromWire(pc.Wait(ctx, resp))
	}
	done := make(chan error, 1)
	go func() { done <- fromWire(pc.Wait(ctx, resp)) }() // waited for below
	r := b.p.router
	t := time.NewTimer(r.attemptTimeout)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
		}
		moved := map[string]bool{}
		for _, it := range items {
			if it.cb == nil || it.finished.Load() {
				continue
			}
			m, ok := moved[it.group]
			if !ok {
				m = it.group != "" && r.leaderMoved(ctx, it.group, b.addr)
				moved[it.group] = m
			}
			if m {
				r.resends.Add(1)
				it.finish(sendOutcome{err: b.unanswered()})
				pending--
			}
		}
		for g, m := range moved {
			if m {
				b.handOffQueued(g)
			}
		}
		if pending == 0 {
			return <-done
		}
		t.Reset(max(r.attemptTimeout/10, minRecheck))
	}
}

// unanswered is the outcome of a callback item handed to the slow path
// because its leader did not answer: retriable, possibly stored.
func (b *batcher) unanswered() error {
	return &Error{Code: wire.CodeTimeout, Retriable: true,
		Message: "no answer from " + b.addr + " within the attempt timeout; resent to the newer leader"}
}

// handOffQueued moves the callback items of group still queued here to
// the slow path (they were never sent: no duplicate).
func (b *batcher) handOffQueued(group string) {
	b.mu.Lock()
	var out []*sendItem
	keep := b.queue[:0]
	for _, it := range b.queue {
		if it.cb != nil && it.group == group {
			out = append(out, it)
		} else {
			keep = append(keep, it)
		}
	}
	b.queue = keep
	b.mu.Unlock()
	for _, it := range out {
		it.finish(sendOutcome{err: b.unanswered()})
	}
}
