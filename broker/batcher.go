package broker

import (
	"fmt"

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

type sendReq struct {
	msgs []*fsm.Message // validated: only these go into the entry
	size int
	done chan sendResult // buffered 1: the completer never blocks
}

type sendResult struct {
	offsets   []int64
	positions []uint32
	index     uint64
	storeTime int64
	dups      []fsm.Duplicate // Msg counts from this request's first message
	err       error
}

type inflightBatch struct {
	reqs      []*sendReq
	storeTime int64
	future    raft.ApplyFuture
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
		b := &inflightBatch{storeTime: n.cfg.Now().UnixMilli()}
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
			n.finish(b, n.await(b.future))
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
			n.finish(b, n.await(b.future))
		case <-n.stopCh:
			for {
				select {
				case b := <-n.inflight:
					n.finish(b, n.await(b.future))
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
	pos, dups := 0, res.Duplicates // in batch order
	for _, r := range b.reqs {
		out := sendResult{
			offsets:   res.Offsets[pos : pos+len(r.msgs)],
			positions: res.Positions[pos : pos+len(r.msgs)],
			index:     b.future.Index(),
			storeTime: b.storeTime,
		}
		for ; len(dups) > 0 && dups[0].Msg < pos+len(r.msgs); dups = dups[1:] {
			d := dups[0]
			d.Msg -= pos
			out.dups = append(out.dups, d)
		}
		r.done <- out
		pos += len(r.msgs)
	}
}
