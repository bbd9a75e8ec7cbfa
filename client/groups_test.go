package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// startTwoGroups starts broker-a and broker-b (three nodes each) behind
// two NameServers and creates topic on both groups with queues each.
func startTwoGroups(t *testing.T, topic string, queues uint32) *e2e.Cluster {
	t.Helper()
	c := e2e.StartCluster(t, e2e.Options{Groups: 2, NameServers: 2})
	a, err := client.NewAdmin(client.AdminConfig{NameServers: c.NamesrvAddrs(), Logger: e2e.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := ctxT(t, 20*time.Second)
	infos, err := a.CreateTopic(ctx, client.TopicSpec{Name: topic, Queues: queues})
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if len(infos) != 2 {
		t.Fatalf("topic created on %d groups, want 2: %+v", len(infos), infos)
	}
	// Both NameServers must route the topic to both groups.
	for _, ns := range c.NamesrvAddrs() {
		ad, err := client.NewAdmin(client.AdminConfig{NameServers: []string{ns}, Logger: e2e.TestLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		e2e.Eventually(t, 10*time.Second, func() error {
			st, err := ad.TopicStatus(ctx, topic)
			if err != nil {
				return err
			}
			groups := map[string]bool{}
			for _, q := range st {
				groups[q.Queue.Group] = true
			}
			if len(groups) != 2 {
				return fmt.Errorf("namesrv %s routes %s to %d groups, want 2", ns, topic, len(groups))
			}
			return nil
		})
		ad.Close()
	}
	return c
}

// TestSendsSpanGroupsAndConsumersRebalance: round-robin sends land on
// both groups' queues, and two consumers of one group share all of them
// and get every message.
func TestSendsSpanGroupsAndConsumersRebalance(t *testing.T) {
	c := startTwoGroups(t, "spread", 2)
	p := newProducer(t, c, func(cfg *client.ProducerConfig) {
		cfg.NameServers = c.NamesrvAddrs()
		cfg.GroupBackoff = -1 // plain round robin: a slow send on a loaded machine must not skew the count
	})
	ctx := ctxT(t, 60*time.Second)
	perGroup := map[string]int{}
	const n = 40
	for i := 0; i < n; i++ {
		res, err := p.Send(ctx, &client.Message{Topic: "spread", Body: []byte(fmt.Sprint("m", i))})
		if err != nil {
			t.Fatal(err)
		}
		perGroup[res.Group]++
	}
	if perGroup["broker-a"] != n/2 || perGroup["broker-b"] != n/2 {
		t.Fatalf("sends per group %v, want %d on each", perGroup, n/2)
	}
	rec := newRecorder()
	for i := 0; i < 2; i++ {
		cons := newConsumer(t, c, "spread-readers", map[string]string{"spread": "*"}, func(cfg *client.ConsumerConfig) {
			cfg.NameServers = c.NamesrvAddrs()
			cfg.HeartbeatInterval = 200 * time.Millisecond
		})
		go func() { // ends when ctx does or the consumer closes (t.Cleanup)
			for b, err := range cons.Batches(ctx) {
				if err != nil {
					return
				}
				rec.add(fmt.Sprint("c", i), b.Messages())
				_ = cons.Commit(ctx, b)
			}
		}()
	}
	rec.waitDistinct(t, n, 30*time.Second)
	t.Logf("consumed %d messages (%d duplicates)", rec.distinct(), rec.dups())
}

// TestSendAvoidsDeadGroup: with every node of broker-b gone, sends of
// messages without a sharding key all succeed on broker-a (the first
// failure moves the send, later sends skip broker-b), while a message
// whose sharding key maps to broker-b stays there and fails.
func TestSendAvoidsDeadGroup(t *testing.T) {
	c := startTwoGroups(t, "avoid", 2)
	p := newProducer(t, c, func(cfg *client.ProducerConfig) {
		cfg.NameServers = c.NamesrvAddrs()
		cfg.SendTimeout = 2 * time.Second
		cfg.GroupBackoff = time.Minute // no probing of broker-b during the test
	})
	ctx := ctxT(t, 60*time.Second)
	// Warm the route and connections to both groups.
	for i := 0; i < 4; i++ {
		if _, err := p.Send(ctx, &client.Message{Topic: "avoid", Body: []byte("warm")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range c.GroupNodeIDs("broker-b") {
		c.Kill(id)
	}
	var slowest time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		res, err := p.Send(ctx, &client.Message{Topic: "avoid", Body: []byte(fmt.Sprint("m", i))})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if res.Group != "broker-a" {
			t.Fatalf("send %d stored on %s, want broker-a", i, res.Group)
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("slowest send with broker-b dead: %s", slowest)

	// Queues sorted by group: with 4 queues, a key hashing to 2 or 3 maps to broker-b.
	key := ""
	for i := 0; key == "" && i < 1000; i++ {
		if k := fmt.Sprint("k", i); client.ShardingHash(k)%4 >= 2 {
			key = k
		}
	}
	res, err := p.Send(ctx, &client.Message{Topic: "avoid", ShardingKey: key, Body: []byte("keyed")})
	if err == nil {
		t.Fatalf("send with a sharding key of broker-b stored on %s, want it to stay on broker-b and fail", res.Group)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("keyed send: got %v, want the send timeout", err)
	}
}

// TestConsumerWithOneGroupDown: with every node of broker-b gone, a new
// consumer still gets broker-a's queues and every message sent there.
func TestConsumerWithOneGroupDown(t *testing.T) {
	c := startTwoGroups(t, "half", 2)
	p := newProducer(t, c, func(cfg *client.ProducerConfig) { cfg.NameServers = c.NamesrvAddrs() })
	ctx := ctxT(t, 60*time.Second)
	for _, id := range c.GroupNodeIDs("broker-b") {
		c.Kill(id)
	}
	const n = 20
	for i := 0; i < n; i++ {
		if _, err := p.Send(ctx, &client.Message{Topic: "half", Body: []byte(fmt.Sprint("m", i))}); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder()
	cons := newConsumer(t, c, "half-readers", map[string]string{"half": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.NameServers = c.NamesrvAddrs()
		cfg.HeartbeatInterval = 200 * time.Millisecond
	})
	start := time.Now()
	go func() { // ends when ctx does or the consumer closes (t.Cleanup)
		for b, err := range cons.Batches(ctx) {
			if err != nil {
				return
			}
			rec.add("c", b.Messages())
			_ = cons.Commit(ctx, b)
		}
	}()
	rec.waitDistinct(t, n, 30*time.Second)
	t.Logf("consumed %d messages of broker-a %s after start", n, time.Since(start))
}

// TestSendBatchMovesOffDeadGroup: a batch without sharding keys whose
// group has no leader goes to the other group's queue, all or nothing,
// keeping order; a batch with a key stays on its group and fails.
func TestSendBatchMovesOffDeadGroup(t *testing.T) {
	c := startTwoGroups(t, "batchmove", 2)
	p := newProducer(t, c, func(cfg *client.ProducerConfig) {
		cfg.NameServers = c.NamesrvAddrs()
		cfg.SendTimeout = 3 * time.Second
		cfg.GroupBackoff = time.Minute // no probing of broker-b during the test
	})
	ctx := ctxT(t, 60*time.Second)
	batch := func(i int, key string) []*client.Message {
		var ms []*client.Message
		for j := 0; j < 5; j++ {
			ms = append(ms, &client.Message{Topic: "batchmove", ShardingKey: key, Body: []byte(fmt.Sprintf("b%d-%d", i, j))})
		}
		return ms
	}
	// Warm the route and connections to both groups.
	groups := map[string]bool{}
	for i := 0; i < 8; i++ {
		rs, err := p.SendBatch(ctx, batch(i, ""))
		if err != nil {
			t.Fatal(err)
		}
		groups[rs[0].Group] = true
	}
	if len(groups) != 2 {
		t.Fatalf("warm-up batches went to %v, want both groups", groups)
	}
	for _, id := range c.GroupNodeIDs("broker-b") {
		c.Kill(id)
	}
	for i := 0; i < 10; i++ {
		rs, err := p.SendBatch(ctx, batch(100+i, ""))
		if err != nil {
			t.Fatalf("batch %d with broker-b dead: %v", i, err)
		}
		for j, r := range rs {
			if r.Group != "broker-a" || r.QueueID != rs[0].QueueID || r.QueueOffset != rs[0].QueueOffset+uint64(j) {
				t.Fatalf("batch %d message %d stored at %s queue %d offset %d; want broker-a, after %+v", i, j, r.Group, r.QueueID, r.QueueOffset, rs[0])
			}
		}
	}
	key := ""
	for i := 0; key == "" && i < 1000; i++ {
		if k := fmt.Sprint("k", i); client.ShardingHash(k)%4 >= 2 {
			key = k
		}
	}
	if rs, err := p.SendBatch(ctx, batch(200, key)); err == nil {
		t.Fatalf("keyed batch of broker-b stored on %s, want it to stay on broker-b and fail", rs[0].Group)
	}
}

// TestClusterLimitsRoutes: broker-b registers in cluster "other". A
// producer limited to cluster "rmq" sends only to broker-a, one limited to
// "other" only to broker-b, and a consumer limited to "rmq" owns only
// broker-a's queues and gets only broker-a's messages.
func TestClusterLimitsRoutes(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{Groups: 2, Broker: func(cfg *broker.Config) {
		if cfg.Group == "broker-b" {
			cfg.Cluster = "other"
		}
	}})
	a := newAdmin(t, c)
	ctx := ctxT(t, 60*time.Second)
	if infos, err := a.CreateTopic(ctx, client.TopicSpec{Name: "split", Queues: 2}); err != nil || len(infos) != 2 {
		t.Fatalf("create topic on both groups: %+v, %v", infos, err)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		st, err := a.TopicStatus(ctx, "split")
		if err != nil || len(st) != 4 {
			return fmt.Errorf("topic status %+v, %v: want 4 queues", st, err)
		}
		return nil
	})
	for cluster, want := range map[string]string{"rmq": "broker-a", "other": "broker-b"} {
		p := newProducer(t, c, func(cfg *client.ProducerConfig) { cfg.Cluster = cluster })
		for i := 0; i < 10; i++ {
			res, err := p.Send(ctx, &client.Message{Topic: "split", Body: []byte(fmt.Sprint(cluster, i))})
			if err != nil {
				t.Fatal(err)
			}
			if res.Group != want {
				t.Fatalf("producer of cluster %s stored message %d on %s, want %s", cluster, i, res.Group, want)
			}
		}
	}
	rec := newRecorder()
	cons := newConsumer(t, c, "split-readers", map[string]string{"split": "*"}, func(cfg *client.ConsumerConfig) { cfg.Cluster = "rmq" })
	groups := map[string]int{}
	var gmu sync.Mutex
	go func() { // ends when ctx does or the consumer closes (t.Cleanup)
		for b, err := range cons.Batches(ctx) {
			if err != nil {
				return
			}
			gmu.Lock()
			for _, m := range b.Messages() {
				groups[m.Queue.Group]++
			}
			gmu.Unlock()
			rec.add("c", b.Messages())
			_ = cons.Commit(ctx, b)
		}
	}()
	rec.waitDistinct(t, 10, 30*time.Second)
	for _, q := range cons.Progress().Queues {
		if q.Queue.Group != "broker-a" {
			t.Errorf("consumer of cluster rmq owns %v", q.Queue)
		}
	}
	gmu.Lock()
	defer gmu.Unlock()
	if groups["broker-b"] != 0 {
		t.Errorf("consumer of cluster rmq got messages by group %v", groups)
	}
}
