package client_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// freezer is a TCP proxy in front of a broker's client port that can
// stop forwarding in both directions, as a frozen process would: the
// connection stays open, bytes are accepted, nothing is answered.
type freezer struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen chan struct{} // non-nil while frozen; closed by thaw
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
}

func startFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	f.wg.Add(1)
	go f.accept() // ends when ln closes
	t.Cleanup(f.close)
	return f
}

func (f *freezer) addr() string { return f.ln.Addr().String() }

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		if !f.track(c, up) {
			return
		}
		f.wg.Add(2)
		go f.pump(up, c) // each ends when either side closes
		go f.pump(c, up)
	}
}

func (f *freezer) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	f.conns = append(f.conns, cs...)
	return true
}

func (f *freezer) pump(dst, src net.Conn) {
	defer f.wg.Done()
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.mu.Lock()
			ch := f.frozen
			f.mu.Unlock()
			if ch != nil {
				<-ch // held while frozen
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or closed: dst closes too
		}
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	if f.frozen == nil {
		f.frozen = make(chan struct{})
	}
	f.mu.Unlock()
}

func (f *freezer) thaw() {
	f.mu.Lock()
	if f.frozen != nil {
		close(f.frozen)
		f.frozen = nil
	}
	f.mu.Unlock()
}

func (f *freezer) close() {
	f.thaw()
	f.mu.Lock()
	f.closed = true
	conns := f.conns
	f.mu.Unlock()
	f.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	f.wg.Wait()
}

// frozenCluster is a cluster whose nodes publish their client address
// through a freezer each.
func frozenCluster(t *testing.T) (*e2e.Cluster, map[string]*freezer) {
	t.Helper()
	var mu sync.Mutex
	fz := map[string]*freezer{}
	c := e2e.StartCluster(t, e2e.Options{Broker: func(cfg *broker.Config) {
		f := startFreezer(t, cfg.ClientListen)
		cfg.ClientAdvertise = f.addr()
		mu.Lock()
		fz[cfg.NodeID] = f
		mu.Unlock()
	}})
	return c, fz
}

// TestFrozenLeaderWaitedForWhileStillLeading: a leader that answers late
// but still leads is waited for. The NameServer keeps naming it, so the
// client must not resend (no duplicate), and the late answer is the
// result.
func TestFrozenLeaderWaitedForWhileStillLeading(t *testing.T) {
	c, fz := frozenCluster(t)
	createTopic(t, c, "slow", 1)
	p := newProducer(t, c, func(cfg *client.ProducerConfig) {
		cfg.SendTimeout, cfg.AttemptTimeout = 10*time.Second, 200*time.Millisecond
	})
	ctx := ctxT(t, 20*time.Second)
	if _, err := p.Send(ctx, &client.Message{Topic: "slow", Body: []byte("warm-up")}); err != nil {
		t.Fatal(err)
	}
	leader := c.LeaderID(5 * time.Second)
	fz[leader].freeze()
	type outcome struct {
		res client.SendResult
		err error
	}
	done := make(chan outcome, 1)
	go func() { // ends with the send (its 10s budget)
		res, err := p.Send(ctx, &client.Message{Topic: "slow", Body: []byte("late")})
		done <- outcome{res, err}
	}()
	time.Sleep(time.Second) // five attempt timeouts without an answer: a time-based condition
	fz[leader].thaw()
	out := <-done
	if out.err != nil {
		t.Fatalf("send to a slow leader: %v", out.err)
	}
	if out.res.QueueOffset != 1 {
		t.Errorf("late send stored at offset %d, want 1", out.res.QueueOffset)
	}
	if n := p.Stats().Resends; n != 0 {
		t.Errorf("resends = %d, want 0: the NameServer still named the same leader", n)
	}
}

// TestFrozenLeaderReplacedSendsAndCommitsGoOn: the leader stops answering
// (its client port frozen) and leadership moves to another node. Sync
// and async sends and offset commits that were waiting on it must go to
// the new leader within their budget, each callback exactly once, and
// the frozen node stays frozen throughout.
func TestFrozenLeaderReplacedSendsAndCommitsGoOn(t *testing.T) {
	c, fz := frozenCluster(t)
	createTopic(t, c, "frozen", 1)
	p := newProducer(t, c, func(cfg *client.ProducerConfig) {
		cfg.SendTimeout, cfg.AttemptTimeout = 5*time.Second, 300*time.Millisecond
	})
	cons := newConsumer(t, c, "frozen-g", map[string]string{"frozen": "*"}, func(cfg *client.ConsumerConfig) {
		cfg.AttemptTimeout = 300 * time.Millisecond
		cfg.CommitInterval = time.Hour // commits only when asked
		cfg.LongPollWait = 10 * time.Second
	})
	ctx := ctxT(t, 60*time.Second)
	for i := 0; i < 4; i++ {
		if _, err := p.Send(ctx, &client.Message{Topic: "frozen", Body: []byte(fmt.Sprint("before-", i))}); err != nil {
			t.Fatal(err)
		}
	}
	var batch client.Batch
	for batch.Len() == 0 {
		b, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		batch = b
	}

	leader := c.LeaderID(5 * time.Second)
	fz[leader].freeze()
	const async = 50
	// Their budget ends before the 5s SendTimeout: waiting on the frozen
	// node until the batcher's own deadline would fail them.
	actx, acancel := context.WithTimeout(ctx, 4*time.Second)
	defer acancel()
	var calls [async]atomic.Int32
	var asyncErrs atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < async; i++ {
		wg.Add(1)
		p.SendAsync(actx, &client.Message{Topic: "frozen", Body: []byte(fmt.Sprint("async-", i))}, func(_ client.SendResult, err error) {
			if calls[i].Add(1) == 1 {
				if err != nil {
					asyncErrs.Add(1)
					t.Errorf("async send %d: %v", i, err)
				}
				wg.Done()
			}
		})
	}
	syncErr := make(chan error, 1)
	go func() { // ends with the send (its 5s budget)
		_, err := p.Send(ctx, &client.Message{Topic: "frozen", Body: []byte("sync")})
		syncErr <- err
	}()
	commitErr := make(chan error, 1)
	go func() { // ends with the commit (5s)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		commitErr <- cons.Commit(cctx, batch)
	}()

	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := c.Node(leader).TransferLeadership(tctx, "")
	cancel()
	if err != nil {
		t.Fatalf("transfer leadership away from the frozen %s: %v", leader, err)
	}
	if err := <-syncErr; err != nil {
		t.Errorf("sync send while %s is frozen and no longer leads: %v", leader, err)
	}
	if err := <-commitErr; err != nil {
		t.Errorf("commit while %s is frozen and no longer leads: %v", leader, err)
	}
	// Pulls held by the frozen node (long poll 10s + 5s slack) must move
	// to the new leader: the message sent after the freeze arrives
	// within 6s.
	pctx, pcancel := context.WithTimeout(ctx, 6*time.Second)
	for found := false; !found; {
		b, err := cons.Poll(pctx)
		if err != nil {
			t.Errorf("poll for the message sent while %s was frozen: %v", leader, err)
			break
		}
		for _, m := range b.Messages() {
			found = found || string(m.Body) == "sync"
		}
		if err := cons.Commit(pctx, b); err != nil {
			t.Errorf("commit: %v", err)
		}
	}
	pcancel()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }() // ends when every callback ran once
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("async sends did not all call back while the old leader was frozen")
	}
	t.Logf("resends: %d", p.Stats().Resends)

	fz[leader].thaw() // late answers of the old leader must be dropped
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A further send round trip lets any late answer arrive first.
	if _, err := p.Send(ctx, &client.Message{Topic: "frozen", Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	for i := range calls {
		if n := calls[i].Load(); n != 1 {
			t.Errorf("async send %d called back %d times, want 1", i, n)
		}
	}
}
