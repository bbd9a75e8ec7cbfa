package client_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
	"github.com/rmq-dev/rmq/namesrv"
	"github.com/rmq-dev/rmq/wire"
)

// runNamesrv runs a NameServer on ln until the returned stop is called
// (also at cleanup; stop is idempotent and waits for Run to return).
func runNamesrv(t *testing.T, ln net.Listener) (stop func()) {
	t.Helper()
	cfg := namesrv.DefaultConfig()
	cfg.Listener = ln
	cfg.Logger = e2e.TestLogger(t).Named("namesrv-b")
	ns, err := namesrv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ns.Run(ctx) }() // ends with cancel
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Logf("namesrv: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func listenOn(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	e2e.Eventually(t, 5*time.Second, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln
}

// TestNameServerRestartedEmpty: of two NameServers, the one a client asks
// first knows no broker, as a just-restarted one does until the brokers'
// next heartbeats. Its empty answers must not be final: routes, sends and
// cluster status come from the other one. (The empty one is a NameServer
// no broker registers with: restarting one the brokers know races with
// their re-registration, which follows a broken connection at once.)
func TestNameServerRestartedEmpty(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "ns-failover", 4)
	lnB := listenOn(t, "127.0.0.1:0")
	addrB := lnB.Addr().String()
	runNamesrv(t, lnB)

	onlyB, err := client.NewAdmin(client.AdminConfig{NameServers: []string{addrB}, Logger: e2e.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer onlyB.Close()
	ctx := ctxT(t, 30*time.Second)
	if _, err := onlyB.TopicStatus(ctx, "ns-failover"); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("empty NameServer answered %v, want topic not found", err)
	}

	ns := []string{addrB, c.NamesrvAddr()} // the empty one first
	p, err := client.NewProducer(client.ProducerConfig{NameServers: ns, AutoCreateQueues: -1, Logger: e2e.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := p.Send(sctx, &client.Message{Topic: "ns-failover", Body: []byte("x")}); err != nil {
		t.Errorf("send with the restarted NameServer first: %v, want success from the other NameServer", err)
	}

	a, err := client.NewAdmin(client.AdminConfig{NameServers: ns, Logger: e2e.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	gs, err := a.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || len(gs[0].Nodes) != 3 {
		t.Errorf("cluster status with the restarted NameServer first: got %d groups %+v, want 1 group of 3 nodes", len(gs), gs)
	}
}

// TestNameServerAnsweringErrors: a NameServer that answers every request
// with an error (here "unavailable"), listed first, is passed over like
// an unreachable one: routes and sends come from the other NameServer.
func TestNameServerAnsweringErrors(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "ns-errors", 2)
	ln := listenOn(t, "127.0.0.1:0")
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { // ends with stop
		served <- wire.Serve(sctx, ln, func(context.Context, *wire.Request) (any, error) {
			return nil, wire.Errorf(wire.CodeUnavailable, "sick NameServer")
		}, wire.ServerConfig{})
	}()
	t.Cleanup(func() { stop(); <-served })
	p, err := client.NewProducer(client.ProducerConfig{NameServers: []string{ln.Addr().String(), c.NamesrvAddr()},
		AutoCreateQueues: -1, Logger: e2e.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := ctxT(t, 5*time.Second)
	if _, err := p.Send(ctx, &client.Message{Topic: "ns-errors", Body: []byte("x")}); err != nil {
		t.Fatalf("send with an erring NameServer first: %v, want success from the other one", err)
	}
}
