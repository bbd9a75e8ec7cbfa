package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/rmq-dev/rmq/client/wire"
	"github.com/rmq-dev/rmq/fsm"
)

// serveClients runs the client protocol server until the node stops.
func (n *Node) serveClients(ln net.Listener) {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-n.stopCh; cancel() }() // ends with the node
	err := wire.Serve(ctx, ln, n.handle, wire.ServerConfig{
		MaxFrame: n.cfg.MaxFrame,
		Logf:     func(msg string, kv ...any) { n.log.Warn(msg, kv...) },
	})
	if err != nil {
		n.log.Error("client server stopped", "error", err)
	}
}

// handle serves one client request. Every error leaves through wireError,
// so clients get a stable code (and the leader's address for not-leader).
func (n *Node) handle(ctx context.Context, r *wire.Request) (any, error) {
	resp, err := n.dispatch(ctx, r)
	if err != nil {
		return nil, n.wireError(err)
	}
	return resp, nil
}

func (n *Node) dispatch(ctx context.Context, r *wire.Request) (any, error) {
	switch r.Code {
	case wire.CodeSend:
		return decodeThen(r, n.handleSend, ctx)
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
		return n.listGroups(), nil
	case wire.CodeDescribeGroup:
		return decodeThen(r, n.handleDescribeGroup, ctx)
	case wire.CodeNodeStatus:
		return n.nodeStatus(), nil
	case wire.CodeTransfer:
		return decodeThen(r, func(ctx context.Context, req *wire.TransferRequest) (any, error) {
			return wire.Empty{}, n.TransferLeadership(ctx, req.To)
		}, ctx)
	}
	return nil, wire.Errorf(wire.CodeUnknownRequest, "request code %d is not served by a broker", r.Code)
}

// decodeThen decodes the request body into a fresh T and calls f with it.
func decodeThen[T any](r *wire.Request, f func(context.Context, *T) (any, error), ctx context.Context) (any, error) {
	req := new(T)
	if err := r.Decode(req); err != nil {
		return nil, err
	}
	return f(ctx, req)
}

// wireError maps broker, fsm and context errors to wire error codes.
func (n *Node) wireError(err error) error {
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
		if nl.LeaderID != "" {
			body.Leader, _ = n.fsm.NodeAddr(nl.LeaderID)
		}
	case errors.As(err, &om):
		code, body.MinOffset, body.MaxOffset = wire.CodeOffsetMoved, om.Min, om.Max
	case errors.As(err, &oi):
		code, body.MinOffset, body.MaxOffset = wire.CodeOffsetIllegal, oi.Min, oi.Max
	case errors.Is(err, ErrIndeterminate):
		code = wire.CodeIndeterminate
	case errors.Is(err, ErrLeaderNotReady):
		code = wire.CodeLeaderNotReady
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
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, fsm.ErrQueueShrink), errors.Is(err, fsm.ErrInvalidCommand):
		code = wire.CodeInvalidArgument
	case errors.Is(err, fsm.ErrStaleEpoch):
		code = wire.CodeStaleEpoch
	case errors.Is(err, context.DeadlineExceeded):
		code = wire.CodeTimeout
	}
	return &wire.Error{Code: code, ErrorBody: body}
}

func (n *Node) handleSend(ctx context.Context, req *wire.SendRequest) (any, error) {
	if len(req.Messages) == 0 {
		return nil, fmt.Errorf("%w: a send needs at least one message", ErrInvalidArgument)
	}
	// Leadership first: a follower that is still catching up may not know
	// the topic yet, and must say "not leader", never "topic not found".
	if err := n.checkWritable(); err != nil {
		return nil, err
	}
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
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
	results, err := n.send(ctx, msgs, autoCreate{queues: req.AutoCreateQueues, topics: req.AutoTopics}, req.Atomic)
	if err != nil {
		return nil, err
	}
	resp := &wire.SendResponse{Results: make([]wire.SendResult, len(results))}
	for i, r := range results {
		resp.Results[i] = wire.SendResult{QueueID: r.QueueID, QueueOffset: r.QueueOffset, RaftIndex: r.RaftIndex, StoreTime: r.StoreTime}
		if r.Err != nil {
			we := n.wireError(r.Err).(*wire.Error) //nolint:errorlint // wireError always returns a *wire.Error itself
			resp.Results[i].ErrorCode, resp.Results[i].Error = we.Code, we.Message
		}
	}
	return resp, nil
}

// autoCreate creates topic for a send that asked for it (RocketMQ's
// autoCreateTopicEnable path), or reports it missing (ErrTopicNotFound).
func (n *Node) autoCreate(ctx context.Context, topic string, queues uint32) error {
	if queues == 0 || n.cfg.DisableAutoCreate {
		why := "the send did not ask for auto-creation"
		if n.cfg.DisableAutoCreate {
			why = "auto-creation is disabled on this broker"
		}
		if err := ValidateTopicName(topic); err != nil {
			return err
		}
		return fmt.Errorf("%w: %q (%s)", ErrTopicNotFound, topic, why)
	}
	_, err := n.CreateTopic(ctx, TopicSpec{Name: topic, Queues: min(queues, fsm.MaxQueues)})
	if err != nil && !errors.Is(err, ErrTopicExists) {
		return err
	}
	if err == nil {
		n.log.Info("auto-created topic", "topic", topic, "queues", queues)
		n.pokeRegistration()
	}
	return nil
}

func (n *Node) handlePull(ctx context.Context, req *wire.PullRequest) (any, error) {
	if err := ValidateTopicName(req.Topic); err != nil {
		return nil, err
	}
	wait := min(time.Duration(req.WaitMillis)*time.Millisecond, n.cfg.LongPollMax)
	res, err := n.Read(ctx, ReadRequest{
		Topic: req.Topic, QueueID: req.QueueID, Offset: req.Offset,
		MaxMessages: req.MaxMessages, MaxBytes: req.MaxBytes, Wait: wait, Filter: ParseTagFilter(req.Tags),
	})
	if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() == nil) {
		return nil, err
	}
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
	}
	return resp, nil
}

func (n *Node) handleCreateTopic(ctx context.Context, req *wire.TopicRequest) (any, error) {
	t, err := n.CreateTopic(ctx, TopicSpec{Name: req.Name, Queues: req.Queues, Perm: req.Perm})
	if err != nil {
		return nil, err
	}
	n.pokeRegistration()
	return topicInfo(t), nil
}

func (n *Node) handleUpdateTopic(ctx context.Context, req *wire.TopicRequest) (any, error) {
	// On the wire Queues and Perm are 0 for "keep".
	t, err := n.UpdateTopic(ctx, TopicUpdate{Name: req.Name, Queues: req.Queues, Perm: req.Perm})
	if err != nil {
		return nil, err
	}
	n.pokeRegistration()
	return topicInfo(t), nil
}

func topicInfo(t fsm.Topic) *wire.TopicInfo {
	return &wire.TopicInfo{Name: t.Name, Queues: t.Queues, Perm: t.Perm, CreatedAt: t.CreatedAt}
}

func (n *Node) listTopics() *wire.TopicList {
	ts := n.fsm.Topics()
	out := &wire.TopicList{Topics: make([]wire.TopicInfo, len(ts))}
	for i, t := range ts {
		out.Topics[i] = *topicInfo(t)
	}
	return out
}

func (n *Node) handleTopicStatus(_ context.Context, req *wire.TopicRequest) (any, error) {
	t, ok := n.fsm.Topic(req.Name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicNotFound, req.Name)
	}
	st := &wire.TopicStatus{Topic: *topicInfo(t)}
	for q := uint32(0); q < t.Queues; q++ {
		min, next, err := n.QueueRange(t.Name, q)
		if err != nil {
			return nil, err
		}
		qs := wire.QueueStatus{QueueID: q, MinOffset: min, MaxOffset: next}
		if next > min {
			if u, err := n.fsm.Units(t.Name, q, next-1, 1, nil); err == nil && len(u) == 1 {
				qs.LastStoreTime = u[0].StoreTime
			}
		}
		st.Queues = append(st.Queues, qs)
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

// handleResetOffsets moves a group to the first message stored at or after
// a time in every queue of a topic, and bumps the group's reset epoch so
// live members re-read the committed offsets instead of overwriting them.
func (n *Node) handleResetOffsets(ctx context.Context, req *wire.ResetOffsetsRequest) (any, error) {
	if err := ValidateGroupName(req.Group); err != nil {
		return nil, err
	}
	t, ok := n.fsm.Topic(req.Topic)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicNotFound, req.Topic)
	}
	resp := &wire.ResetOffsetsResponse{}
	cmd := &fsm.CommitOffsets{Group: req.Group, Reset: true}
	for q := uint32(0); q < t.Queues; q++ {
		off, err := n.OffsetForTime(t.Name, q, req.Timestamp)
		if err != nil {
			return nil, err
		}
		cmd.Offsets = append(cmd.Offsets, fsm.OffsetEntry{Topic: t.Name, QueueID: q, Offset: off})
		resp.Offsets = append(resp.Offsets, wire.QueueOffset{Topic: t.Name, QueueID: q, Offset: off})
	}
	return resp, n.applyCommand(ctx, cmd)
}

func (n *Node) handleHeartbeat(_ context.Context, req *wire.HeartbeatRequest) (any, error) {
	if err := ValidateGroupName(req.Group); err != nil {
		return nil, err
	}
	if err := n.checkWritable(); err != nil {
		return nil, err
	}
	members, err := n.groups.heartbeat(req)
	if err != nil {
		return nil, err
	}
	return &wire.HeartbeatResponse{Members: members, ResetEpoch: n.fsm.GroupResetEpoch(req.Group)}, nil
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

func (n *Node) listGroups() *wire.GroupList {
	seen := map[string]bool{}
	for _, g := range n.fsm.Groups() {
		seen[g] = true
	}
	for _, g := range n.groups.liveGroups() {
		seen[g] = true
	}
	return &wire.GroupList{Groups: sortedKeys(seen)}
}

// handleDescribeGroup reports a group's progress on every queue of every
// topic it has offsets for or that a live member subscribes to.
func (n *Node) handleDescribeGroup(_ context.Context, req *wire.DescribeGroupRequest) (any, error) {
	mode, members := n.groups.describe(req.Group)
	owners := n.queueOwners(req.Group)
	topics := map[string]bool{}
	for _, o := range n.fsm.GroupOffsets(req.Group) {
		topics[o.Topic] = true
	}
	for _, t := range n.groups.memberTopics(req.Group) {
		topics[t] = true
	}
	if len(topics) == 0 && len(members) == 0 {
		return nil, wire.Errorf(wire.CodeInvalidArgument, "group %q has no offsets and no live members", req.Group)
	}
	d := &wire.GroupDescription{Group: req.Group, Mode: mode, Members: members}
	for _, name := range sortedKeys(topics) {
		t, ok := n.fsm.Topic(name)
		if !ok {
			continue
		}
		for q := uint32(0); q < t.Queues; q++ {
			_, next, err := n.QueueRange(name, q)
			if err != nil {
				return nil, err
			}
			off, _ := n.ConsumerOffset(req.Group, name, q)
			gq := wire.GroupQueue{Topic: name, QueueID: q, BrokerOffset: next, ConsumerOffset: off,
				Owner: owners[fsm.QueueRef{Topic: name, QueueID: q}]}
			if next > off {
				gq.Lag = next - off
			}
			d.Queues = append(d.Queues, gq)
		}
	}
	return d, nil
}

func (n *Node) nodeStatus() *wire.NodeStatus {
	st := n.Status()
	role := strings.ToLower(st.State)
	if role == "leader" && !st.Serving {
		role = "candidate" // elected but still applying earlier terms
	}
	return &wire.NodeStatus{
		Cluster: n.cfg.Cluster, Group: st.Group, NodeID: st.NodeID, Addr: n.ClientAddr(),
		RaftAddr: string(n.trans.LocalAddr()), Role: role, Serving: st.Serving, LeaderID: st.LeaderID,
		Term: st.Term, CommitIndex: st.CommitIndex, CommitUnknown: st.CommitUnknown, AppliedIndex: st.AppliedIndex,
		FirstIndex: st.FirstIndex, LastIndex: st.LastIndex, LogBytes: st.LogBytes,
		DiskUsed: st.Disk.FSUsed, DiskTotal: st.Disk.FSTotal, DataBytes: st.Disk.DataBytes,
		LastPurge: purgeStatus(st.LastPurge),
	}
}

func purgeStatus(p *PurgeRecord) *wire.PurgeStatus {
	if p == nil {
		return nil
	}
	return &wire.PurgeStatus{AtMillis: p.At.UnixMilli(), Reason: p.Reason, Segments: p.Segments, Bytes: p.Bytes,
		FromIndex: p.FromIndex, ToIndex: p.ToIndex}
}
