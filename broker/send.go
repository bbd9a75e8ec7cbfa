package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// SendResult is the outcome of one message of a Send.
type SendResult struct {
	QueueID     uint32
	QueueOffset uint64 // logical offset in (topic, queue), dense from 0
	RaftIndex   uint64 // the CommitLog entry holding the message
	StoreTime   int64  // leader time stamped into the entry, unix ms
	Pos         uint32 // the record's byte position in the entry
	// Delayed: the message waits for its delivery time (DeliverAt) and
	// has no queue offset yet; it gets one when it is delivered.
	Delayed   bool
	DeliverAt int64 // unix ms, for a delayed message
	// Half: a transactional half message (tx.go), invisible until
	// committed; (RaftIndex, Pos) names it in EndTransaction.
	Half bool
	// Duplicate: a message with the same ID was stored on this topic
	// within the dedup window (Config.DedupWindow), so this one was not;
	// the other fields are the original's answer.
	Duplicate bool
	// Err is non-nil if this message alone was refused: by validation
	// (ErrTopicNotFound, ErrNoPermission, ErrMessageTooLarge,
	// ErrInvalidArgument; nothing of it written) or at apply (its topic
	// was deleted or recreated meanwhile). The other messages of the Send
	// are unaffected.
	Err error
}

// SendOptions are what a send asks for beyond its messages.
type SendOptions struct {
	// AutoCreateQueues > 0 asks to create missing topics with that many
	// queues (RocketMQ's autoCreateTopicEnable path; capped at
	// fsm.MaxQueues), unless the broker has DisableAutoCreate. 0: a
	// missing topic is refused with ErrTopicNotFound.
	AutoCreateQueues uint32
	// AutoCreateTopics limits auto-creation to these topics; empty means
	// every missing topic of the send.
	AutoCreateTopics []string
	// Atomic makes the send all-or-nothing: a refusal of any message
	// fails the whole call and nothing is written.
	Atomic bool
	// Timeout, if > 0, bounds the call on top of ctx.
	Timeout time.Duration
	// Allow, if set, is asked once per distinct topic before anything
	// else: an error refuses that topic's messages (access control).
	Allow func(topic string) error
	// Order, if set, orders this send among others: the send waits for
	// Order.Wait before it joins the commit queue and calls Done right
	// after, so sends ordered this way are stored in the order of their
	// Orders (the wire adapter passes the connection's frame order, so a
	// client's pipelined requests keep their order). Decoding and
	// validation still overlap.
	Order Sequencer
}

// Sequencer is SendOptions.Order (wire.Order implements it).
type Sequencer interface {
	Wait(ctx context.Context) error
	Done()
}

func (o SendOptions) queuesFor(topic string) uint32 {
	if len(o.AutoCreateTopics) == 0 || slices.Contains(o.AutoCreateTopics, topic) {
		return o.AutoCreateQueues
	}
	return 0
}

// Send writes msgs (of any topics and queues) with default options; see
// SendWith.
func (n *Node) Send(ctx context.Context, msgs []*fsm.Message) ([]SendResult, error) {
	return n.SendWith(ctx, msgs, SendOptions{})
}

// SendWith writes msgs (of any topics and queues) and returns once they
// are committed by a quorum and applied on this leader. Concurrent sends
// are packed into one Raft entry. It stamps each message's TopicID.
//
// The checks run once, here: writability first (a follower that is still
// catching up may not know the topic, and must say "not leader", never
// "topic not found"), then each message against the limits and the
// applied topic table, each distinct topic looked up (and auto-created,
// as opts ask) once. A message that fails gets its own SendResult.Err and
// the rest are written, unless opts.Atomic. The returned error covers the
// whole call: *NotLeaderError (nothing written; retry on the leader),
// ErrLeaderNotReady (retry), ErrDiskFull (nothing written: a node of the
// group is short of disk, diskguard.go), ErrInvalidArgument for an empty
// msgs, and ErrIndeterminate (the messages may or may not be stored).
func (n *Node) SendWith(ctx context.Context, msgs []*fsm.Message, opts SendOptions) ([]SendResult, error) {
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: a send needs at least one message", ErrInvalidArgument)
	}
	if err := n.checkWritable(); err != nil {
		return nil, err
	}
	if err := n.checkDiskRoom(); err != nil { // diskguard.go
		return nil, err
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	out := make([]SendResult, len(msgs))
	valid, size, err := n.validateMessages(ctx, msgs, opts, out)
	if err != nil {
		return nil, err
	}
	if opts.Atomic && len(valid) < len(msgs) {
		for i := range out {
			if out[i].Err != nil {
				return nil, fmt.Errorf("message %d of an all-or-nothing send: %w", i, out[i].Err)
			}
		}
	}
	if len(valid) == 0 {
		return out, nil // every message was refused: nothing to propose
	}
	req := &sendReq{msgs: valid, size: size, done: make(chan sendResult, 1)}
	if opts.Order != nil {
		if err := opts.Order.Wait(ctx); err != nil {
			return nil, err
		}
	}
	select {
	case n.sends <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.stopCh:
		return nil, ErrClosed
	}
	if opts.Order != nil {
		opts.Order.Done() // queued: the next ordered send may follow
	}
	var res sendResult
	select {
	case res = <-req.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrIndeterminate, ctx.Err())
	}
	if res.err != nil {
		return nil, res.err
	}
	j, dups := 0, res.dups // index into valid and res.offsets; duplicates by j
	for i, m := range msgs {
		if out[i].Err != nil {
			continue
		}
		out[i] = SendResult{QueueID: m.QueueID, RaftIndex: res.index, StoreTime: res.storeTime, Pos: res.positions[j]}
		var dup *fsm.Duplicate
		if len(dups) > 0 && dups[0].Msg == j {
			dup, dups = &dups[0], dups[1:]
			out[i] = SendResult{QueueID: dup.QueueID, RaftIndex: dup.Index, StoreTime: dup.StoreTime, Pos: dup.Pos, Duplicate: true}
		}
		switch off := res.offsets[j]; {
		case off >= 0:
			out[i].QueueOffset = uint64(off)
		case off == fsm.OffsetDelayed && dup != nil:
			out[i].Delayed, out[i].DeliverAt = true, dup.DeliverAt
		case off == fsm.OffsetDelayed:
			out[i].Delayed = true
			out[i].DeliverAt, _ = strconv.ParseInt(m.Properties[fsm.PropDeliverAt], 10, 64)
		case off == fsm.OffsetHalf:
			out[i].Half = true
		default:
			out[i].Err = fmt.Errorf("%w: %q was deleted or recreated during the send", ErrTopicNotFound, m.Topic)
		}
		j++
	}
	n.metrics.stored(msgs, out)
	return out, nil
}

// validateMessages checks every message once, looking each distinct topic
// up once (creating it first if opts ask), stamps TopicIDs, records
// refusals in out[i].Err and returns the messages that passed with their
// encoded size. Its error is for the whole request (leadership lost while
// auto-creating, ctx done).
func (n *Node) validateMessages(ctx context.Context, msgs []*fsm.Message, opts SendOptions, out []SendResult) ([]*fsm.Message, int, error) {
	var (
		lastName string
		last     *topicCheck
		seen     map[string]*topicCheck // only for requests of several topics
	)
	lookup := func(name string) (*topicCheck, error) {
		if last != nil && name == lastName {
			return last, nil
		}
		tc := seen[name]
		if tc == nil {
			tc = &topicCheck{}
			t, ok := n.fsm.Topic(name)
			if opts.Allow != nil {
				if tc.err = opts.Allow(name); tc.err != nil {
					ok = true // refused: neither look further nor auto-create
				}
			}
			if !ok {
				tc.err = n.autoCreate(ctx, name, opts.queuesFor(name))
				if requestLevel(tc.err) {
					return nil, tc.err
				}
				if tc.err == nil {
					if t, ok = n.fsm.Topic(name); !ok {
						tc.err = fmt.Errorf("%w: %q was deleted right after auto-creation", ErrTopicNotFound, name)
					}
				}
			}
			tc.t = t
			if last != nil {
				if seen == nil {
					seen = map[string]*topicCheck{lastName: last}
				}
				seen[name] = tc
			}
		}
		lastName, last = name, tc
		return tc, nil
	}
	valid := msgs[:0:0]
	size := 0
	for i, m := range msgs {
		sz, err := n.validateMessage(m, lookup)
		if err != nil {
			if requestLevel(err) {
				return nil, 0, err
			}
			out[i].QueueID, out[i].Err = m.QueueID, err
			continue
		}
		valid = append(valid, m)
		size += sz
	}
	return valid, size, nil
}

// topicCheck is one topic's look-up for a Send: the topic, or why its
// messages are refused.
type topicCheck struct {
	t   fsm.Topic
	err error
}

// requestLevel reports whether err met while checking one message is about
// the whole request (this node can no longer take it), not that message.
func requestLevel(err error) bool {
	return err != nil && (errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeaderNotReady) ||
		errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// validateMessage checks m against the limits and its topic (from lookup)
// and stamps its TopicID. It returns the encoded size. It is the one check
// of a message on the write path: the batcher encodes it unchecked.
func (n *Node) validateMessage(m *fsm.Message, lookup func(string) (*topicCheck, error)) (int, error) {
	if len(m.Body) > n.cfg.MaxMessageSize {
		return 0, fmt.Errorf("%w: body is %d bytes, limit %d", ErrMessageTooLarge, len(m.Body), n.cfg.MaxMessageSize)
	}
	if err := validateHalf(m); err != nil {
		return 0, err
	}
	if err := n.normalizeDelay(m, n.cfg.Now()); err != nil {
		return 0, err
	}
	if err := fsm.ValidateMessage(m); err != nil { // includes the topic name
		return 0, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	tc, err := lookup(m.Topic)
	if err != nil {
		return 0, err
	}
	if tc.err != nil {
		return 0, tc.err
	}
	t := tc.t
	if t.Perm&permWrite == 0 {
		return 0, fmt.Errorf("%w: topic %q is not writable (perm %d)", ErrNoPermission, m.Topic, t.Perm)
	}
	if m.QueueID >= t.Queues {
		return 0, fmt.Errorf("%w: queue %d of topic %q (it has %d)", ErrInvalidArgument, m.QueueID, m.Topic, t.Queues)
	}
	m.TopicID = t.ID
	return fsm.EncodedSize(m), nil
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
	}
	return nil
}
