package client

// TxState is a local transaction's outcome (RocketMQ LocalTransactionState).
type TxState int

const (
	// TxUnknown leaves the transaction open: the broker asks the producer
	// group again later (TransactionChecker), up to its check maximum,
	// then rolls it back.
	TxUnknown TxState = iota
	// TxCommit makes the message visible to consumers.
	TxCommit
	// TxRollback discards it.
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
