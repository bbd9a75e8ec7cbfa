package broker

import (
	"context"
	"errors"
	"fmt"
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
	Err         error  // non-nil if this message was rejected at apply
}

type sendReq struct {
	msgs []*fsm.Message
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
// Errors: *NotLeaderError (nothing written; retry on the leader),
// ErrLeaderNotReady (retry), validation errors (nothing written), and
// ErrIndeterminate (the messages may or may not be stored).
func (n *Node) Send(ctx context.Context, msgs []*fsm.Message) ([]SendResult, error) {
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: no messages", ErrInvalidArgument)
	}
	if err := n.checkWritable(); err != nil {
		return nil, err
	}
	size := 0
	for i, m := range msgs {
		sz, err := n.validateMessage(m)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		size += sz
	}
	req := &sendReq{msgs: msgs, size: size, done: make(chan sendResult, 1)}
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
	out := make([]SendResult, len(msgs))
	for i, off := range res.offsets {
		out[i] = SendResult{QueueID: msgs[i].QueueID, RaftIndex: res.index, StoreTime: res.storeTime}
		if off < 0 {
			out[i].Err = fmt.Errorf("%w: %q was deleted or recreated during the send", ErrTopicNotFound, msgs[i].Topic)
			continue
		}
		out[i].QueueOffset = uint64(off)
	}
	return out, nil
}

// validateMessage checks m against the topic and limits and stamps its
// TopicID. It returns the encoded size.
func (n *Node) validateMessage(m *fsm.Message) (int, error) {
	if err := ValidateTopicName(m.Topic); err != nil {
		return 0, err
	}
	if len(m.Body) > n.cfg.MaxMessageSize {
		return 0, fmt.Errorf("%w: body is %d bytes, limit %d", ErrMessageTooLarge, len(m.Body), n.cfg.MaxMessageSize)
	}
	t, ok := n.fsm.Topic(m.Topic)
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrTopicNotFound, m.Topic)
	}
	if t.Perm&permWrite == 0 {
		return 0, fmt.Errorf("%w: topic %q is not writable", ErrNoPermission, m.Topic)
	}
	if m.QueueID >= t.Queues {
		return 0, fmt.Errorf("%w: queue %d of topic %q (it has %d)", ErrInvalidArgument, m.QueueID, m.Topic, t.Queues)
	}
	m.TopicID = t.ID
	if err := fsm.ValidateMessage(m); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
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

// encode adds all of r's messages to the entry or fails r alone.
func (n *Node) encode(enc *fsm.BatchEncoder, b *inflightBatch, r *sendReq) {
	for _, m := range r.msgs {
		if err := enc.Add(m); err != nil {
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
