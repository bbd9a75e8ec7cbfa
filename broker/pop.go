package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// Pop consumption (RocketMQ 5's SimpleConsumer). Receive proposes
// fsm.Pop on the leader: the items it takes are in flight for the group
// until their invisible time passes, whoever asked; several receivers
// share every queue, with no queue lock. Ack and ChangeInvisible propose
// fsm.PopAck and fsm.PopChangeInvisible. An item not acked in time is
// redelivered in place by a later Receive, with its reconsume count
// raised; after MaxReconsume expiries it is dead, and the leader service
// runPopRevive dead-letters it into %DLQ%group (one SendBack naming the
// item). Every decision is a Raft command with the leader's clock in it,
// so a new leader continues with the same in-flight items.

// Pop limits and defaults.
const (
	DefaultInvisible = 30 * time.Second
	MinInvisible     = time.Second
	MaxInvisible     = 12 * time.Hour // RocketMQ 5's maximum
	defaultPopMax    = 32
)

// ErrReceiptHandle means an ack or invisible-time change named a receipt
// handle that no longer names an in-flight message: it was received
// again (its invisible time passed), changed, dead-lettered, or never
// issued by this broker group. The error text says which.
var ErrReceiptHandle = errors.New("broker: receipt handle not valid")

// ReceiptHandle names one delivery of a popped message: what an ack or
// an invisible-time change refers to.
type ReceiptHandle struct {
	Broker    string // the broker group that issued it
	Topic     string
	QueueID   uint32
	Offset    uint64
	PopTime   int64 // unix ms: this delivery's identity
	Invisible int64 // ms: invisible until PopTime+Invisible
	// Retry reports RocketMQ's retry-topic flag of a remoting handle
	// (rmq redelivers in place, so its own handles never set it).
	Retry string
}

// ExtraInfo is the handle in RocketMQ's POP_CK form, "ckOffset popTime
// invisibleTime reviveQid retryFlag brokerName queueId offset": the form
// RocketMQ clients parse, so the same handle serves both protocols.
func (h ReceiptHandle) ExtraInfo() string {
	flag := h.Retry
	if flag == "" {
		flag = "0"
	}
	return strings.Join([]string{"0", strconv.FormatInt(h.PopTime, 10), strconv.FormatInt(h.Invisible, 10), "0", flag,
		h.Broker, strconv.FormatUint(uint64(h.QueueID), 10), strconv.FormatUint(h.Offset, 10)}, " ")
}

// String is the handle as rmq's clients carry it: ExtraInfo and the topic.
func (h ReceiptHandle) String() string { return h.ExtraInfo() + " " + h.Topic }

// ParseReceiptHandle parses a handle's String form, or (topic set) a
// RocketMQ POP_CK of a message of that topic.
func ParseReceiptHandle(s, topic string) (ReceiptHandle, error) {
	f := strings.Fields(s)
	bad := func(why string) (ReceiptHandle, error) {
		return ReceiptHandle{}, fmt.Errorf("%w: receipt handle %q: %s", ErrInvalidArgument, s, why)
	}
	switch {
	case len(f) == 9 && topic == "":
		topic = f[8]
	case len(f) == 8 && topic != "":
	case len(f) == 9 && f[8] == topic:
	default:
		return bad("want \"ck popTime invisible reviveQid retry broker queueId offset [topic]\"")
	}
	popTime, err1 := strconv.ParseInt(f[1], 10, 64)
	inv, err2 := strconv.ParseInt(f[2], 10, 64)
	q, err3 := strconv.ParseUint(f[6], 10, 32)
	off, err4 := strconv.ParseUint(f[7], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return bad("a number field is malformed")
	}
	if err := ValidateTopicName(topic); err != nil {
		return bad(err.Error())
	}
	return ReceiptHandle{Broker: f[5], Topic: topic, QueueID: uint32(q), Offset: off, PopTime: popTime, Invisible: inv, Retry: f[4]}, nil
}

// ReceiveRequest asks for messages of a topic for a pop consumer group.
type ReceiveRequest struct {
	Group   string
	Topic   string
	QueueID int // a queue, or -1: any (the broker rotates its starting queue)
	Max     int // default 32, at most fsm.MaxPopItems
	// Invisible is how long a received message stays invisible to the
	// group's other receivers (default 30 s, 1 s to 12 h).
	Invisible time.Duration
	Wait      time.Duration // long poll for a message; capped at LongPollMax
	Filter    *TagFilter
	// MaxReconsume is how many times a message may expire unacked before
	// it is dead-lettered; <= 0 means DefaultMaxReconsume.
	MaxReconsume int
	// FromFirst starts a queue the group never received from at its
	// oldest message instead of its end (RocketMQ's ConsumeInitMode MIN).
	FromFirst bool
}

// ReceivedMessage is one message received by a pop consumer.
type ReceivedMessage struct {
	StoredMessage
	Handle    ReceiptHandle
	Reconsume int       // earlier deliveries that expired unacked
	Deadline  time.Time // invisible to the group's other receivers until then
}

func (n *Node) receiveParams(req *ReceiveRequest) error {
	if err := ValidateGroupName(req.Group); err != nil {
		return err
	}
	if err := ValidateTopicName(req.Topic); err != nil {
		return err
	}
	if req.Max <= 0 {
		req.Max = defaultPopMax
	}
	if req.Max > fsm.MaxPopItems {
		return fmt.Errorf("%w: receive of %d messages; at most %d", ErrInvalidArgument, req.Max, fsm.MaxPopItems)
	}
	if req.Invisible == 0 {
		req.Invisible = DefaultInvisible
	}
	if req.Invisible < MinInvisible || req.Invisible > MaxInvisible {
		return fmt.Errorf("%w: invisible time %s outside [%s, %s]", ErrInvalidArgument, req.Invisible, MinInvisible, MaxInvisible)
	}
	if req.MaxReconsume <= 0 {
		req.MaxReconsume = DefaultMaxReconsume
	}
	req.Wait = min(max(req.Wait, 0), n.cfg.LongPollMax)
	return nil
}

// Receive pops up to Max messages of a topic for a group: redeliveries
// of expired messages first, then new ones. With Wait it long-polls
// until something is there. Only the serving leader takes it.
func (n *Node) Receive(ctx context.Context, req ReceiveRequest) ([]ReceivedMessage, error) {
	if err := n.receiveParams(&req); err != nil {
		return nil, err
	}
	if err := n.checkWritable(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(req.Wait)
	for {
		t, ok := n.fsm.Topic(req.Topic)
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrTopicNotFound, req.Topic)
		}
		if t.Perm&permRead == 0 {
			return nil, fmt.Errorf("%w: topic %q is not readable (perm %d)", ErrNoPermission, req.Topic, t.Perm)
		}
		refs, err := n.popQueues(t, req.QueueID)
		if err != nil {
			return nil, err
		}
		// Registered before looking, so an append in between is not missed.
		wake := n.notify.waitTopic(req.Topic)
		if req.QueueID >= 0 {
			wake = n.notify.wait(req.Topic, uint32(req.QueueID))
		}
		now := n.cfg.Now()
		avail, next := false, int64(0)
		for _, r := range refs {
			ok, nd := n.fsm.PopAvailable(req.Group, r, req.FromFirst, now.UnixMilli())
			avail = avail || ok
			if nd > 0 && (next == 0 || nd < next) {
				next = nd
			}
		}
		if avail {
			msgs, err := n.pop(ctx, &req, refs, now)
			if err != nil || len(msgs) > 0 || time.Now().After(deadline) {
				if err == nil && n.metrics != nil {
					b := 0
					for i := range msgs {
						b += len(msgs[i].Body)
					}
					n.metrics.delivered(req.Topic, req.Group, len(msgs), b)
				}
				return msgs, err
			}
			continue // others took them first, or the filter passed over them: look again
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, nil
		}
		if next > 0 {
			left = min(left, time.UnixMilli(next).Sub(now)+time.Millisecond)
		}
		timer := time.NewTimer(left)
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-n.stopCh:
			timer.Stop()
			return nil, ErrClosed
		}
		timer.Stop()
	}
}

// popQueues lists the queues a receive takes from, the starting one
// rotated per receive so concurrent receivers spread over the queues.
func (n *Node) popQueues(t fsm.Topic, queueID int) ([]fsm.PopQueueRef, error) {
	if queueID >= 0 {
		if uint32(queueID) >= t.Queues {
			return nil, fmt.Errorf("%w: queue %d of topic %q (it has %d)", ErrInvalidArgument, queueID, t.Name, t.Queues)
		}
		return []fsm.PopQueueRef{{Topic: t.Name, TopicID: t.ID, QueueID: uint32(queueID)}}, nil
	}
	start := uint32(n.popRotor.Add(1)) % t.Queues
	refs := make([]fsm.PopQueueRef, t.Queues)
	for i := range refs {
		refs[i] = fsm.PopQueueRef{Topic: t.Name, TopicID: t.ID, QueueID: (start + uint32(i)) % t.Queues}
	}
	return refs, nil
}

// pop proposes one Pop and reads the messages it took.
func (n *Node) pop(ctx context.Context, req *ReceiveRequest, refs []fsm.PopQueueRef, now time.Time) ([]ReceivedMessage, error) {
	cmd := &fsm.Pop{Now: now.UnixMilli(), Group: req.Group, Invisible: req.Invisible.Milliseconds(), Max: uint32(req.Max),
		MaxReconsume: uint32(req.MaxReconsume), FromFirst: req.FromFirst, Queues: refs, Tags: req.Filter.tagHashes()}
	data, err := fsm.Encode(cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	resp, err := n.propose(ctx, data)
	if err != nil {
		return nil, mapFSMError(err)
	}
	res, ok := resp.(*fsm.PopResult)
	if !ok {
		return nil, fmt.Errorf("broker: pop applied with result %T", resp)
	}
	out := make([]ReceivedMessage, 0, len(res.Items))
	var mismatched []ReceiptHandle
	for _, it := range res.Items {
		h := ReceiptHandle{Broker: n.cfg.Group, Topic: it.Topic, QueueID: it.Handle.QueueID, Offset: it.Handle.Offset,
			PopTime: it.Handle.PopTime, Invisible: req.Invisible.Milliseconds()}
		u := it.Unit
		rec, err := n.store.ReadAt(u.Index, u.Pos, u.Size, nil)
		if err != nil {
			n.log.Error("received message unreadable; it will be redelivered", "topic", it.Topic, "queue-id", h.QueueID, "offset", h.Offset, "error", err)
			continue
		}
		m, err := fsm.DecodeMessage(rec)
		if err != nil {
			n.log.Error("received message undecodable", "topic", it.Topic, "queue-id", h.QueueID, "offset", h.Offset, "error", err)
			continue
		}
		if !req.Filter.matchMessage(&m) {
			mismatched = append(mismatched, h) // a tag hash collision, or the SQL92 filter said no: not this group's
			continue
		}
		out = append(out, ReceivedMessage{
			StoredMessage: StoredMessage{Message: m, QueueOffset: h.Offset, StoreTime: u.StoreTime, RaftIndex: u.Index, Pos: u.Pos},
			Handle:        h, Reconsume: int(it.Reconsume), Deadline: time.UnixMilli(it.Deadline),
		})
	}
	if len(mismatched) > 0 {
		if _, err := n.Ack(ctx, req.Group, mismatched); err != nil {
			n.log.Warn("ack of filtered-out popped messages failed; they will expire", "error", err)
		}
	}
	return out, nil
}

// popHandle resolves a receipt handle to the fsm's form.
func (n *Node) popHandle(h ReceiptHandle) (fsm.PopHandle, error) {
	if h.Broker != n.cfg.Group {
		return fsm.PopHandle{}, fmt.Errorf("%w: the handle was issued by broker group %q, this is %q", ErrInvalidArgument, h.Broker, n.cfg.Group)
	}
	if h.Retry != "" && h.Retry != "0" {
		return fsm.PopHandle{}, fmt.Errorf("%w: a retry-topic handle (flag %s); rmq redelivers in place and never issues one", ErrReceiptHandle, h.Retry)
	}
	t, ok := n.fsm.Topic(h.Topic)
	if !ok {
		return fsm.PopHandle{}, fmt.Errorf("%w: %q", ErrTopicNotFound, h.Topic)
	}
	return fsm.PopHandle{TopicID: t.ID, QueueID: h.QueueID, Offset: h.Offset, PopTime: h.PopTime}, nil
}

func handleError(h ReceiptHandle, st fsm.PopStatus) error {
	if st == fsm.PopOK {
		return nil
	}
	return fmt.Errorf("%w: %s/%d offset %d received at %d: %s", ErrReceiptHandle, h.Topic, h.QueueID, h.Offset, h.PopTime, st)
}

// Ack acks received messages of a group by their handles. The result
// has one error per handle (nil: acked; acking twice succeeds); the
// error return is for the request as a whole.
func (n *Node) Ack(ctx context.Context, group string, hs []ReceiptHandle) ([]error, error) {
	if err := ValidateGroupName(group); err != nil {
		return nil, err
	}
	if len(hs) == 0 || len(hs) > fsm.MaxPopItems {
		return nil, fmt.Errorf("%w: ack of %d handles (1..%d)", ErrInvalidArgument, len(hs), fsm.MaxPopItems)
	}
	if err := n.checkWritable(); err != nil {
		return nil, err
	}
	errs := make([]error, len(hs))
	cmd := &fsm.PopAck{Now: n.cfg.Now().UnixMilli(), Group: group}
	idx := make([]int, 0, len(hs))
	for i, h := range hs {
		ph, err := n.popHandle(h)
		if err != nil {
			errs[i] = err
			continue
		}
		cmd.Items = append(cmd.Items, ph)
		idx = append(idx, i)
	}
	if len(cmd.Items) == 0 {
		return errs, nil
	}
	data, err := fsm.Encode(cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	resp, err := n.propose(ctx, data)
	if err != nil {
		return nil, mapFSMError(err)
	}
	res, ok := resp.(*fsm.PopAckResult)
	if !ok || len(res.Status) != len(idx) {
		return nil, fmt.Errorf("broker: pop ack applied with result %T", resp)
	}
	for j, i := range idx {
		errs[i] = handleError(hs[i], res.Status[j])
	}
	return errs, nil
}

// ChangeInvisible makes a received message invisible for d from now and
// returns its new handle (the old one no longer acks it).
func (n *Node) ChangeInvisible(ctx context.Context, group string, h ReceiptHandle, d time.Duration) (ReceiptHandle, error) {
	if err := ValidateGroupName(group); err != nil {
		return ReceiptHandle{}, err
	}
	if d < MinInvisible || d > MaxInvisible {
		return ReceiptHandle{}, fmt.Errorf("%w: invisible time %s outside [%s, %s]", ErrInvalidArgument, d, MinInvisible, MaxInvisible)
	}
	if err := n.checkWritable(); err != nil {
		return ReceiptHandle{}, err
	}
	ph, err := n.popHandle(h)
	if err != nil {
		return ReceiptHandle{}, err
	}
	data, err := fsm.Encode(&fsm.PopChangeInvisible{Now: n.cfg.Now().UnixMilli(), Group: group, Item: ph, Invisible: d.Milliseconds()})
	if err != nil {
		return ReceiptHandle{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	resp, err := n.propose(ctx, data)
	if err != nil {
		return ReceiptHandle{}, mapFSMError(err)
	}
	res, ok := resp.(*fsm.PopChangeResult)
	if !ok {
		return ReceiptHandle{}, fmt.Errorf("broker: invisible-time change applied with result %T", resp)
	}
	if err := handleError(h, res.Status); err != nil {
		return ReceiptHandle{}, err
	}
	h.PopTime, h.Invisible, h.Retry = res.Handle.PopTime, d.Milliseconds(), ""
	return h, nil
}

// runPopRevive is the leader-only service that dead-letters dead pop
// items: for each, one SendBack into the group's DLQ naming the item,
// which drops it in the same apply. It waits for each proposal to apply
// before listing again, so an item is listed once (a proposal that
// times out and commits later may add a second DLQ unit: at least once).
func (n *Node) runPopRevive(ctx context.Context) error {
	tick := time.NewTicker(n.cfg.TimerPoll)
	defer tick.Stop()
	for {
		now := n.cfg.Now().UnixMilli()
		for _, d := range n.fsm.DeadPops(now, 256) {
			if ctx.Err() != nil {
				return nil
			}
			if err := n.deadLetterPop(ctx, d, now); err != nil && ctx.Err() == nil {
				n.log.Warn("dead-lettering a pop message failed; retrying", "group", d.Group, "offset", d.Handle.Offset, "error", err)
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (n *Node) deadLetterPop(ctx context.Context, d fsm.DeadPop, now int64) error {
	t, err := n.groupTopic(ctx, DLQTopic(d.Group), true)
	if err != nil {
		return err
	}
	rec := d.Record
	rec.TopicID, rec.QueueID, rec.Due = t.ID, 0, 0
	h := d.Handle
	if err := n.proposeCommand(ctx, &fsm.SendBack{Now: now, Record: rec, DLQ: true, Pop: &h, PopGroup: d.Group,
		Retry: fsm.RetryInfo{Reconsume: d.Reconsume, OriginTopicID: h.TopicID, OriginQueue: h.QueueID, OriginOffset: h.Offset}}); err != nil {
		return err
	}
	if n.metrics != nil {
		origin, _ := n.fsm.TopicName(h.TopicID)
		n.metrics.deadLettered(origin, d.Group)
	}
	return nil
}
