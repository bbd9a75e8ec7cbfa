package broker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/rmq-dev/rmq/acl"
	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

// Access control (package acl): when Config.ACLFile is set every request
// on the client port, in both protocols, must be signed by an account of
// the file and is checked against its permissions before it is served.
// Authentication (white lists, access key, signature, time window) runs
// before a request is decoded; authorisation (topic and group
// permissions, the admin flag) runs once it is decoded, on the resources
// the request names. A refusal is answered wire.CodeAccessDenied (rmq
// protocol) or NO_PERMISSION (16, remoting) with the acl message. The
// file is reloaded on change by the acl-reload loop (loops in run.go).

// ACLOptions tunes access control; zero fields take the defaults.
type ACLOptions struct {
	// TimeWindow is how far a signed request's time (the rmq auth
	// block's timestamp, a remoting send's bornTimestamp, a pop's
	// bornTime) may be from the broker's clock, either way, before the
	// request is refused as a replay. Default 2m (acl.DefaultWindow).
	TimeWindow time.Duration
	// ReloadInterval is how often the file is checked for changes.
	// Default 1s.
	ReloadInterval time.Duration
}

// aclGuard is a node's access control: nil when it is off.
type aclGuard struct {
	w      *acl.Watcher
	window time.Duration
	now    func() time.Time
}

// newACLGuard loads cfg.ACLFile (nil, nil when it is empty).
func newACLGuard(cfg Config) (*aclGuard, error) {
	if cfg.ACLFile == "" {
		return nil, nil
	}
	w, err := acl.NewWatcher(acl.WatcherConfig{Path: cfg.ACLFile, Interval: cfg.ACL.ReloadInterval, Logger: cfg.Logger.Named("acl")})
	if err != nil {
		return nil, fmt.Errorf("broker: access control: %w", err)
	}
	window := cfg.ACL.TimeWindow
	if window <= 0 {
		window = acl.DefaultWindow
	}
	return &aclGuard{w: w, window: window, now: cfg.Now}, nil
}

// runACLReload reloads the rules file until the node stops.
func (n *Node) runACLReload() {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-n.stopCh; cancel() }() // ends with the node, or with this loop (cancel)
	n.acl.w.Run(ctx)
}

// aclCaller is the account a wire request acts as, carried in its ctx
// from authentication to authorisation.
type aclCaller struct {
	a          *acl.Account
	replyTopic string // the cluster's reply topic, for SendReply without a topic
}

type aclCallerKey struct{}

func callerOf(ctx context.Context) *aclCaller {
	c, _ := ctx.Value(aclCallerKey{}).(*aclCaller)
	return c
}

// authWire authenticates an rmq wire request and returns ctx carrying
// its account.
func (n *Node) authWire(ctx context.Context, r *wire.Request) (context.Context, error) {
	g := n.acl
	a, err := g.w.Rules().AuthenticateWire(acl.WireRequest{Remote: r.Conn.RemoteAddr(), Code: r.Code, Auth: r.Auth, Body: r.Body}, g.now(), g.window)
	if err != nil {
		n.log.Debug("request refused", "code", r.Code, "remote", r.Conn.RemoteAddr(), "error", err)
		return ctx, err
	}
	return context.WithValue(ctx, aclCallerKey{}, &aclCaller{a: a, replyTopic: n.cfg.Cluster + replyTopicSuffix}), nil
}

// wireAdminOps names the rmq requests only admin accounts may make.
var wireAdminOps = map[uint16]string{
	wire.CodeCreateTopic:  "creating a topic",
	wire.CodeUpdateTopic:  "updating a topic",
	wire.CodeDeleteTopic:  "deleting a topic",
	wire.CodeResetOffsets: "resetting a group's offsets",
	wire.CodeDeadLetters:  "reading dead letters",
	wire.CodeResendDead:   "resending dead letters",
	wire.CodeTransfer:     "a leadership transfer",
	wire.CodeAddNode:      "adding a node",
	wire.CodePromoteNode:  "promoting a node",
	wire.CodeRemoveNode:   "removing a node",
	wire.CodeListTx:       "listing open transactions",
}

// authorizeWire checks a decoded wire request against the caller's
// permissions (nothing when access control is off). A send's topics are
// checked per message (pubCheck), so one refused topic does not fail the
// other messages of a coalesced request.
func authorizeWire(ctx context.Context, code uint16, req any) error {
	c := callerOf(ctx)
	if c == nil {
		return nil
	}
	a := c.a
	if op, ok := wireAdminOps[code]; ok {
		return a.CheckAdmin(op)
	}
	switch req := req.(type) {
	case *wire.ReplyRequest:
		t := req.Message.Topic
		if t == "" {
			t = c.replyTopic
		}
		return a.Topic(t, acl.Pub)
	case *wire.PullRequest:
		return a.Topic(req.Topic, acl.Sub)
	case *wire.TopicRequest: // topic status
		return a.TopicAny(req.Name)
	case *wire.CommitOffsetsRequest:
		return groupAndQueues(a, req.Group, req.Offsets)
	case *wire.QueryOffsetRequest:
		return groupAndTopics(a, req.Group, req.Topic)
	case *wire.SearchOffsetRequest:
		return a.Topic(req.Topic, acl.Sub)
	case *wire.SendBackRequest:
		return groupAndTopics(a, req.Group, req.Topic)
	case *wire.ReceiveRequest:
		return groupAndTopics(a, req.Group, req.Topic)
	case *wire.AckRequest:
		return a.Group(req.Group, acl.Sub)
	case *wire.ChangeInvisibleRequest:
		return a.Group(req.Group, acl.Sub)
	case *wire.HeartbeatRequest:
		return groupAndTopics(a, req.Group, req.Topics...)
	case *wire.LeaveGroupRequest:
		return a.Group(req.Group, acl.Sub)
	case *wire.LockRequest:
		return groupAndQueues(a, req.Group, req.Queues)
	case *wire.DescribeGroupRequest:
		return a.Group(req.Group, acl.Sub)
	case *wire.QueryMessagesRequest:
		if req.Topic != "" {
			return a.Topic(req.Topic, acl.Sub)
		}
	}
	// The rest need a valid signature only: sends (per message),
	// producer hello, end transaction, listing topics and groups, node
	// status, and a message query by ID alone (as RocketMQ's
	// VIEW_MESSAGE_BY_ID).
	return nil
}

func groupAndTopics(a *acl.Account, group string, topics ...string) error {
	if err := a.Group(group, acl.Sub); err != nil {
		return err
	}
	for _, t := range topics {
		if err := a.Topic(t, acl.Sub); err != nil {
			return err
		}
	}
	return nil
}

func groupAndQueues(a *acl.Account, group string, qs []wire.QueueOffset) error {
	if err := a.Group(group, acl.Sub); err != nil {
		return err
	}
	last := ""
	for _, q := range qs {
		if q.Topic == last {
			continue
		}
		last = q.Topic
		if err := a.Topic(q.Topic, acl.Sub); err != nil {
			return err
		}
	}
	return nil
}

// pubCheck is the per-topic PUB check of a wire send (SendOptions.Allow),
// nil when access control is off.
func pubCheck(ctx context.Context) func(topic string) error {
	c := callerOf(ctx)
	if c == nil {
		return nil
	}
	return func(topic string) error { return c.a.Topic(topic, acl.Pub) }
}

// remotingAdminOps names the remoting requests only admin accounts may make.
var remotingAdminOps = map[int32]string{
	compat.ReqUpdateAndCreateTopic: "UPDATE_AND_CREATE_TOPIC",
	compat.ReqDeleteTopicInBroker:  "DELETE_TOPIC_IN_BROKER",
}

// authRemoting authenticates and authorises a RocketMQ remoting request
// and returns ctx carrying its account.
func (n *Node) authRemoting(ctx context.Context, c *compat.ServerConn, req *compat.Command) (context.Context, error) {
	g := n.acl
	now := g.now()
	replyTopic := n.cfg.Cluster + replyTopicSuffix
	a, err := g.w.Rules().AuthenticateRemoting(acl.RemotingRequest{Remote: c.RemoteAddr(), Ext: req.Ext, Body: req.Body}, now, g.window)
	if err == nil {
		err = authorizeRemoting(a, req, now, g.window, replyTopic)
	}
	if err != nil {
		n.log.Debug("remoting request refused", "code", compat.RequestName(req.Code), "remote", c.RemoteAddr(), "error", err)
		return ctx, err
	}
	return context.WithValue(ctx, aclCallerKey{}, &aclCaller{a: a, replyTopic: replyTopic}), nil
}

// readable checks SUB on the topic of a message a request found by ID
// (nil when access control is off).
func readable(ctx context.Context, topic string) error {
	if c := callerOf(ctx); c != nil {
		return c.a.Topic(topic, acl.Sub)
	}
	return nil
}

// authorizeRemoting checks the resources a remoting request names, as
// RocketMQ's PlainAccessResource does for the codes rmq serves, and the
// request time where the request carries one.
func authorizeRemoting(a *acl.Account, req *compat.Command, now time.Time, window time.Duration, replyTopic string) error {
	if op, ok := remotingAdminOps[req.Code]; ok {
		return a.CheckAdmin(op)
	}
	ext := req.Ext
	switch req.Code {
	case compat.ReqSendMessage, compat.ReqSendMessageV2, compat.ReqSendBatchMessage,
		compat.ReqSendReplyMessage, compat.ReqSendReplyMessageV2:
		// The header names the handlers read (remoting_messages.go,
		// remoting_reply.go): V1 long, V2 and batch one letter.
		topic, born := ext["topic"], ext["bornTimestamp"]
		if req.Code == compat.ReqSendMessageV2 || req.Code == compat.ReqSendBatchMessage || req.Code == compat.ReqSendReplyMessageV2 {
			topic, born = ext[sendV2Names["topic"]], ext[sendV2Names["bornTimestamp"]]
		}
		if err := checkBorn(born, now, window); err != nil {
			return err
		}
		if topic == "" && (req.Code == compat.ReqSendReplyMessage || req.Code == compat.ReqSendReplyMessageV2) {
			topic = replyTopic
		}
		return a.Topic(topic, acl.Pub)
	case compat.ReqPullMessage, compat.ReqQueryConsumerOffset, compat.ReqUpdateConsumerOffset,
		compat.ReqAckMessage, compat.ReqChangeMessageInvisibleTime:
		return groupAndTopics(a, ext["consumerGroup"], ext["topic"])
	case compat.ReqPopMessage:
		if err := checkBorn(ext["bornTime"], now, window); err != nil {
			return err
		}
		return groupAndTopics(a, ext["consumerGroup"], ext["topic"])
	case compat.ReqGetMaxOffset, compat.ReqGetMinOffset, compat.ReqGetEarliestMsgStoreTime,
		compat.ReqSearchOffsetByTimestamp, compat.ReqQueryMessage:
		return a.Topic(ext["topic"], acl.Sub)
	case compat.ReqGetConsumerListByGroup:
		return a.Group(ext["consumerGroup"], acl.Sub)
	case compat.ReqUnregisterClient:
		if g := ext["consumerGroup"]; g != "" {
			return a.Group(g, acl.Sub)
		}
	case compat.ReqConsumerSendMsgBack:
		if err := a.Group(ext["group"], acl.Sub); err != nil {
			return err
		}
		if t := ext["originTopic"]; t != "" {
			return a.Topic(t, acl.Sub)
		}
	case compat.ReqHeartBeat:
		var hb compat.HeartbeatData
		if err := compat.DecodeJSON(req.Body, &hb); err != nil {
			return nil // the handler answers the bad body
		}
		for _, cd := range hb.ConsumerDataSet {
			topics := make([]string, 0, len(cd.SubscriptionDataSet))
			for _, s := range cd.SubscriptionDataSet {
				topics = append(topics, s.Topic)
			}
			if err := groupAndTopics(a, cd.GroupName, topics...); err != nil {
				return err
			}
		}
	case compat.ReqLockBatchMQ, compat.ReqUnlockBatchMQ:
		var lr compat.LockBatchRequest
		if err := compat.DecodeJSON(req.Body, &lr); err != nil {
			return nil
		}
		topics := make([]string, 0, len(lr.MQSet))
		for _, q := range lr.MQSet {
			topics = append(topics, q.Topic)
		}
		return groupAndTopics(a, lr.ConsumerGroup, topics...)
	case compat.ReqBatchAckMessage:
		var body compat.BatchAckBody
		if err := compat.DecodeJSON(req.Body, &body); err != nil {
			return nil
		}
		for _, ack := range body.Acks {
			if err := groupAndTopics(a, ack.ConsumerGroup, ack.Topic); err != nil {
				return err
			}
		}
	}
	// The rest need a valid signature only: END_TRANSACTION and
	// VIEW_MESSAGE_BY_ID, as in RocketMQ 4.x.
	return nil
}

// checkBorn checks a remoting request's own timestamp (unix ms) against
// the window; a request without one cannot be checked (see acl/doc.go).
func checkBorn(v string, now time.Time, window time.Duration) error {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		return nil
	}
	return acl.CheckTime(time.UnixMilli(ms), now, window)
}
