package client

import (
	"context"
	"fmt"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// OpenTransaction is a transactional half message not yet committed or
// rolled back.
type OpenTransaction struct {
	*MessageExt   // Queue is where it goes when committed; QueueOffset is 0
	ProducerGroup string
	Age           time.Duration
	Checks        int       // check-backs so far
	LastCheck     time.Time // zero before the first
}

// DiscardedTransaction is a half the broker rolled back itself after its
// check maximum (its producers never answered).
type DiscardedTransaction struct {
	Group      string // broker group
	Topic      string
	QueueID    uint32
	Stored, At time.Time
	Checks     int
}

// Transactions is the transaction state of the cluster's broker groups.
type Transactions struct {
	Open                                []OpenTransaction
	Committed, RolledBack, ByBrokerRoll uint64 // counters, summed over broker groups
	Discarded                           []DiscardedTransaction
}

// Transactions lists open half messages (oldest first per broker group,
// up to limit in all; 0: all) and the transaction counters.
func (a *Admin) Transactions(ctx context.Context, limit int) (Transactions, error) {
	ctx, cancel := a.ctx(ctx)
	defer cancel()
	groups, err := a.targetGroups(ctx, "")
	if err != nil {
		return Transactions{}, err
	}
	var out Transactions
	for _, g := range groups {
		var tl wire.TxList
		if err := a.router.callLeader(ctx, g, 1, wire.CodeListTx, wire.ListTxRequest{Max: limit}, &tl); err != nil {
			return out, fmt.Errorf("broker group %s: %w", g, err)
		}
		out.Committed += tl.Committed
		out.RolledBack += tl.RolledBack
		out.ByBrokerRoll += tl.BrokerRolledBack
		for i := range tl.Open {
			h := &tl.Open[i]
			if limit > 0 && len(out.Open) == limit {
				break
			}
			ot := OpenTransaction{MessageExt: fromStored(&h.Message, g), ProducerGroup: h.ProducerGroup,
				Age: time.Duration(h.AgeMillis) * time.Millisecond, Checks: h.Checks}
			if h.LastCheck > 0 {
				ot.LastCheck = time.UnixMilli(h.LastCheck)
			}
			out.Open = append(out.Open, ot)
		}
		for _, d := range tl.Discards {
			out.Discarded = append(out.Discarded, DiscardedTransaction{Group: g, Topic: d.Topic, QueueID: d.QueueID,
				Stored: time.UnixMilli(d.Stored), At: time.UnixMilli(d.At), Checks: int(d.Checks)})
		}
	}
	return out, nil
}
