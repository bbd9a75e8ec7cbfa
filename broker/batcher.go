package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/fsm"
)

const (
	// sendQueueLen is the group-commit queue: sends that arrive while the
	// previous entry is being proposed wait here and go into the next
	// entry together. It bounds memory, not latency.
	sendQueueLen = 4096
	// maxInflightBatches bounds entries proposed but not yet committed.
	maxInflightBatches = 64
)

// SendResult is the outcome of one message of a Send.
type SendResult struct {
	QueueID     uint32
	QueueOffset uint64 // logical offset in (topic, queue), dense from 0
	RaftIndex   uint64 // the CommitLog entry holding the message
	StoreTime   int64  // leader time stamped into the entry, unix ms
	// Err is non-nil if this message alone was refused: by validation
	// (ErrTopicNotFound, ErrNoPermission, ErrMessageTooLarge,
	// ErrInvalidArgument; nothing of it written) or at apply (its topic
	// was deleted or recreated meanwhile). The other messages of the Send
	// are unaffected.
	Err error
}

type sendReq struct {
	msgs []*fsm.Message // validated: only these go into the entry
	size int
	done chan sendResult // buffered 1: the completer never blocks
}

type sendResult struct {
	offsets   []int64
	index     uint64
	storeTime int64
	err       error
}

type inflightBatch struct {
	reqs      []*sendReq
	storeTime int64
	future    raft.ApplyFuture
}

// Send writes msgs (of any topics and queues) and returns once they are
// committed by a quorum and applied on this leader. Concurrent Sends are
// packed into one Raft entry. Send stamps each message's TopicID.
//
// Each message is validated once, here, against the applied topic table
// and the limits; a message that fails gets its own SendResult.Err and
// the rest are written. The returned error covers the whole call:
// *NotLeaderError (nothing written; retry on the leader),
// ErrLeaderNotReady (retry), ErrInvalidArgument for an empty msgs, and
// ErrIndeterminate (the messages may or may not be stored).
func (n *Node) Send(ctx context.Context, msgs []*fsm.Message) ([]SendResult, error) {
	return n.send(ctx, msgs, autoCreate{}, false)
}

// autoCreate is a send's request to create missing topics (RocketMQ's
// autoCreateTopicEnable path): with queues > 0, create those of topics
// (every missing one if topics is empty) with that many queues.
type autoCreate struct {
	queues uint32
	topics []string
}

func (a autoCreate) queuesFor(topic string) uint32 {
	if len(a.topics) == 0 || slices.Contains(a.topics, topic) {
		return a.queues
	}
	return 0
}

// send is Send that first creates missing topics as auto asks. With
// atomic, a refusal of any message fails the whole call, nothing written.
func (n *Node) send(ctx context.Context, msgs []*fsm.Message, auto autoCreate, atomic bool) ([]SendResult, error) {
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: no messages", ErrInvalidArgument)
	}
	if err := n.checkWritable(); err != nil {
		return nil, err
	}
	out := make([]SendResult, len(msgs))
	valid, size, err := n.validateMessages(ctx, msgs, auto, out)
	if err != nil {
		return nil, err
	}
	if atomic && len(valid) < len(msgs) {
		for i := range out {
			if out[i].Err != nil {
				return nil, fmt.Errorf("message %d of an all-or-nothing send: %w", i, out[i].Err)
			}
		}
	}
	if len(valid) == 0 {
		return out, nil // every message was refused: nothing to propose
	}
	req := &sendReq{msgs: valid, size: size, done: make(chan sendResult, 1)}
	select {
	case n.sends <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.stopCh:
		return nil, ErrClosed
	}
	var res sendResult
	select {
	case res = <-req.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrIndeterminate, ctx.Err())
	}
	if res.err != nil {
		return nil, res.err
	}
	j := 0 // index into valid and res.offsets
	for i, m := range msgs {
		if out[i].Err != nil {
			continue
		}
		out[i] = SendResult{QueueID: m.QueueID, RaftIndex: res.index, StoreTime: res.storeTime}
		if off := res.offsets[j]; off >= 0 {
			out[i].QueueOffset = uint64(off)
		} else {
			out[i].Err = fmt.Errorf("%w: %q was deleted or recreated during the send", ErrTopicNotFound, m.Topic)
		}
		j++
	}
	return out, nil
}

// validateMessages checks every message once, looking each distinct topic
// up once (creating it first if auto asks), stamps TopicIDs, records
// refusals in out[i].Err and returns the messages that passed with their
// encoded size. Its error is for the whole request (leadership lost while
// auto-creating, ctx done).
func (n *Node) validateMessages(ctx context.Context, msgs []*fsm.Message, auto autoCreate, out []SendResult) ([]*fsm.Message, int, error) {
	var (
		lastName string
		last     *topicCheck
		seen     map[string]*topicCheck // only for requests of several topics
	)
	lookup := func(name string) (*topicCheck, error) {
		if last != nil && name == lastName {
			return last, nil
		}
		tc := seen[name]
		if tc == nil {
			tc = &topicCheck{}
			t, ok := n.fsm.Topic(name)
			if !ok {
				tc.err = n.autoCreate(ctx, name, auto.queuesFor(name))
				if requestLevel(tc.err) {
					return nil, tc.err
				}
				if tc.err == nil {
					if t, ok = n.fsm.Topic(name); !ok {
						tc.err = fmt.Errorf("%w: %q was deleted right after auto-creation", ErrTopicNotFound, name)
					}
				}
			}
			tc.t = t
			if last != nil {
				if seen == nil {
					seen = map[string]*topicCheck{lastName: last}
				}
				seen[name] = tc
			}
		}
		lastName, last = name, tc
		return tc, nil
	}
	valid := msgs[:0:0]
	size := 0
	for i, m := range msgs {
		sz, err := n.validateMessage(m, lookup)
		if err != nil {
			if requestLevel(err) {
				return nil, 0, err
			}
			out[i].QueueID, out[i].Err = m.QueueID, err
			continue
		}
		valid = append(valid, m)
		size += sz
	}
	return valid, size, nil
}

// topicCheck is one topic's look-up for a Send: the topic, or why its
// messages are refused.
type topicCheck struct {
	t   fsm.Topic
	err error
}

// requestLevel reports whether err met while checking one message is about
// the whole request (this node can no longer take it), not that message.
func requestLevel(err error) bool {
	return err != nil && (errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeaderNotReady) ||
		errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// validateMessage checks m against the limits and its topic (from lookup)
// and stamps its TopicID. It returns the encoded size. It is the one check
// of a message on the write path: the batcher encodes it unchecked.
func (n *Node) validateMessage(m *fsm.Message, lookup func(string) (*topicCheck, error)) (int, error) {
	if len(m.Body) > n.cfg.MaxMessageSize {
		return 0, fmt.Errorf("%w: body is %d bytes, limit %d", ErrMessageTooLarge, len(m.Body), n.cfg.MaxMessageSize)
	}
	if err := fsm.ValidateMessage(m); err != nil { // includes the topic name
		return 0, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	tc, err := lookup(m.Topic)
	if err != nil {
		return 0, err
	}
	if tc.err != nil {
		return 0, tc.err
	}
	t := tc.t
	if t.Perm&permWrite == 0 {
		return 0, fmt.Errorf("%w: topic %q is not writable (perm %d)", ErrNoPermission, m.Topic, t.Perm)
	}
	if m.QueueID >= t.Queues {
		return 0, fmt.Errorf("%w: queue %d of topic %q (it has %d)", ErrInvalidArgument, m.QueueID, m.Topic, t.Queues)
	}
	m.TopicID = t.ID
	return fsm.EncodedSize(m), nil
}

// runBatcher packs queued sends into Raft entries. While Raft is busy
// (fsync, replication) sends pile up in n.sends and the next entry takes
// them all, up to MaxBatchBytes: batching adapts to load with no linger.
func (n *Node) runBatcher() {
	defer n.wg.Done()
	var enc fsm.BatchEncoder
	var carry *sendReq
	for {
		req := carry
		carry = nil
		if req == nil {
			select {
			case req = <-n.sends:
			case <-n.stopCh:
				n.failQueued()
				return
			}
		}
		b := &inflightBatch{storeTime: time.Now().UnixMilli()}
		enc.Reset(b.storeTime)
		n.encode(&enc, b, req)
	drain:
		for enc.Size() < n.cfg.MaxBatchBytes {
			select {
			case r := <-n.sends:
				if enc.Size()+r.size > n.cfg.MaxBatchBytes {
					carry = r
					break drain
				}
				n.encode(&enc, b, r)
			default:
				break drain
			}
		}
		if len(b.reqs) == 0 {
			continue
		}
		// Raft keeps the slice until the entry is stored and replicated.
		data := append([]byte(nil), enc.Bytes()...)
		b.future = n.raft.Apply(data, n.cfg.ApplyTimeout)
		select {
		case n.inflight <- b:
		case <-n.stopCh:
			n.finish(b, b.future.Error())
			if carry != nil {
				carry.done <- sendResult{err: ErrClosed}
			}
			n.failQueued()
			return
		}
	}
}

// encode adds all of r's messages to the entry or fails r alone. Send
// validated them, so they are encoded without a second check.
func (n *Node) encode(enc *fsm.BatchEncoder, b *inflightBatch, r *sendReq) {
	for _, m := range r.msgs {
		if err := enc.AddChecked(m); err != nil {
			// validateMessage accepted it, so this is a bug; the entry
			// may now hold a partial request, so drop the whole entry.
			n.log.Error("encoding a validated message failed", "error", err)
			for _, q := range append(b.reqs, r) {
				q.done <- sendResult{err: fmt.Errorf("%w: %w", ErrInvalidArgument, err)}
			}
			b.reqs = nil
			enc.Reset(b.storeTime)
			return
		}
	}
	b.reqs = append(b.reqs, r)
}

func (n *Node) failQueued() {
	for {
		select {
		case r := <-n.sends:
			r.done <- sendResult{err: ErrClosed}
		default:
			return
		}
	}
}

// runCompleter waits for proposed entries in order and answers senders.
func (n *Node) runCompleter() {
	defer n.wg.Done()
	for {
		select {
		case b := <-n.inflight:
			n.finish(b, b.future.Error())
		case <-n.stopCh:
			for {
				select {
				case b := <-n.inflight:
					n.finish(b, b.future.Error())
				default:
					return
				}
			}
		}
	}
}

func (n *Node) finish(b *inflightBatch, err error) {
	if err != nil {
		err = n.applyError(err)
		for _, r := range b.reqs {
			r.done <- sendResult{err: err}
		}
		return
	}
	res, ok := b.future.Response().(*fsm.BatchResult)
	if !ok {
		err = fmt.Errorf("broker: unexpected apply response %T", b.future.Response())
		for _, r := range b.reqs {
			r.done <- sendResult{err: err}
		}
		return
	}
	pos := 0
	for _, r := range b.reqs {
		r.done <- sendResult{
			offsets:   res.Offsets[pos : pos+len(r.msgs)],
			index:     b.future.Index(),
			storeTime: b.storeTime,
		}
		pos += len(r.msgs)
	}
}

// applyError maps raft's errors to the broker's: whether the write may
// have happened decides whether a retry can duplicate.
func (n *Node) applyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: raft enqueue timed out", ErrLeaderNotReady)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: leadership lost before commit", ErrIndeterminate)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrIndeterminate, ErrClosed)
	}
	return fmt.Errorf("%w: %w", ErrIndeterminate, err)
}

// apply proposes one control command and waits for its result. It is the
// broker's one bridge from a context to raft's timeout-based Apply.
func (n *Node) apply(ctx context.Context, data []byte) (any, error) {
	if err := n.checkWritable(); err != nil {
		return nil, err
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	f := n.raft.Apply(data, timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // ends when raft resolves f (commit, loss or shutdown)
	select {
	case err := <-done:
		if err != nil {
			return nil, n.applyError(err)
		}
		if rerr, ok := f.Response().(error); ok && rerr != nil {
			return nil, rerr
		}
		return f.Response(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrIndeterminate, ctx.Err())
	}
}
