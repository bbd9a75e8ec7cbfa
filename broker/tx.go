package broker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// Transactional messages (RocketMQ 4.3+). A producer sends a half
// message: a message with TRAN_MSG=true and its producer group in PGROUP.
// The fsm stores it once and keeps it invisible (fsm/tx.go). The producer
// runs its local transaction and ends the half with EndTransaction:
// commit proposes fsm.EndTx, which appends the unit pointing at the
// half's own record (no second write of the body); rollback discards it;
// unknown leaves it open. The "tx-check" leader service asks a live
// producer of the group about every half open longer than
// TransactionTimeout, then again every TransactionCheckInterval, first
// counting the check in the replicated state (fsm.CheckTx) so a new
// leader continues the count; after TransactionCheckMax checks it rolls
// the half back itself (counted and listed for operators: TxStatus).
// A producer answers a check on the connection it opened: rmq producers
// registered by hello (producers.go), RocketMQ producers by heartbeat
// (remoting_clients.go, CHECK_TRANSACTION_STATE, answered with
// END_TRANSACTION).

// Transaction message properties (RocketMQ MessageConst).
const (
	PropProducerGroup = "PGROUP"
	PropTxCheckTimes  = "TRANSACTION_CHECK_TIMES"
)

// TxState is a transaction's end.
type TxState int

// TxState values.
const (
	TxUnknown TxState = iota
	TxCommit
	TxRollback
)

func (s TxState) String() string {
	switch s {
	case TxCommit:
		return "commit"
	case TxRollback:
		return "rollback"
	}
	return "unknown"
}

// validateHalf checks a half message's properties on the write path.
func validateHalf(m *fsm.Message) error {
	if m.Properties[fsm.PropTransaction] != "true" {
		if _, ok := m.Properties[fsm.PropTransaction]; ok {
			return fmt.Errorf("%w: property %s=%q: want \"true\" (a transactional half message) or nothing", ErrInvalidArgument, fsm.PropTransaction, m.Properties[fsm.PropTransaction])
		}
		return nil
	}
	if err := ValidateGroupName(m.Properties[PropProducerGroup]); err != nil {
		return fmt.Errorf("%w: a transactional message needs its producer group in %s: %w", ErrInvalidArgument, PropProducerGroup, err)
	}
	if m.Properties[fsm.PropDeliverAt] != "" || m.Properties[PropDelayLevel] != "" && m.Properties[PropDelayLevel] != "0" ||
		m.Properties[PropDelaySec] != "" || m.Properties[PropDelayMS] != "" {
		return fmt.Errorf("%w: a transactional message cannot also be delayed", ErrInvalidArgument)
	}
	return nil
}

// EndTransactionRequest ends a half message.
type EndTransactionRequest struct {
	ProducerGroup string
	Half          Position // the half's record (its send's RaftIndex and Pos)
	State         TxState
	FromCheck     bool // the answer to a check-back
}

// EndTransactionResult says what became of the half.
type EndTransactionResult struct {
	// Outcome: committed (QueueOffset is its offset), rolled back, or not
	// pending (ended before: a repeated answer changes nothing).
	Outcome     fsm.TxOutcome
	QueueOffset uint64
}

// EndTransaction commits or rolls back a half message. Unknown changes
// nothing (the broker checks back later). Only the serving leader takes
// it. Ending a half twice is harmless: the second answer reports it
// ended already.
func (n *Node) EndTransaction(ctx context.Context, req EndTransactionRequest) (EndTransactionResult, error) {
	if req.State != TxCommit && req.State != TxRollback {
		if req.State != TxUnknown {
			return EndTransactionResult{}, fmt.Errorf("%w: transaction state %d", ErrInvalidArgument, req.State)
		}
		return EndTransactionResult{}, n.checkWritable()
	}
	if err := n.checkWritable(); err != nil {
		return EndTransactionResult{}, err
	}
	return n.endTx(ctx, fsm.TxEnd{TxRef: fsm.TxRef{Index: req.Half.Index, Pos: req.Half.Pos}, Commit: req.State == TxCommit})
}

func (n *Node) endTx(ctx context.Context, end fsm.TxEnd) (EndTransactionResult, error) {
	data, err := fsm.Encode(&fsm.EndTx{Now: n.cfg.Now().UnixMilli(), Items: []fsm.TxEnd{end}})
	if err != nil {
		return EndTransactionResult{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	resp, err := n.propose(ctx, data)
	if err != nil {
		return EndTransactionResult{}, mapFSMError(err)
	}
	res, ok := resp.(*fsm.EndTxResult)
	if !ok || len(res.Outcomes) != 1 {
		return EndTransactionResult{}, fmt.Errorf("broker: end of transaction applied with result %T", resp)
	}
	return EndTransactionResult{Outcome: res.Outcomes[0], QueueOffset: res.Offsets[0]}, nil
}

// HalfStatus is an open half message, for operators.
type HalfStatus struct {
	Message   StoredMessage // the half (Topic, QueueID: where it goes when committed)
	Group     string        // producer group
	Age       time.Duration
	Checks    int
	LastCheck time.Time // zero before the first check
}

// TxStatus is the state of this broker group's transactions.
type TxStatus struct {
	Open     []HalfStatus
	Stats    fsm.TxStats
	Discards []fsm.TxDiscard // the latest halves the broker rolled back itself
}

// Transactions lists open half messages (up to max, oldest first; 0: all)
// and the counters. Any replica answers from its own state.
func (n *Node) Transactions(max int) TxStatus {
	now := n.cfg.Now()
	st, disc := n.fsm.TxInfo()
	out := TxStatus{Stats: st, Discards: disc}
	for _, h := range n.fsm.Halves() {
		if max > 0 && len(out.Open) == max {
			break
		}
		hs := HalfStatus{Age: now.Sub(time.UnixMilli(h.StoreTime)), Checks: int(h.Checks)}
		if h.LastCheck > 0 {
			hs.LastCheck = time.UnixMilli(h.LastCheck)
		}
		if m, err := n.halfMessage(h); err == nil {
			hs.Message = m
			hs.Group = m.Properties[PropProducerGroup]
		}
		out.Open = append(out.Open, hs)
	}
	return out
}

// halfMessage reads a half's record (MessageAt does not know halves:
// they have no queue offset).
func (n *Node) halfMessage(h fsm.HalfMessage) (StoredMessage, error) {
	rec, err := n.store.ReadAt(h.Index, h.Pos, h.Size, nil)
	if err != nil {
		return StoredMessage{}, err
	}
	m, err := fsm.DecodeMessage(rec)
	if err != nil {
		return StoredMessage{}, err
	}
	return StoredMessage{Message: m, StoreTime: h.StoreTime, RaftIndex: h.Index, Pos: h.Pos}, nil
}

// txChecker asks one producer connection about a half message: it
// returns the producer's answer, or TxUnknown when the answer comes
// later as an EndTransaction (RocketMQ's one-way check) or not at all.
type txChecker func(ctx context.Context, m StoredMessage, checks int) (TxState, error)

// txCheckers finds a live producer connection of a producer group on
// this node, rmq's or RocketMQ's.
func (n *Node) txCheckerFor(group string) txChecker {
	if c := n.producers.pick(group); c != nil {
		return n.rmqTxChecker(c)
	}
	if n.remoting != nil {
		return n.remoting.txChecker(group)
	}
	return nil
}

// runTxChecks is the "tx-check" leader service.
func (n *Node) runTxChecks(ctx context.Context) error {
	poll := min(max(n.cfg.TransactionCheckInterval/10, 10*time.Millisecond), time.Second, max(n.cfg.TransactionTimeout/4, 10*time.Millisecond))
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	inflight := map[fsm.TxRef]bool{} // checks sent and not yet answered by this leader
	var mu sync.Mutex
	for {
		now := n.cfg.Now().UnixMilli()
		due := n.fsm.DueHalves(now, n.cfg.TransactionTimeout.Milliseconds(), n.cfg.TransactionCheckInterval.Milliseconds(), fsm.MaxTxItems)
		var check []fsm.TxRef
		for _, h := range due {
			mu.Lock()
			busy := inflight[h.TxRef]
			mu.Unlock()
			if busy {
				continue
			}
			if int(h.Checks) >= n.cfg.TransactionCheckMax {
				if _, err := n.endTx(ctx, fsm.TxEnd{TxRef: h.TxRef, ByBroker: true}); err != nil && ctx.Err() == nil {
					n.log.Warn("rolling back an unanswered transaction failed; retrying", "index", h.Index, "pos", h.Pos, "error", err)
				} else if err == nil {
					n.log.Warn("rolled back a transaction its producers never resolved", "index", h.Index, "pos", h.Pos, "checks", h.Checks)
				}
				continue
			}
			check = append(check, h.TxRef)
		}
		if len(check) > 0 {
			// Count the checks first: a new leader then waits an interval
			// before asking again, and the maximum holds across leaders.
			err := n.proposeCommand(ctx, &fsm.CheckTx{Now: now, Items: check})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				n.log.Warn("recording transaction checks failed; retrying", "halves", len(check), "error", err)
			} else {
				for _, h := range due {
					if !containsRef(check, h.TxRef) {
						continue
					}
					mu.Lock()
					inflight[h.TxRef] = true
					mu.Unlock()
					wg.Add(1)
					go func() { // ends within the check timeout
						defer wg.Done()
						defer func() { mu.Lock(); delete(inflight, h.TxRef); mu.Unlock() }()
						n.checkHalf(ctx, h)
					}()
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func containsRef(rs []fsm.TxRef, r fsm.TxRef) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// checkHalf asks a producer of the half's group and ends the half with
// its answer.
func (n *Node) checkHalf(ctx context.Context, h fsm.HalfMessage) {
	m, err := n.halfMessage(h)
	if err != nil {
		n.log.Error("transaction check: half message unreadable", "index", h.Index, "pos", h.Pos, "error", err)
		return
	}
	group := m.Properties[PropProducerGroup]
	check := n.txCheckerFor(group)
	if check == nil {
		n.log.Debug("transaction check: no live producer of the group", "group", group, "index", h.Index, "checks", h.Checks+1)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := check(cctx, m, int(h.Checks)+1)
	if err != nil {
		n.log.Debug("transaction check unanswered", "group", group, "index", h.Index, "error", err)
		return
	}
	if st == TxUnknown {
		return
	}
	if _, err := n.endTx(ctx, fsm.TxEnd{TxRef: h.TxRef, Commit: st == TxCommit}); err != nil && ctx.Err() == nil {
		n.log.Warn("ending a checked transaction failed; it will be checked again", "index", h.Index, "error", err)
	}
}
