package broker

import (
	"context"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// rmq-protocol handlers of pop consumption (pop.go).

func (n *Node) handleReceive(ctx context.Context, req *wire.ReceiveRequest) (any, error) {
	filter, err := wireFilter(req.Tags, req.SQL)
	if err != nil {
		return nil, err
	}
	msgs, err := n.Receive(ctx, ReceiveRequest{Group: req.Group, Topic: req.Topic, QueueID: int(req.QueueID), Max: req.Max,
		Invisible: time.Duration(req.InvisibleMillis) * time.Millisecond, Wait: time.Duration(req.WaitMillis) * time.Millisecond,
		Filter: filter, MaxReconsume: req.MaxReconsume, FromFirst: req.FromFirst})
	if err != nil {
		return nil, err
	}
	resp := &wire.ReceiveResponse{Messages: make([]wire.ReceivedMessage, len(msgs))}
	for i := range msgs {
		m := &msgs[i]
		sm := wire.StoredMessage{
			Message: wire.Message{
				Topic: m.Topic, QueueID: m.QueueID, Flag: m.Flag, Tags: m.Tags, Keys: m.Keys,
				Properties: m.Properties, Body: m.Body, ID: m.ID, BornTimestamp: m.BornTimestamp,
			},
			QueueOffset: m.QueueOffset, StoreTime: m.StoreTime, RaftIndex: m.RaftIndex, Reconsume: uint32(m.Reconsume),
		}
		resp.Messages[i] = wire.ReceivedMessage{Stored: sm, Handle: m.Handle.String(), DeadlineMillis: m.Deadline.UnixMilli()}
	}
	return resp, nil
}

func (n *Node) handleAck(ctx context.Context, req *wire.AckRequest) (any, error) {
	resp := &wire.AckResponse{Codes: make([]uint16, len(req.Handles))}
	hs := make([]ReceiptHandle, 0, len(req.Handles))
	idx := make([]int, 0, len(req.Handles))
	var errs []string
	fail := func(i int, err error) {
		if errs == nil {
			errs = make([]string, len(req.Handles))
		}
		resp.Codes[i], errs[i] = wireErrorOf(err).Code, err.Error()
	}
	for i, s := range req.Handles {
		h, err := ParseReceiptHandle(s, "")
		if err != nil {
			fail(i, err)
			continue
		}
		hs = append(hs, h)
		idx = append(idx, i)
	}
	if len(hs) > 0 {
		res, err := n.Ack(ctx, req.Group, hs)
		if err != nil {
			return nil, err
		}
		for j, e := range res {
			if e != nil {
				fail(idx[j], e)
			}
		}
	}
	resp.Errors = errs
	return resp, nil
}

func (n *Node) handleChangeInvisible(ctx context.Context, req *wire.ChangeInvisibleRequest) (any, error) {
	h, err := ParseReceiptHandle(req.Handle, "")
	if err != nil {
		return nil, err
	}
	d := time.Duration(req.InvisibleMillis) * time.Millisecond
	nh, err := n.ChangeInvisible(ctx, req.Group, h, d)
	if err != nil {
		return nil, err
	}
	return &wire.ChangeInvisibleResponse{Handle: nh.String(), DeadlineMillis: nh.PopTime + nh.Invisible}, nil
}
