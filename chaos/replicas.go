package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/wire"
)

// WaitConverged waits (within ctx) until every broker answers, agrees on
// one leader, and has applied the same index as the others, with the
// same range in every queue of topic: the replicas have stopped moving
// and can be compared. Writes must have stopped.
func (c *Cluster) WaitConverged(ctx context.Context, topic string, queues uint32) error {
	return poll(ctx, 100*time.Millisecond, func() error {
		sts := c.statuses(ctx)
		if len(sts) < c.cfg.Nodes {
			return fmt.Errorf("%d of %d nodes answer", len(sts), c.cfg.Nodes)
		}
		if _, _, ok := c.agreedLeader(sts); !ok {
			return ErrNoLeader
		}
		applied := map[uint64][]string{}
		for i, st := range sts {
			applied[st.AppliedIndex] = append(applied[st.AppliedIndex], NodeID(i))
		}
		if len(applied) > 1 {
			return fmt.Errorf("applied indexes differ: %v", applied)
		}
		var want []uint64
		for i := 0; i < c.cfg.Nodes; i++ {
			var got []uint64
			for q := uint32(0); q < queues; q++ {
				resp, err := c.pull(ctx, i, topic, q, 0, 1)
				if err != nil {
					return fmt.Errorf("%s: queue %d: %w", NodeID(i), q, err)
				}
				got = append(got, resp.MinOffset, resp.MaxOffset)
			}
			if want == nil {
				want = got
			} else if fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("queue ranges differ: n0 %v, %s %v", want, NodeID(i), got)
			}
		}
		return nil
	})
}

// pull reads up to max messages of queue q from offset off on broker i.
// An offset below what retention kept is answered with no messages and
// the queue's range, as the broker's "offset moved" error tells it.
func (c *Cluster) pull(ctx context.Context, i int, topic string, q uint32, off uint64, max int) (wire.PullResponse, error) {
	var resp wire.PullResponse
	err := c.call(ctx, i, wire.CodePull, &wire.PullRequest{Topic: topic, QueueID: q, Offset: off, MaxMessages: max}, &resp)
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeOffsetMoved && off < we.MinOffset {
		return wire.PullResponse{MinOffset: we.MinOffset, MaxOffset: we.MaxOffset, NextOffset: we.MinOffset}, nil
	}
	return resp, err
}

// ReadReplicas reads every queue of topic from each broker's own store
// (any replica serves reads from its local state) and returns them for
// the checker; a node that cannot be read is returned with Err set.
func (c *Cluster) ReadReplicas(ctx context.Context, topic string, queues uint32) []Replica {
	var out []Replica
	for i := 0; i < c.cfg.Nodes; i++ {
		rep, err := c.readReplica(ctx, i, topic, queues)
		if err != nil {
			rep = Replica{Node: NodeID(i), Err: err.Error()}
		}
		out = append(out, rep)
	}
	return out
}

func (c *Cluster) readReplica(ctx context.Context, i int, topic string, queues uint32) (Replica, error) {
	rep := Replica{Node: NodeID(i), Queues: map[uint32][]Stored{}}
	for q := uint32(0); q < queues; q++ {
		off := uint64(0)
		for page := 0; ; page++ {
			if page == 100000 {
				return rep, fmt.Errorf("queue %d: more than 100000 pages", q)
			}
			var resp wire.PullResponse
			var err error
			for try := 0; try < 5; try++ { // a dropped connection is retried
				if resp, err = c.pull(ctx, i, topic, q, off, 256); err == nil {
					break
				}
			}
			if err != nil {
				return rep, fmt.Errorf("queue %d offset %d: %w", q, off, err)
			}
			if off < resp.MinOffset || rep.Min[q] < resp.MinOffset {
				// Retention deleted a prefix (before or while the queue
				// was read): keep what is still held, from its new start.
				if rep.Min == nil {
					rep.Min = map[uint32]uint64{}
				}
				rep.Min[q] = resp.MinOffset
				rep.Queues[q] = slices.DeleteFunc(rep.Queues[q], func(m Stored) bool { return m.Offset < resp.MinOffset })
				if off < resp.MinOffset {
					off = resp.MinOffset
					continue
				}
			}
			for _, m := range resp.Messages {
				rep.Queues[q] = append(rep.Queues[q], Stored{Offset: m.QueueOffset, RaftIndex: m.RaftIndex, StoreTime: m.StoreTime,
					ID: m.Properties["chaos-id"], MsgID: client.FormatMsgID(m.ID), BodyHash: hashBody(m.Body)})
			}
			if len(resp.Messages) == 0 || resp.NextOffset >= resp.MaxOffset {
				break
			}
			off = resp.NextOffset
		}
	}
	return rep, nil
}

// sampleOffsets reads the group's committed offsets from every running
// broker's own state once.
func (c *Cluster) sampleOffsets(ctx context.Context, group, topic string) []OffsetSample {
	var out []OffsetSample
	for i := 0; i < c.cfg.Nodes; i++ {
		if !c.Running(i) {
			continue
		}
		inc := c.Incarnation(i)
		var d wire.GroupDescription
		if err := c.call(ctx, i, wire.CodeDescribeGroup, wire.DescribeGroupRequest{Group: group}, &d); err != nil {
			c.log.Debug("offset sample failed", "node", NodeID(i), "error", err)
			continue // paused, cut off or restarting
		}
		now := time.Now()
		for _, q := range d.Queues {
			if q.Topic == topic {
				out = append(out, OffsetSample{At: now, Node: NodeID(i), Incarnation: inc, Queue: q.QueueID, Offset: q.ConsumerOffset})
			}
		}
	}
	return out
}
