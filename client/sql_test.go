package client_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestSQLSubscriptions: two groups with different SQL92 expressions get
// exactly their matching messages (evaluated by the broker, over
// properties and TAGS); a bad expression fails NewConsumer with its
// position.
func TestSQLSubscriptions(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "orders", 2)
	p := newProducer(t, c, nil)
	regions := []string{"eu", "us", "apac"}
	wantEU, wantBig := map[string]bool{}, map[string]bool{}
	for i := 0; i < 300; i++ {
		region, amount := regions[i%3], i*7%500
		m := &client.Message{Topic: "orders", Body: []byte(strconv.Itoa(i)), Tags: []string{"paid", "open"}[i%2],
			Properties: map[string]string{"region": region, "amount": strconv.Itoa(amount)}}
		if i%10 == 0 {
			delete(m.Properties, "amount") // missing: never matches a comparison on it
		}
		if region == "eu" && m.Tags == "paid" {
			wantEU[strconv.Itoa(i)] = true
		}
		if _, ok := m.Properties["amount"]; ok && amount > 400 {
			wantBig[strconv.Itoa(i)] = true
		}
		if _, err := p.Send(ctxT(t, 10*time.Second), m); err != nil {
			t.Fatal(err)
		}
	}
	consume := func(group, expr string) map[string]int {
		var mu sync.Mutex
		got := map[string]int{}
		cons := newConsumer(t, c, group, nil, func(cfg *client.ConsumerConfig) {
			cfg.SQLSubscriptions = map[string]string{"orders": expr}
		})
		if err := cons.Start(ctxT(t, 10*time.Second), func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				got[string(m.Body)]++
			}
			return client.ConsumeSuccess
		}); err != nil {
			t.Fatal(err)
		}
		e2e.Eventually(t, 20*time.Second, func() error {
			if cons.Progress().CaughtUp() {
				return nil
			}
			return fmt.Errorf("%s not caught up", group)
		})
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	for _, tc := range []struct {
		group, expr string
		want        map[string]bool
	}{
		{"eu-paid", "region = 'eu' AND TAGS = 'paid'", wantEU},
		{"big", "amount > 400", wantBig},
	} {
		got := consume(tc.group, tc.expr)
		for body, n := range got {
			if !tc.want[body] || n != 1 {
				t.Errorf("%s: message %s delivered %d times; matches: %v", tc.group, body, n, tc.want[body])
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s (%s): %d messages delivered, want %d", tc.group, tc.expr, len(got), len(tc.want))
		}
	}
	_, err := client.NewConsumer(client.ConsumerConfig{NameServers: []string{c.NamesrvAddr()}, Group: "bad",
		SQLSubscriptions: map[string]string{"orders": "amount >"}})
	if err == nil || !strings.Contains(err.Error(), "at 8") {
		t.Fatalf("a bad expression: %v", err)
	}
}
