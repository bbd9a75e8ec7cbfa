package rocketmq_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestSQL92Subscription: an unmodified rocketmq-client-go push consumer
// subscribing with a SQL92 selector gets exactly the messages whose
// properties match, filtered by rmq's broker.
func TestSQL92Subscription(t *testing.T) {
	skipUnderRace(t)
	d := startDev(t)
	topic := uniqueName(t, "T")
	createTopic(t, d.ns, topic, 2)
	p := newProducer(t, d.ns)
	var want []string
	for i := 0; i < 60; i++ {
		m := primitive.NewMessage(topic, []byte(strconv.Itoa(i)))
		m.WithProperty("amount", strconv.Itoa(i*10))
		m.WithTag([]string{"paid", "open"}[i%2])
		mustSendSync(t, p, m)
		if i*10 >= 300 && i%2 == 0 {
			want = append(want, strconv.Itoa(i))
		}
	}
	col := newCollector()
	newPushConsumer(t, d.ns, uniqueName(t, "G"), topic,
		consumer.MessageSelector{Type: consumer.SQL92, Expression: "amount >= 300 AND TAGS = 'paid'"}, col.handle)
	col.waitFor(t, 60*time.Second, want)
	eventually(t, 5*time.Second, "nothing else delivered", func() error {
		if got := len(col.bodies()); got != len(want) {
			return fmt.Errorf("%d delivered, want %d", got, len(want))
		}
		return nil
	})
	for body := range col.bodies() {
		n, _ := strconv.Atoi(body)
		if n*10 < 300 || n%2 != 0 {
			t.Errorf("message %s delivered but does not match", body)
		}
	}
}
