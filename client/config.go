package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rmq-dev/rmq/internal/sql92"

	"crypto/rand"
	"encoding/hex"

	"github.com/hashicorp/go-hclog"
)

// ProducerConfig configures a Producer. Zero values take the defaults
// noted on each field.
type ProducerConfig struct {
	// NameServers are the NameServer addresses (host:port). Required.
	NameServers []string
	// Cluster, if set, limits routes to the broker groups of that cluster
	// (the ClusterName their nodes registered with, RocketMQ's
	// brokerClusterName): topics are sent to or consumed from only those
	// groups, even where other clusters share the NameServers. Empty:
	// every cluster.
	Cluster string
	// Credentials sign every request for brokers with access control
	// (auth.go). Default none.
	Credentials Credentials
	// TLS, if set, is used for every connection to NameServers and brokers
	// (LoadTLS builds one from PEM files). Nil: plaintext.
	TLS *tls.Config
	// SendTimeout is the total budget of one Send across all retries and
	// leader look-ups (RocketMQ sendMsgTimeout). Default 3s. A ctx
	// deadline shorter than this wins.
	SendTimeout time.Duration
	// Retries is how many more real attempts a Send may make after one
	// that may have reached the broker (timeout, lost connection,
	// indeterminate outcome). Attempts refused before storing anything
	// (not leader, connection refused) are not counted, nor resends after
	// AttemptTimeout (the unanswered attempt stays pending). Default 2;
	// negative means 0.
	Retries int
	// AttemptTimeout is how long one request to a leader may go
	// unanswered before the client asks the NameServer again: if it names
	// a newer leader the send goes there too and the first answer wins
	// (the frozen leader can no longer commit on its own; a resend may
	// store a duplicate, counted in ProducerStats.Resends). If it names
	// the same node the client keeps waiting. About the brokers' election
	// timeout plus the NameServer's update; default 1s
	// (DefaultAttemptTimeout), or half of a shorter SendTimeout. Must be
	// shorter than SendTimeout.
	AttemptTimeout time.Duration
	// MaxMessageSize bounds a message body in bytes. Default 4 MiB.
	MaxMessageSize int64
	// AutoCreateQueues is the queue count of topics created by a first
	// send (when the broker allows auto-creation). Default DefaultQueues,
	// the same as `rmq topic create`; negative disables auto-creation (an
	// unknown topic is ErrTopicNotFound).
	AutoCreateQueues int
	// QueueSelector picks a message's queue. Default: by ShardingKey
	// (FNV-32a) when set, else round robin.
	QueueSelector QueueSelector
	// GroupBackoff is how long a broker group is avoided by sends of
	// messages without a ShardingKey after a send to it failed in a way
	// another group may not (leader unreachable or unanswered, no leader,
	// unavailable, disk full, timeout), doubled for each further failure
	// in a row up to 16x; such a send goes on to another group at once
	// (RocketMQ's latency fault tolerance; see fault.go). Default 1s;
	// negative turns avoidance and the move to another group off.
	GroupBackoff time.Duration
	// SlowSend is the Send latency above which a group is avoided for
	// GroupBackoff although the send succeeded (SendAsync's latency,
	// mostly its wait behind the producer's own backlog, does not
	// count). Default 500ms.
	SlowSend time.Duration
	// MaxBatchBytes and MaxBatchMessages cap one coalesced SendRequest.
	// Defaults 256 KiB (the broker's default Raft entry, which a request
	// larger than that fills alone) and 512.
	MaxBatchBytes    int64
	MaxBatchMessages int
	// MaxInflightRequests is how many coalesced SendRequests may await
	// their answers at once per leader (Kafka's
	// max.in.flight.requests.per.connection). The broker stores them in
	// the order they were sent and answers arrive in that order too, so
	// messages of one queue keep their order as long as no request fails;
	// 1 waits for each answer before the next request. Default 4.
	MaxInflightRequests int
	// MaxInflightAsync bounds SendAsync calls in progress; SendAsync
	// blocks while it is reached. Default 10000.
	MaxInflightAsync int
	// Logger receives the producer's logs. Default: discard.
	Logger hclog.Logger
	// Now is the producer's clock for message born timestamps; default
	// time.Now. Send timeouts, batching and backoffs run on real timers.
	Now func() time.Time
	// Group is the producer group (RocketMQ's producerGroup): brokers ask
	// a live member of it about open transactions (TransactionChecker).
	// Default "DEFAULT_PRODUCER".
	Group string
	// ClientID identifies this producer to brokers (pushed replies of
	// Request find it by this). Default host@pid@random.
	ClientID string
	// TransactionChecker answers a broker's check-back of a transactional
	// message whose local transaction this producer group did not end in
	// time (after a crash, or an Unknown answer). Required for
	// SendInTransaction.
	TransactionChecker func(ctx context.Context, msg *MessageExt) TxState
	// Idempotent asks the broker to store each message once even when a
	// send is retried after an unknown outcome (a timeout, a failover):
	// the broker remembers the ids of such messages for its dedup window
	// (2 min by default) and answers a resend like the first send. Off by
	// default: the window costs produce throughput; transactional halves
	// always ask for it. It adds a property (__IDEMPOTENT__) to each
	// message.
	Idempotent bool
	// Trace records every send (trace.go) to TraceTopic (default
	// RMQ_SYS_TRACE_TOPIC), in the background; off by default.
	Trace      bool
	TraceTopic string
}

// DefaultProducerConfig returns a config with every default filled in
// except NameServers.
func DefaultProducerConfig() ProducerConfig {
	return ProducerConfig{}.withDefaults()
}

func (c ProducerConfig) withDefaults() ProducerConfig {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 3 * time.Second
	}
	if c.AttemptTimeout == 0 && c.SendTimeout > 0 {
		c.AttemptTimeout = min(DefaultAttemptTimeout, c.SendTimeout/2)
	}
	if c.Retries == 0 {
		c.Retries = 2
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 4 << 20
	}
	if c.AutoCreateQueues == 0 {
		c.AutoCreateQueues = DefaultQueues
	} else if c.AutoCreateQueues < 0 {
		c.AutoCreateQueues = 0
	}
	if c.QueueSelector == nil {
		c.QueueSelector = DefaultSelector()
	}
	if c.GroupBackoff == 0 {
		c.GroupBackoff = time.Second
	}
	if c.SlowSend == 0 {
		c.SlowSend = 500 * time.Millisecond
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 256 << 10
	}
	if c.MaxBatchMessages == 0 {
		c.MaxBatchMessages = 512
	}
	if c.MaxInflightRequests == 0 {
		c.MaxInflightRequests = 4
	}
	if c.MaxInflightAsync == 0 {
		c.MaxInflightAsync = 10000
	}
	if c.Group == "" {
		c.Group = "DEFAULT_PRODUCER"
	}
	if c.ClientID == "" {
		c.ClientID = defaultClientID()
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Validate reports every problem with c.
func (c ProducerConfig) Validate() error {
	var errs []error
	errs = append(errs, validateNameServers(c.NameServers), c.Credentials.validate())
	if c.SendTimeout < 0 {
		errs = append(errs, fmt.Errorf("SendTimeout %v is negative", c.SendTimeout))
	}
	if c.AttemptTimeout < 0 {
		errs = append(errs, fmt.Errorf("AttemptTimeout %v is negative", c.AttemptTimeout))
	} else if c.AttemptTimeout > 0 && c.SendTimeout > 0 && c.AttemptTimeout >= c.SendTimeout {
		errs = append(errs, fmt.Errorf("AttemptTimeout %v must be shorter than SendTimeout %v", c.AttemptTimeout, c.SendTimeout))
	}
	if c.MaxMessageSize < 0 || c.MaxMessageSize > 64<<20 {
		errs = append(errs, fmt.Errorf("MaxMessageSize %d outside [1, %d]", c.MaxMessageSize, 64<<20))
	}
	if c.MaxBatchBytes < 0 || c.MaxBatchMessages < 0 || c.MaxInflightAsync < 0 || c.MaxInflightRequests < 0 {
		errs = append(errs, errors.New("batch and in-flight limits must not be negative"))
	}
	if err := ValidateGroup(c.Group); err != nil {
		errs = append(errs, fmt.Errorf("Group: %w", err))
	}
	if strings.ContainsAny(c.ClientID, " \n") {
		errs = append(errs, fmt.Errorf("ClientID %q contains whitespace", c.ClientID))
	}
	return joinConfig(errs)
}

// ConsumeMode is how a group shares messages.
type ConsumeMode int

const (
	// Clustering (default): each message goes to one member; queues are
	// divided among members; offsets are stored on the broker.
	Clustering ConsumeMode = iota
	// Broadcasting: every member gets every message; offsets are kept by
	// the client (in memory, and in OffsetDir if set).
	Broadcasting
)

func (m ConsumeMode) String() string {
	if m == Broadcasting {
		return "broadcasting"
	}
	return "clustering"
}

// ConsumeFrom says where a queue with no committed offset for the group
// starts (RocketMQ ConsumeFromWhere; ignored once an offset is committed).
type ConsumeFrom int

const (
	// FromLast starts at the queue's end: only new messages (default).
	FromLast ConsumeFrom = iota
	// FromFirst starts at the queue's first retained message.
	FromFirst
	// FromTimestamp starts at the first message stored at or after
	// ConsumerConfig.FromTimestamp.
	FromTimestamp
)

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	// NameServers are the NameServer addresses. Required.
	NameServers []string
	// Cluster, if set, limits routes to the broker groups of that cluster
	// (the ClusterName their nodes registered with, RocketMQ's
	// brokerClusterName): topics are sent to or consumed from only those
	// groups, even where other clusters share the NameServers. Empty:
	// every cluster.
	Cluster string
	// Credentials sign every request for brokers with access control
	// (auth.go). Default none.
	Credentials Credentials
	// TLS, if set, is used for every connection to NameServers and brokers
	// (LoadTLS builds one from PEM files). Nil: plaintext.
	TLS *tls.Config
	// Group is the consumer group. Required.
	Group string
	// Subscriptions maps topic -> tag expression ("*" or "a || b";
	// empty means "*"). At least one subscription in all.
	Subscriptions map[string]string
	// SQLSubscriptions maps topic -> RocketMQ SQL92 expression over the
	// messages' properties (and TAGS), evaluated by the broker, e.g.
	// "region = 'eu' AND amount > 100". A topic is in one map or the
	// other; a bad expression fails NewConsumer naming its position.
	SQLSubscriptions map[string]string
	// Mode is Clustering (default) or Broadcasting.
	Mode ConsumeMode
	// From applies to queues without a committed offset. Default FromLast.
	From          ConsumeFrom
	FromTimestamp time.Time
	// Orderly delivers each queue strictly in offset order and only while
	// this client holds the queue's broker lock (paused during failover
	// until re-locked); RetryLater blocks the queue.
	Orderly bool
	// PullBatch is the most messages per pull. Default 32.
	PullBatch int
	// LongPollWait is how long the broker holds an empty pull. Default 15s.
	LongPollWait time.Duration
	// HeartbeatInterval is the heartbeat and rebalance period. Default 1s.
	HeartbeatInterval time.Duration
	// CommitInterval is the offset commit period. Default 1s.
	CommitInterval time.Duration
	// AttemptTimeout is how long a heartbeat, queue lock or offset
	// request to a broker leader may go unanswered before the consumer
	// asks the NameServer again and, if it names a newer leader, sends
	// there too (first answer wins); a pull is abandoned once another
	// node is known to lead. Default 1s (DefaultAttemptTimeout).
	AttemptTimeout time.Duration
	// RetryBackoff is the local redelivery delay after ConsumeRetryLater
	// (orderly groups, LocalRetry, or when the broker could not take the
	// message back). Default 1s (RocketMQ suspendCurrentQueueTimeMillis).
	RetryBackoff time.Duration
	// MaxReconsume is how many deliveries of a message may fail before it
	// goes to the group's dead-letter queue (%DLQ%group). Default 16
	// (RocketMQ maxReconsumeTimes; -1 means the default too).
	MaxReconsume int
	// ConsumeTimeout bounds a push handler's call: once it has run this
	// long its context is cancelled and the batch counts as failed
	// (retried as for ConsumeRetryLater), whatever the handler returns
	// later. Default 15m (RocketMQ consumeTimeout); a negative value
	// disables it.
	ConsumeTimeout time.Duration
	// LocalRetry makes a Clustering group retry a failed batch in place,
	// blocking its queue, instead of sending it back to the broker, which
	// redelivers it through the group's retry queue (%RETRY%group) after a
	// backoff (10s, 30s, 1m, ... 2h) while the queue moves on. Orderly
	// groups always retry in place (up to MaxReconsume, then the
	// dead-letter queue), to keep their order. Broadcasting groups do not
	// retry, as in RocketMQ: a batch the handler asks to retry is dropped
	// (logged, and counted in ConsumerStats.Dropped).
	LocalRetry bool
	// ClientID identifies this member. Default host@pid@random.
	ClientID string
	// OffsetDir, in Broadcasting mode, keeps offsets in a file per group
	// there; empty keeps them in memory only.
	OffsetDir string
	// Logger receives the consumer's logs. Default: discard.
	Logger hclog.Logger
	// Trace records every delivery and its outcome to TraceTopic
	// (default RMQ_SYS_TRACE_TOPIC), in the background; off by default.
	Trace      bool
	TraceTopic string
	// Now is the consumer's clock for queue-lock logic: when a lock
	// request was sent, how long a lock is trusted (wire.LockTrust) and
	// when it is due for renewal; default time.Now. Tests pass a settable
	// clock to expire or renew locks without waiting. Pull waits,
	// heartbeats, rebalancing and backoffs run on real timers.
	Now func() time.Time
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PullBatch == 0 {
		c.PullBatch = 32
	}
	if c.LongPollWait == 0 {
		c.LongPollWait = 15 * time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = time.Second
	}
	if c.ConsumeTimeout == 0 {
		c.ConsumeTimeout = 15 * time.Minute
	}
	if c.MaxReconsume == 0 || c.MaxReconsume == -1 {
		c.MaxReconsume = 16
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.ClientID == "" {
		c.ClientID = defaultClientID()
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	subs := make(map[string]string, len(c.Subscriptions))
	for t, e := range c.Subscriptions {
		if strings.TrimSpace(e) == "" {
			e = "*"
		}
		subs[t] = e
	}
	c.Subscriptions = subs
	return c
}

// Validate reports every problem with c.
func (c ConsumerConfig) Validate() error {
	var errs []error
	errs = append(errs, validateNameServers(c.NameServers), c.Credentials.validate())
	if err := ValidateGroup(c.Group); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, validateSubscriptions(c.Subscriptions, c.SQLSubscriptions)...)
	if c.Mode != Clustering && c.Mode != Broadcasting {
		errs = append(errs, fmt.Errorf("unknown Mode %d", c.Mode))
	}
	if c.From < FromLast || c.From > FromTimestamp {
		errs = append(errs, fmt.Errorf("unknown From %d", c.From))
	}
	if c.From == FromTimestamp && c.FromTimestamp.IsZero() {
		errs = append(errs, errors.New("From is FromTimestamp but FromTimestamp is zero"))
	}
	if c.PullBatch < 0 || c.PullBatch > 1024 {
		errs = append(errs, fmt.Errorf("PullBatch %d outside [1, 1024]", c.PullBatch))
	}
	if c.LongPollWait < 0 || c.HeartbeatInterval < 0 || c.CommitInterval < 0 || c.RetryBackoff < 0 || c.AttemptTimeout < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.MaxReconsume < -1 {
		errs = append(errs, fmt.Errorf("MaxReconsume %d must be positive (or -1 for the default)", c.MaxReconsume))
	}
	if strings.ContainsAny(c.ClientID, " \n") {
		errs = append(errs, fmt.Errorf("ClientID %q contains whitespace", c.ClientID))
	}
	return joinConfig(errs)
}

// AdminConfig configures an Admin.
type AdminConfig struct {
	// NameServers are the NameServer addresses. Required.
	NameServers []string
	// Credentials sign every request for brokers with access control
	// (auth.go). Default none.
	Credentials Credentials
	// TLS, if set, is used for every connection to NameServers and brokers
	// (LoadTLS builds one from PEM files). Nil: plaintext.
	TLS *tls.Config
	// Timeout bounds each admin call when ctx has no deadline. Default 10s.
	Timeout time.Duration
	// Logger receives logs. Default: discard.
	Logger hclog.Logger
}

func (c AdminConfig) withDefaults() AdminConfig {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Validate reports every problem with c.
func (c AdminConfig) Validate() error {
	return joinConfig([]error{validateNameServers(c.NameServers), c.Credentials.validate()})
}

func validateNameServers(ns []string) error {
	if len(ns) == 0 {
		return errors.New("no NameServers")
	}
	for _, a := range ns {
		if a == "" || !strings.Contains(a, ":") {
			return fmt.Errorf("NameServer address %q is not host:port", a)
		}
	}
	return nil
}

func joinConfig(errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("client: invalid config: %w", err)
	}
	return nil
}

func defaultClientID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s@%d@%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// validateSubscriptions checks a consumer's tag and SQL92 subscriptions.
func validateSubscriptions(subs, sqlSubs map[string]string) []error {
	var errs []error
	if len(subs) == 0 && len(sqlSubs) == 0 {
		errs = append(errs, errors.New("no Subscriptions"))
	}
	for t, e := range subs {
		if err := ValidateTopic(t); err != nil {
			errs = append(errs, err)
		}
		if _, err := ParseTagExpression(e); err != nil {
			errs = append(errs, err)
		}
	}
	for t, e := range sqlSubs {
		if err := ValidateTopic(t); err != nil {
			errs = append(errs, err)
		}
		if _, ok := subs[t]; ok {
			errs = append(errs, fmt.Errorf("topic %q is in both Subscriptions and SQLSubscriptions", t))
		}
		if _, err := sql92.Parse(e); err != nil {
			errs = append(errs, fmt.Errorf("SQLSubscriptions[%q]: %w", t, err))
		}
	}
	return errs
}
