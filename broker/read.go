package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// maxReadSpan caps one coalesced CommitLog read of neighbouring messages.
const maxReadSpan = 1 << 20

// ReadRequest asks for messages of one queue from a logical offset.
type ReadRequest struct {
	Topic       string
	QueueID     uint32
	Offset      uint64
	MaxMessages int           // default 32
	MaxBytes    int           // soft cap on returned bodies; default 4 MiB
	Wait        time.Duration // long poll: wait this long for a message at Offset
}

// StoredMessage is a committed message with its position.
type StoredMessage struct {
	fsm.Message
	QueueOffset uint64
	StoreTime   int64 // leader time of the entry, unix ms
	RaftIndex   uint64
}

// ReadResult holds messages from Offset on and the queue's bounds.
type ReadResult struct {
	Messages   []StoredMessage
	NextOffset uint64 // where the next read should start
	MinOffset  uint64 // oldest retained offset
	MaxOffset  uint64 // next offset to be assigned (exclusive)
}

// Read returns committed messages. Any replica serves reads; a follower
// lags the leader by about one round trip (CommitTimeout when idle). With
// Wait > 0 an empty read waits until a message is applied to the queue,
// the wait elapses or ctx ends.
func (n *Node) Read(ctx context.Context, req ReadRequest) (ReadResult, error) {
	if req.MaxMessages <= 0 {
		req.MaxMessages = 32
	}
	if req.MaxBytes <= 0 {
		req.MaxBytes = 4 << 20
	}
	var timer <-chan time.Time
	if req.Wait > 0 {
		t := time.NewTimer(req.Wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		// Register before reading so an append in between is not missed.
		wake := n.notify.wait(req.Topic, req.QueueID)
		res, err := n.readOnce(req)
		if err != nil || len(res.Messages) > 0 || timer == nil {
			return res, err
		}
		select {
		case <-wake:
		case <-timer:
			timer = nil // one last read, then return what is there
		case <-ctx.Done():
			return res, ctx.Err()
		case <-n.stopCh:
			return res, ErrClosed
		}
	}
}

func (n *Node) readOnce(req ReadRequest) (ReadResult, error) {
	min, next, err := n.fsm.QueueRange(req.Topic, req.QueueID)
	if err != nil {
		return ReadResult{}, mapFSMError(err)
	}
	res := ReadResult{NextOffset: req.Offset, MinOffset: min, MaxOffset: next}
	if req.Offset < min {
		return res, &OffsetMovedError{Requested: req.Offset, Min: min}
	}
	if req.Offset >= next {
		return res, nil
	}
	units, err := n.fsm.Units(req.Topic, req.QueueID, req.Offset, req.MaxMessages, nil)
	if err != nil {
		return res, mapFSMError(err)
	}
	bytes := 0
	for i := 0; i < len(units) && bytes < req.MaxBytes; {
		j, span := coalesce(units, i)
		buf, err := n.store.ReadAt(units[i].Index, units[i].Pos, span, nil)
		if err != nil {
			return res, fmt.Errorf("broker: read entry %d: %w", units[i].Index, err)
		}
		for k := i; k < j; k++ {
			u := units[k]
			rel := u.Pos - units[i].Pos
			m, err := fsm.DecodeMessage(buf[rel : rel+u.Size])
			if err != nil {
				return res, fmt.Errorf("broker: decode message at entry %d pos %d: %w", u.Index, u.Pos, err)
			}
			res.Messages = append(res.Messages, StoredMessage{
				Message: m, QueueOffset: req.Offset + uint64(k), StoreTime: u.StoreTime, RaftIndex: u.Index,
			})
			bytes += len(m.Body)
		}
		i = j
	}
	res.NextOffset = req.Offset + uint64(len(res.Messages))
	return res, nil
}

// coalesce returns the end (exclusive) of the run of units from i that sit
// back to back in one entry, and the run's byte span, so it is read once.
func coalesce(units []fsm.Unit, i int) (int, uint32) {
	start, end := units[i].Pos, units[i].Pos+units[i].Size
	j := i + 1
	for j < len(units) && units[j].Index == units[i].Index && units[j].Pos == end &&
		end+units[j].Size-start <= maxReadSpan {
		end += units[j].Size
		j++
	}
	return j, end - start
}
