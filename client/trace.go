package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Message trace (RocketMQ's enableMsgTrace), opt in per producer and
// consumer. A traced producer records each send (client, latency, the
// broker's answer: group, queue, offset, store time, or the error); a
// traced push consumer records each delivery (when, reconsume count) and
// its outcome (success, retry through the broker, dead letter, dropped;
// handler time). Records go to a bounded in-memory buffer (never blocking
// the traced path: a full buffer drops and counts) and a background
// loop sends them in batches to the trace topic (RMQ_SYS_TRACE_TOPIC by
// default), with the traced messages' IDs as keys, so the broker's
// message index finds a message's records by key (Admin.MessageTrace,
// rmq message trace).
//
// A trace message's body is compact text, since it shares the broker with
// the traced traffic (about 100 bytes a record): a first line
// "rmqtrace1 <client> <group>", then one line per record of fields
// separated by 0x01: kind (s, d, c), message id, topic, broker group,
// queue, offset, store time (unix ms), event time (unix ms), cost (µs),
// result, reconsume count. Tags and keys are not repeated: the message
// itself has them.

// DefaultTraceTopic is where trace records go (RocketMQ's default).
const DefaultTraceTopic = "RMQ_SYS_TRACE_TOPIC"

// Trace record kinds.
const (
	TraceSend    = "send"    // a producer's send and the broker's answer
	TraceDeliver = "deliver" // a push consumer got the message
	TraceConsume = "consume" // the handler's outcome
)

// TraceRecord is one event in a message's life.
type TraceRecord struct {
	Kind      string    `json:"kind"`
	MsgID     string    `json:"msg_id"`
	Topic     string    `json:"topic"`
	Tags      string    `json:"tags,omitempty"`
	Keys      []string  `json:"keys,omitempty"`
	Client    string    `json:"client"`
	Group     string    `json:"group"` // producer or consumer group
	Broker    string    `json:"broker,omitempty"`
	QueueID   uint32    `json:"queue_id"`
	Offset    uint64    `json:"offset"`
	StoreTime time.Time `json:"store_time,omitzero"`
	At        time.Time `json:"at"`      // when the event happened, the client's clock
	Cost      int64     `json:"cost_us"` // send latency or handler time, µs
	Result    string    `json:"result"`  // ok; an error; success, retry, dlq, dropped
	Reconsume int       `json:"reconsume,omitempty"`
}

const (
	traceBuffer   = 16384
	traceBatch    = 256
	traceInterval = 100 * time.Millisecond
)

// tracer sends trace records in the background. Its own producer is not
// traced.
type tracer struct {
	topic   string
	p       *Producer
	log     hclog.Logger
	ch      chan TraceRecord
	dropped atomic.Uint64
	sent    atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newTracer(nameServers []string, topic string, log hclog.Logger) (*tracer, error) {
	if topic == "" {
		topic = DefaultTraceTopic
	}
	if err := ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("trace topic: %w", err)
	}
	p, err := NewProducer(ProducerConfig{NameServers: nameServers, Group: "RMQ_TRACE_PRODUCER", Logger: log, SendTimeout: 3 * time.Second})
	if err != nil {
		return nil, err
	}
	t := &tracer{topic: topic, p: p, log: log.Named("trace"), ch: make(chan TraceRecord, traceBuffer),
		stop: make(chan struct{}), done: make(chan struct{})}
	go t.loop() // ends with close
	return t, nil
}

// add queues r without blocking; a full buffer drops it.
func (t *tracer) add(r TraceRecord) {
	select {
	case t.ch <- r:
	default:
		t.dropped.Add(1)
	}
}

func (t *tracer) loop() {
	defer close(t.done)
	tick := time.NewTicker(traceInterval)
	defer tick.Stop()
	var batch []TraceRecord
	flush := func() {
		if len(batch) > 0 {
			t.send(batch)
			batch = nil
		}
	}
	for {
		select {
		case r := <-t.ch:
			batch = append(batch, r)
			if len(batch) == traceBatch {
				flush()
			}
		case <-tick.C:
			flush()
		case <-t.stop:
			for {
				select {
				case r := <-t.ch:
					batch = append(batch, r)
					if len(batch) == traceBatch {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// send writes one trace message: a JSON line per record, keyed by the
// traced message IDs.
func (t *tracer) send(batch []TraceRecord) {
	body := make([]byte, 0, 64+len(batch)*112)
	body = append(body, traceMagic...)
	body = append(body, ' ')
	body = append(body, batch[0].Client...)
	body = append(body, ' ')
	body = append(body, batch[0].Group...)
	body = append(body, '\n')
	ids := map[string]bool{}
	var keys []string
	for _, r := range batch {
		body = appendTraceRecord(body, &r)
		if r.MsgID != "" && !ids[r.MsgID] {
			ids[r.MsgID] = true
			keys = append(keys, r.MsgID)
		}
	}
	n := uint64(len(batch))
	t.p.SendAsync(context.Background(), &Message{Topic: t.topic, Tags: "trace", Keys: keys, Body: body}, func(_ SendResult, err error) {
		if err != nil {
			t.dropped.Add(n)
			t.log.Debug("trace records not sent", "records", n, "error", err)
			return
		}
		t.sent.Add(n)
	})
}

// close sends what is buffered (bounded by ctx) and stops.
func (t *tracer) close(ctx context.Context) error {
	var err error
	t.once.Do(func() {
		close(t.stop)
		select {
		case <-t.done:
		case <-ctx.Done():
		}
		err = t.p.Close(ctx)
	})
	return err
}

// traceSend records a send.
func (p *Producer) traceSend(msg *Message, id []byte, res SendResult, err error, start time.Time) {
	if p.trace == nil || msg.Topic == p.trace.topic {
		return
	}
	r := TraceRecord{Kind: TraceSend, MsgID: FormatMsgID(id), Topic: msg.Topic, Tags: msg.Tags, Keys: msg.Keys, Client: p.cfg.ClientID,
		Group: p.cfg.Group, Broker: res.Group, QueueID: res.QueueID, Offset: res.QueueOffset, StoreTime: res.StoreTime,
		At: start, Cost: time.Since(start).Microseconds(), Result: "ok"}
	if err != nil {
		r.Result = err.Error()
	}
	p.trace.add(r)
}

// traceDelivery records a push consumer's delivery and outcome of msgs.
func (c *Consumer) traceDelivery(msgs []*MessageExt, start time.Time, result string) {
	if c.trace == nil {
		return
	}
	cost := time.Since(start).Microseconds()
	for _, m := range msgs {
		base := TraceRecord{MsgID: m.MsgID, Topic: m.Topic, Tags: m.Tags, Keys: m.Keys, Client: c.cfg.ClientID, Group: c.cfg.Group,
			Broker: m.Queue.Group, QueueID: m.Queue.QueueID, Offset: m.QueueOffset, StoreTime: m.StoreTime, Reconsume: m.ReconsumeTimes}
		d := base
		d.Kind, d.At, d.Result = TraceDeliver, start, "delivered"
		c.trace.add(d)
		o := base
		o.Kind, o.At, o.Cost, o.Result = TraceConsume, start.Add(time.Duration(cost)*time.Microsecond), cost, result
		c.trace.add(o)
	}
}

// TraceStats counts a traced client's records.
type TraceStats struct {
	Sent, Dropped uint64
}

// MessageTrace returns the trace records of a message, oldest first,
// read from the trace topic through the broker's message index.
func (a *Admin) MessageTrace(ctx context.Context, msgID, traceTopic string) ([]TraceRecord, error) {
	if traceTopic == "" {
		traceTopic = DefaultTraceTopic
	}
	found, err := a.MessagesByKey(ctx, traceTopic, msgID, 1024)
	if err != nil {
		if errors.Is(err, ErrTopicNotFound) {
			return nil, fmt.Errorf("%w: no trace topic %s (no traced client has sent a record yet)", ErrTopicNotFound, traceTopic)
		}
		return nil, err
	}
	var out []TraceRecord
	for _, f := range found {
		for _, r := range parseTraceBody(f.Body) {
			if r.MsgID == msgID {
				out = append(out, r)
			}
		}
	}
	kindOrder := map[string]int{TraceSend: 0, TraceDeliver: 1, TraceConsume: 2}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return kindOrder[out[i].Kind] < kindOrder[out[j].Kind]
	})
	return out, nil
}

// traceDeadLetter records that the broker dead-lettered m.
func (c *Consumer) traceDeadLetter(m *MessageExt) {
	if c.trace == nil {
		return
	}
	c.trace.add(TraceRecord{Kind: TraceConsume, MsgID: m.MsgID, Topic: m.Topic, Client: c.cfg.ClientID, Group: c.cfg.Group,
		Broker: m.Queue.Group, QueueID: m.Queue.QueueID, Offset: m.QueueOffset, At: time.Now(), Result: "dlq", Reconsume: m.ReconsumeTimes})
}

const traceMagic = "rmqtrace1"

var traceKinds = map[string]string{TraceSend: "s", TraceDeliver: "d", TraceConsume: "c"}

func appendTraceRecord(b []byte, r *TraceRecord) []byte {
	sep := func() { b = append(b, 1) }
	b = append(b, traceKinds[r.Kind]...)
	sep()
	b = append(b, r.MsgID...)
	sep()
	b = append(b, r.Topic...)
	sep()
	b = append(b, r.Broker...)
	sep()
	b = strconv.AppendUint(b, uint64(r.QueueID), 10)
	sep()
	b = strconv.AppendUint(b, r.Offset, 10)
	sep()
	if !r.StoreTime.IsZero() {
		b = strconv.AppendInt(b, r.StoreTime.UnixMilli(), 10)
	}
	sep()
	b = strconv.AppendInt(b, r.At.UnixMilli(), 10)
	sep()
	b = strconv.AppendInt(b, r.Cost, 10)
	sep()
	b = append(b, strings.Map(func(c rune) rune {
		if c == 1 || c == '\n' {
			return ' '
		}
		return c
	}, r.Result)...)
	sep()
	b = strconv.AppendInt(b, int64(r.Reconsume), 10)
	return append(b, '\n')
}

// parseTraceBody decodes a trace message's records; malformed lines are
// skipped.
func parseTraceBody(body []byte) []TraceRecord {
	lines := strings.Split(string(body), "\n")
	if len(lines) == 0 {
		return nil
	}
	head := strings.Fields(lines[0])
	if len(head) < 1 || head[0] != traceMagic {
		return nil
	}
	client, group := "", ""
	if len(head) > 1 {
		client = head[1]
	}
	if len(head) > 2 {
		group = head[2]
	}
	kinds := map[string]string{"s": TraceSend, "d": TraceDeliver, "c": TraceConsume}
	var out []TraceRecord
	for _, line := range lines[1:] {
		f := strings.Split(line, "\x01")
		if len(f) != 11 || kinds[f[0]] == "" {
			continue
		}
		q, _ := strconv.ParseUint(f[4], 10, 32)
		off, _ := strconv.ParseUint(f[5], 10, 64)
		st, _ := strconv.ParseInt(f[6], 10, 64)
		at, _ := strconv.ParseInt(f[7], 10, 64)
		cost, _ := strconv.ParseInt(f[8], 10, 64)
		rc, _ := strconv.Atoi(f[10])
		r := TraceRecord{Kind: kinds[f[0]], MsgID: f[1], Topic: f[2], Broker: f[3], QueueID: uint32(q), Offset: off,
			At: time.UnixMilli(at), Cost: cost, Result: f[9], Reconsume: rc, Client: client, Group: group}
		if st > 0 {
			r.StoreTime = time.UnixMilli(st)
		}
		out = append(out, r)
	}
	return out
}
