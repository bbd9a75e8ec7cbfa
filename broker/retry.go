package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/rmq-dev/rmq/fsm"
)

// Retries and dead letters (RocketMQ's %RETRY%group and %DLQ%group). A
// consumer of a clustering group that fails a message sends it back: the
// leader proposes fsm.SendBack, which schedules a redelivery into the
// group's retry queue after a backoff (a timer, delivered by the timers
// service like a delayed message), or, after MaxReconsume failed
// deliveries, appends it to the group's dead-letter queue. Both queues'
// units point at the original record: the body is written once. A
// delivery from either carries its metadata (StoredMessage.Retry).

// DefaultMaxReconsume is RocketMQ's maxReconsumeTimes.
const DefaultMaxReconsume = 16

// RetryTopic and DLQTopic name a group's retry and dead-letter topics.
func RetryTopic(group string) string { return "%RETRY%" + group }

// DLQTopic names a group's dead-letter topic.
func DLQTopic(group string) string { return "%DLQ%" + group }

// SendBackRequest asks for a failed delivery to be redelivered later.
type SendBackRequest struct {
	Group string
	// The delivery that failed: its queue and offset, or (Record set) only
	// its record's position, as RocketMQ's CONSUMER_SEND_MSG_BACK names it.
	Topic   string
	QueueID uint32
	Offset  uint64
	Record  *Position
	// DelayLevel > 0 retries after that delay level; 0 uses RocketMQ's
	// backoff (level 3 + earlier failures: 10s, 30s, 1m, ... with the
	// default levels); < 0 sends the message to the DLQ at once.
	DelayLevel int
	// MaxReconsume is how many failed deliveries go to the retry queue
	// before the DLQ; <= 0 means DefaultMaxReconsume.
	MaxReconsume int
}

// SendBackResult says what became of a sent-back message.
type SendBackResult struct {
	DLQ       bool   // it went to the dead-letter queue
	Reconsume uint32 // failed deliveries so far
	DeliverAt int64  // a retry's due time, unix ms
}

// SendBack schedules a retry of a failed delivery, or dead-letters it.
// Only the serving leader takes it (*NotLeaderError elsewhere).
func (n *Node) SendBack(ctx context.Context, req SendBackRequest) (SendBackResult, error) {
	if err := ValidateGroupName(req.Group); err != nil {
		return SendBackResult{}, err
	}
	if err := n.checkWritable(); err != nil {
		return SendBackResult{}, err
	}
	rec, info, err := n.sentBack(req)
	if err != nil {
		return SendBackResult{}, err
	}
	max := req.MaxReconsume
	if max <= 0 {
		max = DefaultMaxReconsume
	}
	now := n.cfg.Now()
	res := SendBackResult{Reconsume: info.Reconsume, DLQ: req.DelayLevel < 0 || int(info.Reconsume) > max}
	target := RetryTopic(req.Group)
	if res.DLQ {
		target = DLQTopic(req.Group)
	} else {
		level := req.DelayLevel
		if level == 0 {
			level = int(info.Reconsume) + 2
		}
		level = min(level, len(n.cfg.DelayLevels))
		due := now.Add(n.cfg.DelayLevels[level-1])
		rec.Due, res.DeliverAt = due.UnixMilli(), due.UnixMilli()
	}
	t, err := n.groupTopic(ctx, target, res.DLQ)
	if err != nil {
		return SendBackResult{}, err
	}
	rec.TopicID, rec.QueueID = t.ID, 0
	if err := n.proposeCommand(ctx, &fsm.SendBack{Now: now.UnixMilli(), Record: rec, Retry: info, DLQ: res.DLQ}); err != nil {
		return SendBackResult{}, err
	}
	if res.DLQ && n.metrics != nil {
		origin, ok := n.fsm.TopicName(info.OriginTopicID)
		if !ok {
			origin = req.Topic
		}
		n.metrics.deadLettered(origin, req.Group)
	}
	return res, nil
}

// sentBack finds the record of the failed delivery and its metadata for
// the next one.
func (n *Node) sentBack(req SendBackRequest) (fsm.TimerRef, fsm.RetryInfo, error) {
	if req.Record != nil {
		m, err := n.MessageAt(*req.Record)
		if err != nil {
			return fsm.TimerRef{}, fsm.RetryInfo{}, err
		}
		rec := fsm.TimerRef{Index: req.Record.Index, Pos: req.Record.Pos, Size: uint32(fsm.EncodedSize(&m.Message)), TagHash: fsm.TagHash(m.Tags)}
		if last, ok := n.fsm.LastRetry(RetryTopic(req.Group), 0, req.Record.Index, req.Record.Pos); ok {
			last.Reconsume++
			return rec, last, nil
		}
		t, ok := n.fsm.Topic(m.Topic)
		if !ok {
			return rec, fsm.RetryInfo{}, fmt.Errorf("%w: %q", ErrTopicNotFound, m.Topic)
		}
		return rec, fsm.RetryInfo{Reconsume: 1, OriginTopicID: t.ID, OriginQueue: m.QueueID, OriginOffset: m.QueueOffset}, nil
	}
	t, ok := n.fsm.Topic(req.Topic)
	if !ok {
		return fsm.TimerRef{}, fsm.RetryInfo{}, fmt.Errorf("%w: %q", ErrTopicNotFound, req.Topic)
	}
	var one [1]fsm.Unit
	units, err := n.fsm.Units(req.Topic, req.QueueID, req.Offset, 1, one[:0])
	if err != nil {
		return fsm.TimerRef{}, fsm.RetryInfo{}, mapFSMError(err)
	}
	if len(units) == 0 {
		return fsm.TimerRef{}, fsm.RetryInfo{}, fmt.Errorf("%w: no message at %s/%d offset %d", ErrInvalidArgument, req.Topic, req.QueueID, req.Offset)
	}
	u := units[0]
	rec := fsm.TimerRef{Index: u.Index, Pos: u.Pos, Size: u.Size, TagHash: u.TagHash}
	if u.Retry != nil {
		info := *u.Retry
		info.Reconsume++
		return rec, info, nil
	}
	return rec, fsm.RetryInfo{Reconsume: 1, OriginTopicID: t.ID, OriginQueue: req.QueueID, OriginOffset: req.Offset}, nil
}

// groupTopic returns a group's retry or dead-letter topic, creating it
// with one queue on first use: the DLQ write-only, as RocketMQ's was, so
// no consumer reads it by accident (rmq dlq reads it as an operator).
func (n *Node) groupTopic(ctx context.Context, name string, dlq bool) (fsm.Topic, error) {
	if t, ok := n.fsm.Topic(name); ok {
		return t, nil
	}
	spec := TopicSpec{Name: name, Queues: 1}
	if dlq {
		spec.Perm = fsm.PermWrite
	}
	t, err := n.createTopic(ctx, spec, false) // nacks work on a full disk
	if errors.Is(err, ErrTopicExists) {
		if t, ok := n.fsm.Topic(name); ok {
			return t, nil
		}
	}
	return t, err
}

// DeadLetters reads up to max messages of group's dead-letter queue from
// offset: an operator's read, which the queue's write-only permission
// does not stop. Each carries its failure count and origin (Retry).
func (n *Node) DeadLetters(ctx context.Context, group string, offset uint64, max int) (ReadResult, error) {
	if err := ValidateGroupName(group); err != nil {
		return ReadResult{}, err
	}
	if _, ok := n.fsm.Topic(DLQTopic(group)); !ok {
		return ReadResult{}, fmt.Errorf("%w: group %q has no dead-letter queue (nothing was dead-lettered)", ErrTopicNotFound, group)
	}
	return n.Read(ctx, ReadRequest{Topic: DLQTopic(group), Offset: offset, MaxMessages: max, operator: true})
}

// ResendDeadLetters redelivers dead letters of group, those whose message
// IDs are in ids or every one with all, through the group's retry queue
// at once, so only that group consumes them again; each counts its
// failures anew. The original records are redelivered, not copied. A
// dead letter stays in the dead-letter queue (it is a log). It returns
// how many it resent.
func (n *Node) ResendDeadLetters(ctx context.Context, group string, ids [][]byte, all bool) (int, error) {
	if err := n.checkWritable(); err != nil {
		return 0, err
	}
	if !all && len(ids) == 0 {
		return 0, fmt.Errorf("%w: name the dead letters to resend, or all", ErrInvalidArgument)
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[string(id)] = true
	}
	min, next, err := n.QueueRange(DLQTopic(group), 0)
	if err != nil {
		return 0, fmt.Errorf("group %q has no dead-letter queue: %w", group, err)
	}
	target, err := n.groupTopic(ctx, RetryTopic(group), false)
	if err != nil {
		return 0, err
	}
	resent := 0
	for off := min; off < next; {
		res, err := n.DeadLetters(ctx, group, off, 256)
		if err != nil {
			return resent, err
		}
		if len(res.Messages) == 0 {
			break
		}
		for i := range res.Messages {
			m := &res.Messages[i]
			if !all && !want[string(m.ID)] {
				continue
			}
			info := fsm.RetryInfo{}
			if m.Retry != nil {
				if t, ok := n.fsm.Topic(m.Retry.OriginTopic); ok {
					info = fsm.RetryInfo{OriginTopicID: t.ID, OriginQueue: m.Retry.OriginQueue, OriginOffset: m.Retry.OriginOffset}
				}
			}
			rec := fsm.TimerRef{Index: m.RaftIndex, Pos: m.Pos, Size: uint32(fsm.EncodedSize(&m.Message)), TagHash: fsm.TagHash(m.Tags),
				TopicID: target.ID}
			if err := n.proposeCommand(ctx, &fsm.SendBack{Now: n.cfg.Now().UnixMilli(), Record: rec, Retry: info, DLQ: true}); err != nil {
				return resent, err
			}
			resent++
		}
		off = res.NextOffset
	}
	return resent, nil
}
