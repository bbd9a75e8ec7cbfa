package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/drill"
)

const memberGroup = "broker-a"

// TestMembershipAddPromoteRemoveUnderLoad adds a fourth node to a
// three-node group under a steady produce and consume load, promotes it
// once it has caught up, and removes the leader (which hands leadership
// over first). No acknowledged message may be lost, the new node must hold
// every message at the same queue offsets as the others, the membership
// must survive a restart, and the new node, once wiped, must rejoin
// without bootstrapping. No term may ever have two leaders.
func TestMembershipAddPromoteRemoveUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test under load")
	}
	c := StartCluster(t, Options{Broker: func(cfg *broker.Config) { cfg.RegisterInterval = 200 * time.Millisecond }})
	lw := watchTerms(t, c)
	a := newTestAdmin(t, c)
	w := startLocalDrill(t, c)

	n3 := c.StartJoiner("n3")
	w.Mark("add n3 as non-voter")
	ms := changeMembers(t, func(ctx context.Context) ([]client.Member, error) {
		return a.AddNode(ctx, memberGroup, "n3", c.RaftAddr("n3"))
	})
	wantMembers(t, ms, "n0 n1 n2", "n3")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	st, err := a.WaitCaughtUp(ctx, memberGroup, "n3", 64)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("n3 caught up in %s: applied %d, lag %d", time.Since(start).Round(time.Millisecond), st.AppliedIndex, st.Lag)
	w.Mark("promote n3")
	ms = changeMembers(t, func(ctx context.Context) ([]client.Member, error) { return a.PromoteNode(ctx, memberGroup, "n3") })
	wantMembers(t, ms, "n0 n1 n2 n3", "")
	waitMore(t, w, 200)

	old := c.LeaderID(10 * time.Second)
	w.Mark("remove leader " + old)
	ms = changeMembers(t, func(ctx context.Context) ([]client.Member, error) { return a.RemoveNode(ctx, memberGroup, old) })
	c.Stop(old)
	voters := slices.DeleteFunc([]string{"n0", "n1", "n2", "n3"}, func(s string) bool { return s == old })
	wantMembers(t, ms, fmt.Sprint(voters[0], " ", voters[1], " ", voters[2]), "")
	waitMore(t, w, 300)
	r := finishDrill(t, w)
	for _, d := range r.Disruptions {
		t.Logf("FIGURE %s: first send after it acknowledged %s later, longest gap between acks %s",
			d.Name, d.Unavailable.Round(time.Millisecond), max(d.LongestGap, d.LongestPause).Round(time.Millisecond))
	}
	t.Logf("FIGURE %d acknowledged, %d lost", r.Acked, r.Lost)

	ref := c.Node(voters[0])
	if voters[0] == "n3" {
		ref = c.Node(voters[1])
	}
	sameQueues(t, ref, n3, "drill")

	// The membership is Raft's configuration: a restart keeps it.
	c.Stop("n3")
	n3 = c.Restart("n3")
	Eventually(t, 20*time.Second, func() error {
		got, _, err := n3.Members()
		if err != nil {
			return err
		}
		return sameSet(got, voters)
	})
	c.LeaderID(20 * time.Second)

	// Data lost: n3 restarts empty (with --peers the current members) and
	// rejoins as a replica, without bootstrapping a group of its own.
	c.Stop("n3")
	c.Wipe("n3")
	c.SyncPeers("n3")
	n3 = c.Restart("n3")
	Eventually(t, 60*time.Second, func() error {
		if n3.Status().StateIndex < ref.Status().StateIndex {
			return fmt.Errorf("n3 applied %d of %d", n3.Status().StateIndex, ref.Status().StateIndex)
		}
		got, _, err := n3.Members()
		if err != nil {
			return err
		}
		return sameSet(got, voters)
	})
	sameQueues(t, ref, n3, "drill")
	lw.check()
}

// TestPreferredLeaderReturns runs a group whose preferred leader is n1:
// leadership goes there, comes back after a transfer away and after n1 is
// killed and restarted, and the write pause of each move is measured.
func TestPreferredLeaderReturns(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test under load")
	}
	c := StartCluster(t, Options{Broker: func(cfg *broker.Config) {
		cfg.PreferredLeader = "n1"
		// Two checks (the first at 300ms) before a hand-over, so the
		// test sees writes resume at the node it moved leadership to
		// before leadership returns.
		cfg.PreferredCheckInterval = 300 * time.Millisecond
		cfg.RegisterInterval = 200 * time.Millisecond
	}})
	lw := watchTerms(t, c)
	waitLeader(t, c, "n1")
	a := newTestAdmin(t, c)
	w := startLocalDrill(t, c)

	for _, to := range []string{"n0", "n2"} {
		w.Mark("transfer n1 -> " + to)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.TransferLeadership(ctx, memberGroup, to)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		waitMore(t, w, 40) // writes resumed on the new leader
		w.Mark("return " + to + " -> n1 (automatic)")
		waitLeader(t, c, "n1")
		waitMore(t, w, 200)
	}
	w.Mark("kill n1")
	c.Kill("n1")
	waitMore(t, w, 200)
	w.Mark("restart n1")
	c.Restart("n1")
	waitMore(t, w, 40)
	w.Mark("return to restarted n1 (automatic)")
	waitLeader(t, c, "n1")
	term := c.Node("n1").Status().Term
	waitMore(t, w, 300)
	if st := c.Node("n1").Status(); st.Term != term || !st.Serving {
		t.Errorf("leadership moved again after it returned: n1 in term %d serving %v, was term %d", st.Term, st.Serving, term)
	}
	r := finishDrill(t, w)
	for _, d := range r.Disruptions {
		t.Logf("FIGURE %s: first send after it acknowledged %s later, longest gap between acks %s",
			d.Name, d.Unavailable.Round(time.Millisecond), max(d.LongestGap, d.LongestPause).Round(time.Millisecond))
	}
	t.Logf("FIGURE %d acknowledged, %d lost", r.Acked, r.Lost)
	lw.check()
}

func newTestAdmin(t *testing.T, c *Cluster) *client.Admin {
	t.Helper()
	a, err := client.NewAdmin(client.AdminConfig{NameServers: []string{c.NamesrvAddr()}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// startLocalDrill starts 4 producers, one message every 2ms each, and a
// consumer, waits for 300 acknowledgements, then marks "steady load" and
// waits for 300 more: that change's figures are the baseline (gaps
// between acknowledgements with nothing moving, on this machine).
func startLocalDrill(t *testing.T, c *Cluster) *drill.Workload {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := drill.Start(ctx, drill.Config{NameServers: []string{c.NamesrvAddr()}, Producers: 4, Interval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitMore(t, w, 300)
	w.Mark("steady load")
	waitMore(t, w, 300)
	return w
}

func changeMembers(t *testing.T, f func(ctx context.Context) ([]client.Member, error)) []client.Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ms, err := f(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// wantMembers checks a configuration: voters and non-voters, space-separated IDs.
func wantMembers(t *testing.T, ms []client.Member, voters, nonvoters string) {
	t.Helper()
	var v, nv string
	for _, m := range ms {
		if m.Voter {
			v += " " + m.ID
		} else {
			nv += " " + m.ID
		}
	}
	if got := fmt.Sprintf("voters [%s] non-voters [%s]", trim(v), trim(nv)); got != fmt.Sprintf("voters [%s] non-voters [%s]", voters, nonvoters) {
		t.Fatalf("got %s, want voters [%s] non-voters [%s]", got, voters, nonvoters)
	}
}

func trim(s string) string {
	if s != "" {
		return s[1:]
	}
	return s
}

func sameSet(ms []broker.Member, voters []string) error {
	var got []string
	for _, m := range ms {
		if !m.Voter {
			return fmt.Errorf("%s is a non-voter", m.ID)
		}
		got = append(got, m.ID)
	}
	slices.Sort(got)
	if !slices.Equal(got, voters) {
		return fmt.Errorf("members %v, want %v", got, voters)
	}
	return nil
}

func waitLeader(t *testing.T, c *Cluster, id string) {
	t.Helper()
	Eventually(t, 30*time.Second, func() error {
		if n := c.Node(id); n != nil && n.Status().Serving {
			return nil
		}
		return fmt.Errorf("%s does not lead", id)
	})
}

// sameQueues waits until b has applied what a has and compares every
// queue of topic on both: range and each message's ID, offset and Raft
// index.
func sameQueues(t *testing.T, a, b *broker.Node, topic string) {
	t.Helper()
	Eventually(t, 30*time.Second, func() error {
		if sa, sb := a.Status().StateIndex, b.Status().StateIndex; sb < sa {
			return fmt.Errorf("%s applied %d, %s %d", b.Status().NodeID, sb, a.Status().NodeID, sa)
		}
		return nil
	})
	tp, ok := a.Topic(topic)
	if !ok {
		t.Fatalf("no topic %s", topic)
	}
	total := 0
	for q := uint32(0); q < tp.Queues; q++ {
		ma, err := readQueue(a, topic, q)
		if err != nil {
			t.Fatal(err)
		}
		mb, err := readQueue(b, topic, q)
		if err != nil {
			t.Fatal(err)
		}
		// Retention keeps purging while the two are read one after the
		// other, so one may have dropped a prefix the other still shows:
		// compare from the later start.
		ma, mb = fromOffset(ma, mb), fromOffset(mb, ma)
		if !slices.Equal(ma, mb) {
			t.Fatalf("queue %d: %d messages on %s, %d on %s, or they differ", q, len(ma), a.Status().NodeID, len(mb), b.Status().NodeID)
		}
		total += len(ma)
	}
	t.Logf("%s and %s hold the same %d messages of %s", a.Status().NodeID, b.Status().NodeID, total, topic)
}

// fromOffset is a without the messages below b's first offset.
func fromOffset(a, b []storedKey) []storedKey {
	if len(b) == 0 {
		return a
	}
	i, _ := slices.BinarySearchFunc(a, b[0].offset, func(k storedKey, off uint64) int { return cmp.Compare(k.offset, off) })
	return a[i:]
}

type storedKey struct {
	id     string
	offset uint64
	index  uint64
}

func readQueue(n *broker.Node, topic string, q uint32) ([]storedKey, error) {
	min, next, err := n.QueueRange(topic, q)
	if err != nil {
		return nil, err
	}
	var out []storedKey
	for off := min; off < next; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := n.Read(ctx, broker.ReadRequest{Topic: topic, QueueID: q, Offset: off, MaxMessages: 256})
		cancel()
		if err != nil {
			return nil, err
		}
		if r.NextOffset <= off {
			return nil, fmt.Errorf("queue %d: read at %d made no progress", q, off)
		}
		for _, m := range r.Messages {
			out = append(out, storedKey{id: string(m.ID), offset: m.QueueOffset, index: m.RaftIndex})
		}
		off = r.NextOffset
	}
	return out, nil
}

// termWatch samples every live node's (term, role) until check and fails
// the test if two nodes ever led in one term.
type termWatch struct {
	t    *testing.T
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	errs []error
}

func watchTerms(t *testing.T, c *Cluster) *termWatch {
	w := &termWatch{t: t, stop: make(chan struct{}), done: make(chan struct{})}
	leaders := map[uint64]string{}
	go func() { // ends with check or cleanup
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			for _, n := range c.Live() {
				st := n.Status()
				if st.State != "Leader" {
					continue
				}
				if prev, ok := leaders[st.Term]; ok && prev != st.NodeID {
					w.mu.Lock()
					w.errs = append(w.errs, fmt.Errorf("term %d: leaders %s and %s", st.Term, prev, st.NodeID))
					w.mu.Unlock()
				}
				leaders[st.Term] = st.NodeID
			}
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *termWatch) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *termWatch) check() {
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := errors.Join(w.errs...); err != nil {
		w.t.Error(err)
	}
}

// TestJoinAfterRetention adds a node to a group whose leader has purged
// the start of its log (retention by a disk budget), under load: the new
// node cannot replay from index 1 and receives a snapshot with the
// retained log (raftlog's SnapshotStore), then must hold the same queues
// as the others.
func TestJoinAfterRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test under load")
	}
	c := StartCluster(t, Options{Broker: func(cfg *broker.Config) {
		cfg.RegisterInterval = 200 * time.Millisecond
		cfg.SegmentSize = 128 << 10
		cfg.SnapshotThreshold = 8
		cfg.SnapshotInterval = 200 * time.Millisecond
		cfg.MaintenanceInterval = 50 * time.Millisecond
		cfg.Retention = broker.RetentionConfig{MaxDiskBytes: 1 << 20, CheckInterval: 50 * time.Millisecond}
	}})
	a := newTestAdmin(t, c)
	w := startLocalDrill(t, c)
	Eventually(t, 60*time.Second, func() error {
		for _, n := range c.Live() {
			if st := n.Status(); st.FirstIndex <= 1 {
				return fmt.Errorf("%s still holds index 1", st.NodeID)
			}
		}
		return nil
	})
	c.StartJoiner("n3")
	w.Mark("add n3 as non-voter")
	changeMembers(t, func(ctx context.Context) ([]client.Member, error) {
		return a.AddNode(ctx, memberGroup, "n3", c.RaftAddr("n3"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	st, err := a.WaitCaughtUp(ctx, memberGroup, "n3", 64)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	w.Mark("promote n3")
	changeMembers(t, func(ctx context.Context) ([]client.Member, error) { return a.PromoteNode(ctx, memberGroup, "n3") })
	waitMore(t, w, 300)
	r := finishDrill(t, w)
	n3, ref := c.Node("n3"), c.Node(c.LeaderID(10*time.Second))
	s3 := n3.Status()
	t.Logf("n3 caught up at applied %d; holds log [%d..%d], retention floor %d; leader holds [%d..%d]; %d acknowledged, %d lost",
		st.AppliedIndex, s3.FirstIndex, s3.LastIndex, s3.RetainFrom, ref.Status().FirstIndex, ref.Status().LastIndex, r.Acked, r.Lost)
	if s3.FirstIndex <= 1 || s3.FirstIndex > s3.RetainFrom {
		t.Errorf("n3's log starts at %d with the retention floor at %d: want a snapshot install that kept the retained history", s3.FirstIndex, s3.RetainFrom)
	}
	sameQueues(t, ref, n3, "drill")
}
