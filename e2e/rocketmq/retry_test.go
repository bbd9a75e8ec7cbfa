package rocketmq_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestRetryToDLQ: unmodified rocketmq-client-go consumers retry through
// rmq's retry queue (CONSUMER_SEND_MSG_BACK): a message failed twice is
// redelivered with reconsume counts 1 and 2 and then consumed; one that
// always fails is dead-lettered after maxReconsumeTimes (2) and listed by
// rmq's admin. Delay levels are shortened on rmq dev so the backoffs
// (levels 3, 4, ...) take milliseconds.
func TestRetryToDLQ(t *testing.T) {
	skipUnderRace(t)
	levels := make([]string, 18)
	for i := range levels {
		levels[i] = fmt.Sprintf("%dms", 20*(i+1))
	}
	d := startDev(t, "--delay-levels", strings.Join(levels, " "))
	topic, group := uniqueName(t, "T"), uniqueName(t, "G")
	createTopic(t, d.ns, topic, 1)
	p := newProducer(t, d.ns)
	for _, body := range []string{"flaky", "poison", "fine"} {
		mustSendSync(t, p, primitive.NewMessage(topic, []byte(body)))
	}
	var mu sync.Mutex
	seen := map[string][]int32{} // body -> reconsume counts seen
	newPushConsumer(t, d.ns, group, topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if m.Topic != topic {
				t.Errorf("delivered with topic %q, want %q (restored from RETRY_TOPIC)", m.Topic, topic)
			}
			b := string(m.Body)
			seen[b] = append(seen[b], m.ReconsumeTimes)
			if b == "poison" || b == "flaky" && m.ReconsumeTimes < 2 {
				return consumer.ConsumeRetryLater, nil
			}
		}
		return consumer.ConsumeSuccess, nil
	}, consumer.WithMaxReconsumeTimes(2), consumer.WithConsumeMessageBatchMaxSize(1))
	a, err := newAdmin(d.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	eventually(t, 60*time.Second, "flaky consumed and poison dead-lettered", func() error {
		mu.Lock()
		flaky := append([]int32(nil), seen["flaky"]...)
		mu.Unlock()
		if len(flaky) < 3 {
			return fmt.Errorf("flaky seen with counts %v", flaky)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		dls, err := a.DeadLetters(ctx, group, 0)
		if err != nil || len(dls) != 1 {
			return fmt.Errorf("dead letters %d, %v", len(dls), err)
		}
		if string(dls[0].Body) != "poison" || dls[0].Failures != 3 {
			return fmt.Errorf("dead letter %q after %d failures, want poison after 3", dls[0].Body, dls[0].Failures)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(seen["flaky"]); got != "[0 1 2]" {
		t.Fatalf("flaky delivered with reconsume counts %s, want [0 1 2]", got)
	}
	if got := fmt.Sprint(seen["poison"]); got != "[0 1 2]" {
		t.Fatalf("poison delivered with reconsume counts %s, want [0 1 2] before the DLQ", got)
	}
	if got := fmt.Sprint(seen["fine"]); got != "[0]" {
		t.Fatalf("fine delivered %s, want once", got)
	}
	t.Logf("retries: flaky %v, poison %v then the DLQ", seen["flaky"], seen["poison"])
}
