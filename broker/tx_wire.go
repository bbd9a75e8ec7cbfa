package broker

import (
	"context"
	"fmt"

	"github.com/rmq-dev/rmq/wire"
)

// rmq-protocol handlers of transactions (tx.go).

func wireStored(m *StoredMessage) wire.StoredMessage {
	sm := wire.StoredMessage{
		Message: wire.Message{
			Topic: m.Topic, QueueID: m.QueueID, Flag: m.Flag, Tags: m.Tags, Keys: m.Keys,
			Properties: m.Properties, Body: m.Body, ID: m.ID, BornTimestamp: m.BornTimestamp,
		},
		QueueOffset: m.QueueOffset, StoreTime: m.StoreTime, RaftIndex: m.RaftIndex,
	}
	if r := m.Retry; r != nil {
		sm.Reconsume, sm.OriginTopic, sm.OriginQueue, sm.OriginOffset = r.Reconsume, r.OriginTopic, r.OriginQueue, r.OriginOffset
	}
	return sm
}

func (n *Node) handleEndTx(ctx context.Context, req *wire.EndTxRequest) (any, error) {
	st := TxState(req.State)
	if st < TxUnknown || st > TxRollback {
		return nil, fmt.Errorf("%w: transaction state %d (0 unknown, 1 commit, 2 rollback)", ErrInvalidArgument, req.State)
	}
	res, err := n.EndTransaction(ctx, EndTransactionRequest{ProducerGroup: req.ProducerGroup,
		Half: Position{Index: req.RaftIndex, Pos: req.Pos}, State: st, FromCheck: req.FromCheck})
	if err != nil {
		return nil, err
	}
	return &wire.EndTxResponse{Outcome: uint8(res.Outcome), QueueOffset: res.QueueOffset}, nil
}

func (n *Node) handleListTx(_ context.Context, req *wire.ListTxRequest) (any, error) {
	st := n.Transactions(req.Max)
	out := &wire.TxList{Open: make([]wire.TxHalf, 0, len(st.Open)), Committed: st.Stats.Committed,
		RolledBack: st.Stats.RolledBack, BrokerRolledBack: st.Stats.BrokerRolledBack}
	for i := range st.Open {
		h := &st.Open[i]
		th := wire.TxHalf{Message: wireStored(&h.Message), ProducerGroup: h.Group, AgeMillis: h.Age.Milliseconds(),
			Checks: h.Checks, Pos: h.Message.Pos}
		if !h.LastCheck.IsZero() {
			th.LastCheck = h.LastCheck.UnixMilli()
		}
		out.Open = append(out.Open, th)
	}
	for _, d := range st.Discards {
		name, _ := n.fsm.TopicName(d.TopicID)
		out.Discards = append(out.Discards, wire.TxDiscard{Topic: name, QueueID: d.QueueID, RaftIndex: d.Index, Pos: d.Pos,
			Stored: d.Stored, At: d.At, Checks: d.Checks})
	}
	return out, nil
}

// rmqTxChecker asks an rmq producer over its connection.
func (n *Node) rmqTxChecker(c *wire.ServerConn) txChecker {
	return func(ctx context.Context, m StoredMessage, checks int) (TxState, error) {
		var resp wire.CheckTxResponse
		req := wire.CheckTxRequest{Message: wireStored(&m), RaftIndex: m.RaftIndex, Pos: m.Pos, Checks: checks}
		if err := c.Call(ctx, wire.CodeCheckTx, req, &resp); err != nil {
			return TxUnknown, err
		}
		if st := TxState(resp.State); st >= TxUnknown && st <= TxRollback {
			return st, nil
		}
		return TxUnknown, fmt.Errorf("producer answered transaction state %d", resp.State)
	}
}
