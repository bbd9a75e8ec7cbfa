package rocketmq_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// propDeliverAt is the property rmq stores a delayed message's due time
// in (unix ms; RocketMQ 5's TIMER_DELIVER_MS).
const propDeliverAt = "TIMER_DELIVER_MS"

// TestDelayLevel sends messages with RocketMQ delay levels 1 and 2
// (`rmq dev` has RocketMQ's default levels: 1s and 5s) and one without,
// and checks with a push consumer that each delayed message is delivered
// once and no earlier than its level's delay after it was born, and that
// the plain one is stored at once.
func TestDelayLevel(t *testing.T) {
	skipUnderRace(t)
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 4)

	var mu sync.Mutex
	received := map[string]time.Time{} // body -> first delivery, consumer clock
	col := newCollector()
	newPushConsumer(t, d.ns, uniqueName(t, "G"), topic, subAll,
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			now := time.Now()
			mu.Lock()
			for _, m := range msgs {
				if _, ok := received[string(m.Body)]; !ok {
					received[string(m.Body)] = now
				}
			}
			mu.Unlock()
			return col.handle(ctx, msgs...)
		})

	// The default delay levels; a clock allowance for millisecond
	// rounding (every process reads the same host clock).
	levels := map[int]time.Duration{1: time.Second, 2: 5 * time.Second}
	const allowance = 10 * time.Millisecond
	type sent struct {
		level      int
		start, end time.Time
	}
	p := newProducer(t, d.ns)
	run := uniqueName(t, "m")
	sends := map[string]sent{}
	var bodies []string
	send := func(level int, i int) {
		body := fmt.Sprintf("%s/level%d/%d", run, level, i)
		m := primitive.NewMessage(topic, []byte(body))
		if level > 0 {
			m.WithDelayTimeLevel(level)
		}
		start := time.Now()
		res := mustSendSync(t, p, m)
		sends[body] = sent{level: level, start: start, end: time.Now()}
		bodies = append(bodies, body)
		if level == 0 && res.QueueOffset < 0 {
			t.Errorf("plain message %s: SendSync gave queue offset %d, want a real one", body, res.QueueOffset)
		}
	}
	for i := 0; i < 4; i++ {
		send(2, i)
	}
	for i := 0; i < 20; i++ {
		send(1, i)
	}
	send(0, 0)

	col.waitFor(t, 20*time.Second, bodies)
	mu.Lock()
	defer mu.Unlock()
	counts := col.bodies()
	late := map[int]time.Duration{}
	for _, body := range bodies {
		s, m, got := sends[body], col.get(body), received[body]
		if n := counts[body]; n != 1 {
			t.Errorf("%s delivered %d times, want once", body, n)
		}
		due, err := strconv.ParseInt(m.GetProperty(propDeliverAt), 10, 64)
		if s.level == 0 {
			if err == nil {
				t.Errorf("plain message %s has %s=%d", body, propDeliverAt, due)
			}
			if m.StoreTimestamp > s.end.UnixMilli() {
				t.Errorf("plain message %s stored at %d, after its send returned (%d)", body, m.StoreTimestamp, s.end.UnixMilli())
			}
			t.Logf("plain message: received %s after its send returned", got.Sub(s.end).Round(time.Millisecond))
			continue
		}
		delay := levels[s.level]
		if min := m.BornTimestamp + (delay - allowance).Milliseconds(); m.StoreTimestamp < min {
			t.Errorf("%s (level %d, %s): StoreTimestamp %d is before BornTimestamp %d + %s", body, s.level, delay,
				m.StoreTimestamp, m.BornTimestamp, delay)
		}
		if err != nil {
			t.Errorf("%s (level %d): no %s property: %v", body, s.level, propDeliverAt, err)
			continue
		}
		if lo, hi := s.start.Add(delay-allowance).UnixMilli(), s.end.Add(delay+allowance).UnixMilli(); due < lo || due > hi {
			t.Errorf("%s (level %d): %s=%d, want within [%d, %d] (its send + %s)", body, s.level, propDeliverAt, due, lo, hi, delay)
		}
		if m.StoreTimestamp < due || got.UnixMilli() < due-allowance.Milliseconds() {
			t.Errorf("%s (level %d): stored at %d, received at %d, before its due time %d", body, s.level,
				m.StoreTimestamp, got.UnixMilli(), due)
		}
		late[s.level] = max(late[s.level], got.Sub(time.UnixMilli(due)))
	}
	for level := 1; level <= 2; level++ {
		t.Logf("level %d (%s): latest receipt %s after due", level, levels[level], late[level].Round(time.Millisecond))
	}
}
