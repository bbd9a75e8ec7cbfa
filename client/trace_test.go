package client_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestMessageTrace: a traced message sent, failed once by a traced
// consumer and then consumed shows its events in order: the send with
// the broker's queue and offset, a delivery and its retry, the
// redelivery from the retry queue and its success.
func TestMessageTrace(t *testing.T) {
	c := retryCluster(t, 10*time.Millisecond, 20*time.Millisecond, 50*time.Millisecond)
	createTopic(t, c, "orders", 1)
	p := newProducer(t, c, func(cfg *client.ProducerConfig) { cfg.Trace = true; cfg.Group = "shop" })
	res, err := p.Send(ctxT(t, 10*time.Second), &client.Message{Topic: "orders", Body: []byte("order 1001"), Keys: []string{"order-1001"}})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	cons := newConsumer(t, c, "billing", map[string]string{"orders": "*"}, func(cfg *client.ConsumerConfig) { cfg.Trace = true })
	if err := cons.Start(ctxT(t, 10*time.Second), func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		if calls.Add(1) == 1 {
			return client.ConsumeRetryLater
		}
		return client.ConsumeSuccess
	}); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, 20*time.Second, func() error {
		if n := calls.Load(); n < 2 {
			return fmt.Errorf("%d handler calls", n)
		}
		return nil
	})
	a := newAdmin(t, c)
	var recs []client.TraceRecord
	e2e.Eventually(t, 20*time.Second, func() error {
		var err error
		recs, err = a.MessageTrace(ctxT(t, 5*time.Second), res.MsgID, "")
		if err == nil && len(recs) < 5 {
			err = fmt.Errorf("%d trace records", len(recs))
		}
		return err
	})
	var got []string
	for _, r := range recs {
		got = append(got, r.Kind+":"+r.Result)
	}
	if want := "send:ok deliver:delivered consume:retry deliver:delivered consume:success"; strings.Join(got, " ") != want {
		t.Fatalf("trace %v, want %s", got, want)
	}
	send := recs[0]
	if send.Group != "shop" || send.Broker != res.Group || send.Offset != res.QueueOffset || send.StoreTime.IsZero() || send.Topic != "orders" {
		t.Fatalf("send record %+v", send)
	}
	if recs[3].Reconsume != 1 || recs[1].Group != "billing" || recs[3].Topic != "orders" {
		t.Fatalf("delivery records %+v / %+v", recs[1], recs[3])
	}
	if st := p.Stats().Trace; st.Sent < 1 || st.Dropped != 0 {
		t.Fatalf("producer trace stats %+v", st)
	}
}

// BenchmarkSendAsyncTrace compares untraced and traced async sends of
// 1 KiB messages into one in-process group; -count N interleaves them.
func BenchmarkSendAsyncTrace(b *testing.B) {
	c := e2e.StartCluster(b, e2e.Options{})
	a, err := client.NewAdmin(client.AdminConfig{NameServers: []string{c.NamesrvAddr()}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := a.CreateTopic(ctx, client.TopicSpec{Name: "bench", Queues: 8}); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	for _, traced := range []bool{false, true} {
		b.Run(fmt.Sprintf("trace=%v", traced), func(b *testing.B) {
			p, err := client.NewProducer(client.ProducerConfig{NameServers: []string{c.NamesrvAddr()}, Trace: traced})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(context.Background())
			// Warm the route and the connections.
			if _, err := p.Send(ctx, &client.Message{Topic: "bench", Body: body}); err != nil {
				b.Fatal(err)
			}
			var failed atomic.Int64
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.SendAsync(ctx, &client.Message{Topic: "bench", Body: body, Keys: []string{"k"}}, func(_ client.SendResult, err error) {
					if err != nil {
						failed.Add(1)
					}
				})
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d sends failed", n)
			}
		})
	}
}
