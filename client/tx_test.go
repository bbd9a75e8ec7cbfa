package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

func txCluster(t *testing.T, checkMax int) *e2e.Cluster {
	t.Helper()
	return e2e.StartCluster(t, e2e.Options{Broker: func(cfg *broker.Config) {
		cfg.TransactionTimeout = 300 * time.Millisecond
		cfg.TransactionCheckInterval = 300 * time.Millisecond
		cfg.TransactionCheckMax = checkMax
	}})
}

// TestTransactionsAcrossLeaderKill: N transactional sends; a third
// commit, a third roll back, a third answer unknown and are resolved by
// the check-back (even ones commit, odd ones roll back); the leader is
// killed a third of the way. Consumers see exactly the committed and
// checked-commit messages, each once. RMQ_TX_MESSAGES sets N (default
// 3 000; the run is 10 000).
func TestTransactionsAcrossLeaderKill(t *testing.T) {
	total := 3000
	if v, err := strconv.Atoi(os.Getenv("RMQ_TX_MESSAGES")); err == nil && v > 0 {
		total = v
	}
	c := txCluster(t, 15)
	createTopic(t, c, "orders", 4)
	// The checker answers as the application's database would: the
	// local outcome for the thirds that had one (a check-back of those
	// happens when their end was still in flight across the kill), and
	// even/odd for the third that answered unknown.
	var checks, earlyChecks atomic.Int64
	checker := func(_ context.Context, m *client.MessageExt) client.TxState {
		checks.Add(1)
		n, _ := strconv.Atoi(string(m.Body))
		switch {
		case n%3 == 0:
			earlyChecks.Add(1)
			return client.TxCommit
		case n%3 == 1:
			earlyChecks.Add(1)
			return client.TxRollback
		case n%2 == 0:
			return client.TxCommit
		}
		return client.TxRollback
	}
	p := newProducer(t, c, func(cfg *client.ProducerConfig) {
		cfg.Group = "tx-producers"
		cfg.TransactionChecker = checker
		cfg.SendTimeout = 10 * time.Second
	})
	want := map[string]bool{}
	for n := 0; n < total; n++ {
		if n%3 == 0 || n%3 == 2 && n%2 == 0 {
			want[strconv.Itoa(n)] = true
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	cons := newConsumer(t, c, "tx-readers", map[string]string{"orders": "*"}, nil)
	if err := cons.Start(ctxT(t, 10*time.Second), func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			seen[string(m.Body)]++
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}

	ctx := ctxT(t, 240*time.Second)
	start := time.Now()
	var sent, endErrs atomic.Int64
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() { // ends when work is closed
			defer wg.Done()
			for n := range work {
				body := strconv.Itoa(n)
				for attempt := 0; ; attempt++ {
					_, st, err := p.SendInTransaction(ctx, &client.Message{Topic: "orders", Body: []byte(body)},
						func(context.Context, *client.Message) client.TxState {
							return [3]client.TxState{client.TxCommit, client.TxRollback, client.TxUnknown}[n%3]
						})
					if err != nil && st == client.TxUnknown && attempt < 5 && ctx.Err() == nil {
						continue // the half was not stored (the send failed): send it again
					}
					if err != nil {
						endErrs.Add(1) // the end was not confirmed: the check-back must resolve it
						t.Logf("transaction %d: %v", n, err)
					}
					break
				}
				sent.Add(1)
			}
		}()
	}
	killed := ""
	for n := 0; n < total; n++ {
		if n == total/3 {
			killed = c.LeaderID(10 * time.Second)
			c.Kill(killed)
		}
		work <- n
	}
	close(work)
	wg.Wait()
	sendTime := time.Since(start)
	// The unknown third is resolved by check-backs (timeout 300 ms).
	e2e.Eventually(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < len(want) {
			return fmt.Errorf("%d of %d committed messages consumed", len(seen), len(want))
		}
		return nil
	})
	a := newAdmin(t, c)
	e2e.Eventually(t, 30*time.Second, func() error {
		txs, err := a.Transactions(ctxT(t, 5*time.Second), 0)
		if err == nil && len(txs.Open) > 0 {
			err = fmt.Errorf("%d transactions still open", len(txs.Open))
		}
		return err
	})
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for body, k := range seen {
		if !want[body] {
			t.Errorf("message %s consumed, but its transaction rolled back", body)
		}
		dups += k - 1
	}
	txs, err := a.Transactions(ctxT(t, 5*time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d transactional sends in %v (%.0f/s), leader %s killed at %d; %d committed + checked-commit consumed, %d consumed twice; %d check-backs (%d of transactions whose end was in flight); %d ends unconfirmed; broker counters: %d committed, %d rolled back (%d by the broker)",
		total, sendTime.Round(time.Millisecond), float64(total)/sendTime.Seconds(), killed, total/3, len(seen), dups, checks.Load(), earlyChecks.Load(), endErrs.Load(),
		txs.Committed, txs.RolledBack, txs.ByBrokerRoll)
	// A half resent across the kill is stored once (producer dedup), so
	// nothing is committed twice.
	if stored := int(txs.Committed) - len(want); dups > 0 || stored != 0 {
		t.Errorf("%d committed messages consumed more than once; %d more commits than committed transactions", dups, stored)
	}
}

// TestTransactionNeverAnswered: a producer whose checker always answers
// unknown keeps its transaction open, listed with its check count, until
// the check maximum; then the broker rolls it back, counts it and lists
// it as discarded, and no consumer ever sees it.
func TestTransactionNeverAnswered(t *testing.T) {
	c := txCluster(t, 3)
	createTopic(t, c, "orders", 1)
	var checks atomic.Int64
	p := newProducer(t, c, func(cfg *client.ProducerConfig) {
		cfg.Group = "silent"
		cfg.TransactionChecker = func(context.Context, *client.MessageExt) client.TxState {
			checks.Add(1)
			return client.TxUnknown
		}
	})
	res, st, err := p.SendInTransaction(ctxT(t, 10*time.Second), &client.Message{Topic: "orders", Body: []byte("limbo")},
		func(context.Context, *client.Message) client.TxState { return client.TxUnknown })
	if err != nil || st != client.TxUnknown {
		t.Fatalf("send in transaction: %v, %v", st, err)
	}
	a := newAdmin(t, c)
	txs, err := a.Transactions(ctxT(t, 5*time.Second), 0)
	if err != nil || len(txs.Open) != 1 || txs.Open[0].MsgID != res.MsgID || txs.Open[0].ProducerGroup != "silent" || string(txs.Open[0].Body) != "limbo" {
		t.Fatalf("open transactions %+v, %v", txs, err)
	}
	e2e.Eventually(t, 30*time.Second, func() error {
		txs, err = a.Transactions(ctxT(t, 5*time.Second), 0)
		if err == nil && (len(txs.Open) != 0 || txs.ByBrokerRoll != 1) {
			err = fmt.Errorf("%d open, %d rolled back by the broker, %d checks", len(txs.Open), txs.ByBrokerRoll, checks.Load())
		}
		return err
	})
	if n := checks.Load(); n != 3 {
		t.Errorf("%d check-backs, want the maximum 3", n)
	}
	if len(txs.Discarded) != 1 || txs.Discarded[0].Checks != 3 || txs.Discarded[0].Topic != "orders" {
		t.Fatalf("discarded %+v", txs.Discarded)
	}
	if err := p.EndTransaction(ctxT(t, 5*time.Second), res, client.TxCommit); err != nil {
		t.Fatalf("a late commit is harmless: %v", err)
	}
	if st, err := a.TopicStatus(ctxT(t, 5*time.Second), "orders"); err != nil || st[0].MaxOffset != 0 {
		t.Fatalf("topic status %+v, %v: a rolled-back message got a queue offset", st, err)
	}
	// Misuse is refused clearly.
	plain := newProducer(t, c, nil)
	if _, _, err := plain.SendInTransaction(ctxT(t, 5*time.Second), &client.Message{Topic: "orders", Body: []byte("x")},
		func(context.Context, *client.Message) client.TxState { return client.TxCommit }); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("SendInTransaction without a checker: %v", err)
	}
	if _, _, err := p.SendInTransaction(ctxT(t, 5*time.Second), &client.Message{Topic: "orders", Body: []byte("x"), Properties: map[string]string{"TIMER_DELAY_SEC": "5"}},
		func(context.Context, *client.Message) client.TxState { return client.TxCommit }); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("a delayed transactional message: %v", err)
	}
}
