package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/fsm"
)

// RocketMQ 5 pop consumption over remoting: POP_MESSAGE, ACK_MESSAGE,
// BATCH_ACK_MESSAGE and CHANGE_MESSAGE_INVISIBLETIME become the node's
// Receive, Ack and ChangeInvisible (pop.go). The formats follow
// RocketMQ's PopMessageProcessor, AckMessageProcessor,
// ChangeInvisibleTimeProcessor, ExtraInfoUtil and the Java client's
// MQClientAPIImpl.processPopResponse:
//
//	POP response header  popTime invisibleTime reviveQid(0) restNum
//	                     startOffsetInfo "0 q startOffset;0 q startOffset..."
//	                     msgOffsetInfo   "0 q off1,off2;0 q off3..."
//	POP body             stored messages as in PULL_MESSAGE; each carries
//	                     POP_CK "ck popTime invisibleTime 0 0 brokerName q offset"
//	                     and reconsumeTimes = its expired deliveries
//	ACK / CHANGE header  consumerGroup topic queueId offset extraInfo
//	                     (a POP_CK; the queue and offset must match it)
//
// The ck ("check point") offset of a queue's entries is the lowest offset
// the response holds for that queue: the Java client sets batch-ack bits
// at offset - ck, which must not be negative. The broker ignores ck when
// it resolves a handle (queue, offset and pop time name it). rmq
// redelivers in place, so retry flags are always "0", there is one entry
// per queue, and reviveQid is 0. No message after the long poll is
// POLLING_TIMEOUT (210), as RocketMQ answers (the Java client reads it,
// and PULL_NOT_FOUND, as POLLING_NOT_FOUND); a handle that no longer
// names an in-flight message is NO_MESSAGE (208) with a remark saying
// why (RocketMQ acks such a handle blindly; rmq knows).
//
// initMode 1 (MAX, also when absent) starts a queue new to the group at
// its end and 0 (MIN) at its first message. RocketMQ's MAX differs at the
// edges: with initPopOffsetByCheckMsgInMem (its default) a queue whose
// offset 0 is still in memory starts at 0, any other at its last message.
// bornTime is not used: the long poll lasts pollTime from arrival (capped
// by LongPollMax), so client clock skew does not matter.

// Pop limits and header values.
const (
	propPopCK        = "POP_CK"            // MessageConst.PROPERTY_POP_CK
	popMaxMsgNums    = 32                  // PopMessageProcessor refuses more
	popInitModeMin   = 0                   // ConsumeInitMode.MIN: a new group starts at a queue's first message
	popInitModeMax   = 1                   // ConsumeInitMode.MAX: at its end
	popRetryFlag     = "0"                 // ExtraInfoUtil's NORMAL_TOPIC: rmq never answers from a retry topic
	maxBatchAckItems = 8 * fsm.MaxPopItems // handles one BATCH_ACK_MESSAGE may name
)

// popRequest is a POP_MESSAGE request header (PopMessageRequestHeader).
type popRequest struct {
	group, topic string
	queueID      int
	maxMsgs      int64
	invisible    time.Duration
	poll         time.Duration
	initMode     int64
	expType, exp string
	order        bool
}

func parsePopRequest(req *compat.Command) (popRequest, error) {
	h := header{req: req}
	p := popRequest{
		group:     h.str("consumerGroup"),
		topic:     h.str("topic"),
		maxMsgs:   h.optI64("maxMsgNums", popMaxMsgNums),
		invisible: time.Duration(h.i64("invisibleTime")) * time.Millisecond,
		poll:      time.Duration(h.optI64("pollTime", 0)) * time.Millisecond,
		initMode:  h.optI64("initMode", popInitModeMax),
		expType:   h.optStr("expType"),
		exp:       h.optStr("exp"),
		order:     req.ExtBool("order"),
	}
	q := h.optI64("queueId", -1)
	h.optI64("bornTime", 0) // a number if sent; rmq waits pollTime from arrival (no clock skew)
	if h.err != nil {
		return p, h.err
	}
	var bad error
	switch {
	case q >= int64(fsm.MaxQueues):
		bad = fmt.Errorf("header field \"queueId\": queue %d is out of range", q)
	case p.maxMsgs < 1 || p.maxMsgs > popMaxMsgNums:
		bad = fmt.Errorf("header field \"maxMsgNums\": %d; a pop takes 1..%d messages", p.maxMsgs, popMaxMsgNums)
	case p.invisible < MinInvisible || p.invisible > MaxInvisible:
		bad = fmt.Errorf("header field \"invisibleTime\": %d ms; allowed %d..%d", p.invisible.Milliseconds(),
			MinInvisible.Milliseconds(), MaxInvisible.Milliseconds())
	case p.initMode != popInitModeMin && p.initMode != popInitModeMax:
		bad = fmt.Errorf("header field \"initMode\": %d; want 0 (MIN) or 1 (MAX)", p.initMode)
	case p.poll < 0:
		bad = fmt.Errorf("header field \"pollTime\": %d is negative", p.poll.Milliseconds())
	}
	if bad != nil {
		return p, &headerError{code: req.Code, err: bad}
	}
	p.queueID = int(max(q, -1)) // RocketMQ reads any negative queue as -1: any queue
	return p, nil
}

func (n *Node) remotingPop(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	p, err := parsePopRequest(req)
	if err != nil {
		return nil, err
	}
	if p.order {
		return compat.NewResponse(req, compat.RespInvalidParameter,
			"ordered pop (order=true) is not supported by this rmq broker; use an orderly push consumer (PULL_MESSAGE with LOCK_BATCH_MQ)"), nil
	}
	filter := ParseTagFilter(p.exp)
	switch {
	case strings.EqualFold(p.expType, "SQL92"):
		if filter, err = ParseSQLFilter(p.exp); err != nil {
			return compat.NewResponse(req, compat.RespSubscriptionParseFailed, err.Error()), nil
		}
	case p.expType != "" && !strings.EqualFold(p.expType, "TAG"):
		return compat.NewResponse(req, compat.RespSubscriptionParseFailed,
			fmt.Sprintf("%s filter expressions are not supported (TAG and SQL92 are)", p.expType)), nil
	}
	msgs, err := n.Receive(ctx, ReceiveRequest{Group: p.group, Topic: p.topic, QueueID: p.queueID, Max: int(p.maxMsgs),
		Invisible: p.invisible, Wait: p.poll, Filter: filter, FromFirst: p.initMode == popInitModeMin})
	if err != nil {
		return nil, err
	}
	var resp *compat.Command
	popTime := n.cfg.Now().UnixMilli()
	if len(msgs) == 0 {
		resp = compat.NewResponse(req, compat.RespPollingTimeout, "NO_MESSAGE_IN_QUEUE")
	} else {
		resp = ok(req)
		resp.Remark = "FOUND"
		popTime = msgs[0].Handle.PopTime // one Pop command: one pop time
		var start, offs string
		resp.Body, start, offs = n.encodePopped(msgs)
		resp.SetExt("startOffsetInfo", start)
		resp.SetExt("msgOffsetInfo", offs)
	}
	resp.SetExt("popTime", strconv.FormatInt(popTime, 10))
	resp.SetExt("invisibleTime", strconv.FormatInt(p.invisible.Milliseconds(), 10))
	resp.SetExt("reviveQid", "0")
	resp.SetExt("restNum", strconv.FormatUint(n.popRest(p), 10))
	return resp, nil
}

// popQueueEntry is one queue's part of a POP response.
type popQueueEntry struct {
	queueID uint32
	ck      uint64   // the lowest offset of the queue's messages
	offsets []uint64 // in body order
}

// encodePopped encodes received messages as PULL_MESSAGE does, with
// POP_CK and the reconsume count, and builds the response's
// startOffsetInfo and msgOffsetInfo.
func (n *Node) encodePopped(msgs []ReceivedMessage) (body []byte, startInfo, msgInfo string) {
	var entries []*popQueueEntry
	byQueue := map[uint32]*popQueueEntry{}
	for i := range msgs {
		h := msgs[i].Handle
		e := byQueue[h.QueueID]
		if e == nil {
			e = &popQueueEntry{queueID: h.QueueID, ck: h.Offset}
			byQueue[h.QueueID] = e
			entries = append(entries, e)
		}
		e.ck = min(e.ck, h.Offset)
		e.offsets = append(e.offsets, h.Offset)
	}
	exts := make([]compat.MessageExt, len(msgs))
	size := 0
	for i := range msgs {
		m := &msgs[i]
		exts[i] = n.messageExt(m.Topic, &m.StoredMessage)
		exts[i].ReconsumeTimes = int32(m.Reconsume)
		exts[i].Properties[propPopCK] = popCK(byQueue[m.Handle.QueueID].ck, m.Handle)
		size += compat.MessageExtSize(&exts[i])
	}
	body = make([]byte, 0, size)
	for i := range exts {
		body = compat.AppendMessageExt(body, &exts[i])
	}
	var si, mi strings.Builder
	for i, e := range entries {
		if i > 0 {
			si.WriteByte(';')
			mi.WriteByte(';')
		}
		q := strconv.FormatUint(uint64(e.queueID), 10)
		si.WriteString(popRetryFlag + " " + q + " " + strconv.FormatUint(e.ck, 10))
		mi.WriteString(popRetryFlag + " " + q + " ")
		for j, off := range e.offsets {
			if j > 0 {
				mi.WriteByte(',')
			}
			mi.WriteString(strconv.FormatUint(off, 10))
		}
	}
	return body, si.String(), mi.String()
}

// popCK is a message's POP_CK, ExtraInfoUtil.buildExtraInfo with the
// message offset: h's extraInfo with ck as its check-point offset.
func popCK(ck uint64, h ReceiptHandle) string {
	f := strings.Fields(h.ExtraInfo())
	f[0] = strconv.FormatUint(ck, 10)
	return strings.Join(f, " ")
}

// popRest is the response's restNum: the messages past the group's pop
// cursor in the queues the request named (redeliveries not counted).
func (n *Node) popRest(p popRequest) uint64 {
	t, found := n.Topic(p.topic)
	if !found {
		return 0
	}
	lo, hi := uint32(0), t.Queues
	if p.queueID >= 0 {
		lo, hi = uint32(p.queueID), uint32(p.queueID)+1
	}
	var rest uint64
	for q := lo; q < hi && q < t.Queues; q++ {
		min, next, err := n.QueueRange(p.topic, q)
		if err != nil {
			continue
		}
		cur, had := n.ConsumerOffset(p.group, p.topic, q)
		switch {
		case !had && p.initMode == popInitModeMin:
			cur = min
		case !had:
			cur = next
		case cur < min:
			cur = min
		}
		if next > cur {
			rest += next - cur
		}
	}
	return rest
}

// remotingHandle reads the receipt handle of an ACK_MESSAGE or
// CHANGE_MESSAGE_INVISIBLETIME header. RocketMQ takes the pop time,
// invisible time and broker from extraInfo and the queue and offset from
// the header's own fields; rmq requires them to agree. A 7-field
// extraInfo (without the message offset) takes the header's offset.
func remotingHandle(req *compat.Command) (group string, rh ReceiptHandle, err error) {
	h := header{req: req}
	group = h.str("consumerGroup")
	topic := h.str("topic")
	queue := h.queue("queueId")
	off := h.offset("offset")
	extra := h.str("extraInfo")
	if h.err != nil {
		return "", ReceiptHandle{}, h.err
	}
	f := strings.Fields(extra)
	if len(f) == 7 {
		f = append(f, strconv.FormatUint(off, 10))
	}
	rh, err = ParseReceiptHandle(strings.Join(f, " "), topic)
	if err != nil {
		return "", ReceiptHandle{}, &headerError{code: req.Code, err: fmt.Errorf("header field \"extraInfo\": %w", err)}
	}
	if rh.QueueID != queue || rh.Offset != off {
		return "", ReceiptHandle{}, &headerError{code: req.Code, err: fmt.Errorf(
			"header field \"extraInfo\" names queue %d offset %d; the header's queueId and offset are %d and %d",
			rh.QueueID, rh.Offset, queue, off)}
	}
	return group, rh, nil
}

// handleAnswer answers a stale receipt handle NO_MESSAGE; other errors go
// to remotingError.
func handleAnswer(req *compat.Command, err error) (*compat.Command, error) {
	if errors.Is(err, ErrReceiptHandle) {
		return compat.NewResponse(req, compat.RespNoMessage, err.Error()), nil
	}
	return nil, err
}

func (n *Node) remotingAck(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	group, h, err := remotingHandle(req)
	if err != nil {
		return nil, err
	}
	errs, err := n.Ack(ctx, group, []ReceiptHandle{h})
	if err != nil {
		return nil, err
	}
	if errs[0] != nil {
		return handleAnswer(req, errs[0])
	}
	return ok(req), nil
}

func (n *Node) remotingChangeInvisible(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	group, h, err := remotingHandle(req)
	if err != nil {
		return nil, err
	}
	hd := header{req: req}
	d := time.Duration(hd.i64("invisibleTime")) * time.Millisecond
	if hd.err != nil {
		return nil, hd.err
	}
	nh, err := n.ChangeInvisible(ctx, group, h, d)
	if err != nil {
		return handleAnswer(req, err)
	}
	resp := ok(req)
	resp.SetExt("popTime", strconv.FormatInt(nh.PopTime, 10))
	resp.SetExt("invisibleTime", strconv.FormatInt(nh.Invisible, 10))
	resp.SetExt("reviveQid", "0")
	return resp, nil
}

// popGroupAcks is the handles of one consumer group in a batch ack.
type popGroupAcks struct {
	group string
	hs    []ReceiptHandle
}

// remotingBatchAck serves BATCH_ACK_MESSAGE. RocketMQ answers SUCCESS
// whatever it acked; rmq answers SUCCESS when every named message was
// acked, else NO_MESSAGE (or the first failure's code) saying how many
// were not. The others are acked, and acking them again succeeds, so a
// client may resend the whole batch.
func (n *Node) remotingBatchAck(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	var body compat.BatchAckBody
	if err := compat.DecodeJSON(req.Body, &body); err != nil {
		return nil, fmt.Errorf("%w: batch ack body: %w", ErrInvalidArgument, err)
	}
	if len(body.Acks) == 0 {
		return compat.NewResponse(req, compat.RespNoMessage, "batch ack body names no acks"), nil
	}
	broker := body.BrokerName
	if broker == "" {
		broker = n.cfg.Group
	}
	groups, total, err := batchAckHandles(broker, body.Acks)
	if err != nil {
		return nil, err
	}
	failed := 0
	var firstErr error
	for _, g := range groups {
		for len(g.hs) > 0 {
			chunk := g.hs[:min(len(g.hs), fsm.MaxPopItems)]
			g.hs = g.hs[len(chunk):]
			errs, err := n.Ack(ctx, g.group, chunk)
			if err != nil {
				return nil, err
			}
			for _, e := range errs {
				if e != nil {
					failed++
					if firstErr == nil {
						firstErr = e
					}
				}
			}
		}
	}
	if failed == 0 {
		return ok(req), nil
	}
	code := int32(compat.RespNoMessage)
	if !errors.Is(firstErr, ErrReceiptHandle) {
		code, _ = n.remotingError(firstErr)
	}
	return compat.NewResponse(req, code, fmt.Sprintf("%d of %d acks failed (the others are acked); the first: %v",
		failed, total, firstErr)), nil
}

// batchAckHandles lists a batch ack's handles by consumer group.
func batchAckHandles(broker string, acks []compat.BatchAck) ([]*popGroupAcks, int, error) {
	var groups []*popGroupAcks
	byGroup := map[string]*popGroupAcks{}
	total := 0
	for i, a := range acks {
		if a.StartOffset < 0 || a.QueueID < 0 {
			return nil, 0, fmt.Errorf("%w: batch ack %d: startOffset %d, queueId %d", ErrInvalidArgument, i, a.StartOffset, a.QueueID)
		}
		offs, err := a.BitSet.Offsets(a.StartOffset, maxBatchAckItems-total)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: batch ack %d: %w (at most %d in one request)", ErrInvalidArgument, i, err, maxBatchAckItems)
		}
		g := byGroup[a.ConsumerGroup]
		if g == nil {
			g = &popGroupAcks{group: a.ConsumerGroup}
			byGroup[a.ConsumerGroup] = g
			groups = append(groups, g)
		}
		for _, off := range offs {
			g.hs = append(g.hs, ReceiptHandle{Broker: broker, Topic: a.Topic, QueueID: uint32(a.QueueID), Offset: uint64(off),
				PopTime: a.PopTime, Invisible: a.InvisibleTime, Retry: a.Retry})
		}
		total += len(offs)
	}
	return groups, total, nil
}
