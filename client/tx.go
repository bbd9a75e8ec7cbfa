package client

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// Transactional messages (RocketMQ 4.3+ semantics). SendInTransaction
// stores a half message, which no consumer sees; it then runs the local
// transaction and ends the half with its answer: commit makes the
// message visible (the broker does not write it again), rollback
// discards it, TxUnknown leaves it to the broker's check-back. A half
// still open after the broker's transaction timeout (6 s by default) is
// checked back: the broker asks a live producer of the same Group on
// the producer's own connection, and ProducerConfig.TransactionChecker
// answers; every check interval (60 s) again, up to the check maximum
// (15), after which the broker rolls it back. A producer with a
// TransactionChecker says hello to the leader of every broker group it
// knows every heartbeat (1 s), so a new leader can reach it.

const txHeartbeat = time.Second

// startTransactions makes p answer check-backs (before any connection).
func (p *Producer) startTransactions() {
	p.takeServerRequest(wire.CodeCheckTx, p.serveCheck)
	p.wg.Add(1)
	go func() { // ends with p.base (Close)
		defer p.wg.Done()
		t := time.NewTicker(txHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-p.base.Done():
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(p.base, txHeartbeat)
			if err := p.sayHelloEverywhere(ctx); err != nil {
				p.log.Debug("producer hello", "error", err)
			}
			cancel()
		}
	}()
}

func (p *Producer) serveCheck(ctx context.Context, body []byte) (any, error) {
	var req wire.CheckTxRequest
	if err := wire.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	m := fromStored(&req.Message, "")
	st := p.checkLocal(ctx, m)
	p.log.Debug("transaction checked back", "msg-id", m.MsgID, "checks", req.Checks, "state", st)
	return wire.CheckTxResponse{State: int(st)}, nil
}

// checkLocal runs the checker; a panic counts as TxUnknown (the broker
// asks again), as RocketMQ treats a checker's exception.
func (p *Producer) checkLocal(ctx context.Context, m *MessageExt) (st TxState) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("TransactionChecker panicked; answering unknown", "msg-id", m.MsgID, "panic", r)
			st = TxUnknown
		}
	}()
	return p.cfg.TransactionChecker(ctx, m)
}

// SendInTransaction stores msg as a half message, runs local (the local
// transaction) and ends the half with local's answer. It returns the
// half's SendResult, local's answer and, if the end could not be
// confirmed, an error saying so: the broker then resolves the half by
// checking back with TransactionChecker. A panic in local counts as
// TxUnknown. msg may not be delayed.
func (p *Producer) SendInTransaction(ctx context.Context, msg *Message, local func(ctx context.Context, msg *Message) TxState) (SendResult, TxState, error) {
	if p.cfg.TransactionChecker == nil {
		return SendResult{}, TxUnknown, invalidf("SendInTransaction needs ProducerConfig.TransactionChecker (the broker checks back open transactions)")
	}
	if local == nil {
		return SendResult{}, TxUnknown, invalidf("nil local transaction")
	}
	half := *msg
	half.Properties = maps.Clone(msg.Properties)
	if half.Properties == nil {
		half.Properties = map[string]string{}
	}
	half.Properties[propTransaction] = "true"
	half.Properties[propProducerGroup] = p.cfg.Group
	res, err := p.Send(ctx, &half)
	if err != nil {
		return SendResult{}, TxUnknown, err
	}
	if !res.half {
		return res, TxUnknown, fmt.Errorf("%w: broker group %s stored the message but not as a transactional half (an rmq broker before transactions?)", ErrInternal, res.Group)
	}
	st := p.runLocal(ctx, &half, local)
	if st == TxUnknown {
		return res, st, nil
	}
	return res, st, p.EndTransaction(ctx, res, st)
}

func (p *Producer) runLocal(ctx context.Context, m *Message, local func(context.Context, *Message) TxState) (st TxState) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("local transaction panicked; leaving it to the check-back", "panic", r)
			st = TxUnknown
		}
	}()
	return local(ctx, m)
}

// EndTransaction commits or rolls back the half message res names (from
// SendInTransaction): for a local transaction that answered TxUnknown
// and was resolved later by the application itself. Ending a half twice
// is harmless; ending one the broker already rolled back (its check
// maximum passed) commits nothing.
func (p *Producer) EndTransaction(ctx context.Context, res SendResult, st TxState) error {
	if !res.half {
		return invalidf("message %s is not a transactional half message", res.MsgID)
	}
	if st != TxCommit && st != TxRollback {
		return invalidf("end a transaction with TxCommit or TxRollback, not %s", st)
	}
	ctx, cancel := p.sendContext(ctx)
	defer cancel()
	req := wire.EndTxRequest{ProducerGroup: p.cfg.Group, RaftIndex: res.halfIndex, Pos: res.halfPosition, State: int(st)}
	var resp wire.EndTxResponse
	// Ends are idempotent at the broker: one whose answer was lost is resent.
	if err := p.router.callLeader(ctx, res.Group, 3, wire.CodeEndTx, req, &resp); err != nil {
		return fmt.Errorf("end of transaction %s (%s) not confirmed, the broker will check back: %w", res.MsgID, st, err)
	}
	if resp.Outcome == txTopicGone {
		return fmt.Errorf("%w: transaction %s committed, but topic %q was deleted meanwhile", ErrTopicNotFound, res.MsgID, res.Topic)
	}
	return nil
}

// Transaction message properties (RocketMQ MessageConst).
const (
	propTransaction   = "TRAN_MSG"
	propProducerGroup = "PGROUP"
)

// EndTxResponse outcomes (wire).
const txTopicGone = 4
