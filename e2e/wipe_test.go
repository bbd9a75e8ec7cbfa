package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/wire"
)

// TestWipeNodesRestartWithBootstrap replaces data directories with empty
// ones and restarts the brokers with the command line compose uses (with
// --bootstrap every time): first the leader alone, then the leader and a
// follower at once. Every acknowledged message must be on all three nodes
// afterwards, the group must take writes again, and no term may ever have
// two leaders (each node's own (term, role) is sampled throughout).
func TestWipeNodesRestartWithBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process test")
	}
	c := startProcCluster(t)
	lw := watchLeaders(t, c)
	a := c.admin()
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.CreateTopic(ctx, client.TopicSpec{Name: "wipe", Queues: 4}); err != nil {
		t.Fatal(err)
	}
	p, err := client.NewProducer(client.ProducerConfig{NameServers: []string{c.nsAddr}, SendTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())

	acked := sendAcked(t, p, "before", 200)
	c.waitHold(acked, 30*time.Second)

	// One wiped node: the leader.
	l := c.leaderID(20 * time.Second)
	t.Logf("wiping leader %s", l)
	c.kill(l)
	c.wipe(l)
	acked = append(acked, sendAcked(t, p, "one-wiped", 100)...)
	c.start(l)
	c.waitHold(acked, 60*time.Second)

	// Two wiped nodes at once: the survivor holds every acknowledged
	// message (waited for above), so nothing may be lost.
	l = c.leaderID(20 * time.Second)
	f := c.follower(l)
	t.Logf("wiping leader %s and follower %s", l, f)
	c.kill(l)
	c.kill(f)
	c.wipe(l)
	c.wipe(f)
	c.start(l)
	c.start(f)
	acked = append(acked, sendAcked(t, p, "two-wiped", 100)...)
	c.waitHold(acked, 60*time.Second)

	// Two wiped nodes while the survivor is down too (a host reboot that
	// lost two volumes), the survivor coming back last: the wiped pair is
	// a majority of the configuration on its own, and writes keep coming.
	l = c.leaderID(20 * time.Second)
	f = c.follower(l)
	s := c.other(l, f)
	t.Logf("killing all; wiping %s and %s; survivor %s starts last", l, f, s)
	bg := startSender(p, "survivor-late")
	for _, id := range c.ids {
		c.kill(id)
	}
	c.wipe(l)
	c.wipe(f)
	c.start(l)
	c.start(f)
	c.waitAnswer(l, 20*time.Second)
	c.waitAnswer(f, 20*time.Second)
	// The survivor starts late, a time-based condition: the wiped pair
	// runs alone for 2s (five election timeouts). Neither may lead
	// meanwhile: two empty logs are a new group without the history.
	conns := map[string]*wire.Conn{}
	defer closeConns(conns)
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		for _, id := range []string{l, f} {
			if st, err := nodeStatus(context.Background(), conns, id, c.nodes[id].client); err == nil && isLeader(st) {
				t.Fatalf("wiped %s leads in term %d while the survivor %s is down: a new, empty group", id, st.Term, s)
			}
		}
		time.Sleep(20 * time.Millisecond) // sampling period
	}
	closeConns(conns)
	c.start(s)
	c.leaderID(30 * time.Second)
	bg.waitMore(t, 50, 60*time.Second)
	acked = append(acked, bg.stop()...)
	c.waitHold(acked, 60*time.Second)
	lw.check(t)
}

// other is the node that is neither a nor b.
func (c *procCluster) other(a, b string) string {
	for _, id := range c.ids {
		if id != a && id != b {
			return id
		}
	}
	return ""
}

// waitAnswer waits until node id answers a status request.
func (c *procCluster) waitAnswer(id string, timeout time.Duration) {
	c.t.Helper()
	conns := map[string]*wire.Conn{}
	defer closeConns(conns)
	Eventually(c.t, timeout, func() error {
		_, err := nodeStatus(context.Background(), conns, id, c.nodes[id].client)
		return err
	})
}

func closeConns(conns map[string]*wire.Conn) {
	for id, cn := range conns {
		cn.Close()
		delete(conns, id)
	}
}

// sender sends messages one after another in the background, retrying
// each until acknowledged, and remembers the acknowledged keys.
type sender struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	acked  []string
}

func startSender(p *client.Producer, phase string) *sender {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{cancel: cancel, done: make(chan struct{})}
	go func() { // stopped by stop
		defer close(s.done)
		for i := 0; ctx.Err() == nil; i++ {
			k := phase + "-" + strconv.Itoa(i)
			for ctx.Err() == nil {
				if _, err := p.Send(ctx, &client.Message{Topic: "wipe", Properties: map[string]string{"wipe-key": k}, Body: []byte(k)}); err == nil {
					s.mu.Lock()
					s.acked = append(s.acked, k)
					s.mu.Unlock()
					break
				}
			}
		}
	}()
	return s
}

func (s *sender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// waitMore waits until n more messages than now are acknowledged.
func (s *sender) waitMore(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	want := s.count() + n
	Eventually(t, timeout, func() error {
		if got := s.count(); got < want {
			return fmt.Errorf("%d of %d messages acknowledged", got, want)
		}
		return nil
	})
}

func (s *sender) stop() []string {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// sendAcked sends n messages one by one, retrying each until it is
// acknowledged, and returns their keys.
func sendAcked(t *testing.T, p *client.Producer, phase string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var keys []string
	for i := 0; i < n; i++ {
		k := phase + "-" + strconv.Itoa(i)
		for {
			_, err := p.Send(ctx, &client.Message{Topic: "wipe", Properties: map[string]string{"wipe-key": k}, Body: []byte(k)})
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("send %s: %d of %d acknowledged: %v", phase, i, n, err)
			}
		}
		keys = append(keys, k)
	}
	return keys
}

// waitHold waits until every node's own replica serves every key.
func (c *procCluster) waitHold(keys []string, timeout time.Duration) {
	c.t.Helper()
	Eventually(c.t, timeout, func() error {
		for _, id := range c.ids {
			held, err := readReplica(c.nodes[id].client, "wipe", 4)
			if err != nil {
				return fmt.Errorf("read %s: %w", id, err)
			}
			var missing []string
			for _, k := range keys {
				if !held[k] {
					missing = append(missing, k)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%s lacks %d of %d acknowledged messages, e.g. %s", id, len(missing), len(keys), missing[0])
			}
		}
		return nil
	})
}

// readReplica reads every queue of topic from one node (any replica
// serves reads) and returns the keys it holds.
func readReplica(addr, topic string, queues uint32) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := wire.Dial(ctx, addr, 0)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	held := map[string]bool{}
	for q := uint32(0); q < queues; q++ {
		off := uint64(0)
		for i := 0; i < 1000; i++ {
			var resp wire.PullResponse
			if err := conn.Call(ctx, wire.CodePull, &wire.PullRequest{Topic: topic, QueueID: q, Offset: off, MaxMessages: 256}, &resp); err != nil {
				return nil, err
			}
			for _, m := range resp.Messages {
				held[m.Properties["wipe-key"]] = true
			}
			if len(resp.Messages) == 0 || resp.NextOffset >= resp.MaxOffset {
				break
			}
			off = resp.NextOffset
		}
	}
	return held, nil
}

// leaderWatch samples every node's own status and records which node
// claimed leadership in which term.
type leaderWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	leaders   map[uint64]string
	conflicts []string
	samples   int
}

func watchLeaders(t *testing.T, c *procCluster) *leaderWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &leaderWatch{cancel: cancel, done: make(chan struct{}), leaders: map[uint64]string{}}
	go w.run(ctx, c) // stopped by stop
	t.Cleanup(func() {
		w.stop()
		if t.Failed() {
			w.mu.Lock()
			t.Logf("terms with two leaders: %v", w.conflicts)
			w.mu.Unlock()
		}
	})
	return w
}

func (w *leaderWatch) run(ctx context.Context, c *procCluster) {
	defer close(w.done)
	conns := map[string]*wire.Conn{}
	defer closeConns(conns)
	for ctx.Err() == nil {
		for _, id := range c.ids {
			st, err := nodeStatus(ctx, conns, id, c.nodes[id].client)
			if err != nil {
				continue // down or restarting
			}
			w.record(st)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond): // sampling period
		}
	}
}

func nodeStatus(ctx context.Context, conns map[string]*wire.Conn, id, addr string) (wire.NodeStatus, error) {
	var st wire.NodeStatus
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	cn := conns[id]
	if cn == nil {
		var err error
		if cn, err = wire.Dial(cctx, addr, 0); err != nil {
			return st, err
		}
		conns[id] = cn
	}
	if err := cn.Call(cctx, wire.CodeNodeStatus, wire.Empty{}, &st); err != nil {
		cn.Close()
		delete(conns, id)
		return st, err
	}
	if st.NodeID != id {
		return st, errors.New("answer from another node")
	}
	return st, nil
}

// isLeader: a node reporting itself leader. One still applying earlier
// terms reports role "candidate" with itself as leader.
func isLeader(st wire.NodeStatus) bool {
	return st.Role == "leader" || (st.Role == "candidate" && st.LeaderID == st.NodeID)
}

func (w *leaderWatch) record(st wire.NodeStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	if !isLeader(st) {
		return
	}
	if prev, ok := w.leaders[st.Term]; ok && prev != st.NodeID {
		c := fmt.Sprintf("term %d: %s and %s", st.Term, prev, st.NodeID)
		if !slices.Contains(w.conflicts, c) {
			w.conflicts = append(w.conflicts, c)
		}
		return
	}
	w.leaders[st.Term] = st.NodeID
}

func (w *leaderWatch) stop() {
	w.cancel()
	<-w.done
}

func (w *leaderWatch) check(t *testing.T) {
	t.Helper()
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	var terms []string
	for term, id := range w.leaders {
		terms = append(terms, fmt.Sprintf("%d:%s", term, id))
	}
	sort.Strings(terms)
	t.Logf("%d status samples; leaders by term: %s", w.samples, strings.Join(terms, " "))
	if len(w.conflicts) > 0 {
		t.Errorf("two leaders in one term: %s", strings.Join(w.conflicts, "; "))
	}
	if len(w.leaders) < 2 {
		t.Errorf("saw leaders in %d terms, want at least 2 (the wiped leader was replaced)", len(w.leaders))
	}
}
