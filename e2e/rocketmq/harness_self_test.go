package rocketmq_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
)

// The harness tests check the harness itself with rmq's own client only,
// so they pass whether or not the servers speak RocketMQ remoting: each
// starts servers in a subtest and checks, once the subtest's cleanups
// have run, that every process is reaped and gone, its ports are free
// and its files removed.

func TestHarnessDev(t *testing.T) {
	var d *devCluster
	t.Run("run", func(t *testing.T) {
		d = startDev(t)
		topic := uniqueName(t, "T")
		createTopic(t, d.ns, topic, 4)
		rmqRoundTrip(t, d.ns, topic)

		before := rocketClients.count()
		p := newProducer(t, d.ns)
		if got := rocketClients.count(); got != before+1 {
			t.Errorf("open RocketMQ clients after newProducer: got %d, want %d", got, before+1)
		}
		if err := p.Shutdown(); err != nil {
			t.Errorf("producer shutdown: %v", err)
		}
		if got := rocketClients.count(); got != before {
			t.Errorf("open RocketMQ clients after Shutdown: got %d, want %d", got, before)
		}
	})
	if d == nil {
		t.FailNow()
	}
	if d.p.waitErr != nil {
		t.Errorf("rmq dev did not exit cleanly on SIGTERM: %v\n%s", d.p.waitErr, d.p.tail(10))
	}
	checkGone(t, []*proc{d.p}, d.ports, d.dir)
}

func TestHarnessGroup(t *testing.T) {
	var all []*proc
	var ports []int
	var root string
	t.Run("run", func(t *testing.T) {
		g := startGroup(t)
		root, ports = g.root, g.ports()
		for _, p := range g.running() {
			all = append(all, p)
		}
		topic := uniqueName(t, "T")
		createTopic(t, g.ns, topic, 2)
		rmqRoundTrip(t, g.ns, topic)

		leader := g.Leader(10 * time.Second)
		g.Kill(leader)
		if p := g.proc(leader); p != nil {
			t.Fatalf("killed %s still listed as running", leader)
		}
		next := g.Leader(30 * time.Second)
		t.Logf("killed leader %s; new leader %s", leader, next)
		rmqRoundTrip(t, g.ns, topic)

		g.Restart(leader)
		all = append(all, g.proc(leader))
		g.WaitCaughtUp(leader, 30*time.Second)
	})
	if len(all) != 5 {
		t.Fatalf("saw %d processes, want 5 (namesrv, 3 brokers, 1 restart)", len(all))
	}
	checkGone(t, all, ports, root)
}

// checkGone fails t unless every process was reaped and no longer
// exists, nothing listens on ports and dir was removed.
func checkGone(t *testing.T, ps []*proc, ports []int, dir string) {
	t.Helper()
	for _, p := range ps {
		if !p.gone() {
			t.Errorf("%s (pid %d) still exists after cleanup (%s)", p.name, p.pid(), p.exitStatus())
		}
	}
	for _, port := range ports {
		if !portFree(port) {
			t.Errorf("port %d still in use after cleanup", port)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s not removed after cleanup: %v", dir, err)
	}
	if left := procs.names(); len(left) > 0 {
		t.Errorf("processes still in the table: %v", left)
	}
}

// rmqRoundTrip sends one message with rmq's own client and consumes it
// back with a fresh group: the cluster the harness started serves.
func rmqRoundTrip(t *testing.T, ns, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := client.NewProducer(client.ProducerConfig{NameServers: []string{ns}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	body := uniqueName(t, "body")
	if _, err := p.Send(ctx, &client.Message{Topic: topic, Body: []byte(body)}); err != nil {
		t.Fatalf("rmq send: %v", err)
	}
	c, err := client.NewConsumer(client.ConsumerConfig{NameServers: []string{ns}, Group: uniqueName(t, "G"),
		Subscriptions: map[string]string{topic: "*"}, From: client.FromFirst})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for {
		b, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("rmq poll for %s: %v", body, err)
		}
		// Commit every batch: Close waits for uncommitted ones.
		if err := c.Commit(ctx, b); err != nil {
			t.Fatalf("rmq commit: %v", err)
		}
		for _, m := range b.Messages() {
			if string(m.Body) == body {
				return
			}
		}
	}
}
