package broker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/fsm"
)

// remotingClients is what the remoting adapter knows of its RocketMQ
// clients, all of it soft state rebuilt by their next heartbeat: which
// connection each consumer heartbeats on (to push
// NOTIFY_CONSUMER_IDS_CHANGED and to drop the member when the connection
// closes), each group's subscriptions (RocketMQ clients pull without
// repeating them) and each producer group's connections (for transaction
// check-back). Group membership itself is the node's (groups.go).
type remotingClients struct {
	n *Node

	hostOnce sync.Once
	host     netip.AddrPort // storeHost

	mu        sync.Mutex                               // leaf lock
	consumers map[string]map[string]*compat.ServerConn // group -> client ID -> its connection
	subs      map[string]map[string]remotingSub        // group -> topic -> subscription
	producers map[string]map[uint64]*compat.ServerConn // producer group -> connection ID -> connection
	members   map[string][]string                      // group -> members at the last notification
	from      map[string]string                        // group -> consumeFromWhere of its latest heartbeat
}

// remotingSub is one subscription of a consumer group.
type remotingSub struct {
	expr string // tag expression, "*" for all
	typ  string // "TAG" (SQL92 is refused at pull)
}

func newRemotingClients(n *Node) *remotingClients {
	return &remotingClients{
		n:         n,
		consumers: map[string]map[string]*compat.ServerConn{},
		subs:      map[string]map[string]remotingSub{},
		producers: map[string]map[uint64]*compat.ServerConn{},
		members:   map[string][]string{},
		from:      map[string]string{},
	}
}

// consumeFrom is group's consumeFromWhere as its latest heartbeat said.
func (rc *remotingClients) consumeFrom(group string) string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.from[group]
}

func (rc *remotingClients) subscription(group, topic string) (remotingSub, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	s, ok := rc.subs[group][topic]
	return s, ok
}

// connClosed drops every consumer that heartbeat on c (releasing its queue
// locks on the leader) and tells the remaining members of their groups,
// as RocketMQ's broker does when a channel closes.
func (rc *remotingClients) connClosed(c *compat.ServerConn) {
	type gone struct{ group, client string }
	var left []gone
	rc.mu.Lock()
	for group, cs := range rc.consumers {
		for id, conn := range cs {
			if conn == c {
				delete(cs, id)
				left = append(left, gone{group, id})
			}
		}
		if len(cs) == 0 {
			delete(rc.consumers, group)
		}
	}
	for group, ps := range rc.producers {
		delete(ps, c.ID())
		if len(ps) == 0 {
			delete(rc.producers, group)
		}
	}
	rc.mu.Unlock()
	if len(left) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	groups := map[string]bool{}
	for _, g := range left {
		// Locks are released by the leader; elsewhere it answers
		// not-leader after forgetting the member, which is all we need.
		if err := rc.n.LeaveGroup(ctx, g.group, g.client); err != nil && !errors.Is(err, ErrNotLeader) {
			rc.n.log.Warn("remoting: releasing a departed consumer's locks", "group", g.group, "client", g.client, "error", err)
		}
		groups[g.group] = true
	}
	for group := range groups {
		rc.notifyIfChanged(group)
	}
}

// notifyIfChanged pushes NOTIFY_CONSUMER_IDS_CHANGED to every RocketMQ
// member of group if its live members differ from the last notification.
// Only the serving leader notifies: every node hears the same heartbeats,
// and one rebalance per change is enough.
func (rc *remotingClients) notifyIfChanged(group string) {
	members := rc.n.GroupMembers(group)
	rc.mu.Lock()
	changed := !slices.Equal(rc.members[group], members)
	if len(members) == 0 {
		delete(rc.members, group)
	} else {
		rc.members[group] = members
	}
	var conns []*compat.ServerConn
	if changed {
		for _, c := range rc.consumers[group] {
			conns = append(conns, c)
		}
	}
	rc.mu.Unlock()
	if !changed || rc.n.checkWritable() != nil {
		return
	}
	for _, c := range conns {
		req := compat.NewRequest(compat.ReqNotifyConsumerIDsChanged, map[string]string{"consumerGroup": group}, nil)
		if err := c.InvokeOneway(req); err != nil {
			rc.n.log.Debug("remoting: notify consumer ids changed", "group", group, "remote", c.RemoteAddr(), "error", err)
		}
	}
}

// messageModes maps RocketMQ's messageModel (Java "CLUSTERING", Go
// "Clustering"; "BROADCASTING" / "BroadCasting") to rmq's modes.
func messageMode(model string) (string, error) {
	switch strings.ToUpper(model) {
	case "CLUSTERING", "":
		return ModeClustering, nil
	case "BROADCASTING":
		return ModeBroadcasting, nil
	}
	return "", fmt.Errorf("%w: messageModel %q; want CLUSTERING or BROADCASTING", ErrInvalidArgument, model)
}

func (n *Node) remotingHeartbeat(ctx context.Context, c *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	var hb compat.HeartbeatData
	if err := compat.DecodeJSON(req.Body, &hb); err != nil {
		return nil, fmt.Errorf("%w: heartbeat body: %w", ErrInvalidArgument, err)
	}
	if hb.ClientID == "" {
		return nil, fmt.Errorf("%w: heartbeat without a clientID", ErrInvalidArgument)
	}
	rc := n.remoting
	rc.mu.Lock()
	for _, p := range hb.ProducerDataSet {
		if p.GroupName == "" {
			continue
		}
		if rc.producers[p.GroupName] == nil {
			rc.producers[p.GroupName] = map[uint64]*compat.ServerConn{}
		}
		rc.producers[p.GroupName][c.ID()] = c
	}
	rc.mu.Unlock()
	for _, cd := range hb.ConsumerDataSet {
		if err := n.remotingConsumerHeartbeat(ctx, c, hb.ClientID, cd); err != nil {
			return nil, err
		}
	}
	return ok(req), nil
}

func (n *Node) remotingConsumerHeartbeat(ctx context.Context, c *compat.ServerConn, clientID string, cd compat.ConsumerData) error {
	mode, err := messageMode(cd.MessageModel)
	if err != nil {
		return err
	}
	topics := make([]string, 0, len(cd.SubscriptionDataSet))
	subs := map[string]remotingSub{}
	for _, s := range cd.SubscriptionDataSet {
		topics = append(topics, s.Topic)
		subs[s.Topic] = remotingSub{expr: s.SubString, typ: s.ExpressionType}
	}
	if _, err := n.Heartbeat(ctx, HeartbeatRequest{
		Group: cd.GroupName, ClientID: clientID, Mode: mode, Topics: topics,
		TTL: remotingMemberTTL, AnyNode: true,
	}); err != nil {
		return err
	}
	rc := n.remoting
	rc.mu.Lock()
	if rc.consumers[cd.GroupName] == nil {
		rc.consumers[cd.GroupName] = map[string]*compat.ServerConn{}
	}
	rc.consumers[cd.GroupName][clientID] = c
	rc.subs[cd.GroupName] = subs // the latest heartbeat's subscriptions win, as in RocketMQ
	rc.from[cd.GroupName] = cd.ConsumeFromWhere
	rc.mu.Unlock()
	if mode == ModeClustering {
		n.ensureRetryTopic(ctx, cd.GroupName)
	}
	rc.notifyIfChanged(cd.GroupName)
	return nil
}

// ensureRetryTopic creates %RETRY%group (one queue) on the leader when a
// clustering group first heartbeats, as RocketMQ does: its clients
// subscribe to it and look its route up.
func (n *Node) ensureRetryTopic(ctx context.Context, group string) {
	name := "%RETRY%" + group
	if _, ok := n.Topic(name); ok || n.checkWritable() != nil {
		return
	}
	if _, err := n.createTopic(ctx, TopicSpec{Name: name, Queues: 1}, false); err != nil && !errors.Is(err, ErrTopicExists) {
		n.log.Warn("remoting: creating retry topic", "topic", name, "error", err)
	}
}

func (n *Node) remotingUnregister(ctx context.Context, c *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	clientID := h.str("clientID")
	group := h.optStr("consumerGroup")
	if h.err != nil {
		return nil, h.err
	}
	if group != "" {
		rc := n.remoting
		rc.mu.Lock()
		if cs := rc.consumers[group]; cs[clientID] == c {
			delete(cs, clientID)
		}
		rc.mu.Unlock()
		if err := n.LeaveGroup(ctx, group, clientID); err != nil && !errors.Is(err, ErrNotLeader) {
			return nil, err
		}
		rc.notifyIfChanged(group)
	}
	return ok(req), nil
}

func (n *Node) remotingConsumerList(_ context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	group := h.str("consumerGroup")
	if h.err != nil {
		return nil, h.err
	}
	members := n.GroupMembers(group)
	if len(members) == 0 {
		return compat.NewResponse(req, compat.RespSystemError, "no consumer for this group, "+group), nil
	}
	body, err := jsonBody(compat.ConsumerList{ConsumerIDList: members})
	if err != nil {
		return nil, err
	}
	resp := ok(req)
	resp.Body = body
	return resp, nil
}

func lockTargets(mqs []compat.MessageQueue) ([]fsm.QueueRef, map[fsm.QueueRef]compat.MessageQueue, error) {
	refs := make([]fsm.QueueRef, 0, len(mqs))
	byRef := make(map[fsm.QueueRef]compat.MessageQueue, len(mqs))
	for _, mq := range mqs {
		if mq.QueueID < 0 || mq.QueueID > fsm.MaxQueues {
			return nil, nil, fmt.Errorf("%w: queue %d of topic %q", ErrInvalidArgument, mq.QueueID, mq.Topic)
		}
		ref := fsm.QueueRef{Topic: mq.Topic, QueueID: uint32(mq.QueueID)}
		refs = append(refs, ref)
		byRef[ref] = mq
	}
	return refs, byRef, nil
}

func (n *Node) remotingLock(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	var lr compat.LockBatchRequest
	if err := compat.DecodeJSON(req.Body, &lr); err != nil {
		return nil, fmt.Errorf("%w: lock body: %w", ErrInvalidArgument, err)
	}
	refs, byRef, err := lockTargets(lr.MQSet)
	if err != nil {
		return nil, err
	}
	granted, err := n.LockQueues(ctx, lr.ConsumerGroup, lr.ClientID, refs)
	if err != nil {
		return nil, err
	}
	out := compat.LockBatchResponse{LockOKMQSet: make([]compat.MessageQueue, 0, len(granted))}
	for _, g := range granted {
		if mq, ok := byRef[g]; ok {
			out.LockOKMQSet = append(out.LockOKMQSet, mq)
		}
	}
	body, err := jsonBody(out)
	if err != nil {
		return nil, err
	}
	resp := ok(req)
	resp.Body = body
	return resp, nil
}

func (n *Node) remotingUnlock(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	var lr compat.LockBatchRequest
	if err := compat.DecodeJSON(req.Body, &lr); err != nil {
		return nil, fmt.Errorf("%w: unlock body: %w", ErrInvalidArgument, err)
	}
	refs, _, err := lockTargets(lr.MQSet)
	if err != nil {
		return nil, err
	}
	if err := n.UnlockQueues(ctx, lr.ConsumerGroup, lr.ClientID, refs, false); err != nil {
		return nil, err
	}
	return ok(req), nil
}
