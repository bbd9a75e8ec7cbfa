package rocketmq_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// txListener answers like an application's database: "c" bodies commit,
// "r" roll back, "u" are unknown when sent and commit when checked back.
type txListener struct {
	checks  atomic.Int64
	mu      sync.Mutex
	checked map[string]int
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	switch string(m.Body)[0] {
	case 'c':
		return primitive.CommitMessageState
	case 'r':
		return primitive.RollbackMessageState
	}
	return primitive.UnknowState
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.checks.Add(1)
	l.mu.Lock()
	l.checked[string(m.Body)]++
	l.mu.Unlock()
	if string(m.Body)[0] == 'r' {
		return primitive.RollbackMessageState
	}
	return primitive.CommitMessageState
}

// TestTransactionProducer: unmodified rocketmq-client-go's transaction
// producer against rmq: committed halves are consumed, rolled-back ones
// never, unknown ones are resolved by rmq's CHECK_TRANSACTION_STATE and
// the producer's END_TRANSACTION answer; rmq's admin lists nothing open
// at the end.
func TestTransactionProducer(t *testing.T) {
	skipUnderRace(t)
	d := startDev(t, "--transaction-timeout", "500ms", "--transaction-check-interval", "500ms")
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 2)
	l := &txListener{checked: map[string]int{}}
	name := uniqueName(t, "TP")
	tp, err := rocketmq.NewTransactionProducer(l,
		producer.WithNameServer(primitive.NamesrvAddr{d.ns}),
		producer.WithGroupName(name), producer.WithInstanceName(name),
		producer.WithRetry(2), producer.WithSendMsgTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Start(); err != nil {
		t.Fatal(err)
	}
	tr := track("transaction producer "+name, tp.Shutdown)
	t.Cleanup(func() { _ = tr.Shutdown() })

	var want []string
	for i := 0; i < 30; i++ {
		body := string("cru"[i%3]) + strconv.Itoa(i)
		ctx, cancel := sendCtx()
		res, err := tp.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(body)))
		cancel()
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send in transaction %s: %v %+v", body, err, res)
		}
		if body[0] != 'r' {
			want = append(want, body)
		}
	}
	col := newCollector()
	newPushConsumer(t, d.ns, uniqueName(t, "G"), topic, subAll, col.handle)
	col.waitFor(t, 60*time.Second, want)
	a, err := newAdmin(d.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	eventually(t, 30*time.Second, "no transaction left open", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		txs, err := a.Transactions(ctx, 0)
		if err == nil && len(txs.Open) > 0 {
			err = fmt.Errorf("%d open", len(txs.Open))
		}
		return err
	})
	for body := range col.bodies() {
		if body[0] == 'r' {
			t.Errorf("rolled-back %s consumed", body)
		}
	}
	if col.duplicates() != 0 {
		t.Errorf("%d duplicates", col.duplicates())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for body := range l.checked {
		if body[0] != 'u' {
			t.Errorf("%s checked back though the producer ended it", body)
		}
	}
	if len(l.checked) != 10 {
		t.Errorf("%d unknown transactions checked back, want 10 (%v)", len(l.checked), l.checked)
	}
	t.Logf("30 transactional sends (10 commit, 10 rollback, 10 unknown): %d consumed, %d check-backs", len(col.bodies()), l.checks.Load())
}
