package e2e

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/namesrv"
	"github.com/rmq-dev/rmq/wire"
)

// blackHole accepts TCP connections and never reads or answers, as a
// NameServer behind a black-holed link (or frozen) would. Closed by
// t.Cleanup.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() { // ends when ln closes
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestRegistrationSurvivesBlackHoledNameServer: brokers register with a
// NameServer that accepts and never answers, listed first, and a live
// one. The live one must keep every node: a registration stuck on the
// black hole (up to 1s) must not delay the others past their expiry
// (here 900ms: heartbeats every 250ms, expiry max(MinExpiry 900ms, 3 x
// 250ms)). Registering one NameServer after the other, each round took
// over 1s and the live NameServer expired healthy nodes every round.
func TestRegistrationSurvivesBlackHoledNameServer(t *testing.T) {
	hole := blackHole(t)
	c := StartCluster(t, Options{
		Broker: func(cfg *broker.Config) {
			cfg.NameServers = append([]string{hole}, cfg.NameServers...)
			cfg.RegisterInterval = 250 * time.Millisecond
		},
		Namesrv: func(cfg *namesrv.Config) { cfg.MinExpiry = 900 * time.Millisecond },
	})
	ctx := context.Background()
	conn, err := wire.Dial(ctx, c.NamesrvAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	nodes := func() (map[string]time.Duration, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var ci wire.ClusterInfo
		if err := conn.Call(cctx, wire.CodeGetCluster, wire.Empty{}, &ci); err != nil {
			return nil, err
		}
		out := map[string]time.Duration{}
		for _, n := range ci.Nodes {
			out[n.NodeID] = time.Duration(n.AgeMillis) * time.Millisecond
		}
		return out, nil
	}
	Eventually(t, 10*time.Second, func() error {
		got, err := nodes()
		if err == nil && len(got) != 3 {
			err = errorf("live NameServer knows %d nodes, want 3", len(got))
		}
		return err
	})
	// Watch for 3s (a dozen heartbeats, three black-holed rounds): every
	// query expires overdue nodes first, so a missing node was expired.
	var maxAge time.Duration
	end := time.Now().Add(3 * time.Second)
	for polls := 0; time.Now().Before(end) && polls < 1000; polls++ {
		got, err := nodes()
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range c.NodeIDs() {
			age, ok := got[id]
			if !ok {
				t.Fatalf("live NameServer expired healthy node %s (poll %d, nodes %v)", id, polls, got)
			}
			maxAge = max(maxAge, age)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	t.Logf("oldest registration seen at the live NameServer: %s (expiry 900ms)", maxAge)
}
