package broker

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/rmq-dev/rmq/compat"
)

// RocketMQ transactions over remoting (tx.go holds the semantics). A
// RocketMQ producer sends the half message as an ordinary SEND with
// TRAN_MSG=true and PGROUP (sysFlag TRANSACTION_PREPARED); the answer's
// offsetMsgId names the half's physical offset (Raft index << 28 |
// position), which the producer's END_TRANSACTION (37, one-way) echoes
// as commitLogOffset, with commitOrRollback 8 (commit), 12 (rollback) or
// 0 (unknown). A check-back is CHECK_TRANSACTION_STATE (39), one-way to
// a connection whose heartbeat named the half's producer group, with
// the half message as its body (EndTransactionRequestHeader and
// CheckTransactionStateRequestHeader as rocketmq-client-go v2.1.2 reads
// them); the producer answers with END_TRANSACTION fromTransactionCheck.

// commitOrRollback values (RocketMQ MessageSysFlag).
const (
	txTypeNone     = 0
	txTypeCommit   = 8
	txTypeRollback = 12
)

func (n *Node) remotingEndTransaction(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	group := h.str("producerGroup")
	phys := h.i64("commitLogOffset")
	kind := h.i64("commitOrRollback")
	if h.err != nil {
		return nil, h.err
	}
	var st TxState
	switch kind {
	case txTypeCommit:
		st = TxCommit
	case txTypeRollback:
		st = TxRollback
	case txTypeNone:
		st = TxUnknown
	default:
		return nil, fmt.Errorf("%w: commitOrRollback %d (want 8 commit, 12 rollback or 0 unknown)", ErrInvalidArgument, kind)
	}
	fromCheck, _ := strconv.ParseBool(h.optStr("fromTransactionCheck"))
	res, err := n.EndTransaction(ctx, EndTransactionRequest{ProducerGroup: group, Half: positionOf(phys), State: st, FromCheck: fromCheck})
	if err != nil {
		n.log.Warn("END_TRANSACTION failed", "group", group, "commit-log-offset", phys, "state", st, "error", err)
		return nil, err
	}
	n.log.Debug("END_TRANSACTION", "group", group, "commit-log-offset", phys, "state", st, "outcome", res.Outcome, "from-check", fromCheck)
	return ok(req), nil
}

// txChecker picks a RocketMQ producer connection of group (nil: none).
func (rc *remotingClients) txChecker(group string) txChecker {
	rc.mu.Lock()
	conns := rc.producers[group]
	var c *compat.ServerConn
	if len(conns) > 0 {
		k := rand.IntN(len(conns))
		for _, cc := range conns {
			if k == 0 {
				c = cc
				break
			}
			k--
		}
	}
	rc.mu.Unlock()
	if c == nil {
		return nil
	}
	n := rc.n
	return func(_ context.Context, m StoredMessage, checks int) (TxState, error) {
		phys := physicalOffset(m.RaftIndex, m.Pos)
		offsetID := compat.OffsetMsgID(n.storeHost(), phys)
		uniq := ""
		if len(m.ID) == 16 {
			uniq = strings.ToUpper(hex.EncodeToString(m.ID))
		}
		ext := n.messageExt(m.Topic, &m)
		ext.Properties[PropTxCheckTimes] = strconv.Itoa(checks)
		ext.QueueOffset = 0
		req := compat.NewRequest(compat.ReqCheckTransactionState, map[string]string{
			"tranStateTableOffset": "0",
			"commitLogOffset":      strconv.FormatInt(phys, 10),
			"msgId":                uniq,
			"transactionId":        uniq,
			"offsetMsgId":          offsetID,
		}, compat.AppendMessageExt(nil, &ext))
		if err := c.InvokeOneway(req); err != nil {
			return TxUnknown, err
		}
		return TxUnknown, nil // the answer comes as END_TRANSACTION
	}
}
