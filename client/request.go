package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// Request-reply, RocketMQ 4.6 style. Request sends an ordinary message
// with three properties added and waits for the reply:
//
//	CORRELATION_ID   a new random id for this request
//	REPLY_TO_CLIENT  the producer's ClientID
//	TTL              how long it waits, in milliseconds (RocketMQ's Java
//	                 client writes ms, rocketmq-client-go seconds)
//
// The broker stamps CLUSTER on the stored request. A responder consumes
// it and calls Reply, which sends the reply to a node of the broker group
// that stored the request; that node pushes it over the requester's own
// connection (wire.CodePushReply) and Request returns it. Replies are not
// stored, so there is nothing to consume and no ordering across requests.
// The requester's producer says hello (ProducerHello with its ClientID)
// on every connection from its first Request on: on those it already had,
// on the leader of every broker group (a RocketMQ responder replies to
// any group of the cluster), and on each new one. A reply that arrives
// after its Request returned is dropped.
//
// Limits: a reply reaches the requester only through a node it is
// connected to. Reply tries the leader of the request's group, then its
// other nodes; a leader change that closed the requester's connection to
// the old leader before the reply loses it, and the Request times out.

// Request properties, as RocketMQ names them.
const (
	PropCorrelationID = "CORRELATION_ID"
	PropReplyTo       = "REPLY_TO_CLIENT"
	PropTTL           = "TTL"
	propCluster       = "CLUSTER"
	propMsgType       = "MSG_TYPE"
	propUniqKey       = "UNIQ_KEY"
)

// DefaultRequestTimeout bounds a Request (and a Reply) whose ctx has no
// deadline.
const DefaultRequestTimeout = 3 * time.Second

// ErrNoReply means a Request's reply did not come before its deadline;
// the error wraps context.DeadlineExceeded as well.
var ErrNoReply = errors.New("client: no reply")

// requests are a producer's Request calls waiting for their replies.
type requests struct {
	once    sync.Once // takes pushed replies, on the first Request
	mu      sync.Mutex
	waiting map[string]chan *MessageExt // correlation id -> its Request
}

func (r *requests) wait(corr string) chan *MessageExt {
	ch := make(chan *MessageExt, 1) // one reply; a second one is dropped
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting == nil {
		r.waiting = map[string]chan *MessageExt{}
	}
	r.waiting[corr] = ch
	return ch
}

func (r *requests) forget(corr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiting, corr)
}

// deliver hands m to the Request waiting for corr; false if none is.
func (r *requests) deliver(corr string, m *MessageExt) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.waiting[corr]
	if ch == nil {
		return false
	}
	delete(r.waiting, corr)
	ch <- m
	return true
}

// Request sends msg as a request and returns the reply a responder sent
// with Reply (or RocketMQ's reply API). It waits until ctx's deadline,
// or DefaultRequestTimeout if ctx has none; then it fails with an error
// matching ErrNoReply and context.DeadlineExceeded. The send itself
// retries as Send does, within the same budget.
func (p *Producer) Request(ctx context.Context, msg *Message) (*MessageExt, error) {
	if err := validateMessage(msg, p.cfg.MaxMessageSize); err != nil {
		return nil, err
	}
	if p.isClosed() {
		return nil, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	start := time.Now()
	deadline, _ := ctx.Deadline()
	budget := deadline.Sub(start)
	p.reqs.once.Do(func() { p.takeReplies(ctx) })

	corr := newCorrelationID()
	req := *msg
	req.Properties = maps.Clone(msg.Properties)
	if req.Properties == nil {
		req.Properties = make(map[string]string, 3)
	}
	req.Properties[PropCorrelationID] = corr
	req.Properties[PropReplyTo] = p.cfg.ClientID
	req.Properties[PropTTL] = strconv.FormatInt(max(budget.Milliseconds(), 1), 10)
	ch := p.reqs.wait(corr)
	defer p.reqs.forget(corr)
	res, err := p.Send(ctx, &req)
	if err != nil {
		if p.base.Err() != nil {
			return nil, ErrClosed // Close cut the send short
		}
		return nil, fmt.Errorf("client: request %s: %w", corr, err)
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w to request %s (message %s on %s@%s) within %v: %w",
				ErrNoReply, corr, res.MsgID, res.Topic, res.Group, budget.Round(time.Millisecond), ctx.Err())
		}
		return nil, fmt.Errorf("client: request %s: %w", corr, ctx.Err())
	case <-p.base.Done():
		return nil, ErrClosed
	}
}

// takeReplies makes p take pushed replies: on each new connection (the
// pool hook, serverreq.go), on the connections it already has, and on
// the leader of every broker group, best effort.
func (p *Producer) takeReplies(ctx context.Context) {
	p.takeServerRequest(wire.CodePushReply, p.onPushReply)
	// Connections dialled before the hook was set have neither the
	// handler nor the hello. Entries are listed after setting the hook:
	// a dial that missed it belongs to an entry listed here, and holding
	// the entry's lock waits for that dial to finish.
	p.pool.mu.Lock()
	entries := make([]*poolEntry, 0, len(p.pool.conns))
	for _, e := range p.pool.conns {
		entries = append(entries, e)
	}
	p.pool.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		c := e.conn
		e.mu.Unlock()
		if c != nil && c.Err() == nil {
			if err := p.hello(ctx, c); err != nil {
				p.log.Debug("hello on an open connection", "addr", c.RemoteAddr(), "error", err)
			}
		}
	}
	if _, err := p.router.clusterGroups(ctx); err != nil {
		p.log.Debug("listing broker groups for replies", "error", err)
		return
	}
	if err := p.sayHelloEverywhere(ctx); err != nil {
		p.log.Debug("hello to group leaders for replies", "error", err)
	}
}

// onPushReply takes a reply a broker pushed (wire.CodePushReply).
func (p *Producer) onPushReply(_ context.Context, body []byte) (any, error) {
	var pr wire.PushReply
	if err := wire.Unmarshal(body, &pr); err != nil {
		return nil, wire.Errorf(wire.CodeMalformed, "push reply: %v", err)
	}
	corr := pr.Message.Properties[PropCorrelationID]
	if !p.reqs.deliver(corr, replyExt(&pr)) {
		p.log.Debug("reply to no waiting request dropped", "correlation-id", corr, "group", pr.Group)
	}
	return wire.Empty{}, nil
}

// replyExt is a pushed reply as Request returns it: StoreTime is when
// the broker pushed it, Queue names the pushing node's group.
func replyExt(pr *wire.PushReply) *MessageExt {
	m := fromStored(&wire.StoredMessage{Message: pr.Message, StoreTime: pr.PushTime}, pr.Group)
	if m.MsgID == "" {
		m.MsgID = strings.ToUpper(pr.Message.Properties[propUniqKey])
	}
	return m
}

// Reply answers request, a message sent by Request (or by RocketMQ's
// request API) as this consumer received it, with body. It returns once
// the requester's client has taken the reply, which it drops if its
// Request gave up already. A requester connected to none of the group's
// nodes is an error.
func (c *Consumer) Reply(ctx context.Context, request *MessageExt, body []byte) error {
	return sendReply(ctx, c.router, c.pool, request, body)
}

// Reply is Consumer.Reply for a message received by a SimpleConsumer.
func (c *SimpleConsumer) Reply(ctx context.Context, request *MessageExt, body []byte) error {
	return sendReply(ctx, c.router, c.pool, request, body)
}

// Reply is Consumer.Reply for a responder that holds a Producer.
func (p *Producer) Reply(ctx context.Context, request *MessageExt, body []byte) error {
	if int64(len(body)) > p.cfg.MaxMessageSize {
		return &Error{Code: wire.CodeMessageTooLarge, Message: fmt.Sprintf("reply body is %d bytes, limit %d", len(body), p.cfg.MaxMessageSize)}
	}
	return sendReply(ctx, p.router, p.pool, request, body)
}

// sendReply sends request's reply to the leader of the group that stored
// request and, while the answer is that the requester is not connected
// there (or the node cannot be reached), to the group's other nodes.
func sendReply(ctx context.Context, r *router, pl *pool, request *MessageExt, body []byte) error {
	if request == nil {
		return invalidf("reply to a nil request")
	}
	corr, to := request.Properties[PropCorrelationID], request.Properties[PropReplyTo]
	if corr == "" || to == "" {
		return invalidf("message %s is not a request: it has no %s or %s property", request.MsgID, PropCorrelationID, PropReplyTo)
	}
	group := request.Queue.Group
	if group == "" {
		return invalidf("request %s: its Queue names no broker group", corr)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	msg := wire.Message{Body: body, BornTimestamp: time.Now().UnixMilli(), Properties: map[string]string{
		PropCorrelationID: corr, PropReplyTo: to, propMsgType: "reply",
	}}
	if ttl := request.Properties[PropTTL]; ttl != "" {
		msg.Properties[PropTTL] = ttl
	}
	if cl := request.Properties[propCluster]; cl != "" {
		msg.Topic = cl + "_REPLY_TOPIC"
	}
	addrs := r.replyAddrs(group)
	if len(addrs) == 0 {
		if err := r.refreshLeaders(ctx); err != nil {
			return fmt.Errorf("client: reply to request %s: find group %s: %w", corr, group, err)
		}
		if addrs = r.replyAddrs(group); len(addrs) == 0 {
			return fmt.Errorf("client: reply to request %s: %w: no node of group %s known", corr, ErrNoLeader, group)
		}
	}
	var errs []error
	for _, addr := range addrs {
		err := pl.call(ctx, addr, wire.CodeSendReply, wire.ReplyRequest{Message: msg}, nil)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		var e *Error
		if ctx.Err() != nil || errors.As(err, &e) && !e.Retriable {
			break // out of time, or refused as such: another node would refuse it too
		}
	}
	return fmt.Errorf("client: reply to request %s of client %s via group %s: %w", corr, to, group, errList(errs))
}

// errList is several errors on one line; errors.Is and As see each.
type errList []error

func (l errList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

func (l errList) Unwrap() []error { return l }

// replyAddrs lists group's nodes, the believed leader first.
func (r *router) replyAddrs(group string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.groups[group]
	if st == nil {
		return nil
	}
	var out []string
	if st.leader != "" {
		out = append(out, st.leader)
	}
	for _, a := range st.nodes {
		if a != st.leader {
			out = append(out, a)
		}
	}
	return out
}

// newCorrelationID returns a random UUID (version 4) as RocketMQ's
// clients make correlation ids.
func newCorrelationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
