package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/wire"
)

// Request-reply (RocketMQ 4.6). A requester sends an ordinary message
// whose properties name the request (CORRELATION_ID) and the requester
// (REPLY_TO_CLIENT, its client ID; TTL, its wait in ms — rocketmq-client-go
// writes seconds). A responder consumes it and sends a reply carrying the
// same properties to a node of the group, which pushes the reply over the
// requester's own connection to that node and answers the responder once
// the requester's client has taken it:
//
//	requester --send (10/310 or rmq 10)--> leader --(stored, consumed)--> responder
//	requester <--push (326 or rmq 62)---- node <--reply (324/325 or rmq 61)--
//
// The node finds the requester's connection by client ID: rmq clients
// say hello (producers.go); RocketMQ clients are known from their
// producer heartbeats and from the requests they send on a connection
// (remoting_reply.go). A requester with no connection to the node gets
// nothing and the responder an error (rmq: CodeUnavailable; remoting:
// SYSTEM_ERROR, as RocketMQ answers); rmq's client then tries the group's
// other nodes. Replies are not stored: RocketMQ also puts them in
// <cluster>_REPLY_TOPIC (storeReplyMessageEnable, on by default), which
// costs a commit per reply and that nobody consumes; rmq only pushes.
// The broker stamps CLUSTER on request messages, as RocketMQ's broker
// stamps it on every message, because responders name their reply topic
// from it (rocketmq-client-go's CreateReplyMessage refuses a request
// without it). Nothing of a request-reply is replicated: a leader change
// between a request and its reply loses the reply if the requester's
// connection went with the old leader, and the requester times out.

// ErrNoRequester means the requester a reply names has no connection to
// this node (it never sent a request or a heartbeat here, or it left).
var ErrNoRequester = errors.New("broker: requester not connected to this node")

// replyPushTimeout bounds the push of one reply to its requester
// (RocketMQ's broker waits 3 s for the client's answer).
const replyPushTimeout = 3 * time.Second

// replyTopicSuffix names a cluster's reply topic: <cluster>_REPLY_TOPIC.
const replyTopicSuffix = "_REPLY_TOPIC"

// Reply is a responder's answer to a request.
type Reply struct {
	Topic         string // empty: <cluster>_REPLY_TOPIC
	QueueID       uint32
	Flag          uint32
	Tags, Keys    string
	Properties    map[string]string // CORRELATION_ID and REPLY_TO_CLIENT at least
	Body          []byte            // uncompressed
	BornTimestamp int64             // unix ms
	BornHost      string            // the responder's address, as this node sees it
	ProducerGroup string
}

// PushReply delivers r to the requester its REPLY_TO_CLIENT names, over
// that client's connection to this node, and returns once the
// requester's client answered the push. A requester not connected here
// is ErrNoRequester.
func (n *Node) PushReply(ctx context.Context, r Reply) error {
	to, corr := r.Properties[compat.PropReplyTo], r.Properties[compat.PropCorrelationID]
	if to == "" || corr == "" {
		return fmt.Errorf("%w: a reply needs the request's %s and %s properties", ErrInvalidArgument, compat.PropReplyTo, compat.PropCorrelationID)
	}
	if r.Topic == "" {
		r.Topic = n.cfg.Cluster + replyTopicSuffix
	}
	r.Properties = maps.Clone(r.Properties)
	r.Properties[compat.PropPushReplyTime] = strconv.FormatInt(n.cfg.Now().UnixMilli(), 10)
	ctx, cancel := context.WithTimeout(ctx, replyPushTimeout)
	defer cancel()
	if c := n.producers.client(to); c != nil {
		err := c.Call(ctx, wire.CodePushReply, n.pushReplyBody(&r), nil)
		if errors.Is(err, wire.ErrConnClosed) {
			return fmt.Errorf("%w: requester %s left during the push", ErrNoRequester, to)
		}
		if err != nil {
			return fmt.Errorf("push reply %s to %s: %w", corr, to, err)
		}
		n.log.Trace("reply pushed", "correlation-id", corr, "client", to)
		return nil
	}
	if c := n.replyTo.conn(to); c != nil {
		return n.pushRemotingReply(ctx, c, &r)
	}
	return fmt.Errorf("%w: no connection of client %s to node %s (it must send its request or a heartbeat here)", ErrNoRequester, to, n.cfg.NodeID)
}

func (n *Node) pushReplyBody(r *Reply) *wire.PushReply {
	return &wire.PushReply{
		Message: wire.Message{Topic: r.Topic, QueueID: r.QueueID, Flag: r.Flag, Tags: r.Tags, Keys: r.Keys,
			Properties: r.Properties, Body: r.Body, BornTimestamp: r.BornTimestamp},
		Group:    n.cfg.Group,
		PushTime: n.cfg.Now().UnixMilli(),
	}
}

// handleSendReply serves CodeSendReply.
func (n *Node) handleSendReply(ctx context.Context, req *wire.ReplyRequest) (any, error) {
	m := &req.Message
	err := n.PushReply(ctx, Reply{Topic: m.Topic, QueueID: m.QueueID, Flag: m.Flag, Tags: m.Tags, Keys: m.Keys,
		Properties: m.Properties, Body: m.Body, BornTimestamp: m.BornTimestamp})
	if errors.Is(err, ErrNoRequester) {
		return nil, wire.Errorf(wire.CodeUnavailable, "%v", err)
	}
	if err != nil {
		return nil, err
	}
	return wire.Empty{}, nil
}

// handleSendStamped is handleSend after stamping CLUSTER on the request
// messages among req's (those naming a REPLY_TO_CLIENT).
func (n *Node) handleSendStamped(ctx context.Context, req *wire.SendRequest) (any, error) {
	for i := range req.Messages {
		n.stampRequest(req.Messages[i].Properties)
	}
	return n.handleSend(ctx, req)
}

// stampRequest adds CLUSTER to props if they are a request's (they name
// a REPLY_TO_CLIENT) and lack it. It reports whether it changed props.
func (n *Node) stampRequest(props map[string]string) bool {
	if props[compat.PropReplyTo] == "" || props[compat.PropCluster] != "" {
		return false
	}
	props[compat.PropCluster] = n.cfg.Cluster
	return true
}
