package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/raftlog"
)

// Peer is one voter of the group's initial Raft configuration.
type Peer struct {
	ID   string // Raft server ID, e.g. "n0"
	Addr string // Raft address host:port
}

// RetentionConfig says when the oldest log segments are deleted. Deletion is
// proposed by the leader as a Raft command, so every replica drops the same
// prefix and consumer offsets stay valid on all of them. The rules, applied
// to sealed segments oldest first (the active segment is never deleted):
//
//  1. age: a segment whose newest entry is older than MaxAge is expired;
//  2. budget: while rmq's own files on some node exceed MaxDiskBytes, the
//     oldest segments go, expired or not, as many as the excess needs;
//  3. force clean: while the file system of some node is fuller than
//     ForceDiskRatio, the oldest segments go, expired or not (last resort).
//
// Rules 2 and 3 delete messages before they expire, so they are logged at
// warn and shown in node status. Zero fields take the defaults; a negative
// value turns a rule (or, for CheckInterval, retention) off.
type RetentionConfig struct {
	// MaxAge expires sealed segments whose newest entry is older than this.
	// Default 72h (RocketMQ fileReservedTime). Negative: nothing expires.
	MaxAge time.Duration
	// MaxDiskBytes is a budget for everything under DataDir (CommitLog,
	// consume queues, snapshots, Raft state), in bytes actually allocated,
	// measured on every node. Default 0 = no budget (rmq cannot guess its
	// share of a disk); set it on a shared disk. Negative is the same as 0.
	MaxDiskBytes int64
	// ForceDiskRatio is the file-system fullness (0..1], counting other
	// programs' files, on any node above which unexpired segments are
	// deleted as a last resort. Default 0.85 (RocketMQ's force-clean
	// ratio). Negative turns it off: a full disk then stops the broker.
	ForceDiskRatio float64
	// CheckInterval is how often the leader evaluates retention. Default
	// 10s. Negative turns retention off entirely.
	CheckInterval time.Duration
}

// Config configures one broker node. Zero fields take the defaults of
// DefaultConfig when passed to New.
type Config struct {
	// NodeID is this node's Raft server ID. Required.
	NodeID string
	// Cluster names the set of groups this one belongs to. Default "rmq".
	Cluster string
	// Group is the broker group (RocketMQ brokerName). Default "broker-a".
	Group string
	// DataDir holds the CommitLog, consume queues, snapshots and Raft
	// term/vote. Required.
	DataDir string

	// RaftBind is the address the Raft transport listens on. Required
	// unless RaftListener is set.
	RaftBind string
	// RaftAdvertise is the address peers dial; default: the bound address.
	RaftAdvertise string
	// RaftListener, if set, is used instead of binding RaftBind (tests
	// pre-bind 127.0.0.1:0 so peers know every address up front).
	RaftListener net.Listener
	// Peers is the group's voter set, this node included. A node that
	// starts without Raft state asks every peer for its term before it
	// votes (see "Bootstrap and rejoin" in doc.go), and Bootstrap uses it
	// as the initial configuration.
	Peers []Peer
	// Bootstrap allows this node to create a brand-new group: it writes
	// the initial configuration only if it has no Raft state and every
	// peer answered that it has none either (term 0). Safe to set on every
	// start of every node with identical Peers; a node whose data was
	// wiped rejoins the existing group instead.
	Bootstrap bool
	// Join says this node joins an existing group (rmq node add): it never
	// bootstraps, and Peers, if given, are the group's current members
	// (this node need not be among them), whose terms the vote guard reads
	// before this node may vote. It replicates once the leader adds it.
	Join bool

	// PreferredLeader is the node ID leadership returns to when that node
	// is a healthy, caught-up voter (DLedger's preferredLeaderId); set the
	// same on every node of the group. Empty (the default): none.
	// See preferred.go.
	PreferredLeader string
	// PreferredMaxLag is how many log entries the preferred node's applied
	// index may be behind the leader's last index for a hand-over.
	// Default 64.
	PreferredMaxLag uint64
	// PreferredCheckInterval is how often the leader checks the preferred
	// node; the back-off after a failed hand-over starts there. Default 1s.
	PreferredCheckInterval time.Duration

	// ClientListen is the address clients connect to. Empty (and no
	// ClientListener) means no client server: the node is used in-process.
	ClientListen string
	// ClientListener, if set, is used instead of binding ClientListen.
	ClientListener net.Listener
	// ClientAdvertise is the client address published to the NameServer
	// and in not-leader answers; default: the bound address.
	ClientAdvertise string
	// MetricsListen is the address of the HTTP listener serving Prometheus
	// metrics on /metrics (metrics.go). Empty (and no MetricsListener)
	// means off: the node then counts nothing.
	MetricsListen string
	// MetricsListener, if set, is used instead of binding MetricsListen.
	MetricsListener net.Listener
	// NameServers are the NameServer addresses to register with.
	NameServers []string
	// RegisterInterval is the NameServer heartbeat period; a node also
	// registers at once whenever its role changes. Default 1s.
	RegisterInterval time.Duration
	// DisableAutoCreate stops sends from creating missing topics. By
	// default a send that asks for it creates the topic (RocketMQ
	// autoCreateTopicEnable=true).
	DisableAutoCreate bool
	// MemberTimeout expires a consumer that stopped heartbeating; its
	// queue locks are released once it can no longer trust them
	// (wire.LockTrust after their last renewal). Default 10s.
	MemberTimeout time.Duration
	// LockLease is how long a queue lock lasts after its last grant or
	// renewal, in the granting leader's clock. Locks are replicated, so a
	// new leader honours it. It must exceed wire.LockTrust (30s, what
	// clients trust) by more than the clock skew between broker nodes.
	// Default 60s (RocketMQ lockMaxLiveTime).
	LockLease time.Duration
	// LongPollMax caps how long a pull may wait for messages. Default 20s.
	LongPollMax time.Duration
	// MaxFrame is the largest accepted request frame. Default 16 MiB.
	MaxFrame int

	// Delayed messages (delay.go). DelayLevels are the delays of levels
	// 1..n (RocketMQ messageDelayLevel; default its 18 levels, 1s to 2h;
	// a level above n means n). MaxDelay bounds a timer message's delay (not
	// the levels; RocketMQ timerMaxDelaySec; default 3 days). TimerPoll is how often
	// the leader's scheduler looks for due timers (default 100ms: a
	// message is delivered within about that after its due time).
	DelayLevels []time.Duration
	MaxDelay    time.Duration
	TimerPoll   time.Duration

	// Transactions (tx.go). A half message not ended within
	// TransactionTimeout (default 6s, RocketMQ transactionTimeOut) is
	// checked back with a live producer of its group, then again every
	// TransactionCheckInterval (default 60s) up to TransactionCheckMax
	// checks (default 15), after which the broker rolls it back.
	TransactionTimeout       time.Duration
	TransactionCheckInterval time.Duration
	TransactionCheckMax      int
	// Producer dedup (dedup.go): a message whose ID was stored on the
	// same topic within DedupWindow (store time) is not stored again and
	// is answered like the original. The group keeps the window of at
	// most DedupMaxEntries IDs (about 76 bytes each, on every node, plus
	// ~27 in each snapshot), oldest dropped first. Default 2m and 1 000 000
	// (NATS JetStream's duplicate window is 2m). Negative DedupWindow
	// turns dedup off. Both are the group's, not the node's: the leader
	// proposes its values to the group when it starts leading.
	DedupWindow     time.Duration
	DedupMaxEntries int
	// DedupAll dedups every message with an ID, RocketMQ producers'
	// included; otherwise (the default) only messages whose producer asked
	// for it (rmq's ProducerConfig.Idempotent, every transactional half),
	// because the window costs about 14 % of produce throughput when it
	// holds every message (measured, bench-compare, 4 async clients).
	DedupAll bool

	// FlushMode is the CommitLog durability mode; see raftlog. Default sync.
	FlushMode raftlog.FlushMode
	// FlushInterval is the fsync period in async mode. Default 100ms.
	FlushInterval time.Duration
	// SegmentSize is the CommitLog segment size in bytes. Default 1 GiB.
	SegmentSize int64
	// LogCacheBytes bounds the CommitLog's cache of the newest entries,
	// which Raft reads back to replicate (leader) and apply (followers);
	// a miss is a pread from the page cache. Default 32 MiB, two full
	// AppendEntries RPCs at the defaults (MaxAppendEntries x MaxBatchBytes);
	// negative turns the cache off. See "Memory" in doc.go.
	LogCacheBytes int64

	// HeartbeatTimeout and ElectionTimeout bound leader-failure detection.
	// Default 400ms each: a new leader serves about 0.6-0.9s after a crash.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout: a leader that has not heard from a quorum for
	// this long steps down. Default 200ms; must be <= HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// DisableCrashDetection turns off the followers' fast reaction to a
	// leader whose process died (its Raft connections end and its Raft
	// port refuses or resets new ones): with it off, only HeartbeatTimeout
	// finds a crashed leader. See crashwatch.go.
	DisableCrashDetection bool
	// OnIncident, if set, is called when this node's Raft starts an
	// election (it became a candidate) or the node stops being leader,
	// with a short file-name-safe reason such as "n1-election-term-7" (the
	// node's term when it happened: a candidate's before it increments). It
	// runs on Raft's goroutine and must not block: rmq broker --trace-dir
	// hands it to a flight recorder (internal/flightrec) that writes the
	// seconds before it.
	OnIncident func(reason string)
	// CommitTimeout bounds how stale an idle follower's applied index is.
	// Default 10ms (follower reads).
	CommitTimeout time.Duration
	// MaxAppendEntries is the number of entries per AppendEntries RPC.
	// Default 64.
	MaxAppendEntries int
	// SnapshotInterval and SnapshotThreshold control how often the small
	// FSM state is snapshotted. Defaults 10s and 256 entries (entries are
	// batches of up to MaxBatchBytes). Snapshots are cheap; they bound the
	// replay after a crash and let retention purge. A clean stop always
	// snapshots, so a planned restart replays nothing.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64

	// MaxMessageSize is the largest accepted message body. Default 4 MiB.
	MaxMessageSize int
	// MaxBatchBytes caps one Raft entry built from concurrent sends.
	// Default 256 KiB (a single larger request gets an entry of its own):
	// a follower's Raft transport decodes an entry of up to 256 KiB with
	// one allocation and anything larger in 256 KiB steps, each copying
	// what came before (a 512 KiB entry cost 768 KiB of allocation and a
	// 256 KiB copy on every follower).
	MaxBatchBytes int
	// ApplyTimeout bounds how long a write may wait to be enqueued into
	// Raft when the caller's context has no deadline. Default 5s.
	ApplyTimeout time.Duration
	// MaintenanceInterval is how often every node syncs consume queues
	// and purges log segments retention released. Default 1s.
	MaintenanceInterval time.Duration

	Retention RetentionConfig
	// DiskLimit refuses sends while some node's disk is too full
	// (diskguard.go).
	DiskLimit DiskLimitConfig

	// ACLFile turns access control on (acl.go): the rules file, in
	// RocketMQ's plain_acl.yml shape (YAML, or TOML for a .toml name),
	// reloaded on change. Empty (the default): off, every request served.
	ACLFile string
	// ACL tunes access control when ACLFile is set.
	ACL ACLOptions
	// TLS (raft_tls.go); each nil means plaintext. One *tls.Config can
	// serve both ends, as internal/tlsconf builds them: its Certificates
	// identify this node, RootCAs verify the servers it dials, ClientCAs
	// and ClientAuth the peers it accepts.
	//
	// ClientTLS serves the client port (rmq and RocketMQ remoting, told
	// apart after the handshake). HTTPTLS is for HTTP listeners (metrics,
	// admin API). RaftTLS is the Raft transport at both ends: it must
	// require and verify the peer's certificate
	// (tls.RequireAndVerifyClientCert) against the group's CA, which it
	// holds as ClientCAs and RootCAs. NameServerTLS dials the NameServers.
	ClientTLS     *tls.Config
	HTTPTLS       *tls.Config
	RaftTLS       *tls.Config
	NameServerTLS *tls.Config

	// Logger is the root logger; default: a null logger.
	Logger hclog.Logger

	// Now is the broker's clock; default time.Now. Every time the broker
	// stamps or judges goes through it: the leader's store time in send
	// entries, topic creation times, lock grant stamps and lease checks,
	// the lock janitor's trust cutoff, consumer member expiry, retention's
	// segment age, and purge records in Status. Tests pass a settable
	// clock to drive schedulers without waiting. Timers and tickers (how
	// often a loop runs), Raft's timeouts, context deadlines and log
	// throttling stay on the real clock.
	Now func() time.Time

	// diskStat measures a data directory; tests replace it. fsStat
	// measures only its file system (default statFS, or diskStat when a
	// test set only that).
	diskStat func(dir string) (DiskUsage, error)
	fsStat   func(dir string) (DiskUsage, error)
	// logFS, if set, is the CommitLog's file system (tests inject faults).
	logFS raftlog.VFS
}

// DefaultConfig returns the defaults for every optional field.
func DefaultConfig() Config {
	return Config{
		Cluster:                  "rmq",
		Group:                    "broker-a",
		RegisterInterval:         time.Second,
		MemberTimeout:            10 * time.Second,
		LockLease:                60 * time.Second,
		LongPollMax:              20 * time.Second,
		MaxFrame:                 16 << 20,
		DelayLevels:              slices.Clone(RocketMQDelayLevels),
		MaxDelay:                 72 * time.Hour,
		TimerPoll:                100 * time.Millisecond,
		TransactionTimeout:       6 * time.Second,
		TransactionCheckInterval: 60 * time.Second,
		TransactionCheckMax:      15,
		DedupWindow:              fsm.DefaultDedupWindow * time.Millisecond,
		DedupMaxEntries:          fsm.DefaultDedupMax,
		FlushMode:                raftlog.FlushSync,
		FlushInterval:            100 * time.Millisecond,
		SegmentSize:              1 << 30,
		LogCacheBytes:            raftlog.DefaultCacheBytes,
		HeartbeatTimeout:         400 * time.Millisecond,
		ElectionTimeout:          400 * time.Millisecond,
		LeaderLeaseTimeout:       200 * time.Millisecond,
		CommitTimeout:            10 * time.Millisecond,
		MaxAppendEntries:         64,
		SnapshotInterval:         10 * time.Second,
		SnapshotThreshold:        256,
		MaxMessageSize:           4 << 20,
		MaxBatchBytes:            256 << 10,
		ApplyTimeout:             5 * time.Second,
		MaintenanceInterval:      time.Second,
		PreferredMaxLag:          64,
		PreferredCheckInterval:   time.Second,
		Retention: RetentionConfig{
			MaxAge:         72 * time.Hour,
			ForceDiskRatio: 0.85,
			CheckInterval:  10 * time.Second,
		},
		DiskLimit: DefaultDiskLimit(),
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDefault(&c.Cluster, d.Cluster)
	setDefault(&c.Group, d.Group)
	setDefault(&c.RegisterInterval, d.RegisterInterval)
	setDefault(&c.MemberTimeout, d.MemberTimeout)
	setDefault(&c.LockLease, d.LockLease)
	setDefault(&c.LongPollMax, d.LongPollMax)
	setDefault(&c.MaxFrame, d.MaxFrame)
	setDefault(&c.MaxDelay, d.MaxDelay)
	setDefault(&c.TimerPoll, d.TimerPoll)
	setDefault(&c.TransactionTimeout, d.TransactionTimeout)
	setDefault(&c.TransactionCheckInterval, d.TransactionCheckInterval)
	if c.TransactionCheckMax == 0 {
		c.TransactionCheckMax = d.TransactionCheckMax
	}
	setDefault(&c.DedupWindow, d.DedupWindow)
	setDefault(&c.DedupMaxEntries, d.DedupMaxEntries)
	if len(c.DelayLevels) == 0 {
		c.DelayLevels = d.DelayLevels
	}
	setDefault(&c.FlushInterval, d.FlushInterval)
	setDefault(&c.SegmentSize, d.SegmentSize)
	setDefault(&c.LogCacheBytes, d.LogCacheBytes)
	setDefault(&c.HeartbeatTimeout, d.HeartbeatTimeout)
	setDefault(&c.ElectionTimeout, d.ElectionTimeout)
	setDefault(&c.LeaderLeaseTimeout, d.LeaderLeaseTimeout)
	setDefault(&c.CommitTimeout, d.CommitTimeout)
	setDefault(&c.MaxAppendEntries, d.MaxAppendEntries)
	setDefault(&c.SnapshotInterval, d.SnapshotInterval)
	setDefault(&c.SnapshotThreshold, d.SnapshotThreshold)
	setDefault(&c.MaxMessageSize, d.MaxMessageSize)
	setDefault(&c.MaxBatchBytes, d.MaxBatchBytes)
	setDefault(&c.ApplyTimeout, d.ApplyTimeout)
	setDefault(&c.MaintenanceInterval, d.MaintenanceInterval)
	setDefault(&c.PreferredMaxLag, d.PreferredMaxLag)
	setDefault(&c.PreferredCheckInterval, d.PreferredCheckInterval)
	setDefault(&c.Retention.MaxAge, d.Retention.MaxAge)
	setDefault(&c.Retention.ForceDiskRatio, d.Retention.ForceDiskRatio)
	setDefault(&c.Retention.CheckInterval, d.Retention.CheckInterval)
	c.DiskLimit = c.DiskLimit.withDefaults()
	switch {
	case c.diskStat == nil:
		c.diskStat, c.fsStat = statDisk, statFS
	case c.fsStat == nil:
		c.fsStat = c.diskStat
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports every problem with c, not only the first.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeID == "" {
		bad("NodeID is required")
	}
	if c.DataDir == "" {
		bad("DataDir is required")
	}
	if c.RaftBind == "" && c.RaftListener == nil {
		bad("RaftBind (or RaftListener) is required")
	}
	if c.Bootstrap && len(c.Peers) == 0 {
		bad("Bootstrap needs Peers")
	}
	if c.Bootstrap && c.Join {
		bad("Join and Bootstrap exclude each other: a joining node never creates a group")
	}
	if c.PreferredCheckInterval < 0 {
		bad("PreferredCheckInterval %s must be positive", c.PreferredCheckInterval)
	}
	if len(c.Peers) > 0 {
		seen := map[string]bool{}
		self := false
		for _, p := range c.Peers {
			if p.ID == "" || p.Addr == "" {
				bad("peer %q has an empty ID or address", p.ID+"@"+p.Addr)
			}
			if seen[p.ID] {
				bad("peer ID %q is listed twice", p.ID)
			}
			seen[p.ID] = true
			self = self || p.ID == c.NodeID
		}
		if !self && !c.Join {
			bad("Peers does not include this node (%q)", c.NodeID)
		}
	}
	if len(c.NameServers) > 0 && c.ClientListen == "" && c.ClientListener == nil {
		bad("NameServers needs ClientListen: clients must be able to reach the node")
	}
	if c.MaxFrame < c.MaxMessageSize+(64<<10) {
		bad("MaxFrame (%d) must exceed MaxMessageSize (%d) by at least 64KiB", c.MaxFrame, c.MaxMessageSize)
	}
	if c.FlushMode != raftlog.FlushSync && c.FlushMode != raftlog.FlushAsync {
		bad("FlushMode %d is not sync or async", c.FlushMode)
	}
	if c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond {
		bad("HeartbeatTimeout and ElectionTimeout must be at least 5ms")
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("LeaderLeaseTimeout (%s) must not exceed HeartbeatTimeout (%s)", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		bad("ElectionTimeout (%s) must be at least HeartbeatTimeout (%s)", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.MemberTimeout <= 0 {
		bad("MemberTimeout %s must be positive", c.MemberTimeout)
	}
	if c.LockLease <= clientLockTrust {
		bad("LockLease %s must exceed the %s clients trust a lock", c.LockLease, clientLockTrust)
	}
	if c.MaxAppendEntries <= 0 || c.MaxAppendEntries > 1024 {
		bad("MaxAppendEntries %d must be in 1..1024", c.MaxAppendEntries)
	}
	if c.MaxMessageSize <= 0 || c.MaxMessageSize > fsm.MaxBodyLen {
		bad("MaxMessageSize %d must be in 1..%d", c.MaxMessageSize, fsm.MaxBodyLen)
	}
	for i, l := range c.DelayLevels {
		if l <= 0 {
			bad("DelayLevels[%d] = %s must be positive", i, l)
		}
	}
	if c.DedupWindow > fsm.MaxDedupWindow*time.Millisecond || c.DedupWindow > 0 && c.DedupWindow < time.Millisecond {
		bad("DedupWindow %s must be in 1ms..%s, or negative for off", c.DedupWindow, fsm.MaxDedupWindow*time.Millisecond)
	}
	if c.DedupMaxEntries < 1 || c.DedupMaxEntries > fsm.MaxDedupEntries {
		bad("DedupMaxEntries %d must be in 1..%d", c.DedupMaxEntries, fsm.MaxDedupEntries)
	}
	if c.MaxBatchBytes < 4<<10 {
		bad("MaxBatchBytes %d must be at least 4KiB", c.MaxBatchBytes)
	}
	if c.TransactionTimeout < 0 || c.TransactionCheckInterval < 0 {
		bad("TransactionTimeout %s and TransactionCheckInterval %s must be positive", c.TransactionTimeout, c.TransactionCheckInterval)
	}
	if c.TransactionCheckMax < 1 || c.TransactionCheckMax > 1000 {
		bad("TransactionCheckMax %d must be in 1..1000", c.TransactionCheckMax)
	}
	if r := c.Retention.ForceDiskRatio; r > 1 || math.IsNaN(r) {
		bad("Retention.ForceDiskRatio %v must be in (0, 1], or negative for off", r)
	}
	errs = append(errs, c.validateTLS()...) // raft_tls.go
	errs = append(errs, c.DiskLimit.validate(c.Retention.ForceDiskRatio)...)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("broker: invalid config: %w", errors.Join(errs...))
}
