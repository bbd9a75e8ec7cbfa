package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// freePorts finds a port p such that p+off is free for every off. It
// draws p below Linux's ephemeral range (32768 and up by default), so
// the outgoing connections of tests running meanwhile cannot take a port
// between this check and the broker's bind.
func freePorts(t *testing.T, offs ...int) int {
	t.Helper()
	for try := 0; try < 100; try++ {
		base := 20000 + rand.IntN(12000)
		ok := true
		for _, off := range offs {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// TestDevGroups: rmq dev --groups 2 runs broker-a and broker-b with two
// NameServers; a topic created on one group is routed there only, one
// created on both spreads sends over both, and either NameServer serves
// the cluster.
func TestDevGroups(t *testing.T) {
	dir := t.TempDir()
	ns := freePorts(t, 0, 1, 2, 3) // the NameServers, then their metrics
	base := freePorts(t, 0, 1, 2, 10, 11, 12, 20, 21, 22, 100, 101, 102, 110, 111, 112, 120, 121, 122)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	t.Cleanup(func() { // before the data dir is removed
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
	})
	go func() {
		done <- run(ctx, []string{"rmq", "--log-level", "warn", "dev", "--dir", dir, "--groups", "2",
			"--namesrv-port", fmt.Sprint(ns), "--broker-port", fmt.Sprint(base), "--flush", "async",
			"--dashboard", ""}, &stdout, &stderr)
	}()
	e2e.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(stdout.String(), "Press Ctrl-C") {
			return fmt.Errorf("dev has not printed its addresses yet: %q\n%s", stdout.String(), stderr.String())
		}
		return nil
	})
	nsList := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", ns, ns+1)
	if !strings.Contains(stdout.String(), nsList) {
		t.Fatalf("dev output does not name both NameServers (%s):\n%s", nsList, stdout.String())
	}
	for _, one := range strings.Split(nsList, ",") {
		h := &harness{t: t, ns: one}
		e2e.Eventually(t, 30*time.Second, func() error {
			out, _, err := h.run("cluster", "status")
			if err != nil || strings.Count(out, "broker-a") != 3 || strings.Count(out, "broker-b") != 3 || strings.Count(out, "leader *") != 2 {
				return fmt.Errorf("cluster status at %s: %v\n%s", one, err, out)
			}
			return nil
		})
	}
	h := &harness{t: t, ns: nsList}
	if out := h.ok("topic", "create", "only-b", "--queues", "2", "--broker-group", "broker-b"); strings.Contains(out, "broker-a") {
		t.Fatalf("topic create --broker-group broker-b created on broker-a too:\n%s", out)
	}
	h.fails(`broker group "broker-z" is not registered`, "topic", "create", "nowhere", "--groups", "broker-a,broker-z")
	if out := h.ok("topic", "create", "both", "--queues", "1", "--groups", "broker-a,broker-b"); !strings.Contains(out, "broker-a") || !strings.Contains(out, "broker-b") {
		t.Fatalf("topic create --groups broker-a,broker-b:\n%s", out)
	}
	e2e.Eventually(t, 10*time.Second, func() error {
		out, _, err := h.run("topic", "describe", "both")
		if err != nil || !strings.Contains(out, "broker-a") || !strings.Contains(out, "broker-b") {
			return fmt.Errorf("topic describe both: %v\n%s", err, out)
		}
		return nil
	})
	p, err := client.NewProducer(client.ProducerConfig{NameServers: strings.Split(nsList, ",")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	groups := map[string]int{}
	for i := 0; i < 4; i++ {
		res, err := p.Send(ctx, &client.Message{Topic: "both", Body: []byte(fmt.Sprint("m", i))})
		if err != nil {
			t.Fatal(err)
		}
		groups[res.Group]++
	}
	if groups["broker-a"] != 2 || groups["broker-b"] != 2 {
		t.Fatalf("sends per group %v, want 2 on each", groups)
	}
	cancel()
	err = <-done
	done <- err // for the cleanup
	if err != nil {
		t.Fatalf("rmq dev: %v\nstderr:\n%s", err, stderr.String())
	}
}
