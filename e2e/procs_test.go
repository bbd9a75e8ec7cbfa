package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// rmqBinary builds cmd/rmq once per test run.
func rmqBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rmq-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "rmq")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/rmq-dev/rmq/cmd/rmq").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// procCluster runs a NameServer and a three-node group as separate rmq
// processes on 127.0.0.1 with free ports and temporary data. Every process
// is killed and reaped by t.Cleanup.
type procCluster struct {
	t      testing.TB
	bin    string
	nsAddr string
	peers  string
	extra  []string    // broker flags for every node
	tls    *tls.Config // the test's clients' TLS (tls_test.go); nil: plaintext
	mu     sync.Mutex
	procs  map[string]*proc
	nodes  map[string]*procNode
	ids    []string
}

type procNode struct {
	id, data, client, raft string
}

type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// freeAddr hands out each port once per test binary and draws it below
// Linux's ephemeral range (32768 and up by default). A port the kernel
// picks for "127.0.0.1:0" comes from that range, where any test's
// outgoing connection may take it between the check and the broker's
// bind, and two picks in one test may even coincide; either left a
// process unable to listen.
func freeAddr(t testing.TB) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for try := 0; try < 200; try++ {
		p := 20000 + rand.IntN(12000)
		if portsGiven[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		portsGiven[p] = true
		return ln.Addr().String()
	}
	t.Fatal("no free port in 20000-31999")
	return ""
}

func startProcCluster(t testing.TB, brokerFlags ...string) *procCluster {
	t.Helper()
	return startProcClusterWith(t, nil, nil, brokerFlags...)
}

// startProcClusterWith is startProcCluster with flags for the NameServer
// and a TLS config for the test's clients.
func startProcClusterWith(t testing.TB, clientTLS *tls.Config, namesrvFlags []string, brokerFlags ...string) *procCluster {
	t.Helper()
	c := &procCluster{t: t, bin: rmqBinary(t), procs: map[string]*proc{}, nodes: map[string]*procNode{}, extra: brokerFlags, tls: clientTLS}
	// The first TempDir registers the removal of every temp dir of t;
	// cleanups run last first, so registering it before c.cleanup makes
	// the removal wait until the processes writing there are gone.
	root := t.TempDir()
	t.Cleanup(c.cleanup)
	c.nsAddr = freeAddr(t)
	c.spawn("namesrv", append([]string{"--log-level", "info", "namesrv", "--listen", c.nsAddr}, namesrvFlags...)...)
	var peers []string
	for i := 0; i < 3; i++ {
		n := &procNode{id: fmt.Sprintf("n%d", i), data: filepath.Join(root, fmt.Sprintf("n%d", i)), client: freeAddr(t), raft: freeAddr(t)}
		c.nodes[n.id] = n
		c.ids = append(c.ids, n.id)
		peers = append(peers, n.id+"="+n.raft)
	}
	c.peers = strings.Join(peers, ",")
	for _, id := range c.ids {
		c.start(id)
	}
	c.leaderID(20 * time.Second)
	return c
}

func (c *procCluster) spawn(name string, args ...string) {
	c.t.Helper()
	logPath := filepath.Join(c.t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }() // reaps the process
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
}

// start launches (or relaunches) broker id on its addresses and data dir.
func (c *procCluster) start(id string) {
	n := c.nodes[id]
	args := []string{"--namesrv", c.nsAddr, "--log-level", "info", "broker", "--id", id, "--data", n.data,
		"--listen", n.client, "--raft", n.raft, "--peers", c.peers, "--bootstrap"}
	c.spawn(id, append(args, c.extra...)...)
}

// signal sends sig to a process and waits for it to exit (SIGKILL after 15s).
func (c *procCluster) signal(name string, sig syscall.Signal) {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		c.t.Logf("%s did not exit after %v; killing it", name, sig)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (c *procCluster) kill(id string) { c.signal(id, syscall.SIGKILL) }
func (c *procCluster) stop(id string) { c.signal(id, syscall.SIGTERM) }
func (c *procCluster) wipe(id string) {
	if err := os.RemoveAll(c.nodes[id].data); err != nil {
		c.t.Fatal(err)
	}
}

func (c *procCluster) cleanup() {
	c.mu.Lock()
	names := make([]string, 0, len(c.procs))
	for name := range c.procs {
		names = append(names, name)
	}
	c.mu.Unlock()
	for _, name := range names {
		c.mu.Lock()
		p := c.procs[name]
		c.mu.Unlock()
		if c.t.Failed() {
			if b, err := os.ReadFile(p.log); err == nil {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				c.t.Logf("last log lines of %s:\n%s", name, strings.Join(lines[max(0, len(lines)-15):], "\n"))
			}
		}
		c.signal(name, syscall.SIGKILL)
	}
}

func (c *procCluster) admin() *client.Admin {
	a, err := client.NewAdmin(client.AdminConfig{NameServers: []string{c.nsAddr}, TLS: c.tls})
	if err != nil {
		c.t.Fatal(err)
	}
	return a
}

// status returns the group's status from the NameServer.
func (c *procCluster) status() (client.GroupStatus, error) {
	a := c.admin()
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	gs, err := a.ClusterStatus(ctx)
	if err != nil {
		return client.GroupStatus{}, err
	}
	if len(gs) != 1 {
		return client.GroupStatus{}, fmt.Errorf("%d groups registered", len(gs))
	}
	return gs[0], nil
}

// leaderID waits until the NameServer names a leader that is running.
func (c *procCluster) leaderID(timeout time.Duration) string {
	c.t.Helper()
	var id string
	Eventually(c.t, timeout, func() error {
		gs, err := c.status()
		if err != nil {
			return err
		}
		c.mu.Lock()
		_, running := c.procs[gs.Leader]
		c.mu.Unlock()
		if gs.Leader == "" || !running {
			return errors.New("no running leader registered")
		}
		id = gs.Leader
		return nil
	})
	return id
}

// waitCaughtUp waits until node id is registered and applied as far as
// the leader.
func (c *procCluster) waitCaughtUp(id string, timeout time.Duration) {
	c.t.Helper()
	Eventually(c.t, timeout, func() error {
		gs, err := c.status()
		if err != nil {
			return err
		}
		for _, n := range gs.Nodes {
			if n.NodeID == id {
				if n.Down {
					return fmt.Errorf("%s is down (last seen %s ago)", id, n.Age)
				}
				if gs.Leader == "" || n.Lag > 64 {
					return fmt.Errorf("%s lags %d entries behind leader %q", id, n.Lag, gs.Leader)
				}
				return nil
			}
		}
		return fmt.Errorf("%s not registered", id)
	})
}

func (c *procCluster) follower(leader string) string {
	for _, id := range c.ids {
		if id != leader {
			return id
		}
	}
	return ""
}
