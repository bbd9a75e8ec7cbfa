package broker

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/rmq-dev/rmq/acl"
	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/internal/metrics"
	"github.com/rmq-dev/rmq/wire"
)

// This file is the rmq wire protocol adapter: it decodes each request,
// calls the node's protocol-neutral method (node_api.go) and encodes the
// answer; errors leave through wireError. No logic of the node lives
// here, so the RocketMQ remoting protocol and the HTTP admin API can be
// adapters of their own.

// clientLockTrust is how long an rmq client trusts a granted queue lock
// (wire.LockTrust); the lock janitor never releases a lock younger than
// that (locks.go).
const clientLockTrust = wire.LockTrust

// serveWire serves the rmq wire protocol on ln until ctx ends (the node
// stops).
func (n *Node) serveWire(ctx context.Context, ln net.Listener) error {
	return wire.Serve(ctx, ln, n.handle, wire.ServerConfig{
		MaxFrame: n.cfg.MaxFrame,
		Logf:     func(msg string, kv ...any) { n.log.Warn(msg, kv...) },
		// A client pipelines sends on one connection; they join the
		// commit queue in the order they were sent (handleSend).
		InOrder: func(code uint16) bool { return code == wire.CodeSend },
	})
}

// handle serves one client request. Every error leaves through wireError,
// so clients get a stable code (and the leader's address for not-leader).
func (n *Node) handle(ctx context.Context, r *wire.Request) (any, error) {
	start := n.metrics.rpcStart()
	if n.acl != nil {
		var err error
		if ctx, err = n.authWire(ctx, r); err != nil { // acl.go
			we := n.wireError(err)
			n.metrics.served(metrics.ProtocolRMQ, int32(r.Code), int32(wireErrorOf(we).Code), start)
			return nil, we
		}
	}
	resp, err := n.dispatch(ctx, r)
	if err != nil {
		we := n.wireError(err)
		n.metrics.served(metrics.ProtocolRMQ, int32(r.Code), int32(wireErrorOf(we).Code), start)
		return nil, we
	}
	n.metrics.served(metrics.ProtocolRMQ, int32(r.Code), int32(wire.CodeOK), start)
	return resp, nil
}

func (n *Node) dispatch(ctx context.Context, r *wire.Request) (any, error) {
	switch r.Code {
	case wire.CodeSend:
		return decodeThen(r, n.handleSendStamped, ctx)
	case wire.CodeSendReply:
		return decodeThen(r, n.handleSendReply, ctx)
	case wire.CodePull:
		return decodeThen(r, n.handlePull, ctx)
	case wire.CodeCreateTopic:
		return decodeThen(r, n.handleCreateTopic, ctx)
	case wire.CodeUpdateTopic:
		return decodeThen(r, n.handleUpdateTopic, ctx)
	case wire.CodeDeleteTopic:
		return decodeThen(r, func(ctx context.Context, req *wire.TopicRequest) (any, error) {
			return wire.Empty{}, n.DeleteTopic(ctx, req.Name)
		}, ctx)
	case wire.CodeSendBack:
		return decodeThen(r, func(ctx context.Context, req *wire.SendBackRequest) (any, error) {
			res, err := n.SendBack(ctx, SendBackRequest{Group: req.Group, Topic: req.Topic, QueueID: req.QueueID,
				Offset: req.Offset, DelayLevel: req.DelayLevel, MaxReconsume: req.MaxReconsume})
			if err != nil {
				return nil, err
			}
			return &wire.SendBackResponse{DLQ: res.DLQ, Reconsume: res.Reconsume, DeliverAt: res.DeliverAt}, nil
		}, ctx)
	case wire.CodeDeadLetters:
		return decodeThen(r, func(ctx context.Context, req *wire.DeadLettersRequest) (any, error) {
			res, err := n.DeadLetters(ctx, req.Group, req.Offset, req.Max)
			if err != nil {
				return nil, err
			}
			return pullResponse(res), nil
		}, ctx)
	case wire.CodeResendDead:
		return decodeThen(r, func(ctx context.Context, req *wire.ResendDeadRequest) (any, error) {
			k, err := n.ResendDeadLetters(ctx, req.Group, req.IDs, req.All)
			if err != nil {
				return nil, err
			}
			return &wire.ResendDeadResponse{Resent: k}, nil
		}, ctx)
	case wire.CodeProducerHello:
		req := new(wire.ProducerHello)
		if err := r.Decode(req); err != nil {
			return nil, err
		}
		return n.handleProducerHello(ctx, r, req)
	case wire.CodeEndTx:
		return decodeThen(r, n.handleEndTx, ctx)
	case wire.CodeListTx:
		return decodeThen(r, n.handleListTx, ctx)
	case wire.CodeQueryMessages:
		return decodeThen(r, n.handleQueryMessages, ctx)
	case wire.CodeReceive:
		return decodeThen(r, n.handleReceive, ctx)
	case wire.CodeAck:
		return decodeThen(r, n.handleAck, ctx)
	case wire.CodeChangeInvis:
		return decodeThen(r, n.handleChangeInvisible, ctx)
	case wire.CodeListTopics:
		return n.listTopics(), nil
	case wire.CodeTopicStatus:
		return decodeThen(r, n.handleTopicStatus, ctx)
	case wire.CodeCommitOffsets:
		return decodeThen(r, n.handleCommitOffsets, ctx)
	case wire.CodeQueryOffset:
		return decodeThen(r, func(_ context.Context, req *wire.QueryOffsetRequest) (any, error) {
			off, ok := n.ConsumerOffset(req.Group, req.Topic, req.QueueID)
			return &wire.QueryOffsetResponse{Offset: off, Found: ok}, nil
		}, ctx)
	case wire.CodeSearchOffset:
		return decodeThen(r, func(_ context.Context, req *wire.SearchOffsetRequest) (any, error) {
			off, err := n.OffsetForTime(req.Topic, req.QueueID, req.Timestamp)
			return &wire.QueryOffsetResponse{Offset: off, Found: err == nil}, err
		}, ctx)
	case wire.CodeResetOffsets:
		return decodeThen(r, n.handleResetOffsets, ctx)
	case wire.CodeHeartbeat:
		return decodeThen(r, n.handleHeartbeat, ctx)
	case wire.CodeLeaveGroup:
		return decodeThen(r, func(ctx context.Context, req *wire.LeaveGroupRequest) (any, error) {
			return wire.Empty{}, n.LeaveGroup(ctx, req.Group, req.ClientID)
		}, ctx)
	case wire.CodeLockQueues:
		return decodeThen(r, n.handleLock, ctx)
	case wire.CodeUnlockQueues:
		return decodeThen(r, func(ctx context.Context, req *wire.LockRequest) (any, error) {
			return wire.Empty{}, n.UnlockQueues(ctx, req.Group, req.ClientID, queueRefs(req.Queues), false)
		}, ctx)
	case wire.CodeListGroups:
		return &wire.GroupList{Groups: n.ListGroups()}, nil
	case wire.CodeDescribeGroup:
		return decodeThen(r, n.handleDescribeGroup, ctx)
	case wire.CodeNodeStatus:
		return n.nodeStatus(), nil
	case wire.CodeTransfer:
		return decodeThen(r, func(ctx context.Context, req *wire.TransferRequest) (any, error) {
			return wire.Empty{}, n.TransferLeadership(ctx, req.To)
		}, ctx)
	case wire.CodeAddNode, wire.CodePromoteNode, wire.CodeRemoveNode: // membership.go
		return decodeThen(r, func(ctx context.Context, req *wire.MemberRequest) (any, error) {
			return n.handleMembership(ctx, r.Code, req)
		}, ctx)
	case wire.CodeListMembers:
		return n.memberList()
	}
	return nil, wire.Errorf(wire.CodeUnknownRequest, "request code %d is not served by a broker", r.Code)
}

// decodeThen decodes the request body into a fresh T and calls f with it.
func decodeThen[T any](r *wire.Request, f func(context.Context, *T) (any, error), ctx context.Context) (any, error) {
	req := new(T)
	if err := r.Decode(req); err != nil {
		return nil, err
	}
	if err := authorizeWire(ctx, r.Code, req); err != nil { // acl.go; nil when access control is off
		return nil, err
	}
	return f(ctx, req)
}

// wireError maps broker, fsm and context errors to wire error codes; a
// not-leader answer carries the leader's client address.
func (n *Node) wireError(err error) error {
	we := wireErrorOf(err)
	var nl *NotLeaderError
	if we.Code == wire.CodeNotLeader && errors.As(err, &nl) && nl.LeaderID != "" {
		we.Leader, _ = n.fsm.NodeAddr(nl.LeaderID)
	}
	return we
}

// wireErrorOf maps err to its wire error (without the leader's address).
func wireErrorOf(err error) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	code := wire.CodeInternal
	body := wire.ErrorBody{Message: err.Error()}
	var nl *NotLeaderError
	var om *OffsetMovedError
	var oi *OffsetIllegalError
	switch {
	case errors.As(err, &nl):
		code = wire.CodeNotLeader
	case errors.As(err, &om):
		code, body.MinOffset, body.MaxOffset = wire.CodeOffsetMoved, om.Min, om.Max
	case errors.As(err, &oi):
		code, body.MinOffset, body.MaxOffset = wire.CodeOffsetIllegal, oi.Min, oi.Max
	case errors.Is(err, ErrIndeterminate):
		code = wire.CodeIndeterminate
	case errors.Is(err, ErrLeaderNotReady):
		code = wire.CodeLeaderNotReady
	case errors.Is(err, ErrDiskFull):
		code = wire.CodeDiskFull
	case errors.Is(err, ErrClosed):
		code = wire.CodeUnavailable
	case errors.Is(err, ErrTopicNotFound), errors.Is(err, fsm.ErrTopicNotFound), errors.Is(err, fsm.ErrQueueNotFound):
		code = wire.CodeTopicNotFound
	case errors.Is(err, ErrTopicExists):
		code = wire.CodeTopicExists
	case errors.Is(err, ErrMessageTooLarge):
		code = wire.CodeMessageTooLarge
	case errors.Is(err, ErrNoPermission):
		code = wire.CodeNoPermission
	case errors.Is(err, acl.ErrDenied):
		code = wire.CodeAccessDenied
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, fsm.ErrQueueShrink), errors.Is(err, fsm.ErrInvalidCommand):
		code = wire.CodeInvalidArgument
	case errors.Is(err, fsm.ErrStaleEpoch):
		code = wire.CodeStaleEpoch
	case errors.Is(err, ErrGroupModeMismatch):
		code = wire.CodeGroupModeMismatch
	case errors.Is(err, ErrReceiptHandle):
		code = wire.CodeReceiptHandle
	case errors.Is(err, context.DeadlineExceeded):
		code = wire.CodeTimeout
	}
	return &wire.Error{Code: code, ErrorBody: body}
}

func (n *Node) handleSend(ctx context.Context, req *wire.SendRequest) (any, error) {
	msgs := make([]*fsm.Message, len(req.Messages))
	for i := range req.Messages {
		m := &req.Messages[i]
		msgs[i] = &fsm.Message{
			Topic: m.Topic, QueueID: m.QueueID, Flag: m.Flag, BornTimestamp: m.BornTimestamp,
			ID: m.ID, Tags: m.Tags, Keys: m.Keys, Properties: m.Properties, Body: m.Body,
		}
	}
	// Per-message refusals (unknown or read-only topic, too large) come
	// back in the results, unless the request is atomic; the error is for
	// the whole request.
	opts := SendOptions{
		AutoCreateQueues: req.AutoCreateQueues, AutoCreateTopics: req.AutoTopics, Atomic: req.Atomic,
		Timeout: time.Duration(req.TimeoutMillis) * time.Millisecond, Allow: pubCheck(ctx),
	}
	if o := wire.OrderOf(ctx); o != nil { // CodeSend is in order (serveWire)
		opts.Order = o
	}
	results, err := n.SendWith(ctx, msgs, opts)
	if err != nil {
		return nil, err
	}
	resp := &wire.SendResponse{Results: make([]wire.SendResult, len(results))}
	for i, r := range results {
		resp.Results[i] = wire.SendResult{QueueID: r.QueueID, QueueOffset: r.QueueOffset, RaftIndex: r.RaftIndex, StoreTime: r.StoreTime, Duplicate: r.Duplicate}
		if r.Delayed {
			resp.Results[i].DeliverAt = r.DeliverAt
		}
		if r.Half {
			resp.Results[i].Half, resp.Results[i].Pos = true, r.Pos
		}
		if r.Err != nil {
			we := n.wireError(r.Err).(*wire.Error) //nolint:errorlint // wireError always returns a *wire.Error itself
			resp.Results[i].ErrorCode, resp.Results[i].Error = we.Code, we.Message
		}
	}
	return resp, nil
}

// wireFilter is a request's filter: SQL92 if given, else tags.
func wireFilter(tags, sql string) (*TagFilter, error) {
	if sql != "" {
		return ParseSQLFilter(sql)
	}
	return ParseTagFilter(tags), nil
}

func (n *Node) handlePull(ctx context.Context, req *wire.PullRequest) (any, error) {
	filter, err := wireFilter(req.Tags, req.SQL)
	if err != nil {
		return nil, err
	}
	res, err := n.Read(ctx, ReadRequest{
		Topic: req.Topic, QueueID: req.QueueID, Offset: req.Offset, Group: req.ConsumerGroup,
		MaxMessages: req.MaxMessages, MaxBytes: req.MaxBytes,
		Wait: time.Duration(req.WaitMillis) * time.Millisecond, Filter: filter,
	})
	if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() == nil) {
		return nil, err
	}
	return pullResponse(res), nil
}

// pullResponse is res on the wire.
func pullResponse(res ReadResult) *wire.PullResponse {
	resp := &wire.PullResponse{
		Messages:   make([]wire.StoredMessage, len(res.Messages)),
		NextOffset: res.NextOffset, MinOffset: res.MinOffset, MaxOffset: res.MaxOffset,
	}
	for i, m := range res.Messages {
		resp.Messages[i] = wire.StoredMessage{
			Message: wire.Message{
				Topic: m.Topic, QueueID: m.QueueID, Flag: m.Flag, Tags: m.Tags, Keys: m.Keys,
				Properties: m.Properties, Body: m.Body, ID: m.ID, BornTimestamp: m.BornTimestamp,
			},
			QueueOffset: m.QueueOffset, StoreTime: m.StoreTime, RaftIndex: m.RaftIndex,
		}
		if r := m.Retry; r != nil {
			sm := &resp.Messages[i]
			sm.Reconsume, sm.OriginTopic, sm.OriginQueue, sm.OriginOffset = r.Reconsume, r.OriginTopic, r.OriginQueue, r.OriginOffset
		}
	}
	return resp
}

func (n *Node) handleCreateTopic(ctx context.Context, req *wire.TopicRequest) (any, error) {
	t, err := n.CreateTopic(ctx, TopicSpec{Name: req.Name, Queues: req.Queues, Perm: req.Perm})
	if err != nil {
		return nil, err
	}
	return topicInfo(t), nil
}

func (n *Node) handleUpdateTopic(ctx context.Context, req *wire.TopicRequest) (any, error) {
	// On the wire Queues and Perm are 0 for "keep", as in TopicUpdate.
	t, err := n.UpdateTopic(ctx, TopicUpdate{Name: req.Name, Queues: req.Queues, Perm: req.Perm})
	if err != nil {
		return nil, err
	}
	return topicInfo(t), nil
}

func topicInfo(t fsm.Topic) *wire.TopicInfo {
	return &wire.TopicInfo{Name: t.Name, Queues: t.Queues, Perm: t.Perm, CreatedAt: t.CreatedAt}
}

func (n *Node) listTopics() *wire.TopicList {
	ts := n.Topics()
	out := &wire.TopicList{Topics: make([]wire.TopicInfo, len(ts))}
	for i, t := range ts {
		out.Topics[i] = *topicInfo(t)
	}
	return out
}

func (n *Node) handleTopicStatus(_ context.Context, req *wire.TopicRequest) (any, error) {
	ts, err := n.TopicStatus(req.Name)
	if err != nil {
		return nil, err
	}
	st := &wire.TopicStatus{Topic: *topicInfo(ts.Topic)}
	for _, q := range ts.Queues {
		st.Queues = append(st.Queues, wire.QueueStatus{QueueID: q.QueueID, MinOffset: q.MinOffset, MaxOffset: q.MaxOffset,
			LastStoreTime: q.LastStoreTime, Delayed: q.Delayed})
	}
	return st, nil
}

func (n *Node) handleCommitOffsets(ctx context.Context, req *wire.CommitOffsetsRequest) (any, error) {
	offs := make([]fsm.OffsetEntry, len(req.Offsets))
	for i, o := range req.Offsets {
		offs[i] = fsm.OffsetEntry{Topic: o.Topic, QueueID: o.QueueID, Offset: o.Offset}
	}
	return wire.Empty{}, n.CommitOffsets(ctx, req.Group, offs, req.ResetEpoch)
}

func (n *Node) handleResetOffsets(ctx context.Context, req *wire.ResetOffsetsRequest) (any, error) {
	offs, err := n.ResetOffsets(ctx, req.Group, req.Topic, req.Timestamp)
	if err != nil {
		return nil, err
	}
	resp := &wire.ResetOffsetsResponse{}
	for _, o := range offs {
		resp.Offsets = append(resp.Offsets, wire.QueueOffset{Topic: o.Topic, QueueID: o.QueueID, Offset: o.Offset})
	}
	return resp, nil
}

func (n *Node) handleHeartbeat(ctx context.Context, req *wire.HeartbeatRequest) (any, error) {
	res, err := n.Heartbeat(ctx, HeartbeatRequest{Group: req.Group, ClientID: req.ClientID, Mode: req.Mode, Topics: req.Topics})
	if err != nil {
		return nil, err
	}
	return &wire.HeartbeatResponse{Members: res.Members, ResetEpoch: res.ResetEpoch}, nil
}

func (n *Node) handleLock(ctx context.Context, req *wire.LockRequest) (any, error) {
	held, err := n.LockQueues(ctx, req.Group, req.ClientID, queueRefs(req.Queues))
	if err != nil {
		return nil, err
	}
	resp := &wire.LockResponse{Locked: make([]wire.QueueOffset, len(held))}
	for i, q := range held {
		resp.Locked[i] = wire.QueueOffset{Topic: q.Topic, QueueID: q.QueueID}
	}
	return resp, nil
}

func queueRefs(qs []wire.QueueOffset) []fsm.QueueRef {
	out := make([]fsm.QueueRef, len(qs))
	for i, q := range qs {
		out[i] = fsm.QueueRef{Topic: q.Topic, QueueID: q.QueueID}
	}
	return out
}

func (n *Node) handleDescribeGroup(_ context.Context, req *wire.DescribeGroupRequest) (any, error) {
	g, err := n.DescribeGroup(req.Group)
	if err != nil {
		return nil, err
	}
	d := &wire.GroupDescription{Group: g.Group, Mode: g.Mode, Members: g.Members, PendingRetries: g.PendingRetries, DeadLetters: g.DeadLetters}
	for _, q := range g.Queues {
		d.Queues = append(d.Queues, wire.GroupQueue{Topic: q.Topic, QueueID: q.QueueID, BrokerOffset: q.BrokerOffset,
			ConsumerOffset: q.ConsumerOffset, Lag: q.Lag, Owner: q.Owner, InFlight: q.InFlight, Visible: q.Visible})
	}
	return d, nil
}

func (n *Node) nodeStatus() *wire.NodeStatus {
	st := n.Status()
	return &wire.NodeStatus{
		Cluster: n.cfg.Cluster, Group: st.Group, NodeID: st.NodeID, Addr: n.ClientAddr(),
		RaftAddr: string(n.trans.LocalAddr()), Role: st.Role(), Serving: st.Serving, LeaderID: st.LeaderID,
		Term: st.Term, CommitIndex: st.CommitIndex, CommitUnknown: st.CommitUnknown, AppliedIndex: st.AppliedIndex,
		FirstIndex: st.FirstIndex, LastIndex: st.LastIndex, LogBytes: st.LogBytes,
		DiskUsed: st.Disk.FSUsed, DiskTotal: st.Disk.FSTotal, DataBytes: st.Disk.DataBytes,
		LastPurge: purgeStatus(st.LastPurge), Suffrage: n.suffrage(), DiskFull: st.DiskFull,
	}
}

func purgeStatus(p *PurgeRecord) *wire.PurgeStatus {
	if p == nil {
		return nil
	}
	return &wire.PurgeStatus{AtMillis: p.At.UnixMilli(), Reason: p.Reason, Segments: p.Segments, Bytes: p.Bytes,
		FromIndex: p.FromIndex, ToIndex: p.ToIndex}
}
