package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/wire"
)

// Ports inside every broker's namespace (each has its own address, so
// they never clash) and the NameServer's on the bridge address.
const (
	clientPort  = 10911
	raftPort    = 10912
	namesrvPort = 9876
)

// Cluster is a NameServer in the root namespace and one broker group, each
// broker an rmq process in its own network namespace (Net). Close kills
// every process and removes the network and the data. Its methods are
// safe for concurrent use.
type Cluster struct {
	cfg   Config
	log   hclog.Logger
	net   *Net
	dir   string
	peers string
	// storageConf is the broker config file of Config.Storage ("" if
	// none); faultHooks says whether Bin reads fault control files.
	storageConf string
	faultHooks  bool

	mu     sync.Mutex
	procs  map[string]*proc // "namesrv", "n0", ...; absent: not running
	starts map[int]int      // broker -> times started (its incarnation)
	closed bool

	connMu sync.Mutex
	conns  map[int]*wire.Conn // status connections to brokers
}

// Start creates the network, starts the NameServer and the brokers and
// waits (within ctx) until the group has a leader that the NameServer
// names. On error everything created is removed.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c = &Cluster{cfg: cfg, log: cfg.Logger, procs: map[string]*proc{}, starts: map[int]int{}, conns: map[int]*wire.Conn{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
			c = nil
		}
	}()
	c.dir = cfg.Dir
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", Prefix+"run-"); err != nil {
			return c, err
		}
	}
	for _, sub := range []string{"logs", "faults"} {
		if err = os.MkdirAll(filepath.Join(c.dir, sub), 0o755); err != nil {
			return c, err
		}
	}
	if c.faultHooks, err = hasFaultHooks(cfg.Bin); err != nil {
		return c, err
	}
	if conf := cfg.Storage.brokerConfig(); conf != "" {
		c.storageConf = filepath.Join(c.dir, "storage.toml")
		if err = os.WriteFile(c.storageConf, []byte(conf), 0o644); err != nil {
			return c, err
		}
	}
	if c.net, err = NewNet(ctx, cfg.Nodes, c.log.Named("net")); err != nil {
		return c, err
	}
	c.log = c.log.With("run", c.net.ID())
	var peers []string
	for i := 0; i < cfg.Nodes; i++ {
		peers = append(peers, fmt.Sprintf("%s=%s", NodeID(i), c.raftAddr(i)))
	}
	c.peers = strings.Join(peers, ",")
	if err = c.spawn("namesrv", []string{cfg.Bin, "--log-level", cfg.LogLevel, "namesrv", "--listen", c.NameServer()}, nil); err != nil {
		return c, err
	}
	for i := 0; i < cfg.Nodes; i++ {
		if err = c.Restart(i); err != nil {
			return c, err
		}
	}
	if _, err = c.Leader(ctx); err != nil {
		return c, err
	}
	if err = c.waitRegistered(ctx); err != nil {
		return c, err
	}
	c.log.Info("cluster started", "dir", c.dir, "subnet", c.net.Subnet(), "nodes", cfg.Nodes)
	return c, nil
}

// NodeID is broker i's Raft server id.
func NodeID(i int) string { return "n" + strconv.Itoa(i) }

// Nodes is the number of brokers.
func (c *Cluster) Nodes() int { return c.cfg.Nodes }

// Net is the cluster's network, for partitions.
func (c *Cluster) Net() *Net { return c.net }

// Dir holds the data directories and logs (logs/NAME.log).
func (c *Cluster) Dir() string { return c.dir }

// NameServer is the NameServer's address.
func (c *Cluster) NameServer() string {
	return fmt.Sprintf("%s:%d", c.net.HostIP(), namesrvPort)
}

// ClientAddr is broker i's client address.
func (c *Cluster) ClientAddr(i int) string { return fmt.Sprintf("%s:%d", c.net.IP(i), clientPort) }

func (c *Cluster) raftAddr(i int) string { return fmt.Sprintf("%s:%d", c.net.IP(i), raftPort) }

func (c *Cluster) logPath(name string) string { return filepath.Join(c.dir, "logs", name+".log") }

// Tail returns the last n lines of a process's log ("namesrv", "n0", ...).
func (c *Cluster) Tail(name string, n int) string { return tail(c.logPath(name), n) }

func (c *Cluster) spawn(name string, argv, env []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if p := c.procs[name]; p != nil && !p.exited() {
		return nil // running
	}
	p, err := startProc(name, c.logPath(name), argv, env)
	if err != nil {
		return err
	}
	c.procs[name] = p
	c.log.Info("process started", "name", name, "pid", p.pid())
	return nil
}

// Restart starts broker i if it is not running, on its data directory.
func (c *Cluster) Restart(i int) error {
	if i < 0 || i >= c.cfg.Nodes {
		return fmt.Errorf("chaos: no node %d", i)
	}
	argv := []string{"ip", "netns", "exec", c.net.Namespace(i), c.cfg.Bin,
		"--namesrv", c.NameServer(), "--log-level", c.cfg.LogLevel, "broker",
		"--id", NodeID(i), "--data", filepath.Join(c.dir, NodeID(i)),
		"--listen", c.ClientAddr(i), "--raft", c.raftAddr(i), "--peers", c.peers, "--bootstrap"}
	if c.storageConf != "" {
		argv = append(argv, "--config", c.storageConf)
	}
	argv = append(argv, c.cfg.BrokerFlags...)
	if err := c.spawn(NodeID(i), argv, []string{"RMQ_FAULT_FILE=" + c.faultFile(i)}); err != nil {
		return err
	}
	c.mu.Lock()
	c.starts[i]++
	c.mu.Unlock()
	return nil
}

func (c *Cluster) proc(name string) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[name]
	if p == nil || p.exited() {
		return nil
	}
	return p
}

func (c *Cluster) end(i int, sig syscall.Signal) error {
	name := NodeID(i)
	p := c.proc(name)
	if p == nil {
		return fmt.Errorf("chaos: %s is not running", name)
	}
	err := p.signal(sig, 15*time.Second)
	c.mu.Lock()
	if c.procs[name] == p {
		delete(c.procs, name)
	}
	c.mu.Unlock()
	c.dropConn(i)
	c.log.Info("process ended", "name", name, "signal", sig, "error", err)
	return err
}

// Kill SIGKILLs broker i and waits until it is gone.
func (c *Cluster) Kill(i int) error { return c.end(i, syscall.SIGKILL) }

// Stop SIGTERMs broker i and waits until it exited (SIGKILL after 15s,
// reported as an error).
func (c *Cluster) Stop(i int) error { return c.end(i, syscall.SIGTERM) }

// Pause SIGSTOPs broker i: its sockets stay open and nothing answers, as
// in a long GC pause or a VM freeze.
func (c *Cluster) Pause(i int) error { return c.pause(i, syscall.SIGSTOP) }

// Resume SIGCONTs a paused broker.
func (c *Cluster) Resume(i int) error { return c.pause(i, syscall.SIGCONT) }

func (c *Cluster) pause(i int, sig syscall.Signal) error {
	p := c.proc(NodeID(i))
	if p == nil {
		return fmt.Errorf("chaos: %s is not running", NodeID(i))
	}
	if err := p.signal(sig, 0); err != nil {
		return err
	}
	c.mu.Lock()
	p.paused = sig == syscall.SIGSTOP
	c.mu.Unlock()
	c.log.Info("process signalled", "name", NodeID(i), "signal", sig)
	return nil
}

// Paused reports whether broker i is SIGSTOPped.
func (c *Cluster) Paused(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[NodeID(i)]
	return p != nil && !p.exited() && p.paused
}

// Running reports whether broker i runs (paused counts as running).
func (c *Cluster) Running(i int) bool { return c.proc(NodeID(i)) != nil }

// Incarnation counts broker i's starts: samples taken from one process
// carry it, so a restarted node's replay is not mistaken for regress.
func (c *Cluster) Incarnation(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starts[i]
}

// Pids maps every running process ("namesrv", "n0", ...) to its pid.
func (c *Cluster) Pids() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for name, p := range c.procs {
		if !p.exited() {
			out[name] = p.pid()
		}
	}
	return out
}

// Close kills every process, removes the network and (unless KeepDir)
// the directory. Idempotent.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	procs := make([]*proc, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	c.connMu.Lock()
	for i, cn := range c.conns {
		cn.Close()
		delete(c.conns, i)
	}
	c.connMu.Unlock()
	var errs []error
	for _, p := range procs {
		if err := p.signal(syscall.SIGKILL, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if c.net != nil {
		errs = append(errs, c.net.Close())
	}
	if c.dir != "" && !c.cfg.KeepDir {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	err := errors.Join(errs...)
	c.log.Info("cluster closed", "error", err)
	return err
}

// Status asks broker i for its own view (one short request).
func (c *Cluster) Status(ctx context.Context, i int) (wire.NodeStatus, error) {
	var st wire.NodeStatus
	err := c.call(ctx, i, wire.CodeNodeStatus, wire.Empty{}, &st)
	if err == nil && st.NodeID != NodeID(i) {
		err = fmt.Errorf("chaos: %s answered for %s", st.NodeID, NodeID(i))
	}
	return st, err
}

// call makes one request to broker i on a cached connection, bounded by
// 700ms (a paused or cut-off node never answers).
func (c *Cluster) call(ctx context.Context, i int, code uint16, req, resp any) error {
	ctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	c.connMu.Lock()
	cn := c.conns[i]
	c.connMu.Unlock()
	if cn == nil {
		var err error
		if cn, err = wire.Dial(ctx, c.ClientAddr(i), 0); err != nil {
			return err
		}
		c.connMu.Lock()
		if old := c.conns[i]; old != nil {
			old.Close()
		}
		c.conns[i] = cn
		c.connMu.Unlock()
	}
	if err := cn.Call(ctx, code, req, resp); err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			c.dropConn(i) // a transport failure: dial again next time
		}
		return err
	}
	return nil
}

func (c *Cluster) dropConn(i int) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if cn := c.conns[i]; cn != nil {
		cn.Close()
		delete(c.conns, i)
	}
}

// statuses polls every running broker once, concurrently.
func (c *Cluster) statuses(ctx context.Context) map[int]wire.NodeStatus {
	var mu sync.Mutex
	out := map[int]wire.NodeStatus{}
	var wg sync.WaitGroup
	for i := 0; i < c.cfg.Nodes; i++ {
		if !c.Running(i) {
			continue
		}
		wg.Add(1)
		go func() { // waited for below
			defer wg.Done()
			if st, err := c.Status(ctx, i); err == nil {
				mu.Lock()
				out[i] = st
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// agreedLeader: a node that says it leads, with a majority of the group
// (itself included) naming it leader in its term.
func (c *Cluster) agreedLeader(sts map[int]wire.NodeStatus) (int, wire.NodeStatus, bool) {
	for i, st := range sts {
		if st.Role != "leader" {
			continue
		}
		votes := 0
		for _, o := range sts {
			if o.LeaderID == st.NodeID && o.Term == st.Term {
				votes++
			}
		}
		if votes > c.cfg.Nodes/2 {
			return i, st, true
		}
	}
	return -1, wire.NodeStatus{}, false
}

// Leader waits (within ctx) for an agreed leader and returns its index.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	var leader int
	err := poll(ctx, 50*time.Millisecond, func() error {
		l, _, ok := c.agreedLeader(c.statuses(ctx))
		if !ok {
			return ErrNoLeader
		}
		leader = l
		return nil
	})
	return leader, err
}

// WaitHealthy waits (within ctx) until every broker runs and answers, a
// majority agrees on the leader, the NameServer names that leader, and
// every broker has applied the leader's commit index as seen at the
// first agreement: the group recovered from a fault.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var target uint64
	admin, err := client.NewAdmin(client.AdminConfig{NameServers: []string{c.NameServer()}, Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer admin.Close()
	return poll(ctx, 50*time.Millisecond, func() error {
		sts := c.statuses(ctx)
		if len(sts) < c.cfg.Nodes {
			var missing []string
			for i := 0; i < c.cfg.Nodes; i++ {
				if _, ok := sts[i]; !ok {
					missing = append(missing, NodeID(i))
				}
			}
			return fmt.Errorf("no answer from %s", strings.Join(missing, ", "))
		}
		l, lst, ok := c.agreedLeader(sts)
		if !ok {
			return ErrNoLeader
		}
		if target == 0 {
			target = lst.CommitIndex
		}
		var behind []string
		for i, st := range sts {
			if st.AppliedIndex < target {
				behind = append(behind, fmt.Sprintf("%s at %d", NodeID(i), st.AppliedIndex))
			}
		}
		if len(behind) > 0 {
			sort.Strings(behind)
			return fmt.Errorf("behind commit index %d: %s", target, strings.Join(behind, ", "))
		}
		gs, err := admin.ClusterStatus(ctx)
		if err != nil {
			return fmt.Errorf("NameServer: %w", err)
		}
		if len(gs) != 1 || gs[0].Leader != NodeID(l) {
			return fmt.Errorf("NameServer does not name %s leader yet", NodeID(l))
		}
		return nil
	})
}

// waitRegistered waits until the NameServer names a leader.
func (c *Cluster) waitRegistered(ctx context.Context) error {
	admin, err := client.NewAdmin(client.AdminConfig{NameServers: []string{c.NameServer()}, Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer admin.Close()
	return poll(ctx, 50*time.Millisecond, func() error {
		gs, err := admin.ClusterStatus(ctx)
		if err != nil {
			return err
		}
		if len(gs) != 1 || gs[0].Leader == "" {
			return errors.New("no leader registered with the NameServer")
		}
		return nil
	})
}

// poll calls f every interval until it returns nil or ctx ends; the
// error then names f's last complaint.
func poll(ctx context.Context, interval time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(interval): // polling period
		}
	}
}
