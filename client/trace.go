package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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
// A trace message shares the broker group with the traced traffic, so it
// is small and cheap to make: about 20 bytes a record against 1 KiB
// messages, and no compression (DEFLATE made it smaller still but cost
// the client a microsecond a record). Its body is a first line
// "rmqtrace2 <client> <group>", then binary (uvarints; times in unix ms,
// zigzag deltas from the batch's base time):
//
//	base time, string count, strings (length, bytes),
//	record count, records: kind (s, d, c), id prefix (string number),
//	id counter delta (zigzag, from the previous record), topic, broker
//	group, queue, offset, store time (0: none, else 1 + delta), event
//	time (delta), cost (µs), result (string number), reconsume count.
//
// A message id is split into a prefix and a counter of its last 16 hex
// digits (rmq's and RocketMQ's ids end in a counter), so the ids of one
// producer cost a byte or two each; an id that does not end in 16
// upper-case hex digits is all prefix (the kind's high bit says so). Tags
// and keys are not repeated: the message itself has them. A trace
// message's keys are not the traced ids (32 characters each, in the
// properties) but a 48-bit hash (12 hex digits) of each id without its last byte
// (traceKey), one key for 256 consecutive ids: MessageTrace looks the key
// up and keeps the records whose full id matches, so sharing a key (or a
// hash collision) costs reading another trace message, never a wrong
// record.

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
	traceBuffer   = 16384 // records waiting to be sent, at most; more are dropped
	traceBatch    = 256   // records a trace message
	traceInterval = 100 * time.Millisecond
	// traceSendTimeout bounds one trace message's send, retries included.
	traceSendTimeout = 10 * time.Second
)

// tracer sends trace records in the background. Its own producer is not
// traced.
//
// A record is encoded into the batch being filled as it is made, under a
// mutex: a traced send costs an append of a few bytes, no allocation, no
// channel hand-off and no goroutine wake-up (which cost a traced
// producer more than the encoding did). A full batch joins the ready
// list and kicks the loop, which also sends whatever is pending every
// traceInterval.
type tracer struct {
	topic   string
	p       *Producer
	log     hclog.Logger
	dropped atomic.Uint64
	sent    atomic.Uint64
	kick    chan struct{} // capacity 1: "a batch is ready"
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu    sync.Mutex
	cur   *traceEnc   // the batch being filled, nil when empty
	ready []*traceEnc // full batches, at most traceBuffer/traceBatch
}

func newTracer(nameServers []string, tlsCfg *tls.Config, topic string, log hclog.Logger) (*tracer, error) {
	if topic == "" {
		topic = DefaultTraceTopic
	}
	if err := ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("trace topic: %w", err)
	}
	// Trace messages are sent in the background, off the traced path, so
	// they can wait out a leader election on a loaded machine (seen to
	// take several seconds with both cores busy) instead of being dropped:
	// the budget is traceSendTimeout, not the 3 s a producer waits by default.
	p, err := NewProducer(ProducerConfig{NameServers: nameServers, TLS: tlsCfg, Group: "RMQ_TRACE_PRODUCER", Logger: log, SendTimeout: traceSendTimeout})
	if err != nil {
		return nil, err
	}
	t := &tracer{topic: topic, p: p, log: log.Named("trace"), kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go t.loop() // ends with close
	return t, nil
}

// batch returns the batch to add a record at to (t.mu held), starting
// one for client and group if none is being filled.
func (t *tracer) batch(client, group string, at time.Time) *traceEnc {
	if t.cur == nil {
		t.cur = newTraceEnc(client, group, at.UnixMilli())
	}
	return t.cur
}

// added ends an add (t.mu held): a full batch goes to the ready list, or
// is dropped when the list is full (the trace topic cannot keep up).
func (t *tracer) added() {
	if t.cur.n < traceBatch {
		return
	}
	if len(t.ready) >= traceBuffer/traceBatch {
		t.dropped.Add(uint64(t.cur.n))
		t.cur = nil
		return
	}
	t.ready = append(t.ready, t.cur)
	t.cur = nil
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// add records r without blocking.
func (t *tracer) add(r *TraceRecord) {
	t.mu.Lock()
	t.batch(r.Client, r.Group, r.At).add(r)
	t.added()
	t.mu.Unlock()
}

// addSend records a producer's send of raw message id: add without
// formatting the id or building a TraceRecord.
func (t *tracer) addSend(client, group string, id []byte, topic string, res *SendResult, at time.Time, cost int64, result string) {
	t.mu.Lock()
	t.batch(client, group, at).addRaw('s', id, topic, res.Group, res.QueueID, res.QueueOffset, res.StoreTime, at, cost, result, 0)
	t.added()
	t.mu.Unlock()
}

// take removes the ready batches and, with all set, the one being filled.
func (t *tracer) take(all bool) []*traceEnc {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.ready
	t.ready = nil
	if all && t.cur != nil {
		out = append(out, t.cur)
		t.cur = nil
	}
	return out
}

func (t *tracer) loop() {
	defer close(t.done)
	tick := time.NewTicker(traceInterval)
	defer tick.Stop()
	for {
		all := false
		select {
		case <-t.kick:
		case <-tick.C:
			all = true
		case <-t.stop:
			for _, b := range t.take(true) {
				t.send(b)
			}
			return
		}
		for _, b := range t.take(all) {
			t.send(b)
		}
	}
}

// send writes one trace message (see the format above), keyed by the
// hashes of the traced message IDs.
func (t *tracer) send(b *traceEnc) {
	body, keys := b.finish()
	n := uint64(b.n)
	t.p.SendAsync(context.Background(), &Message{Topic: t.topic, Tags: "trace", Keys: keys, Body: body}, func(_ SendResult, err error) {
		if err != nil {
			t.dropped.Add(n)
			t.log.Debug("trace records not sent", "records", n, "error", err)
			return
		}
		t.sent.Add(n)
	})
}

// encodeTraceBatch makes a trace message's body and keys from records of
// one client and group.
func encodeTraceBatch(batch []TraceRecord) ([]byte, []string) {
	e := newTraceEnc(batch[0].Client, batch[0].Group, batch[0].At.UnixMilli())
	for i := range batch {
		e.add(&batch[i])
	}
	return e.finish()
}

// traceEnc is one trace message being encoded: its string table and its
// records so far.
type traceEnc struct {
	client, group string
	strs          []string
	index         map[string]uint64
	size          int
	base          int64
	recs          []byte
	n             int
	keys          []string
	prev          uint64 // the previous record's id counter
	lastID        string // the last string id a key was made for
	lastRaw       []byte // the last raw id a key was made for
	rawPrefix     []byte // the last raw id prefix and its string number
	rawPrefixN    uint64
}

func newTraceEnc(client, group string, base int64) *traceEnc {
	return &traceEnc{client: client, group: group, index: map[string]uint64{}, base: base,
		recs: make([]byte, 0, traceBatch*20), keys: make([]string, 0, 4)}
}

// add encodes r (its Tags and Keys are not carried: the message has them).
func (e *traceEnc) add(r *TraceRecord) {
	prefix, counter, ok := splitMsgID(r.MsgID)
	kind := traceKinds[r.Kind][0]
	if !ok {
		kind |= 0x80 // the whole id is the prefix
	}
	e.record(kind, e.str(prefix), counter, r.Topic, r.Broker, r.QueueID, r.Offset, r.StoreTime, r.At, r.Cost, r.Result, r.Reconsume)
	if r.MsgID != "" && (len(r.MsgID) != len(e.lastID) || r.MsgID[:max(len(r.MsgID)-2, 0)] != e.lastID[:max(len(e.lastID)-2, 0)]) {
		e.lastID = r.MsgID // the next ids of this producer share its key: skip the hash
		e.key(traceKey(r.MsgID))
	}
}

// addRaw encodes a record of raw message id, as add would encode
// FormatMsgID(id).
func (e *traceEnc) addRaw(kind byte, id []byte, topic, broker string, queue uint32, offset uint64, store, at time.Time, cost int64, result string, reconsume int) {
	if len(id) < 8 {
		e.add(&TraceRecord{Kind: map[byte]string{'s': TraceSend, 'd': TraceDeliver, 'c': TraceConsume}[kind], MsgID: FormatMsgID(id),
			Topic: topic, Broker: broker, QueueID: queue, Offset: offset, StoreTime: store, At: at, Cost: cost, Result: result, Reconsume: reconsume})
		return
	}
	cut := len(id) - 8
	if e.rawPrefix == nil || !bytes.Equal(e.rawPrefix, id[:cut]) {
		e.rawPrefix = append(e.rawPrefix[:0], id[:cut]...)
		e.rawPrefixN = e.str(FormatMsgID(id[:cut]))
	}
	e.record(kind, e.rawPrefixN, binary.BigEndian.Uint64(id[cut:]), topic, broker, queue, offset, store, at, cost, result, reconsume)
	if e.lastRaw == nil || !bytes.Equal(e.lastRaw, id[:len(id)-1]) {
		e.lastRaw = append(e.lastRaw[:0], id[:len(id)-1]...)
		e.key(traceKeyHex(id[:len(id)-1]))
	}
}

func (e *traceEnc) record(kind byte, prefix, counter uint64, topic, broker string, queue uint32, offset uint64, store, at time.Time, cost int64, result string, reconsume int) {
	recs := append(e.recs, kind)
	recs = binary.AppendUvarint(recs, prefix)
	recs = binary.AppendVarint(recs, int64(counter-e.prev))
	e.prev = counter
	recs = binary.AppendUvarint(recs, e.str(topic))
	recs = binary.AppendUvarint(recs, e.str(broker))
	recs = binary.AppendUvarint(recs, uint64(queue))
	recs = binary.AppendUvarint(recs, offset)
	if store.IsZero() {
		recs = append(recs, 0)
	} else {
		recs = binary.AppendUvarint(recs, 1+zigzag(store.UnixMilli()-e.base))
	}
	recs = binary.AppendVarint(recs, at.UnixMilli()-e.base)
	recs = binary.AppendUvarint(recs, uint64(max(cost, 0)))
	recs = binary.AppendUvarint(recs, e.str(result))
	e.recs = binary.AppendUvarint(recs, uint64(max(reconsume, 0)))
	e.n++
}

func (e *traceEnc) key(k string) {
	if !slices.Contains(e.keys, k) {
		e.keys = append(e.keys, k)
	}
}

// finish returns the message body and keys.
func (e *traceEnc) finish() ([]byte, []string) {
	body := make([]byte, 0, 32+len(e.client)+len(e.group)+e.size+len(e.recs)+16)
	body = append(body, traceMagic+" "+e.client+" "+e.group+"\n"...)
	body = binary.AppendVarint(body, e.base)
	body = binary.AppendUvarint(body, uint64(len(e.strs)))
	for _, s := range e.strs {
		body = binary.AppendUvarint(body, uint64(len(s)))
		body = append(body, s...)
	}
	body = binary.AppendUvarint(body, uint64(e.n))
	return append(body, e.recs...), e.keys
}

func (e *traceEnc) str(s string) uint64 {
	if n, ok := e.index[s]; ok {
		return n
	}
	n := uint64(len(e.strs))
	e.strs = append(e.strs, s)
	e.index[s] = n
	e.size += len(s) + 2
	return n
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// splitMsgID splits an id into what precedes its last 16 hex digits and
// their value; ok is false (all prefix) when it does not end in 16
// upper-case hex digits, the form FormatMsgID writes.
func splitMsgID(id string) (prefix string, counter uint64, ok bool) {
	if len(id) < 16 {
		return id, 0, false
	}
	for _, c := range []byte(id[len(id)-16:]) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return id, 0, false
		}
		counter = counter<<4 | uint64(d)
	}
	return id[:len(id)-16], counter, true
}

// traceKey is the key under which a trace message is indexed for the
// traced message id: a 48-bit FNV-1a hash, in hex, of the id without its
// last byte. Message ids end in a counter (rmq's and RocketMQ's), so one
// key covers 256 consecutive ids of a producer and a batch of records
// needs a few index entries, not one a record.
func traceKey(msgID string) string {
	if len(msgID) > 2 {
		msgID = msgID[:len(msgID)-2]
	}
	h := uint64(fnvOffset64)
	for i := 0; i < len(msgID); i++ {
		h = (h ^ uint64(msgID[i])) * fnvPrime64
	}
	return traceKeyOf(h)
}

// traceKeyHex is traceKey(FormatMsgID(id)+"XX"): the key of the ids that
// start with the bytes id, hashed over their hex digits without
// formatting them.
func traceKeyHex(id []byte) string {
	const digits = "0123456789ABCDEF"
	h := uint64(fnvOffset64)
	for _, b := range id {
		h = (h ^ uint64(digits[b>>4])) * fnvPrime64
		h = (h ^ uint64(digits[b&0x0f])) * fnvPrime64
	}
	return traceKeyOf(h)
}

// FNV-1a, 64 bits (hash/fnv's constants).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// traceKeyOf mixes an FNV-1a hash into a key: FNV-1a's last bytes barely
// reach the high bits, so splitmix64's finalizer mixes them first.
func traceKeyOf(x uint64) string {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return strconv.FormatUint((x^x>>31)>>16, 16)
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
	result := "ok"
	if err != nil {
		result = err.Error()
	}
	p.trace.addSend(p.cfg.ClientID, p.cfg.Group, id, msg.Topic, &res, start, time.Since(start).Microseconds(), result)
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
		c.trace.add(&d)
		o := base
		o.Kind, o.At, o.Cost, o.Result = TraceConsume, start.Add(time.Duration(cost)*time.Microsecond), cost, result
		c.trace.add(&o)
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
	found, err := a.MessagesByKey(ctx, traceTopic, traceKey(msgID), 1024)
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
	c.trace.add(&TraceRecord{Kind: TraceConsume, MsgID: m.MsgID, Topic: m.Topic, Client: c.cfg.ClientID, Group: c.cfg.Group,
		Broker: m.Queue.Group, QueueID: m.Queue.QueueID, Offset: m.QueueOffset, At: time.Now(), Result: "dlq", Reconsume: m.ReconsumeTimes})
}

const traceMagic = "rmqtrace2"

var traceKinds = map[string]string{TraceSend: "s", TraceDeliver: "d", TraceConsume: "c"}

// parseTraceBody decodes a trace message's records; a body that is not a
// whole trace batch gives none.
func parseTraceBody(body []byte) []TraceRecord {
	nl := bytes.IndexByte(body, '\n')
	if nl < 0 {
		return nil
	}
	head := strings.Fields(string(body[:nl]))
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
	d := traceDecoder{b: body[nl+1:]}
	base := d.varint()
	nstr := d.uvarint()
	if d.err || nstr > uint64(len(d.b)) {
		return nil
	}
	strs := make([]string, 0, nstr)
	for range nstr {
		n := d.uvarint()
		if d.err || n > uint64(len(d.b)) {
			return nil
		}
		strs = append(strs, string(d.b[:n]))
		d.b = d.b[n:]
	}
	str := func() string {
		n := d.uvarint()
		if n >= uint64(len(strs)) {
			d.err = true
			return ""
		}
		return strs[n]
	}
	nrec := d.uvarint()
	if d.err || nrec > uint64(len(d.b)) {
		return nil
	}
	kinds := map[byte]string{'s': TraceSend, 'd': TraceDeliver, 'c': TraceConsume}
	out := make([]TraceRecord, 0, nrec)
	var counter uint64
	for range nrec {
		if len(d.b) == 0 {
			return nil
		}
		kind := d.b[0]
		d.b = d.b[1:]
		r := TraceRecord{Kind: kinds[kind&0x7f], Client: client, Group: group}
		r.MsgID = str()
		counter += uint64(d.varint())
		if kind&0x80 == 0 {
			r.MsgID += fmt.Sprintf("%016X", counter)
		}
		r.Topic, r.Broker = str(), str()
		r.QueueID = uint32(d.uvarint())
		r.Offset = d.uvarint()
		if st := d.uvarint(); st > 0 {
			r.StoreTime = time.UnixMilli(base + unzigzag(st-1))
		}
		r.At = time.UnixMilli(base + d.varint())
		r.Cost = int64(d.uvarint())
		r.Result = str()
		r.Reconsume = int(d.uvarint())
		if d.err || r.Kind == "" {
			return nil
		}
		out = append(out, r)
	}
	return out
}

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// traceDecoder reads varints; a short or overlong one sets err.
type traceDecoder struct {
	b   []byte
	err bool
}

func (d *traceDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *traceDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}
