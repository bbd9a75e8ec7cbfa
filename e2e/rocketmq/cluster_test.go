package rocketmq_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
)

// pollInterval is how often the wait helpers re-check a condition.
const pollInterval = 25 * time.Millisecond

// eventually polls cond until it returns nil, failing the test with
// cond's last error once timeout has passed. Call it from the test
// goroutine only.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := waitFor(timeout, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls cond until it returns nil or timeout has passed, and
// returns cond's last error then.
func waitFor(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still not true after %v: %w", timeout, err)
		}
		<-tick.C
	}
}

// readiness says why a cluster cannot take writes yet (no group, no
// leader, leader not serving), or returns the leader of its only group.
func readiness(a *client.Admin) (leader string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := a.ClusterStatus(ctx)
	if err != nil {
		return "", err
	}
	if len(st) != 1 {
		return "", fmt.Errorf("%d broker groups registered, want 1", len(st))
	}
	g := st[0]
	for _, n := range g.Nodes {
		if n.NodeID == g.Leader && n.Serving && !n.Down {
			return g.Leader, nil
		}
	}
	return "", fmt.Errorf("broker group %s has no serving leader (leader %q, %d nodes registered)", g.Group, g.Leader, len(g.Nodes))
}

func newAdmin(ns string) (*client.Admin, error) {
	return client.NewAdmin(client.AdminConfig{NameServers: []string{ns}, Timeout: 5 * time.Second})
}

// devCluster is one `rmq dev` process: a NameServer and a three-node
// broker group in one process, on loopback ports chosen here.
type devCluster struct {
	ns    string // NameServer address: rmq protocol and RocketMQ remoting
	dir   string // --dir
	ports []int  // every port it listens on
	p     *proc
}

// startDev starts `rmq dev` with a temporary --dir, waits until its
// group has a serving leader, and stops it in t.Cleanup (SIGTERM, then
// SIGKILL after 20s).
func startDev(t testing.TB, devFlags ...string) *devCluster {
	t.Helper()
	root := t.TempDir()
	var errs []error
	for attempt := 0; attempt < 3; attempt++ { // a lost port race is retried on new ports
		d, err := launchDev(root, attempt, devFlags...)
		if err == nil {
			t.Cleanup(func() { d.stop(t) })
			return d
		}
		errs = append(errs, err)
	}
	t.Fatalf("rmq dev did not come up: %v", errors.Join(errs...))
	return nil
}

func launchDev(root string, attempt int, devFlags ...string) (*devCluster, error) {
	nsPort, base, all, err := pickDevPorts()
	if err != nil {
		return nil, err
	}
	d := &devCluster{ns: fmt.Sprintf("127.0.0.1:%d", nsPort), dir: filepath.Join(root, fmt.Sprintf("data%d", attempt)), ports: all}
	d.p, err = spawn(root, fmt.Sprintf("dev%d", attempt), append([]string{"--log-level", "info", "dev", "--dir", d.dir,
		"--namesrv-port", strconv.Itoa(nsPort), "--broker-port", strconv.Itoa(base)}, devFlags...)...)
	if err != nil {
		return nil, err
	}
	a, err := newAdmin(d.ns)
	if err != nil {
		_ = d.p.stop(syscall.SIGKILL, 0)
		return nil, err
	}
	defer a.Close()
	err = waitFor(30*time.Second, func() error {
		if !d.p.alive() {
			return fmt.Errorf("rmq dev exited (%s):\n%s", d.p.exitStatus(), d.p.tail(15))
		}
		_, err := readiness(a)
		return err
	})
	if err != nil {
		_ = d.p.stop(syscall.SIGKILL, 0)
		return nil, err
	}
	return d, nil
}

func (d *devCluster) stop(t testing.TB) {
	if t.Failed() {
		t.Logf("rmq dev (%s), last log lines:\n%s", d.p.exitStatus(), d.p.tail(20))
	}
	if err := d.p.stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Errorf("stop rmq dev: %v", err)
	}
}

// groupCluster is a NameServer and a three-node broker group, each its
// own rmq process, so that one node can be SIGKILLed and restarted.
type groupCluster struct {
	t      testing.TB
	ns     string
	root   string
	peers  string
	ids    []string
	nodes  map[string]nodeSpec
	config string // brokers' --config file, if any
	admin  *client.Admin

	mu    sync.Mutex
	procs map[string]*proc // "namesrv", "n0", "n1", "n2"; absent while killed
	spawn map[string]int   // starts per name, for log file names
}

type nodeSpec struct {
	data, client, raft string
}

// startGroup starts the NameServer and nodes n0..n2 and waits for a
// serving leader. brokerTOML, if given, is every broker's --config file
// (settings the flags below do not set, such as segment_size). t.Cleanup
// SIGKILLs every process still running.
func startGroup(t testing.TB, brokerTOML ...string) *groupCluster {
	t.Helper()
	ports, err := pickPorts(7, map[int]bool{})
	if err != nil {
		t.Fatal(err)
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	g := &groupCluster{t: t, ns: addr(ports[0]), root: t.TempDir(), nodes: map[string]nodeSpec{},
		procs: map[string]*proc{}, spawn: map[string]int{}}
	t.Cleanup(g.cleanup)
	var peers []string
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("n%d", i)
		n := nodeSpec{data: filepath.Join(g.root, id), client: addr(ports[1+2*i]), raft: addr(ports[2+2*i])}
		g.ids = append(g.ids, id)
		g.nodes[id] = n
		peers = append(peers, id+"="+n.raft)
	}
	g.peers = strings.Join(peers, ",")
	if len(brokerTOML) > 0 {
		g.config = filepath.Join(g.root, "broker.toml")
		if err := os.WriteFile(g.config, []byte(strings.Join(brokerTOML, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if g.admin, err = newAdmin(g.ns); err != nil {
		t.Fatal(err)
	}
	g.start("namesrv", "--log-level", "info", "namesrv", "--listen", g.ns)
	for _, id := range g.ids {
		g.Restart(id)
	}
	g.Leader(30 * time.Second)
	return g
}

func (g *groupCluster) start(name string, args ...string) {
	g.t.Helper()
	g.mu.Lock()
	g.spawn[name]++
	logName := fmt.Sprintf("%s.%d", name, g.spawn[name])
	g.mu.Unlock()
	p, err := spawn(g.root, logName, args...)
	if err != nil {
		g.t.Fatal(err)
	}
	g.mu.Lock()
	g.procs[name] = p
	g.mu.Unlock()
}

// Restart starts node id (again) on its addresses and data directory.
func (g *groupCluster) Restart(id string) {
	g.t.Helper()
	n := g.nodes[id]
	args := []string{"--namesrv", g.ns, "--log-level", "info", "broker", "--id", id, "--data", n.data,
		"--listen", n.client, "--raft", n.raft, "--peers", g.peers, "--bootstrap"}
	if g.config != "" {
		args = append(args, "--config", g.config)
	}
	g.start(id, args...)
}

func (g *groupCluster) proc(name string) *proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.procs[name]
}

// Kill SIGKILLs node id and waits until it is reaped.
func (g *groupCluster) Kill(id string) {
	g.t.Helper()
	g.mu.Lock()
	p := g.procs[id]
	delete(g.procs, id)
	g.mu.Unlock()
	if p == nil {
		g.t.Fatalf("kill %s: not running", id)
	}
	if err := p.stop(syscall.SIGKILL, 0); err != nil {
		g.t.Fatal(err)
	}
}

// Leader waits until the NameServer names a serving leader whose process
// is running, and returns its id.
func (g *groupCluster) Leader(timeout time.Duration) string {
	g.t.Helper()
	var leader string
	eventually(g.t, timeout, "broker group leader", func() error {
		for name, p := range g.running() {
			if !p.alive() {
				return fmt.Errorf("%s exited (%s):\n%s", name, p.exitStatus(), p.tail(15))
			}
		}
		id, err := readiness(g.admin)
		if err != nil {
			return err
		}
		if g.proc(id) == nil {
			return fmt.Errorf("the NameServer still names killed node %s as leader", id)
		}
		leader = id
		return nil
	})
	return leader
}

// WaitCaughtUp waits until node id is registered, not down, and applied
// within 64 entries of the leader.
func (g *groupCluster) WaitCaughtUp(id string, timeout time.Duration) {
	g.t.Helper()
	eventually(g.t, timeout, id+" caught up", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := g.admin.ClusterStatus(ctx)
		if err != nil {
			return err
		}
		if len(st) != 1 {
			return fmt.Errorf("%d broker groups registered, want 1", len(st))
		}
		for _, n := range st[0].Nodes {
			if n.NodeID != id {
				continue
			}
			if n.Down {
				return fmt.Errorf("%s is listed down (last seen %v ago)", id, n.Age)
			}
			if st[0].Leader == "" || n.Lag > 64 {
				return fmt.Errorf("%s lags %d entries behind leader %q", id, n.Lag, st[0].Leader)
			}
			return nil
		}
		return fmt.Errorf("%s not registered", id)
	})
}

// running returns the processes not killed, by name.
func (g *groupCluster) running() map[string]*proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]*proc, len(g.procs))
	for k, v := range g.procs {
		out[k] = v
	}
	return out
}

// ports lists every port the group listens on.
func (g *groupCluster) ports() []int {
	var out []int
	for _, a := range []string{g.ns, g.nodes["n0"].client, g.nodes["n0"].raft, g.nodes["n1"].client,
		g.nodes["n1"].raft, g.nodes["n2"].client, g.nodes["n2"].raft} {
		_, p, _ := strings.Cut(a, ":")
		n, _ := strconv.Atoi(p)
		out = append(out, n)
	}
	return out
}

func (g *groupCluster) cleanup() {
	if g.admin != nil {
		g.admin.Close()
	}
	ps := g.running()
	for _, name := range append(append([]string{}, g.ids...), "namesrv") {
		p := ps[name]
		if p == nil {
			continue
		}
		if g.t.Failed() {
			g.t.Logf("%s (%s), last log lines:\n%s", name, p.exitStatus(), p.tail(15))
		}
		if err := p.stop(syscall.SIGKILL, 0); err != nil {
			g.t.Error(err)
		}
	}
}

// createTopic creates topic with rmq's admin client and waits until the
// NameServer routes it with every queue (a RocketMQ push consumer refuses
// to start on a topic without a route).
func createTopic(t testing.TB, ns, topic string, queues uint32) {
	t.Helper()
	a, err := newAdmin(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.CreateTopic(ctx, client.TopicSpec{Name: topic, Queues: queues}); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	eventually(t, 10*time.Second, "route of "+topic, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		qs, err := a.TopicStatus(ctx, topic)
		if err != nil {
			return err
		}
		if len(qs) != int(queues) {
			return fmt.Errorf("route has %d queues, want %d", len(qs), queues)
		}
		return nil
	})
}

// committedOffsets sums group's committed consumer offsets on topic's
// queues, as rmq's admin client reads them.
func committedOffsets(ns, group, topic string) (uint64, error) {
	a, err := newAdmin(ns)
	if err != nil {
		return 0, err
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	d, err := a.DescribeGroup(ctx, group)
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, q := range d.Queues {
		if q.Queue.Topic == topic {
			sum += q.ConsumerOffset
		}
	}
	return sum, nil
}
