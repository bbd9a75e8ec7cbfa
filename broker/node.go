package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/raftlog"
)

// Node is one broker of a group: a Raft member whose log is the CommitLog.
type Node struct {
	cfg Config
	log hclog.Logger

	store  *raftlog.Store
	snaps  *raftlog.SnapshotStore
	stable *raftboltdb.BoltStore
	fsm    *fsm.FSM
	trans  *raft.NetworkTransport
	guard  *voteGuard // non-nil while a node that started without state must not vote; rejoin.go
	raft   *raft.Raft

	// serving is true while this node is leader and has applied everything
	// committed before its term (Barrier). leaderMu orders it against
	// leadership loss; see leader.go.
	leaderMu sync.Mutex
	serving  atomic.Bool
	popRotor atomic.Uint64 // rotates the first queue of a pop receive (pop.go)

	sends     chan *sendReq       // batcher input, see batcher.go
	inflight  chan *inflightBatch // proposed entries awaiting commit
	notify    *notifier
	producers *rmqProducers    // rmq producers taking check-backs and replies (producers.go)
	groups    *groupManager    // consumer members (leader-local; locks are in fsm)
	remoting  *remotingClients // RocketMQ clients' connections and subscriptions (remoting_clients.go)

	replyTo *remotingRequesters // RocketMQ requesters' connections, for pushed replies (remoting_reply.go)
	acl     *aclGuard           // access control; nil when off (acl.go)

	metrics    *nodeMetrics                // nil without a metrics listener (metrics.go)
	disk       diskCache                   // this node's disk use, see retention.go
	diskGuard  diskGuard                   // the group's disk verdict: refuse sends? (diskguard.go)
	lastPurge  atomic.Pointer[PurgeRecord] // the last segment purge on this node
	tlsRefused atomic.Int64                // failed TLS handshakes on this node's listeners (raft_tls.go)
	preferred  preferredState              // the last hand-over to PreferredLeader (preferred.go)
	// storeFailed carries the CommitLog's fail-stop error to Run, once
	// (storeDown); buffered 1 (retention.go, checkStore).
	storeFailed chan error
	storeDown   atomic.Bool

	lns         []listener    // bound by open from listeners() (run.go)
	clientLn    net.Listener  // the rmq protocol's, nil when the node serves no clients
	registerNow chan struct{} // buffered 1: register with NameServers now
	// raftConnEnded is signalled when an inbound Raft connection ended
	// from the far side; buffered 1 (crashwatch.go).
	raftConnEnded chan struct{}
	crashChecks   atomic.Int64 // checkLeaderCrash calls that finished
	crashStands   atomic.Int64 // elections this node started for a crashed leader

	// runMu orders Run's start of goroutines against shutdown: once
	// stopped is set no goroutine is added to wg.
	runMu   sync.Mutex
	started bool // Run was called
	stopped bool // shutdown began

	stopCh    chan struct{}
	raftDown  chan struct{} // closed once raft.Shutdown has returned; see await
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New opens the node's storage, binds its listeners and starts Raft (the
// node votes and replicates at once). Run starts the rest: the node's
// loops and its client listeners (run.go). The node runs until Close,
// Shutdown or Abort, whether or not Run was called.
func New(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:       cfg,
		log:       cfg.Logger.With("group", cfg.Group, "node", cfg.NodeID),
		sends:     make(chan *sendReq, sendQueueLen),
		inflight:  make(chan *inflightBatch, maxInflightBatches),
		notify:    newNotifier(),
		producers: newRMQProducers(),
		stopCh:    make(chan struct{}),
		raftDown:  make(chan struct{}),

		groups:      newGroupManager(cfg.MemberTimeout, cfg.Now),
		registerNow: make(chan struct{}, 1),
		storeFailed: make(chan error, 1),

		raftConnEnded: make(chan struct{}, 1),
	}
	if cfg.metricsOn() {
		n.metrics = newNodeMetrics(n)
	}
	n.remoting = newRemotingClients(n)
	n.replyTo = newRemotingRequesters()
	var err error
	if n.acl, err = newACLGuard(cfg); err != nil {
		return nil, err
	}
	if err := n.open(); err != nil {
		n.closeStores()
		return nil, err
	}
	return n, nil
}

func (n *Node) open() error {
	dirs := map[string]string{
		"log":  filepath.Join(n.cfg.DataDir, "commitlog"),
		"snap": filepath.Join(n.cfg.DataDir, "snapshots"),
		"fsm":  filepath.Join(n.cfg.DataDir, "fsm"),
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("broker: create data dir: %w", err)
		}
	}
	var err error
	lcfg := raftlog.DefaultConfig()
	lcfg.Dir = dirs["log"]
	lcfg.SegmentSize = n.cfg.SegmentSize
	lcfg.FlushMode = n.cfg.FlushMode
	lcfg.FlushInterval = n.cfg.FlushInterval
	lcfg.CacheBytes = n.cfg.LogCacheBytes
	lcfg.Logger = n.log.Named("raftlog")
	if n.metrics != nil {
		lcfg.OnSync = n.metrics.observeSync
	}
	lcfg.FS = n.cfg.logFS // nil: the OS
	if n.store, err = raftlog.Open(lcfg); err != nil {
		return fmt.Errorf("broker: open commitlog: %w", err)
	}
	if n.snaps, err = raftlog.NewSnapshotStore(dirs["snap"], 2, n.store, n.log.Named("snapshots")); err != nil {
		return fmt.Errorf("broker: open snapshots: %w", err)
	}
	if n.stable, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(n.cfg.DataDir, "raft-stable.db")}); err != nil {
		return fmt.Errorf("broker: open stable store: %w", err)
	}
	fcfg := fsm.DefaultConfig()
	fcfg.Dir = dirs["fsm"]
	fcfg.Log = n.store
	fcfg.Logger = n.log.Named("fsm")
	fcfg.OnAppend = n.notify.wake
	if n.fsm, err = fsm.New(fcfg); err != nil {
		return fmt.Errorf("broker: open fsm: %w", err)
	}
	if n.trans, err = n.newTransport(); err != nil {
		return err
	}
	if err := n.bindListeners(); err != nil { // run.go
		return err
	}
	// Raft always starts without bootstrapping; a node without state
	// learns its peers' terms first (runRejoin) and bootstraps only a
	// brand-new group. See "Bootstrap and rejoin" in doc.go.
	has, err := raft.HasExistingState(n.store, n.stable, n.snaps)
	if err != nil {
		return fmt.Errorf("broker: check raft state: %w", err)
	}
	var trans raft.Transport = n.trans
	if n.guard, err = openVoteGuard(n.cfg.DataDir, has, n.trans, raft.ServerID(n.cfg.NodeID), n.log.Named("vote-guard")); err != nil {
		return err
	}
	if n.guard != nil {
		trans = n.guard
	}
	if n.raft, err = raft.NewRaft(n.raftConfig(), restoreAdapter{n.fsm}, n.store, n.stable, n.snaps, trans); err != nil {
		return fmt.Errorf("broker: start raft: %w", err)
	}
	n.metrics.watchLeader(n.raft)
	n.watchIncidents() // incident.go
	if n.guard != nil {
		n.guard.start(n.raft.CurrentTerm)
	}
	if !n.cfg.DisableCrashDetection {
		n.wg.Add(1)
		go n.runCrashWatch() // stopped by stopCh in shutdown
	}
	return nil
}

func (n *Node) raftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(n.cfg.NodeID)
	c.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	c.ElectionTimeout = n.cfg.ElectionTimeout
	c.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	c.CommitTimeout = n.cfg.CommitTimeout
	c.MaxAppendEntries = n.cfg.MaxAppendEntries
	c.SnapshotInterval = n.cfg.SnapshotInterval
	c.SnapshotThreshold = n.cfg.SnapshotThreshold
	// The log store ignores raft's prefix compaction (retention deletes
	// instead); TrailingLogs >= 1 keeps compaction from ever naming the
	// whole log.
	c.TrailingLogs = 1
	c.Logger = n.log.Named("raft")
	return c
}

func (n *Node) newTransport() (*raft.NetworkTransport, error) {
	ln := n.cfg.RaftListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", n.cfg.RaftBind); err != nil {
			return nil, fmt.Errorf("broker: raft listen %s: %w", n.cfg.RaftBind, err)
		}
	}
	adv := ln.Addr()
	if n.cfg.RaftAdvertise != "" {
		a, err := net.ResolveTCPAddr("tcp", n.cfg.RaftAdvertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("broker: raft advertise address: %w", err)
		}
		adv = a
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.streamLayer(n.watchRaftConns(ln), adv), // raft_tls.go: TCP, or TLS with RaftTLS; crashwatch.go
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  n.log.Named("raft-net"),
		// 1: no pipelined replication. hashicorp/raft v1.7's pipeline can
		// deadlock: when a follower's answer ends the pipeline's decoder
		// (a rejection, or a newer term when this leader is deposed), the
		// send loop may still send once more and block forever on the
		// hand-off to the decoder, whose own hand-off has no reader left.
		// That follower then gets heartbeats but never another entry, and
		// Shutdown waits for the stuck goroutine (seen as a Close that
		// never returned in a loaded test run). Synchronous replication
		// sends each follower everything pending in one request per round
		// trip, which the broker's write coalescing makes large anyway.
		MaxRPCsInFlight: 1,
	}), nil
}

// Close shuts the node down gracefully: a leader first hands leadership to
// a caught-up follower so writes pause for milliseconds instead of an
// election timeout. Close is idempotent.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		if n.raft.State() == raft.Leader {
			if err := n.transfer(ctx, ""); err != nil {
				n.log.Warn("leadership transfer before shutdown failed", "error", err)
			}
		}
		n.closeErr = n.shutdown(true)
	})
	return n.closeErr
}

// Shutdown stops the node cleanly without handing leadership over: for
// stopping a whole group, where a transfer would only bounce leadership
// between nodes that are all going away. Idempotent with Close and Abort.
func (n *Node) Shutdown() error {
	n.closeOnce.Do(func() { n.closeErr = n.shutdown(true) })
	return n.closeErr
}

// Abort stops the node abruptly, as a crash would: no leadership transfer,
// no final consume-queue sync. Peers see its transport vanish at once.
// For failure tests and drills.
func (n *Node) Abort() {
	n.closeOnce.Do(func() {
		n.trans.Close()
		// A crashed process's connections end with it; the pooled
		// outbound ones would otherwise stay open until Raft returns them.
		n.trans.CloseStreams()
		n.closeErr = n.shutdown(false)
	})
}

func (n *Node) shutdown(clean bool) error {
	n.runMu.Lock()
	n.stopped = true
	n.runMu.Unlock()
	n.serving.Store(false)
	if clean {
		// A snapshot now means the next start restores it and replays
		// nothing (measured: 1 GiB of log, serving in 2.3s without it).
		if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			n.log.Warn("snapshot before shutdown failed", "error", err)
		}
	}
	close(n.stopCh)
	err := n.raft.Shutdown().Error()
	close(n.raftDown) // unblocks waits on futures raft left unanswered
	n.wg.Wait()
	n.notify.close()
	if clean {
		if serr := n.fsm.Sync(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	return errors.Join(err, n.closeStores())
}

func (n *Node) closeStores() error {
	var errs []error
	for _, l := range n.lns {
		l.ln.Close() // normally closed by its server already
	}
	if n.guard != nil {
		errs = append(errs, n.guard.Close())
	}
	if n.trans != nil {
		errs = append(errs, n.trans.Close())
	}
	if n.fsm != nil {
		errs = append(errs, n.fsm.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.stable != nil {
		errs = append(errs, n.stable.Close())
	}
	return errors.Join(errs...)
}

// restoreAdapter strips the log-shipping frame from snapshots before the
// FSM sees them: raftlog's SnapshotStore prefixes the FSM state and appends
// retained log entries so new followers receive history.
type restoreAdapter struct{ *fsm.FSM }

func (a restoreAdapter) Restore(rc io.ReadCloser) error {
	state, err := raftlog.SnapshotState(rc)
	if err != nil {
		return err
	}
	return a.FSM.Restore(state)
}

// streamLayer is raft's TCP stream layer over a listener we may have
// created ourselves (so tests can pre-bind 127.0.0.1:0).
type streamLayer struct {
	net.Listener
	adv net.Addr
}

func (s *streamLayer) Addr() net.Addr { return s.adv }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}
