package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// The storage fault tests run rmq built with -tags rmqfault: each broker
// reads its faults from its own control file (RMQ_FAULT_FILE, see
// internal/fault), which the test rewrites to arm a fault mid-run.

var faultBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestMain removes the fault binary built for this run.
func TestMain(m *testing.M) {
	code := m.Run()
	if faultBin.dir != "" {
		os.RemoveAll(faultBin.dir)
	}
	os.Exit(code)
}

// rmqFaultBinary builds cmd/rmq with the rmqfault tag once per test run.
func rmqFaultBinary(t testing.TB) string {
	t.Helper()
	faultBin.once.Do(func() {
		if faultBin.dir, faultBin.err = os.MkdirTemp("", "rmq-e2e-faultbin-"); faultBin.err != nil {
			return
		}
		faultBin.path = filepath.Join(faultBin.dir, "rmq-fault")
		out, err := exec.Command("go", "build", "-tags", "rmqfault", "-o", faultBin.path, "github.com/rmq-dev/rmq/cmd/rmq").CombinedOutput()
		if err != nil {
			faultBin.err = fmt.Errorf("go build -tags rmqfault: %v\n%s", err, out)
		}
	})
	if faultBin.err != nil {
		t.Fatal(faultBin.err)
	}
	return faultBin.path
}

// faultCluster is a procCluster of fault-build brokers, each with a
// control file.
type faultCluster struct {
	*procCluster
	ctl map[string]string // node ID -> control file
}

// startFaultCluster starts a NameServer and three fault-build brokers
// configured by brokerTOML (a --config file; flags give the rest).
func startFaultCluster(t *testing.T, brokerTOML string) *faultCluster {
	t.Helper()
	c := &procCluster{t: t, bin: rmqFaultBinary(t), procs: map[string]*proc{}, nodes: map[string]*procNode{}}
	root := t.TempDir() // registered before cleanup: removed after the processes are gone
	t.Cleanup(c.cleanup)
	fc := &faultCluster{procCluster: c, ctl: map[string]string{}}
	cfgPath := filepath.Join(root, "broker.toml")
	if err := os.WriteFile(cfgPath, []byte(brokerTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	c.extra = []string{"--config", cfgPath}
	c.nsAddr = freeAddr(t)
	c.spawn("namesrv", "--log-level", "info", "namesrv", "--listen", c.nsAddr)
	var peers []string
	for i := 0; i < 3; i++ {
		n := &procNode{id: fmt.Sprintf("n%d", i), data: filepath.Join(root, fmt.Sprintf("n%d", i)), client: freeAddr(t), raft: freeAddr(t)}
		c.nodes[n.id] = n
		c.ids = append(c.ids, n.id)
		fc.ctl[n.id] = filepath.Join(root, n.id+".faults")
		peers = append(peers, n.id+"="+n.raft)
	}
	c.peers = strings.Join(peers, ",")
	for _, id := range c.ids {
		fc.start(id)
	}
	c.leaderID(20 * time.Second)
	return fc
}

// start launches broker id with its control file in the environment.
func (fc *faultCluster) start(id string) {
	c := fc.procCluster
	n := c.nodes[id]
	args := []string{"--namesrv", c.nsAddr, "--log-level", "info", "broker", "--id", id, "--data", n.data,
		"--listen", n.client, "--raft", n.raft, "--peers", c.peers, "--bootstrap"}
	logPath := filepath.Join(c.t.TempDir(), id+".log")
	f, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, append(args, c.extra...)...)
	cmd.Env = append(os.Environ(), "RMQ_FAULT_FILE="+fc.ctl[id])
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("start %s: %v", id, err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }() // reaps the process
	c.mu.Lock()
	c.procs[id] = p
	c.mu.Unlock()
}

func (fc *faultCluster) proc(id string) *proc {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.procs[id]
}

// logText is what the running process id has logged so far.
func (fc *faultCluster) logText(id string) string {
	p := fc.proc(id)
	if p == nil {
		return ""
	}
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// setFaults replaces node id's control file (atomically). If the node is
// running, it waits until the node has loaded it.
func (fc *faultCluster) setFaults(id, text string) {
	fc.t.Helper()
	before := strings.Count(fc.logText(id), "rmqfault: loaded")
	tmp := fc.ctl[id] + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		fc.t.Fatal(err)
	}
	if err := os.Rename(tmp, fc.ctl[id]); err != nil {
		fc.t.Fatal(err)
	}
	if fc.proc(id) == nil {
		return
	}
	Eventually(fc.t, 20*time.Second, func() error {
		p := fc.proc(id)
		if p == nil {
			return nil
		}
		select {
		case <-p.done:
			return nil // died meanwhile (a fault at once): the caller sees it
		default:
		}
		if strings.Count(fc.logText(id), "rmqfault: loaded") <= before {
			return fmt.Errorf("%s has not loaded its new faults", id)
		}
		return nil
	})
}

// waitExit waits until process id ends by itself and returns its log and
// how it ended.
func (fc *faultCluster) waitExit(id string, timeout time.Duration) (log string, status syscall.WaitStatus) {
	fc.t.Helper()
	p := fc.proc(id)
	if p == nil {
		fc.t.Fatalf("%s is not running", id)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		fc.t.Fatalf("%s still running after %s; last log lines:\n%s", id, timeout, tail(fc.logText(id), 15))
	}
	log = fc.logText(id)
	fc.mu.Lock()
	delete(fc.procs, id)
	fc.mu.Unlock()
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return log, ws
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// lineWith returns the first line of s containing sub, or "".
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// statusOf asks node id for its own status.
func (fc *faultCluster) statusOf(id string) (wire.NodeStatus, error) {
	conns := map[string]*wire.Conn{}
	defer closeConns(conns)
	return nodeStatus(context.Background(), conns, id, fc.nodes[id].client)
}

// storedMsg is one message of a replica's queue.
type storedMsg struct {
	offset, index uint64
	id            string
}

// storedQueue is one replica's queue: its messages from the first
// retained offset and its end (the next offset to be written).
type storedQueue struct {
	msgs []storedMsg
	end  uint64
}

// readStored reads every queue of topic from one node's own replica.
func readStored(addr, topic string, queues uint32) ([]storedQueue, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := wire.Dial(ctx, addr, 0)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out := make([]storedQueue, queues)
	for q := uint32(0); q < queues; q++ {
		off, done := uint64(0), false
		for i := 0; i < 10000 && !done; i++ {
			var resp wire.PullResponse
			err := conn.Call(ctx, wire.CodePull, &wire.PullRequest{Topic: topic, QueueID: q, Offset: off, MaxMessages: 256}, &resp)
			var we *wire.Error
			if errors.As(err, &we) && we.Code == wire.CodeOffsetMoved && we.MinOffset > off {
				// Retention moved the queue's start: read from there again.
				off, out[q].msgs = we.MinOffset, out[q].msgs[:0]
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("queue %d at %d: %w", q, off, err)
			}
			for _, m := range resp.Messages {
				out[q].msgs = append(out[q].msgs, storedMsg{offset: m.QueueOffset, index: m.RaftIndex, id: string(m.ID)})
			}
			out[q].end = resp.MaxOffset
			done = resp.NextOffset >= resp.MaxOffset
			off = resp.NextOffset
		}
		if !done {
			return nil, fmt.Errorf("queue %d: not read to its end", q)
		}
	}
	return out, nil
}

// checkReplicas waits until every node's replica of every queue of topic
// holds the same messages (offset, raft index, message ID) in the range
// all of them hold: from the latest first offset among them (retention
// may have dropped more on one node than on another between the reads)
// to the earliest end. Once settled (no more sends), every queue must
// also end at the same offset on all nodes. It returns how many messages
// were compared.
func (fc *faultCluster) checkReplicas(topic string, queues uint32, settled bool, timeout time.Duration) int {
	fc.t.Helper()
	compared := 0
	Eventually(fc.t, timeout, func() error {
		compared = 0
		reps := map[string][]storedQueue{}
		for _, id := range fc.ids {
			r, err := readStored(fc.nodes[id].client, topic, queues)
			if err != nil {
				return fmt.Errorf("read %s: %w", id, err)
			}
			reps[id] = r
		}
		for q := uint32(0); q < queues; q++ {
			ref := fc.ids[0]
			from, to := uint64(0), reps[ref][q].end
			for _, id := range fc.ids {
				sq := reps[id][q]
				if settled && sq.end != reps[ref][q].end {
					return fmt.Errorf("queue %d ends at %d on %s, at %d on %s", q, sq.end, id, reps[ref][q].end, ref)
				}
				for j, m := range sq.msgs {
					if m.offset != sq.end-uint64(len(sq.msgs)-j) {
						return fmt.Errorf("queue %d on %s: message %d of %d at offset %d, queue ends at %d", q, id, j, len(sq.msgs), m.offset, sq.end)
					}
				}
				from, to = max(from, sq.end-uint64(len(sq.msgs))), min(to, sq.end)
			}
			if from >= to {
				continue
			}
			var want []storedMsg
			for i, id := range fc.ids {
				sq := reps[id][q]
				m := sq.msgs[uint64(len(sq.msgs))-(sq.end-from) : uint64(len(sq.msgs))-(sq.end-to)]
				if i == 0 {
					want = m
				} else if !slices.Equal(want, m) {
					return fmt.Errorf("queue %d differs between %s and %s in [%d, %d)", q, ref, id, from, to)
				}
			}
			compared += len(want)
		}
		return nil
	})
	return compared
}
