package fsm

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Message limits, checked by BatchEncoder.Add and by DecodeMessage.
const (
	MaxTopicLen = 127      // RocketMQ TopicValidator limit
	MaxIDLen    = 255      // u8 length
	MaxTagsLen  = 65535    // u16 length
	MaxKeysLen  = 65535    // u16 length
	MaxPropsLen = 32767    // RocketMQ properties limit (u16 length on disk)
	MaxBodyLen  = 64 << 20 // hard ceiling; brokers enforce a smaller configurable limit (default 4 MiB)
)

const (
	batchHeaderLen   = 2 + 8 + 4 // type, version, storeTimestamp, count
	recordFixedLen   = 40        // every fixed field of a record
	propNameValueSep = '\x01'
	propSep          = '\x02'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Message is one message of a batch. On decode, ID and Body alias the
// record bytes; the strings and the map are fresh.
type Message struct {
	Topic         string
	TopicID       uint32 // topic incarnation id, stamped by the leader
	QueueID       uint32
	Flag          uint32
	BornTimestamp int64 // producer clock, unix ms
	ID            []byte
	Tags          string
	Keys          string
	Properties    map[string]string
	Body          []byte
}

// EncodedSize is the size in bytes of m's record inside a batch, valid
// for a message that passes validation.
func EncodedSize(m *Message) int {
	return recordFixedLen + len(m.Topic) + len(m.ID) + len(m.Tags) + len(m.Keys) + propsLen(m.Properties) + len(m.Body)
}

func propsLen(p map[string]string) int {
	if len(p) == 0 {
		return 0
	}
	n := len(p) - 1 // \x02 between pairs
	for k, v := range p {
		n += len(k) + 1 + len(v)
	}
	return n
}

// ValidateMessage checks m against the record limits BatchEncoder.Add
// enforces, so a caller can reject a message before it joins a batch.
func ValidateMessage(m *Message) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidMessage}, args...)...)
	}
	if err := ValidateTopicName(m.Topic); err != nil {
		return bad("topic: %v", err)
	}
	switch {
	case len(m.ID) > MaxIDLen:
		return bad("id length %d > %d", len(m.ID), MaxIDLen)
	case len(m.Tags) > MaxTagsLen:
		return bad("tags length %d > %d", len(m.Tags), MaxTagsLen)
	case len(m.Keys) > MaxKeysLen:
		return bad("keys length %d > %d", len(m.Keys), MaxKeysLen)
	case len(m.Body) > MaxBodyLen:
		return bad("body length %d > %d", len(m.Body), MaxBodyLen)
	}
	for k, v := range m.Properties {
		if k == "" {
			return bad("empty property name")
		}
		if strings.ContainsAny(k, "\x01\x02") || strings.ContainsAny(v, "\x01\x02") {
			return bad("property %q contains a \\x01 or \\x02 separator", k)
		}
	}
	if n := propsLen(m.Properties); n > MaxPropsLen {
		return bad("properties length %d > %d", n, MaxPropsLen)
	}
	return nil
}

// ValidateTopicName applies RocketMQ's TopicValidator rules: 1-127
// characters of [a-zA-Z0-9_%|-].
func ValidateTopicName(name string) error {
	if name == "" {
		return fmt.Errorf("empty topic name")
	}
	if len(name) > MaxTopicLen {
		return fmt.Errorf("topic name length %d > %d", len(name), MaxTopicLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '%' || c == '|' || c == '-'
		if !ok {
			return fmt.Errorf("topic name has illegal character %q", c)
		}
	}
	return nil
}

// BatchEncoder builds the raft Log.Data of a message batch command. It is
// reusable (Reset) and not safe for concurrent use.
type BatchEncoder struct {
	buf   []byte
	count uint32
	keys  []string // scratch for sorting property names
}

// Reset starts a new batch stamped with storeTs (leader clock, unix ms).
func (e *BatchEncoder) Reset(storeTs int64) {
	e.buf = append(e.buf[:0], byte(CmdMessageBatch), msgBatchVersion)
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(storeTs))
	e.buf = binary.BigEndian.AppendUint32(e.buf, 0)
	e.count = 0
}

// Add validates m and appends its record. On error the batch is unchanged.
func (e *BatchEncoder) Add(m *Message) error {
	if err := ValidateMessage(m); err != nil {
		return err
	}
	return e.AddChecked(m)
}

// AddChecked appends the record of m, which the caller has already passed
// through ValidateMessage (the broker checks each message once, on its
// request goroutine, and encodes it on the batcher's). Only the batch size
// limit is checked; on error the batch is unchanged.
func (e *BatchEncoder) AddChecked(m *Message) error {
	if len(e.buf) < batchHeaderLen {
		e.Reset(0)
	}
	size := EncodedSize(m)
	if uint64(len(e.buf))+uint64(size) > math.MaxUint32 || e.count == math.MaxUint32 {
		return fmt.Errorf("%w: batch larger than 4 GiB", ErrInvalidMessage)
	}
	start := len(e.buf)
	b := binary.BigEndian.AppendUint32(e.buf, uint32(size))
	b = binary.BigEndian.AppendUint32(b, 0) // crc, patched below
	b = binary.BigEndian.AppendUint32(b, m.TopicID)
	b = append(b, byte(len(m.Topic)))
	b = append(b, m.Topic...)
	b = binary.BigEndian.AppendUint32(b, m.QueueID)
	b = binary.BigEndian.AppendUint32(b, m.Flag)
	b = binary.BigEndian.AppendUint64(b, uint64(m.BornTimestamp))
	b = append(b, byte(len(m.ID)))
	b = append(b, m.ID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Tags)))
	b = append(b, m.Tags...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Keys)))
	b = append(b, m.Keys...)
	b = binary.BigEndian.AppendUint16(b, uint16(propsLen(m.Properties)))
	b = e.appendProps(b, m.Properties)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Body)))
	b = append(b, m.Body...)
	if len(b)-start != size {
		panic("fsm: record size mismatch") // invariant: EncodedSize agrees with the encoder
	}
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+8:], castagnoli))
	e.buf = b
	e.count++
	binary.BigEndian.PutUint32(e.buf[10:], e.count)
	return nil
}

// appendProps writes properties sorted by name so encodings are stable.
func (e *BatchEncoder) appendProps(b []byte, p map[string]string) []byte {
	if len(p) == 0 {
		return b
	}
	e.keys = e.keys[:0]
	for k := range p {
		e.keys = append(e.keys, k)
	}
	sort.Strings(e.keys)
	for i, k := range e.keys {
		if i > 0 {
			b = append(b, propSep)
		}
		b = append(b, k...)
		b = append(b, propNameValueSep)
		b = append(b, p[k]...)
	}
	return b
}

// Len is the number of messages added since Reset.
func (e *BatchEncoder) Len() int { return int(e.count) }

// Size is the encoded size in bytes (len(Bytes())).
func (e *BatchEncoder) Size() int {
	if len(e.buf) < batchHeaderLen {
		return batchHeaderLen
	}
	return len(e.buf)
}

// Bytes returns the complete raft Log.Data, including the command type and
// version bytes. It aliases the encoder's buffer until the next Reset.
func (e *BatchEncoder) Bytes() []byte {
	if len(e.buf) < batchHeaderLen {
		e.Reset(0)
	}
	return e.buf
}

// record is a parsed view of one message record; slices alias the input.
type record struct {
	topicID, queueID, flag uint32
	born                   int64
	topic, id, tags, keys  []byte
	props, body            []byte
}

// parseRecord checks the structure of rec (exactly one record) without the CRC.
func parseRecord(rec []byte) (record, error) {
	var r record
	if len(rec) < recordFixedLen || int(binary.BigEndian.Uint32(rec)) != len(rec) {
		return r, fmt.Errorf("%w: record size", ErrCorrupt)
	}
	p := 8
	r.topicID = binary.BigEndian.Uint32(rec[p:])
	p += 4
	var ok bool
	take := func(n int) []byte {
		if !ok || n > len(rec)-p {
			ok = false
			return nil
		}
		s := rec[p : p+n : p+n]
		p += n
		return s
	}
	ok = true
	r.topic = take(int(take(1)[0]))
	fixed := take(4 + 4 + 8 + 1)
	if !ok {
		return r, fmt.Errorf("%w: record truncated", ErrCorrupt)
	}
	r.queueID = binary.BigEndian.Uint32(fixed)
	r.flag = binary.BigEndian.Uint32(fixed[4:])
	r.born = int64(binary.BigEndian.Uint64(fixed[8:]))
	r.id = take(int(fixed[16]))
	r.tags = take(u16(take(2)))
	r.keys = take(u16(take(2)))
	r.props = take(u16(take(2)))
	r.body = take(u32(take(4)))
	if !ok || p != len(rec) {
		return r, fmt.Errorf("%w: record fields do not add up to its size", ErrCorrupt)
	}
	return r, nil
}

func u16(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

func u32(b []byte) int {
	if len(b) < 4 {
		return 0
	}
	return int(binary.BigEndian.Uint32(b))
}

// DecodeMessage decodes one record sliced out of a batch by (Pos, Size) of
// its consume-queue unit. It checks the size field and the CRC.
func DecodeMessage(rec []byte) (Message, error) {
	r, err := parseRecord(rec)
	if err != nil {
		return Message{}, err
	}
	if crc32.Checksum(rec[8:], castagnoli) != binary.BigEndian.Uint32(rec[4:]) {
		return Message{}, ErrChecksum
	}
	props, err := decodeProps(r.props)
	if err != nil {
		return Message{}, err
	}
	return Message{
		Topic:         string(r.topic),
		TopicID:       r.topicID,
		QueueID:       r.queueID,
		Flag:          r.flag,
		BornTimestamp: r.born,
		ID:            r.id,
		Tags:          string(r.tags),
		Keys:          string(r.keys),
		Properties:    props,
		Body:          r.body,
	}, nil
}

func decodeProps(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	s := string(b)
	m := make(map[string]string, strings.Count(s, "\x02")+1)
	for pair := range strings.SplitSeq(s, "\x02") {
		k, v, ok := strings.Cut(pair, "\x01")
		if !ok || k == "" || strings.IndexByte(v, propNameValueSep) >= 0 {
			return nil, fmt.Errorf("%w: malformed properties", ErrCorrupt)
		}
		m[k] = v
	}
	return m, nil
}

// TagHash is Java's String.hashCode of tags over UTF-16 code units, the
// RocketMQ ConsumeQueue tagsCode, so tag filters match Java clients. Invalid
// UTF-8 hashes as U+FFFD, as Java's decoder would produce. "" hashes to 0.
func TagHash(tags string) uint32 {
	var h int32
	for i := 0; i < len(tags); {
		c := tags[i]
		if c < utf8.RuneSelf {
			h = 31*h + int32(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(tags[i:])
		i += n
		if r > 0xFFFF {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + hi
			h = 31*h + lo
			continue
		}
		h = 31*h + r
	}
	return uint32(h)
}
