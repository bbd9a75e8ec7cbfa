package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// uniqueID is a distinct 16-byte message ID per n (the broker dedups
// equal ones).
func uniqueID(n int) []byte { return []byte(fmt.Sprintf("%016d", n)) }

var halfIDs atomic.Int64

func halfMessage(body string) *fsm.Message {
	return &fsm.Message{Topic: "orders", ID: uniqueID(int(halfIDs.Add(1))), Body: []byte(body),
		Properties: map[string]string{fsm.PropTransaction: "true", PropProducerGroup: "pg"}}
}

// TestEndTransaction: a half is invisible until committed, a commit
// makes it readable at its own record, a second end reports it ended,
// and malformed halves are refused naming the problem.
func TestEndTransaction(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	createTopic(t, c, "orders", 1)
	l := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := l.Send(ctx, []*fsm.Message{halfMessage("pay"), halfMessage("refund")})
	if err != nil || res[0].Err != nil || !res[0].Half || !res[1].Half {
		t.Fatalf("send halves: %+v, %v", res, err)
	}
	if _, next, _ := l.QueueRange("orders", 0); next != 0 {
		t.Fatalf("a half is visible: next %d", next)
	}
	pay := Position{Index: res[0].RaftIndex, Pos: res[0].Pos}
	end, err := l.EndTransaction(ctx, EndTransactionRequest{ProducerGroup: "pg", Half: pay, State: TxCommit})
	if err != nil || end.Outcome != fsm.TxCommitted || end.QueueOffset != 0 {
		t.Fatalf("commit: %+v, %v", end, err)
	}
	rd, err := l.Read(ctx, ReadRequest{Topic: "orders", Offset: 0})
	if err != nil || len(rd.Messages) != 1 || string(rd.Messages[0].Body) != "pay" || rd.Messages[0].RaftIndex != pay.Index || rd.Messages[0].Pos != pay.Pos {
		t.Fatalf("read after commit: %+v, %v", rd.Messages, err)
	}
	if end, err := l.EndTransaction(ctx, EndTransactionRequest{Half: pay, State: TxRollback}); err != nil || end.Outcome != fsm.TxNotPending {
		t.Fatalf("rollback after commit: %+v, %v", end, err)
	}
	if _, err := l.EndTransaction(ctx, EndTransactionRequest{Half: pay, State: TxState(7)}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad state: %v", err)
	}
	if st := l.Transactions(0); len(st.Open) != 1 || string(st.Open[0].Message.Body) != "refund" || st.Open[0].Group != "pg" || st.Stats.Committed != 1 {
		t.Fatalf("transactions %+v", st)
	}
	bad := halfMessage("x")
	delete(bad.Properties, PropProducerGroup)
	delayed := halfMessage("y")
	delayed.Properties[PropDelayLevel] = "3"
	wrong := halfMessage("z")
	wrong.Properties[fsm.PropTransaction] = "yes"
	res, err = l.Send(ctx, []*fsm.Message{bad, delayed, wrong})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"producer group", "cannot also be delayed", `want "true"`} {
		if !errors.Is(res[i].Err, ErrInvalidArgument) || !strings.Contains(res[i].Err.Error(), want) {
			t.Errorf("message %d: %v, want an invalid argument naming %q", i, res[i].Err, want)
		}
	}
}

// BenchmarkCommitLogBytesPerTransaction reports the CommitLog bytes of a
// committed transactional 1 KiB message: its half record and its share
// of the EndTx entry that commits it (ended one by one, as producers do).
func BenchmarkCommitLogBytesPerTransaction(b *testing.B) {
	c := newTestCluster(b, 1, nil)
	createTopic(b, c, "orders", 8)
	l := c.leader(10 * time.Second)
	body := make([]byte, 1024)
	before := l.Status().LogBytes
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := &fsm.Message{Topic: "orders", QueueID: uint32(i % 8), ID: uniqueID(i), Body: body,
			Properties: map[string]string{fsm.PropTransaction: "true", PropProducerGroup: "pg"}}
		res, err := l.Send(context.Background(), []*fsm.Message{m})
		if err != nil || res[0].Err != nil {
			b.Fatal(err, res)
		}
		if _, err := l.EndTransaction(context.Background(), EndTransactionRequest{Half: Position{Index: res[0].RaftIndex, Pos: res[0].Pos}, State: TxCommit}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(l.Status().LogBytes-before)/float64(b.N), "log-bytes/msg")
}
