package broker

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/wire"
)

// RocketMQ messages as rmq stores them. A remoting send becomes an
// fsm.Message: TAGS and KEYS move into the message's Tags and Keys, and
// UNIQ_KEY (32 hex characters) is decoded into its ID, so rmq's own
// consumers see the same fields; every other property is kept as is (a
// UNIQ_KEY that is not upper case too, see uniqKeyID). A compressed body (zlib, the only
// codec 4.x clients use) is stored decompressed, so consumers of either
// protocol read it. On the way out the properties are rebuilt and the
// message is encoded as RocketMQ's stored-message record (compat.
// AppendMessageExt); rmq does not store a born host, so it is 0.0.0.0:0.

// remotingDefaultTopicQueues caps the queues of a topic auto-created by a
// RocketMQ send: the NameServer advertises TBW102 with this many queues
// and RocketMQ caps defaultTopicQueueNums by TBW102's writeQueueNums.
const remotingDefaultTopicQueues = 8

// errMessageRefused marks a message that uses a feature this broker does
// not serve yet (answered MESSAGE_ILLEGAL, which clients do not retry).
var errMessageRefused = errors.New("message refused")

// sendHeader is a SEND_MESSAGE (V1 long names) or SEND_MESSAGE_V2 /
// SEND_BATCH_MESSAGE (single-letter names) request header.
type sendHeader struct {
	producerGroup  string
	topic          string
	defaultTopic   string
	defaultQueues  int64
	queueID        uint32
	sysFlag        int64
	bornTimestamp  int64
	flag           int64
	properties     string
	reconsumeTimes int64
}

// sendV2Names maps V1 header names to their V2 letters.
var sendV2Names = map[string]string{
	"producerGroup": "a", "topic": "b", "defaultTopic": "c", "defaultTopicQueueNums": "d", "queueId": "e",
	"sysFlag": "f", "bornTimestamp": "g", "flag": "h", "properties": "i", "reconsumeTimes": "j",
}

func parseSendHeader(req *compat.Command) (sendHeader, error) {
	v2 := req.Code != compat.ReqSendMessage
	name := func(long string) string {
		if v2 {
			return sendV2Names[long]
		}
		return long
	}
	h := header{req: req}
	sh := sendHeader{
		producerGroup:  h.optStr(name("producerGroup")),
		topic:          h.str(name("topic")),
		defaultTopic:   h.optStr(name("defaultTopic")),
		defaultQueues:  h.optI64(name("defaultTopicQueueNums"), 4),
		queueID:        h.queue(name("queueId")),
		sysFlag:        h.optI64(name("sysFlag"), 0),
		bornTimestamp:  h.optI64(name("bornTimestamp"), 0),
		flag:           h.optI64(name("flag"), 0),
		properties:     h.optStr(name("properties")),
		reconsumeTimes: h.optI64(name("reconsumeTimes"), 0),
	}
	return sh, h.err
}

// sendOptions asks for auto-creation when the client names a default
// topic (RocketMQ's autoCreateTopicEnable path, TBW102).
func (sh sendHeader) sendOptions() SendOptions {
	if sh.defaultTopic == "" {
		return SendOptions{}
	}
	q := sh.defaultQueues
	if q <= 0 {
		q = 4
	}
	return SendOptions{AutoCreateQueues: uint32(min(q, remotingDefaultTopicQueues)), AutoCreateTopics: []string{sh.topic}}
}

// remotingMessage converts one RocketMQ message to rmq's.
func (n *Node) remotingMessage(sh sendHeader, flag int32, props map[string]string, body []byte) (*fsm.Message, error) {
	if sh.sysFlag&compat.SysFlagCompressed != 0 {
		var err error
		if body, err = n.decompress(sh.sysFlag, body); err != nil {
			return nil, err
		}
	}
	if tx := sh.sysFlag & compat.SysFlagTransactionMask; tx == compat.SysFlagTransactionPrepared || strings.EqualFold(props[compat.PropTransactionPrepared], "true") {
		// A half message (remoting_tx.go): stored once, invisible until
		// its producer (or a check-back) commits it.
		props[compat.PropTransactionPrepared] = "true"
		if props[PropProducerGroup] == "" {
			props[PropProducerGroup] = sh.producerGroup
		}
	}
	m := &fsm.Message{
		Topic:         sh.topic,
		QueueID:       sh.queueID,
		Flag:          uint32(flag),
		BornTimestamp: sh.bornTimestamp,
		Body:          body,
	}
	if len(props) > 0 {
		m.Tags, m.Keys = props[compat.PropTags], props[compat.PropKeys]
		delete(props, compat.PropTags)
		delete(props, compat.PropKeys)
		if id, canonical := uniqKeyID(props[compat.PropUniqKey]); id != nil {
			m.ID = id
			if canonical {
				delete(props, compat.PropUniqKey) // rebuilt from the ID, byte for byte
			}
		}
		delete(props, compat.PropWaitStoreMsgOK) // rmq always answers once the message is committed
		if sh.reconsumeTimes > 0 {
			props[compat.PropReconsumeTime] = strconv.FormatInt(sh.reconsumeTimes, 10)
		}
		if len(props) > 0 {
			m.Properties = props
		}
	}
	return m, nil
}

// uniqKeyID decodes a UNIQ_KEY of 32 hex characters into the 16-byte
// message ID. It is canonical when upper-case (Java's clients), so the
// property can be rebuilt from the ID; rocketmq-client-go writes part of
// it in lower case, and then the property is kept as well, so consumers
// see the very string the producer's SendResult showed.
func uniqKeyID(s string) (id []byte, canonical bool) {
	if len(s) != 32 {
		return nil, false
	}
	id, err := hex.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return id, strings.ToUpper(s) == s
}

// decompress inflates a zlib body, refusing other codecs and bodies that
// inflate beyond the message size limit.
func (n *Node) decompress(sysFlag int64, body []byte) ([]byte, error) {
	if typ := (sysFlag >> 8) & 0x7; typ != 0 && typ != 3 {
		names := map[int64]string{1: "LZ4", 2: "ZSTD"}
		return nil, fmt.Errorf("%w: compression type %d (%s); only zlib is supported", errMessageRefused, typ, names[typ])
	}
	zr, err := zlib.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: compressed body: %w", ErrInvalidArgument, err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(n.cfg.MaxMessageSize)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: compressed body: %w", ErrInvalidArgument, err)
	}
	if len(out) > n.cfg.MaxMessageSize {
		return nil, fmt.Errorf("%w: body inflates to more than %d bytes", ErrMessageTooLarge, n.cfg.MaxMessageSize)
	}
	return out, nil
}

func (n *Node) remotingSend(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	sh, err := parseSendHeader(req)
	if err != nil {
		return nil, err
	}
	m, err := n.remotingMessage(sh, int32(sh.flag), compat.DecodeProperties(sh.properties), req.Body)
	if err != nil {
		return nil, err
	}
	return n.remotingStore(ctx, req, sh, []*fsm.Message{m})
}

func (n *Node) remotingSendBatch(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	sh, err := parseSendHeader(req)
	if err != nil {
		return nil, err
	}
	entries, err := compat.DecodeBatch(req.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: batch body: %w", ErrInvalidArgument, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrInvalidArgument)
	}
	msgs := make([]*fsm.Message, len(entries))
	for i, e := range entries {
		if msgs[i], err = n.remotingMessage(sh, e.Flag, e.Properties, e.Body); err != nil {
			return nil, fmt.Errorf("batch message %d: %w", i, err)
		}
	}
	return n.remotingStore(ctx, req, sh, msgs)
}

// remotingStore writes msgs (all of one queue; a batch is all or nothing)
// and answers with their offset message ids, queue and first offset.
func (n *Node) remotingStore(ctx context.Context, req *compat.Command, sh sendHeader, msgs []*fsm.Message) (*compat.Command, error) {
	opts := sh.sendOptions()
	opts.Atomic = true
	if o := wire.OrderOf(ctx); o != nil { // sends are in order (serveRemoting)
		opts.Order = o
	}
	res, err := n.SendWith(ctx, msgs, opts)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(res))
	for _, r := range res {
		if r.Err != nil {
			return nil, r.Err
		}
		ids = append(ids, compat.OffsetMsgID(n.storeHost(), physicalOffset(r.RaftIndex, r.Pos)))
	}
	resp := ok(req)
	resp.SetExt("msgId", strings.Join(ids, ","))
	resp.SetExt("queueId", strconv.FormatUint(uint64(res[0].QueueID), 10))
	offset := strconv.FormatUint(res[0].QueueOffset, 10)
	if res[0].Delayed || res[0].Half {
		offset = "-1" // it gets its queue offset when it is delivered, or committed
	}
	if res[0].Half && len(msgs) == 1 && len(msgs[0].ID) == 16 {
		resp.SetExt("transactionId", strings.ToUpper(hex.EncodeToString(msgs[0].ID)))
	}
	resp.SetExt("queueOffset", offset)
	resp.SetExt("MSG_REGION", "DefaultRegion")
	resp.SetExt("TRACE_ON", "true")
	return resp, nil
}

// remotingSendBack serves CONSUMER_SEND_MSG_BACK: the failed delivery is
// named by its record's physical offset; the retry (or dead letter) is
// scheduled by the node's SendBack (retry.go). A failure is left
// unanswered on purpose: rocketmq-client-go v2.1.2 treats any answer,
// even an error, as "the broker took the message back" and commits past
// it, which would lose it; without an answer it times out (3 s) and
// redelivers the message locally, as Java's client does when send-back
// fails.
func (n *Node) remotingSendBack(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	group := h.str("group")
	phys := h.i64("offset")
	level := h.optI64("delayLevel", 0)
	max := h.optI64("maxReconsumeTimes", 0)
	if h.err != nil || phys < 0 {
		n.log.Warn("remoting: unusable CONSUMER_SEND_MSG_BACK left unanswered", "error", h.err, "offset", phys)
		return nil, nil
	}
	pos := positionOf(phys)
	res, err := n.SendBack(ctx, SendBackRequest{Group: group, Record: &pos, DelayLevel: int(level), MaxReconsume: int(max)})
	if err != nil {
		n.log.Warn("remoting: send back failed; left unanswered so the client redelivers locally", "group", group, "error", err)
		return nil, nil
	}
	n.log.Debug("remoting: sent back", "group", group, "reconsume", res.Reconsume, "dlq", res.DLQ)
	return ok(req), nil
}

// pullFilter is the tag filter of a pull: the request's own subscription
// when it carries one, else the one the group's heartbeat registered,
// else none (the client filters by tag again anyway).
func (n *Node) pullFilter(req *compat.Command, group, topic string, sysFlag int64) (*TagFilter, error) {
	expr, typ := "", ""
	if sysFlag&compat.PullFlagSubscription != 0 {
		expr, typ = req.Ext["subscription"], req.Ext["expressionType"]
	} else if s, ok := n.remoting.subscription(group, topic); ok {
		expr, typ = s.expr, s.typ
	}
	switch {
	case strings.EqualFold(typ, "SQL92"):
		f, err := ParseSQLFilter(expr)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errFilterUnsupported, err)
		}
		return f, nil
	case typ != "" && !strings.EqualFold(typ, "TAG"):
		return nil, fmt.Errorf("%w: %s filter expressions are not supported (TAG and SQL92 are)", errFilterUnsupported, typ)
	}
	return ParseTagFilter(expr), nil
}

// errFilterUnsupported: a subscription this broker cannot evaluate.
var errFilterUnsupported = errors.New("subscription refused")

func (n *Node) remotingPull(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	group := h.str("consumerGroup")
	topic := h.str("topic")
	queue := h.queue("queueId")
	offset := h.offset("queueOffset")
	maxMsgs := h.optI64("maxMsgNums", 32)
	sysFlag := h.optI64("sysFlag", 0)
	suspend := h.optI64("suspendTimeoutMillis", 0)
	maxBytes := h.optI64("maxMsgBytes", 0)
	if h.err != nil {
		return nil, h.err
	}
	filter, err := n.pullFilter(req, group, topic, sysFlag)
	if err != nil {
		return compat.NewResponse(req, compat.RespSubscriptionParseFailed, err.Error()), nil
	}
	rr := ReadRequest{Topic: topic, QueueID: queue, Offset: offset, MaxMessages: int(min(max(maxMsgs, 1), 1024)), Filter: filter, Group: group}
	if maxBytes > 0 {
		rr.MaxBytes = int(min(maxBytes, 64<<20))
	}
	if sysFlag&compat.PullFlagSuspend != 0 && suspend > 0 {
		rr.Wait = time.Duration(suspend) * time.Millisecond
	}
	res, err := n.Read(ctx, rr)
	var om *OffsetMovedError
	if errors.As(err, &om) {
		resp := compat.NewResponse(req, compat.RespPullOffsetMoved, err.Error())
		next := om.Min
		if om.Requested > om.Max {
			next = om.Max
		}
		setPullExt(resp, next, om.Min, om.Max)
		return resp, nil
	}
	if err != nil {
		return nil, err
	}
	var resp *compat.Command
	switch {
	case len(res.Messages) > 0:
		resp = ok(req)
		resp.Body = n.encodeStored(topic, res.Messages)
	case res.NextOffset > offset: // the filter skipped messages: go on from there at once
		resp = compat.NewResponse(req, compat.RespPullRetryImmediately, "")
	default:
		resp = compat.NewResponse(req, compat.RespPullNotFound, "")
	}
	setPullExt(resp, res.NextOffset, res.MinOffset, res.MaxOffset)
	return resp, nil
}

func setPullExt(resp *compat.Command, next, min, max uint64) {
	resp.SetExt("nextBeginOffset", strconv.FormatUint(next, 10))
	resp.SetExt("minOffset", strconv.FormatUint(min, 10))
	resp.SetExt("maxOffset", strconv.FormatUint(max, 10))
	resp.SetExt("suggestWhichBrokerId", "0")
}

// encodeStored encodes messages read from queueTopic as RocketMQ
// stored-message records.
func (n *Node) encodeStored(queueTopic string, msgs []StoredMessage) []byte {
	exts := make([]compat.MessageExt, len(msgs))
	size := 0
	for i := range msgs {
		exts[i] = n.messageExt(queueTopic, &msgs[i])
		size += compat.MessageExtSize(&exts[i])
	}
	buf := make([]byte, 0, size)
	for i := range exts {
		buf = compat.AppendMessageExt(buf, &exts[i])
	}
	return buf
}

// messageExt is m, read from queueTopic, as RocketMQ clients decode it. A
// retried delivery is a message of the retry topic whose RETRY_TOPIC
// names the original one, as RocketMQ stores its retry copies; clients
// restore the topic before their handler sees it.
func (n *Node) messageExt(queueTopic string, m *StoredMessage) compat.MessageExt {
	props := make(map[string]string, len(m.Properties)+3)
	for k, v := range m.Properties {
		props[k] = v
	}
	if m.Tags != "" {
		props[compat.PropTags] = m.Tags
	}
	if m.Keys != "" {
		props[compat.PropKeys] = m.Keys
	}
	if _, set := props[compat.PropUniqKey]; !set && len(m.ID) == 16 {
		props[compat.PropUniqKey] = strings.ToUpper(hex.EncodeToString(m.ID))
	}
	reconsume, _ := strconv.ParseInt(props[compat.PropReconsumeTime], 10, 32)
	topic := m.Topic
	if m.Retry != nil {
		reconsume = int64(m.Retry.Reconsume)
		props[compat.PropRetryTopic] = m.Topic
		topic = queueTopic
	}
	return compat.MessageExt{
		Topic:          topic,
		QueueID:        int32(m.QueueID),
		Flag:           int32(m.Flag),
		QueueOffset:    int64(m.QueueOffset),
		PhysicalOffset: physicalOffset(m.RaftIndex, m.Pos),
		BornTimestamp:  m.BornTimestamp,
		StoreTimestamp: m.StoreTime,
		StoreHost:      n.storeHost(),
		ReconsumeTimes: int32(reconsume),
		Body:           m.Body,
		Properties:     props,
	}
}

func (n *Node) remotingQueryOffset(_ context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	group, topic, queue := h.str("consumerGroup"), h.str("topic"), h.queue("queueId")
	if h.err != nil {
		return nil, h.err
	}
	off, found := n.ConsumerOffset(group, topic, queue)
	if !found {
		// RocketMQ 4.x's rule: a group without an offset on a queue that
		// still holds its first message starts at 0, so a new group with
		// CONSUME_FROM_LAST_OFFSET reads a young topic from the start.
		// Otherwise, and always for a group that heartbeat
		// CONSUME_FROM_TIMESTAMP (which the rule would defeat), the
		// client decides by its ConsumeFromWhere.
		min, _, err := n.QueueRange(topic, queue)
		if err != nil {
			return nil, err
		}
		fromTime := strings.EqualFold(n.remoting.consumeFrom(group), "CONSUME_FROM_TIMESTAMP") &&
			!strings.HasPrefix(topic, "%RETRY%") // a retry queue is read from its start
		if min > 0 || fromTime {
			return compat.NewResponse(req, compat.RespQueryNotFound,
				fmt.Sprintf("group %q has no committed offset for %s/%d", group, topic, queue)), nil
		}
	}
	resp := ok(req)
	resp.SetExt("offset", strconv.FormatUint(off, 10))
	return resp, nil
}

func (n *Node) remotingUpdateOffset(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	group, topic, queue := h.str("consumerGroup"), h.str("topic"), h.queue("queueId")
	off := h.offset("commitOffset")
	if h.err != nil {
		return nil, h.err
	}
	if cur, found := n.ConsumerOffset(group, topic, queue); found && cur == off {
		return ok(req), nil // nothing new: no Raft entry
	}
	// RocketMQ clients do not know rmq's reset epochs: commit under the
	// current one (an operator reset is then overwritten by a member that
	// commits its older position, as in RocketMQ without a client push).
	entry := fsm.OffsetEntry{Topic: topic, QueueID: queue, Offset: off}
	if err := n.CommitOffsets(ctx, group, []fsm.OffsetEntry{entry}, n.GroupResetEpoch(group)); err != nil {
		return nil, err
	}
	return ok(req), nil
}

func (n *Node) queueBound(req *compat.Command, minimum bool) (*compat.Command, error) {
	h := header{req: req}
	topic, queue := h.str("topic"), h.queue("queueId")
	if h.err != nil {
		return nil, h.err
	}
	min, next, err := n.QueueRange(topic, queue)
	if err != nil {
		return nil, err
	}
	v := next
	if minimum {
		v = min
	}
	resp := ok(req)
	resp.SetExt("offset", strconv.FormatUint(v, 10))
	return resp, nil
}

func (n *Node) remotingMaxOffset(_ context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	return n.queueBound(req, false)
}

func (n *Node) remotingMinOffset(_ context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	return n.queueBound(req, true)
}

func (n *Node) remotingEarliestStoreTime(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	topic, queue := h.str("topic"), h.queue("queueId")
	if h.err != nil {
		return nil, h.err
	}
	min, _, err := n.QueueRange(topic, queue)
	if err != nil {
		return nil, err
	}
	res, err := n.Read(ctx, ReadRequest{Topic: topic, QueueID: queue, Offset: min, MaxMessages: 1})
	if err != nil {
		return nil, err
	}
	ts := int64(-1) // RocketMQ's answer for an empty queue
	if len(res.Messages) > 0 {
		ts = res.Messages[0].StoreTime
	}
	resp := ok(req)
	resp.SetExt("timestamp", strconv.FormatInt(ts, 10))
	return resp, nil
}

func (n *Node) remotingSearchOffset(_ context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	topic, queue, ts := h.str("topic"), h.queue("queueId"), h.i64("timestamp")
	if h.err != nil {
		return nil, h.err
	}
	off, err := n.OffsetForTime(topic, queue, ts)
	if err != nil {
		return nil, err
	}
	resp := ok(req)
	resp.SetExt("offset", strconv.FormatUint(off, 10))
	return resp, nil
}

// remotingViewMessage answers VIEW_MESSAGE_BY_ID: the header's offset is
// the physical offset decoded from an offset message id, which every
// replica resolves alike.
func (n *Node) remotingViewMessage(ctx context.Context, _ *compat.ServerConn, req *compat.Command) (*compat.Command, error) {
	h := header{req: req}
	phys := h.i64("offset")
	if h.err != nil {
		return nil, h.err
	}
	if phys < 0 {
		return nil, &headerError{code: req.Code, err: fmt.Errorf("header field \"offset\": %d is negative", phys)}
	}
	m, err := n.MessageAt(positionOf(phys))
	if err != nil {
		return nil, err
	}
	if err := readable(ctx, m.Topic); err != nil { // acl.go; nil when access control is off
		return nil, err
	}
	resp := ok(req)
	resp.Body = n.encodeStored(m.Topic, []StoredMessage{m})
	return resp, nil
}
