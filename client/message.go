package client

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// Message is a message to send.
type Message struct {
	Topic string
	// Tags is the message's single tag (RocketMQ TAGS), used by consumer
	// tag filters such as "a || b".
	Tags string
	// Keys are business keys (RocketMQ KEYS); sent space-separated, so a
	// key must not contain a space.
	Keys       []string
	Properties map[string]string
	Body       []byte
	// ShardingKey, if set, makes the default selector send every message
	// with this key to the same queue (FNV-32a % queues): per-key order.
	ShardingKey string
	// Delayed delivery, at most one of: DeliverAt (an absolute time; one
	// not in the future delivers at once), Delay (after this long, by the
	// broker's clock) or DelayLevel (RocketMQ's levels 1..18: 1s 5s 10s
	// 30s 1m 2m ... 10m 20m 30m 1h 2h, as the broker configures them).
	// The broker stores the message once and makes it visible to
	// consumers when due; its SendResult has DeliverAt set.
	DeliverAt  time.Time
	Delay      time.Duration
	DelayLevel int
}

// delayProperties returns m's properties with its delay request added
// (RocketMQ's TIMER_DELIVER_MS, TIMER_DELAY_MS or DELAY), or an error if
// it asks for more than one kind.
func delayProperties(m *Message) (map[string]string, error) {
	set := 0
	for _, on := range []bool{!m.DeliverAt.IsZero(), m.Delay != 0, m.DelayLevel != 0} {
		if on {
			set++
		}
	}
	switch {
	case set == 0:
		return m.Properties, nil
	case set > 1:
		return nil, invalidf("set at most one of DeliverAt, Delay and DelayLevel")
	case m.Delay < 0 || m.DelayLevel < 0:
		return nil, invalidf("negative Delay or DelayLevel")
	}
	p := make(map[string]string, len(m.Properties)+1)
	for k, v := range m.Properties {
		p[k] = v
	}
	switch {
	case !m.DeliverAt.IsZero():
		p["TIMER_DELIVER_MS"] = strconv.FormatInt(m.DeliverAt.UnixMilli(), 10)
	case m.Delay != 0:
		p["TIMER_DELAY_MS"] = strconv.FormatInt(m.Delay.Milliseconds(), 10)
	default:
		p["DELAY"] = strconv.Itoa(m.DelayLevel)
	}
	return p, nil
}

// Queue names one queue of a topic on one broker group.
type Queue struct {
	Topic   string
	Group   string // broker group
	QueueID uint32
}

func (q Queue) String() string { return fmt.Sprintf("%s@%s#%d", q.Topic, q.Group, q.QueueID) }

func (q Queue) less(o Queue) bool {
	if q.Topic != o.Topic {
		return q.Topic < o.Topic
	}
	if q.Group != o.Group {
		return q.Group < o.Group
	}
	return q.QueueID < o.QueueID
}

// MessageExt is a received message.
type MessageExt struct {
	Message
	// MsgID is the producer-generated id: 32 upper-case hex characters.
	MsgID       string
	Queue       Queue
	QueueOffset uint64
	StoreTime   time.Time // leader clock when stored
	BornTime    time.Time // producer clock when sent
	// ReconsumeTimes counts the earlier deliveries of this message that
	// failed: through the group's retry queue, plus local redeliveries.
	ReconsumeTimes int
	// RetryOf is set on a delivery from the group's retry queue (Queue is
	// then that queue): where the message was first stored.
	RetryOf *Origin
	// Redelivered is set when this consumer already delivered a message
	// at this or a higher offset of the queue (after a failover, reset or
	// uncommitted handoff).
	Redelivered bool

	reconsumed int // failed deliveries before this one, by the broker's count
}

// Origin is where a retried message was first stored.
type Origin struct {
	Topic   string // "" if that topic was deleted since
	QueueID uint32
	Offset  uint64
}

const maxTopicLen = 127

// ValidateTopic applies RocketMQ's rule: 1-127 characters of [a-zA-Z0-9_%|-].
func ValidateTopic(name string) error {
	if name == "" {
		return invalidf("empty topic name")
	}
	if len(name) > maxTopicLen {
		return invalidf("topic name %q is %d characters, limit %d", name[:16]+"...", len(name), maxTopicLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return invalidf("topic name %q has illegal character %q (allowed: a-z A-Z 0-9 _ %% | -)", name, name[i])
		}
	}
	return nil
}

const maxGroupLen = 120

// ValidateGroup checks a consumer group name: 1-120 characters of
// [a-zA-Z0-9_%|-] (so %RETRY%+group stays a valid topic).
func ValidateGroup(name string) error {
	if name == "" {
		return invalidf("empty group name")
	}
	if len(name) > maxGroupLen {
		return invalidf("group name is %d characters, limit %d", len(name), maxGroupLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return invalidf("group name %q has illegal character %q", name, name[i])
		}
	}
	return nil
}

func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '%' || c == '|' || c == '-'
}

const maxPropsLen = 32767

// validateMessage checks m before any network use.
func validateMessage(m *Message, maxSize int64) error {
	if m == nil {
		return invalidf("nil message")
	}
	if err := ValidateTopic(m.Topic); err != nil {
		return err
	}
	if int64(len(m.Body)) > maxSize {
		return &Error{Code: wire.CodeMessageTooLarge,
			Message: fmt.Sprintf("message body is %d bytes, limit %d (ProducerConfig.MaxMessageSize)", len(m.Body), maxSize)}
	}
	if len(m.Body) == 0 {
		return invalidf("empty message body")
	}
	for _, k := range m.Keys {
		if k == "" || strings.ContainsAny(k, " ") {
			return invalidf("key %q is empty or contains a space", k)
		}
	}
	n := 0
	for k, v := range m.Properties {
		if k == "" {
			return invalidf("empty property name")
		}
		if strings.ContainsAny(k, "\x01\x02") || strings.ContainsAny(v, "\x01\x02") {
			return invalidf("property %q contains a \\x01 or \\x02 separator", k)
		}
		n += len(k) + len(v) + 2
	}
	if n > maxPropsLen {
		return invalidf("properties are %d bytes, limit %d", n, maxPropsLen)
	}
	if _, err := delayProperties(m); err != nil {
		return err
	}
	return nil
}

func toWire(m *Message, id []byte, queueID uint32, now time.Time) wire.Message {
	props, _ := delayProperties(m) // checked by validateMessage
	return wire.Message{
		Topic:         m.Topic,
		QueueID:       queueID,
		Tags:          m.Tags,
		Keys:          strings.Join(m.Keys, " "),
		Properties:    props,
		Body:          m.Body,
		ID:            id,
		BornTimestamp: now.UnixMilli(),
	}
}

func fromStored(sm *wire.StoredMessage, group string) *MessageExt {
	var keys []string
	if sm.Keys != "" {
		keys = strings.Fields(sm.Keys)
	}
	m := &MessageExt{
		Message: Message{
			Topic:      sm.Topic,
			Tags:       sm.Tags,
			Keys:       keys,
			Properties: sm.Properties,
			Body:       sm.Body,
		},
		MsgID:          FormatMsgID(sm.ID),
		Queue:          Queue{Topic: sm.Topic, Group: group, QueueID: sm.QueueID},
		QueueOffset:    sm.QueueOffset,
		StoreTime:      time.UnixMilli(sm.StoreTime),
		BornTime:       time.UnixMilli(sm.BornTimestamp),
		ReconsumeTimes: int(sm.Reconsume),
		reconsumed:     int(sm.Reconsume),
	}
	if sm.Reconsume > 0 || sm.OriginTopic != "" {
		m.RetryOf = &Origin{Topic: sm.OriginTopic, QueueID: sm.OriginQueue, Offset: sm.OriginOffset}
	}
	return m
}

// FormatMsgID renders a message id as upper-case hex.
func FormatMsgID(id []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*len(id))
	for i, b := range id {
		out[2*i], out[2*i+1] = digits[b>>4], digits[b&0x0f]
	}
	return string(out)
}

// idGen makes 16-byte message ids, RocketMQ UNIQ_KEY style:
//
//	0        4      6        8                     16
//	+--------+------+--------+---------------------+
//	| IPv4   | pid  | random | counter (big endian)|
//	+--------+------+--------+---------------------+
//
// The counter starts at unixMillis<<16 and increments per id, so ids are
// unique within a process and, unless a process averaged more than 65536
// ids per millisecond, across restarts with the same pid; the random
// bytes separate processes that share an IP and pid (containers).
type idGen struct {
	prefix  [8]byte
	counter atomic.Uint64
}

func newIDGen() *idGen {
	g := &idGen{}
	copy(g.prefix[0:4], localIPv4())
	binary.BigEndian.PutUint16(g.prefix[4:6], uint16(os.Getpid()))
	_, _ = rand.Read(g.prefix[6:8])
	g.counter.Store(uint64(time.Now().UnixMilli()) << 16)
	return g
}

func (g *idGen) next() []byte {
	id := make([]byte, 16)
	copy(id, g.prefix[:])
	binary.BigEndian.PutUint64(id[8:], g.counter.Add(1))
	return id
}

func localIPv4() []byte {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() {
				if ip4 := ipn.IP.To4(); ip4 != nil {
					return ip4
				}
			}
		}
	}
	return []byte{127, 0, 0, 1}
}
