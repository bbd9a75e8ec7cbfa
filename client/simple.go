package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmq-dev/rmq/wire"
)

// SimpleConsumerConfig configures a SimpleConsumer.
type SimpleConsumerConfig struct {
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
	// Group is the consumer group. Required. Its members share every
	// queue: no queue is owned, no rebalance happens.
	Group string
	// Subscriptions maps topic -> tag expression ("*" or "a || b";
	// empty means "*"). At least one subscription in all.
	Subscriptions map[string]string
	// SQLSubscriptions maps topic -> SQL92 expression, as in
	// ConsumerConfig (messages the expression rejects are acked by the
	// broker, never delivered).
	SQLSubscriptions map[string]string
	// InvisibleDuration is how long a received message stays invisible to
	// the group's other members when Receive is given 0. Default 30s
	// (1s to 12h).
	InvisibleDuration time.Duration
	// AwaitDuration is how long a Receive waits at the broker for a
	// message before it returns empty (long polling). Default 15s; it is
	// shortened to fit the caller's deadline.
	AwaitDuration time.Duration
	// MaxReconsume is how often a message may be received and not acked
	// in time before it goes to the group's dead-letter queue
	// (%DLQ%group). Default 16 (-1 means the default too).
	MaxReconsume int
	// From applies to queues the group never received from: FromLast
	// (default) starts at their end, FromFirst at their oldest message.
	From ConsumeFrom
	// AttemptTimeout is as in ConsumerConfig. Default 1s.
	AttemptTimeout time.Duration
	// Logger receives the consumer's logs. Default: discard.
	Logger hclog.Logger
}

func (c SimpleConsumerConfig) withDefaults() SimpleConsumerConfig {
	if c.InvisibleDuration == 0 {
		c.InvisibleDuration = 30 * time.Second
	}
	if c.AwaitDuration == 0 {
		c.AwaitDuration = 15 * time.Second
	}
	if c.MaxReconsume == 0 || c.MaxReconsume == -1 {
		c.MaxReconsume = 16
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Validate reports every problem with c.
func (c SimpleConsumerConfig) Validate() error {
	var errs []error
	errs = append(errs, validateNameServers(c.NameServers), c.Credentials.validate())
	if err := ValidateGroup(c.Group); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, validateSubscriptions(c.Subscriptions, c.SQLSubscriptions)...)
	if err := validateInvisible(c.InvisibleDuration); err != nil {
		errs = append(errs, err)
	}
	if c.AwaitDuration < 0 || c.AttemptTimeout < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.MaxReconsume < -1 {
		errs = append(errs, fmt.Errorf("MaxReconsume %d must be positive (or -1 for the default)", c.MaxReconsume))
	}
	if c.From != FromLast && c.From != FromFirst {
		errs = append(errs, fmt.Errorf("From %d: a simple consumer starts FromLast or FromFirst", c.From))
	}
	return joinConfig(errs)
}

// Invisible-time bounds (the broker's).
const (
	MinInvisibleDuration = time.Second
	MaxInvisibleDuration = 12 * time.Hour
)

func validateInvisible(d time.Duration) error {
	if d < MinInvisibleDuration || d > MaxInvisibleDuration {
		return fmt.Errorf("invisible duration %s outside [%s, %s]", d, MinInvisibleDuration, MaxInvisibleDuration)
	}
	return nil
}

// ReceiptHandle names one delivery of a received message: Ack and
// ChangeInvisibleDuration take it. It is opaque text (RocketMQ's POP_CK
// form and the topic) that may be stored and used by another process of
// the group, until the message's invisible time passes.
type ReceiptHandle string

// brokerGroup is the broker group that issued h.
func (h ReceiptHandle) brokerGroup() (string, error) {
	f := strings.Fields(string(h))
	if len(f) != 9 {
		return "", invalidf("receipt handle %q is not one this client issued", string(h))
	}
	return f[5], nil
}

// ReceivedMessage is a message received by a SimpleConsumer.
type ReceivedMessage struct {
	*MessageExt
	// Handle acks this delivery; ChangeInvisibleDuration replaces it.
	Handle ReceiptHandle
	// InvisibleUntil is when the message becomes visible to the group
	// again unless acked (broker clock).
	InvisibleUntil time.Time
}

// ErrReceiptHandle matches an ack or invisible-time change whose handle
// no longer names an in-flight message: its invisible time passed and
// it was received again, its invisible time was changed (use the new
// handle), or it was dead-lettered. The message was not acked by it.
var ErrReceiptHandle = sentinel(wire.CodeReceiptHandle)

// SimpleConsumer is a pop consumer (RocketMQ 5's SimpleConsumer): it
// receives messages with Receive and acks each within its invisible
// duration; one not acked in time is received again by some member,
// with ReconsumeTimes one higher, and after MaxReconsume such expiries
// it goes to the group's dead-letter queue. Members share every queue
// and need no heartbeat or rebalance. Messages of one queue may be
// received out of order. Safe for concurrent use.
type SimpleConsumer struct {
	cfg    SimpleConsumerConfig
	log    hclog.Logger
	pool   *pool
	router *router
	topics []string
	tags   map[string]string
	next   atomic.Uint64

	mu     sync.Mutex
	closed bool
}

// NewSimpleConsumer validates cfg and returns a SimpleConsumer.
func NewSimpleConsumer(cfg SimpleConsumerConfig) (*SimpleConsumer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &SimpleConsumer{cfg: cfg, log: cfg.Logger.Named("simple-consumer").With("group", cfg.Group),
		pool: newPool(cfg.TLS).withCredentials(cfg.Credentials), tags: map[string]string{}}
	for t, e := range cfg.Subscriptions {
		c.topics = append(c.topics, t)
		te, _ := ParseTagExpression(e) // validated
		c.tags[t] = te.src
	}
	for t := range cfg.SQLSubscriptions {
		c.topics = append(c.topics, t)
	}
	slices.Sort(c.topics)
	c.router = newRouter(cfg.NameServers, c.pool, c.log, cfg.AttemptTimeout)
	c.router.cluster = cfg.Cluster
	return c, nil
}

// Receive returns up to max messages (1..1024; 0 means 32), waiting up
// to AwaitDuration (or until ctx ends) for the first. Each is invisible
// to the group's other members for invisible (0: InvisibleDuration).
// Receive asks one broker group of one subscribed topic per call, in
// turn; an empty result with a nil error means nothing arrived in time.
func (c *SimpleConsumer) Receive(ctx context.Context, max int, invisible time.Duration) ([]*ReceivedMessage, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if max == 0 {
		max = 32
	}
	if max < 0 || max > 1024 {
		return nil, invalidf("receive of %d messages: want 1..1024", max)
	}
	if invisible == 0 {
		invisible = c.cfg.InvisibleDuration
	}
	if err := validateInvisible(invisible); err != nil {
		return nil, invalidf("%v", err)
	}
	wait := c.cfg.AwaitDuration
	if dl, ok := ctx.Deadline(); ok {
		// Leave the answer time to travel back.
		wait = min(wait, time.Until(dl)-200*time.Millisecond)
	}
	if wait < 0 {
		wait = 0
	}
	n := c.next.Add(1)
	topic := c.topics[n%uint64(len(c.topics))]
	tr, err := c.router.route(ctx, topic, false, 0)
	if err != nil {
		return nil, err
	}
	groups := readableGroups(tr)
	if len(groups) == 0 {
		return nil, fmt.Errorf("%w: topic %q has no readable queues", ErrNoPermission, topic)
	}
	group := groups[(n/uint64(len(c.topics)))%uint64(len(groups))]
	req := wire.ReceiveRequest{Group: c.cfg.Group, Topic: topic, QueueID: -1, Max: max,
		InvisibleMillis: invisible.Milliseconds(), WaitMillis: wait.Milliseconds(), Tags: c.tags[topic], SQL: c.cfg.SQLSubscriptions[topic],
		MaxReconsume: c.cfg.MaxReconsume, FromFirst: c.cfg.From == FromFirst}
	var resp wire.ReceiveResponse
	// A receive that may have happened is retried once: its messages are
	// then in flight unreceived, and come back after their invisible time.
	if err := c.router.callLeader(ctx, group, 1, wire.CodeReceive, req, &resp); err != nil {
		return nil, err
	}
	out := make([]*ReceivedMessage, len(resp.Messages))
	for i := range resp.Messages {
		rm := &resp.Messages[i]
		m := fromStored(&rm.Stored, group)
		m.RetryOf = nil // a pop redelivery is in place
		out[i] = &ReceivedMessage{MessageExt: m, Handle: ReceiptHandle(rm.Handle), InvisibleUntil: time.UnixMilli(rm.DeadlineMillis)}
	}
	return out, nil
}

func readableGroups(tr *topicRoute) []string {
	var out []string
	for _, g := range tr.groups {
		if g.Perm&4 != 0 && g.Queues > 0 {
			out = append(out, g.Group)
		}
	}
	return out
}

// Ack acks one received message by its handle. Acking twice succeeds;
// a handle that no longer names the message fails with ErrReceiptHandle.
func (c *SimpleConsumer) Ack(ctx context.Context, h ReceiptHandle) error {
	errs, err := c.AckAll(ctx, []ReceiptHandle{h})
	if err != nil {
		return err
	}
	return errs[0]
}

// AckAll acks received messages (of any broker groups) in one request
// per broker group. It returns one error per handle (nil: acked); the
// error return is for a failure that left the outcome unknown.
func (c *SimpleConsumer) AckAll(ctx context.Context, hs []ReceiptHandle) ([]error, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	errs := make([]error, len(hs))
	byGroup := map[string][]int{}
	for i, h := range hs {
		g, err := h.brokerGroup()
		if err != nil {
			errs[i] = err
			continue
		}
		byGroup[g] = append(byGroup[g], i)
	}
	for g, idx := range byGroup {
		for len(idx) > 0 {
			chunk := idx[:min(len(idx), 1024)]
			idx = idx[len(chunk):]
			req := wire.AckRequest{Group: c.cfg.Group, Handles: make([]string, len(chunk))}
			for j, i := range chunk {
				req.Handles[j] = string(hs[i])
			}
			var resp wire.AckResponse
			// Acks are idempotent: an ack whose answer was lost is resent,
			// as often as the caller's context allows.
			if err := c.router.callLeader(ctx, g, 16, wire.CodeAck, req, &resp); err != nil {
				return errs, err
			}
			if len(resp.Codes) != len(chunk) {
				return errs, fmt.Errorf("%w: broker group %s answered %d ack results for %d handles", ErrInternal, g, len(resp.Codes), len(chunk))
			}
			for j, i := range chunk {
				if code := resp.Codes[j]; code != wire.CodeOK {
					msg := ""
					if j < len(resp.Errors) {
						msg = resp.Errors[j]
					}
					errs[i] = &Error{Code: code, Retriable: wire.Info(code).Retriable, Message: msg}
				}
			}
		}
	}
	return errs, nil
}

// ChangeInvisibleDuration makes a received message invisible for d from
// now and returns its new handle; the old one no longer acks it.
func (c *SimpleConsumer) ChangeInvisibleDuration(ctx context.Context, h ReceiptHandle, d time.Duration) (ReceiptHandle, time.Time, error) {
	if err := c.check(); err != nil {
		return "", time.Time{}, err
	}
	if err := validateInvisible(d); err != nil {
		return "", time.Time{}, invalidf("%v", err)
	}
	g, err := h.brokerGroup()
	if err != nil {
		return "", time.Time{}, err
	}
	var resp wire.ChangeInvisibleResponse
	// Not resent: a lost answer would leave a new handle the caller never
	// saw, and a resend would then fail as superseded.
	req := wire.ChangeInvisibleRequest{Group: c.cfg.Group, Handle: string(h), InvisibleMillis: d.Milliseconds()}
	if err := c.router.callLeader(ctx, g, 0, wire.CodeChangeInvis, req, &resp); err != nil {
		return "", time.Time{}, err
	}
	return ReceiptHandle(resp.Handle), time.UnixMilli(resp.DeadlineMillis), nil
}

func (c *SimpleConsumer) check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return nil
}

// Close ends the consumer; its unacked messages come back to the group
// after their invisible time. Calls in flight fail with ErrClosed or
// their context's error.
func (c *SimpleConsumer) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.pool.close()
	c.router.wait()
	return nil
}
