package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/rmq-dev/rmq/compat"
)

// Request-reply on the remoting protocol (see reply.go for the design).
// A RocketMQ requester is found by its client ID on one of its remoting
// connections to this node, learnt two ways: its producer heartbeats
// (RocketMQ's ProducerManager.findChannel, which is all RocketMQ has) and
// any send of a message naming it in REPLY_TO_CLIENT, on that send's
// connection, before the message is stored. The second closes a gap of
// rocketmq-client-go v2.1.2: its Request heartbeats only when the topic's
// route is new to it, so a requester of a known topic would otherwise be
// unknown to the broker until its next 30 s heartbeat. A responder's
// SEND_REPLY_MESSAGE (324, V1 header) or _V2 (325, single-letter header)
// is answered SUCCESS (msgId "0", queueOffset 0, as RocketMQ answers an
// unstored reply) once the requester's client took the
// PUSH_REPLY_MESSAGE_TO_CLIENT (326), whose header is RocketMQ's
// ReplyMessageRequestHeader: the reply's send header plus bornHost,
// storeHost and storeTimestamp, the properties with PUSH_REPLY_TIME
// added, the body uncompressed (sysFlag without the compressed bit).

// remotingRequesters maps RocketMQ client IDs to their latest remoting
// connection to this node; a connection leaves when it closes.
type remotingRequesters struct {
	mu       sync.Mutex // leaf lock
	byClient map[string]*compat.ServerConn
	watched  map[*compat.ServerConn]bool
}

func newRemotingRequesters() *remotingRequesters {
	return &remotingRequesters{byClient: map[string]*compat.ServerConn{}, watched: map[*compat.ServerConn]bool{}}
}

// note records c as clientID's connection.
func (rr *remotingRequesters) note(c *compat.ServerConn, clientID string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.byClient[clientID] = c
	if !rr.watched[c] {
		rr.watched[c] = true
		go func() { // ends with the connection
			<-c.Done()
			rr.drop(c)
		}()
	}
}

func (rr *remotingRequesters) drop(c *compat.ServerConn) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	delete(rr.watched, c)
	for id, cc := range rr.byClient {
		if cc == c {
			delete(rr.byClient, id)
		}
	}
}

// conn returns clientID's connection, or nil.
func (rr *remotingRequesters) conn(clientID string) *compat.ServerConn {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.byClient[clientID]
}

// remotingSendNoting serves SEND_MESSAGE (10) and SEND_MESSAGE_V2 (310):
// a request message (its properties name a REPLY_TO_CLIENT) first
// records its connection as the requester's and gets CLUSTER stamped,
// then the send is served as any other. Other messages cost one
// substring search of their properties text.
func (n *Node) remotingSendNoting(ctx context.Context, c *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	key := "i"
	if req.Code == compat.ReqSendMessage {
		key = "properties"
	}
	if text := req.Ext[key]; strings.Contains(text, compat.PropReplyTo+"\x01") {
		props := compat.DecodeProperties(text)
		if to := props[compat.PropReplyTo]; to != "" {
			n.replyTo.note(c, to)
			if n.stampRequest(props) {
				req.Ext[key] = compat.EncodeProperties(props)
			}
		}
	}
	return n.remotingSend(ctx, c, req)
}

// remotingHeartbeatNoting serves HEART_BEAT (34), recording the
// connection of a client that heartbeats as a producer.
func (n *Node) remotingHeartbeatNoting(ctx context.Context, c *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	var hb compat.HeartbeatData
	if err := compat.DecodeJSON(req.Body, &hb); err == nil && hb.ClientID != "" && len(hb.ProducerDataSet) > 0 {
		n.replyTo.note(c, hb.ClientID)
	}
	return n.remotingHeartbeat(ctx, c, req)
}

// remotingSendReply serves SEND_REPLY_MESSAGE (324) and _V2 (325).
func (n *Node) remotingSendReply(ctx context.Context, c *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	name := func(long string) string { return long }
	if req.Code == compat.ReqSendReplyMessageV2 {
		name = func(long string) string { return sendV2Names[long] }
	}
	h := header{req: req}
	group := h.optStr(name("producerGroup"))
	topic := h.optStr(name("topic"))
	queue := h.optI64(name("queueId"), 0)
	sysFlag := h.optI64(name("sysFlag"), 0)
	born := h.optI64(name("bornTimestamp"), 0)
	flag := h.optI64(name("flag"), 0)
	text := h.optStr(name("properties"))
	if h.err != nil {
		return nil, h.err
	}
	body := req.Body
	if sysFlag&compat.SysFlagCompressed != 0 {
		inflated, err := n.decompress(sysFlag, body)
		switch {
		case err == nil:
			body = inflated
		case errors.Is(err, ErrInvalidArgument):
			// rocketmq-client-go v2.1.2 sets the compressed bit on a reply
			// over 4 KiB but sends the body as it was: take it as is.
		default:
			return nil, err
		}
	}
	props := compat.DecodeProperties(text)
	r := Reply{Topic: topic, QueueID: uint32(max(0, min(queue, 1<<31))), Flag: uint32(flag), Properties: props,
		Body: body, BornTimestamp: born, BornHost: c.RemoteAddr(), ProducerGroup: group}
	if props != nil {
		r.Tags, r.Keys = props[compat.PropTags], props[compat.PropKeys]
		delete(props, compat.PropTags)
		delete(props, compat.PropKeys)
	}
	err := n.PushReply(ctx, r)
	if errors.Is(err, ErrNoRequester) {
		return compat.NewResponse(req, compat.RespSystemError, "push reply message fail: "+err.Error()), nil
	}
	if err != nil {
		return nil, err
	}
	resp := ok(req)
	resp.SetExt("msgId", "0")
	resp.SetExt("queueId", strconv.FormatUint(uint64(r.QueueID), 10))
	resp.SetExt("queueOffset", "0")
	resp.SetExt("MSG_REGION", "DefaultRegion")
	resp.SetExt("TRACE_ON", "true")
	return resp, nil
}

// pushRemotingReply sends r to a RocketMQ requester's connection as
// PUSH_REPLY_MESSAGE_TO_CLIENT and waits for its answer.
func (n *Node) pushRemotingReply(ctx context.Context, c *compat.ServerConn, r *Reply) error {
	props := make(map[string]string, len(r.Properties)+2)
	for k, v := range r.Properties {
		props[k] = v
	}
	if r.Tags != "" {
		props[compat.PropTags] = r.Tags
	}
	if r.Keys != "" {
		props[compat.PropKeys] = r.Keys
	}
	to, corr := props[compat.PropReplyTo], props[compat.PropCorrelationID]
	bornHost := r.BornHost
	if bornHost == "" {
		bornHost = "0.0.0.0:0"
	}
	cmd := compat.NewRequest(compat.ReqPushReplyMessageToClient, map[string]string{
		"producerGroup":         r.ProducerGroup,
		"topic":                 r.Topic,
		"defaultTopic":          "",
		"defaultTopicQueueNums": "0",
		"queueId":               strconv.FormatUint(uint64(r.QueueID), 10),
		"sysFlag":               "0",
		"bornTimestamp":         strconv.FormatInt(r.BornTimestamp, 10),
		"flag":                  strconv.FormatUint(uint64(r.Flag), 10),
		"properties":            compat.EncodeProperties(props),
		"reconsumeTimes":        "0",
		"unitMode":              "false",
		"bornHost":              bornHost,
		"storeHost":             n.storeHost().String(),
		"storeTimestamp":        strconv.FormatInt(n.cfg.Now().UnixMilli(), 10),
	}, r.Body)
	resp, err := c.Invoke(ctx, cmd)
	if err != nil {
		select {
		case <-c.Done():
			return fmt.Errorf("%w: requester %s left during the push: %w", ErrNoRequester, to, err)
		default:
		}
		return fmt.Errorf("push reply %s to %s: %w", corr, to, err)
	}
	if resp.Code != compat.RespSuccess {
		return fmt.Errorf("push reply %s to %s: the client answered %s: %s", corr, to, compat.ResponseName(resp.Code), resp.Remark)
	}
	n.log.Trace("reply pushed", "correlation-id", corr, "client", to, "protocol", "remoting")
	return nil
}
