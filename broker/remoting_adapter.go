package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/rmq-dev/rmq/acl"
	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/internal/metrics"
)

// This file is the RocketMQ remoting adapter (RocketMQ 4.x clients, see
// package compat): like wire_adapter.go it decodes a request, calls the
// node's protocol-neutral method (node_api.go) and encodes the answer.
// The send and pull conversions are in remoting_messages.go, the client
// registry (heartbeats, subscriptions, notifications, locks) in
// remoting_clients.go. Which features are served is the table in
// compat/doc.go.

// remotingMemberTTL is how long a RocketMQ consumer stays a live member
// after its last heartbeat (RocketMQ's channelExpiredTimeout): its clients
// heartbeat every 30 s, not every second as rmq's do. A closed connection
// removes its members at once.
const remotingMemberTTL = 120 * time.Second

// serveClientPort serves the client port: rmq's own protocol and RocketMQ
// remoting share it, told apart by the first bytes of each connection
// (compat.Sniff), so RocketMQ applications need no port of their own.
func (n *Node) serveClientPort(ctx context.Context, ln net.Listener) error {
	mux := compat.NewMux(ln, compat.MuxConfig{MaxFrame: n.cfg.MaxFrame, Logf: n.log.Named("mux").Warn})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	go func() { errs <- mux.Run(ctx) }()
	go func() { errs <- n.serveWire(ctx, mux.Listener(compat.ProtoRMQ)) }()
	go func() { errs <- n.serveRemoting(ctx, mux.Listener(compat.ProtoRemoting)) }()
	var first error
	for range 3 {
		if err := <-errs; err != nil && first == nil && ctx.Err() == nil {
			first = err
		}
		cancel() // one ended: end the others
	}
	return first
}

// serveRemoting serves RocketMQ remoting on ln until ctx ends.
func (n *Node) serveRemoting(ctx context.Context, ln net.Listener) error {
	rc := n.remoting
	return compat.Serve(ctx, ln, n.handleRemoting, compat.ServerConfig{
		MaxFrame: n.cfg.MaxFrame,
		Logf:     n.log.Named("remoting").Warn,
		OnClose:  rc.connClosed,
		// A RocketMQ producer pipelines async sends on one channel; they
		// are stored in the order sent (remotingStore).
		InOrder: func(code int32) bool {
			return code == compat.ReqSendMessage || code == compat.ReqSendMessageV2 || code == compat.ReqSendBatchMessage
		},
	})
}

// remotingHandler serves one request code.
type remotingHandler func(n *Node, ctx context.Context, c *compat.ServerConn, req *compat.Command) (*compat.Command, error)

// remotingHandlers lists every request code the broker serves; any other
// code is answered REQUEST_CODE_NOT_SUPPORTED naming it.
var remotingHandlers = map[int32]remotingHandler{
	compat.ReqSendMessage:             (*Node).remotingSendNoting,
	compat.ReqSendMessageV2:           (*Node).remotingSendNoting,
	compat.ReqSendBatchMessage:        (*Node).remotingSendBatch,
	compat.ReqPullMessage:             (*Node).remotingPull,
	compat.ReqQueryConsumerOffset:     (*Node).remotingQueryOffset,
	compat.ReqUpdateConsumerOffset:    (*Node).remotingUpdateOffset,
	compat.ReqGetMaxOffset:            (*Node).remotingMaxOffset,
	compat.ReqGetMinOffset:            (*Node).remotingMinOffset,
	compat.ReqGetEarliestMsgStoreTime: (*Node).remotingEarliestStoreTime,
	compat.ReqSearchOffsetByTimestamp: (*Node).remotingSearchOffset,
	compat.ReqHeartBeat:               (*Node).remotingHeartbeatNoting,
	compat.ReqUnregisterClient:        (*Node).remotingUnregister,
	compat.ReqGetConsumerListByGroup:  (*Node).remotingConsumerList,
	compat.ReqLockBatchMQ:             (*Node).remotingLock,
	compat.ReqUnlockBatchMQ:           (*Node).remotingUnlock,
	compat.ReqUpdateAndCreateTopic:    (*Node).remotingCreateTopic,
	compat.ReqDeleteTopicInBroker:     (*Node).remotingDeleteTopic,
	compat.ReqConsumerSendMsgBack:     (*Node).remotingSendBack,
	compat.ReqViewMessageByID:         (*Node).remotingViewMessage,
	compat.ReqEndTransaction:          (*Node).remotingEndTransaction,
	compat.ReqQueryMessage:            (*Node).remotingQueryMessage,
	compat.ReqSendReplyMessage:        (*Node).remotingSendReply,
	compat.ReqSendReplyMessageV2:      (*Node).remotingSendReply,

	// Pop consumption (remoting_pop.go).
	compat.ReqPopMessage:                 (*Node).remotingPop,
	compat.ReqAckMessage:                 (*Node).remotingAck,
	compat.ReqBatchAckMessage:            (*Node).remotingBatchAck,
	compat.ReqChangeMessageInvisibleTime: (*Node).remotingChangeInvisible,
}

// handleRemoting serves one remoting request; errors become RocketMQ
// response codes with a remark naming the problem.
func (n *Node) handleRemoting(ctx context.Context, c *compat.ServerConn, req *compat.Command) *compat.Command {
	start := n.metrics.rpcStart()
	resp := n.serveRemotingRequest(ctx, c, req)
	if n.metrics != nil {
		code := int32(-1) // no answer
		if resp != nil {
			code = resp.Code
		}
		n.metrics.served(metrics.ProtocolRemoting, req.Code, code, start)
	}
	return resp
}

func (n *Node) serveRemotingRequest(ctx context.Context, c *compat.ServerConn, req *compat.Command) *compat.Command {
	h := remotingHandlers[req.Code]
	if h == nil {
		return compat.NewResponse(req, compat.RespRequestCodeNotSupported,
			fmt.Sprintf("request code %d (%s) is not supported by this rmq broker", req.Code, compat.RequestName(req.Code)))
	}
	if n.acl != nil {
		var err error
		if ctx, err = n.authRemoting(ctx, c, req); err != nil { // acl.go
			return compat.NewResponse(req, compat.RespNoPermission, err.Error())
		}
	}
	resp, err := h(n, ctx, c, req)
	if err != nil {
		code, remark := n.remotingError(err)
		return compat.NewResponse(req, code, remark)
	}
	return resp // nil: answer nothing (remotingSendBack)
}

// remotingError maps a node error to a RocketMQ response code. The codes
// rocketmq-client-go retries a send on another broker for (1, 14, 16, 17)
// are used where a retry can help.
func (n *Node) remotingError(err error) (int32, string) {
	var nl *NotLeaderError
	var om *OffsetMovedError
	var oi *OffsetIllegalError
	var he *headerError
	switch {
	case errors.As(err, &he):
		return compat.RespInvalidParameter, err.Error()
	case errors.As(err, &nl):
		remark := fmt.Sprintf("node %s is not the leader of broker group %s", n.cfg.NodeID, n.cfg.Group)
		if nl.LeaderID != "" {
			addr, _ := n.fsm.NodeAddr(nl.LeaderID)
			remark += fmt.Sprintf("; the leader is %s (%s): refresh the route", nl.LeaderID, addr)
		}
		return compat.RespServiceNotAvailable, remark
	case errors.Is(err, ErrLeaderNotReady), errors.Is(err, ErrClosed):
		return compat.RespServiceNotAvailable, err.Error()
	case errors.Is(err, ErrDiskFull):
		// RocketMQ's answer when its disk is full (its store is not
		// writeable); its clients retry the send on another broker.
		return compat.RespServiceNotAvailable, err.Error()
	case errors.As(err, &om):
		return compat.RespPullOffsetMoved, err.Error()
	case errors.As(err, &oi):
		return compat.RespInvalidParameter, err.Error()
	case errors.Is(err, ErrTopicNotFound), errors.Is(err, fsm.ErrTopicNotFound), errors.Is(err, fsm.ErrQueueNotFound):
		return compat.RespTopicNotExist, err.Error()
	case errors.Is(err, ErrTopicExists):
		return compat.RespTopicExistAlready, err.Error()
	case errors.Is(err, ErrNoPermission), errors.Is(err, acl.ErrDenied):
		return compat.RespNoPermission, err.Error()
	case errors.Is(err, ErrMessageNotFound):
		return compat.RespSystemError, err.Error() // RocketMQ's answer to an offset with no message
	case errors.Is(err, ErrMessageTooLarge), errors.Is(err, errMessageRefused):
		return compat.RespMessageIllegal, err.Error()
	case errors.Is(err, ErrInvalidArgument), errors.Is(err, fsm.ErrQueueShrink), errors.Is(err, fsm.ErrInvalidCommand),
		errors.Is(err, ErrGroupModeMismatch):
		return compat.RespInvalidParameter, err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrIndeterminate):
		return compat.RespSystemError, err.Error() // the send may be stored: a retry may duplicate it
	}
	return compat.RespSystemError, err.Error()
}

// headerError is a missing or malformed header field of a request.
type headerError struct {
	code int32
	err  error
}

func (e *headerError) Error() string {
	return fmt.Sprintf("%s request: %v", compat.RequestName(e.code), e.err)
}

func (e *headerError) Unwrap() error { return e.err }

// header reads typed header fields of req, remembering the first problem.
type header struct {
	req *compat.Command
	err error
}

func (h *header) fail(err error) {
	if h.err == nil && err != nil {
		h.err = &headerError{code: h.req.Code, err: err}
	}
}

// str returns a required string field.
func (h *header) str(key string) string {
	v, err := h.req.ExtString(key)
	h.fail(err)
	return v
}

func (h *header) optStr(key string) string { return h.req.Ext[key] }

func (h *header) i64(key string) int64 {
	v, err := h.req.ExtInt64(key)
	h.fail(err)
	return v
}

func (h *header) optI64(key string, def int64) int64 {
	v, err := h.req.ExtOptInt64(key, def)
	h.fail(err)
	return v
}

// queue returns a required queueId field, which must not be negative.
func (h *header) queue(key string) uint32 {
	v := h.i64(key)
	if h.err == nil && (v < 0 || v > int64(fsm.MaxQueues)) {
		h.fail(fmt.Errorf("header field %q: queue %d is out of range", key, v))
	}
	return uint32(v)
}

// offset returns a required non-negative offset field.
func (h *header) offset(key string) uint64 {
	v := h.i64(key)
	if h.err == nil && v < 0 {
		h.fail(fmt.Errorf("header field %q: offset %d is negative", key, v))
	}
	return uint64(v)
}

// jsonBody encodes a response body.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("broker: encode %T: %w", v, err)
	}
	return b, nil
}

func ok(req *compat.Command) *compat.Command { return compat.NewResponse(req, compat.RespSuccess, "") }

// physicalOffset is what rmq serves as RocketMQ's CommitLog "physical
// offset": the message's Raft entry index in the high 35 bits and its
// record's byte position inside the entry in the low 28. It is the same
// on every replica and never reused, so message ids built from it stay
// valid across failover (any replica can resolve them).
func physicalOffset(index uint64, pos uint32) int64 {
	return int64(index<<28 | uint64(pos&(1<<28-1)))
}

// positionOf inverts physicalOffset.
func positionOf(phys int64) Position {
	return Position{Index: uint64(phys) >> 28, Pos: uint32(phys & (1<<28 - 1))}
}

// storeHost is the address RocketMQ clients see as a message's store
// host: this node's advertised client address (a host name that is not an
// IP literal encodes as 0.0.0.0 with the port).
func (n *Node) storeHost() netip.AddrPort {
	n.remoting.hostOnce.Do(func() {
		addr := n.ClientAddr()
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			n.remoting.host = ap
			return
		}
		if _, port, err := net.SplitHostPort(addr); err == nil {
			if p, err := strconv.ParseUint(port, 10, 16); err == nil {
				n.remoting.host = netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(p))
			}
		}
	})
	return n.remoting.host
}

func (n *Node) remotingCreateTopic(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	name := h.str("topic")
	read := h.optI64("readQueueNums", 0)
	write := h.optI64("writeQueueNums", 0)
	perm := h.optI64("perm", int64(fsm.DefaultPerm))
	if h.err != nil {
		return nil, h.err
	}
	queues := max(read, write)
	if queues <= 0 || queues > int64(fsm.MaxQueues) {
		return nil, fmt.Errorf("%w: topic %q: %d queues (read %d, write %d); allowed 1..%d",
			ErrInvalidArgument, name, queues, read, write, fsm.MaxQueues)
	}
	if perm < 0 || perm > 0xff {
		return nil, fmt.Errorf("%w: topic %q: perm %d", ErrInvalidArgument, name, perm)
	}
	p := uint8(perm) & (fsm.PermRead | fsm.PermWrite) // rmq has no inherit or priority bits
	if _, exists := n.Topic(name); exists {
		if _, err := n.UpdateTopic(ctx, TopicUpdate{Name: name, Queues: uint32(queues), Perm: p}); err != nil {
			return nil, err
		}
		return ok(req), nil
	}
	if _, err := n.CreateTopic(ctx, TopicSpec{Name: name, Queues: uint32(queues), Perm: p}); err != nil && !errors.Is(err, ErrTopicExists) {
		return nil, err
	}
	return ok(req), nil
}

func (n *Node) remotingDeleteTopic(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	name := h.str("topic")
	if h.err != nil {
		return nil, h.err
	}
	if err := n.DeleteTopic(ctx, name); err != nil && !errors.Is(err, ErrTopicNotFound) {
		return nil, err
	}
	return ok(req), nil
}
