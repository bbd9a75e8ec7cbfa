package compat

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math"
	"net/netip"
	"sort"
	"strings"
)

// MessageExt is one stored message as RocketMQ clients decode it from a
// pull body (reference §3.7).
type MessageExt struct {
	Topic                     string
	QueueID                   int32
	Flag                      int32
	QueueOffset               int64
	PhysicalOffset            int64
	SysFlag                   int32 // the 0x10/0x20 IPv6 bits are set by AppendMessageExt from the host addresses
	BornTimestamp             int64
	BornHost                  netip.AddrPort // IPv4 -> 8 bytes, IPv6 -> 20 bytes; zero value encodes 0.0.0.0:0
	StoreTimestamp            int64
	StoreHost                 netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	Body                      []byte
	Properties                map[string]string
}

// Stored-message magic codes.
const (
	MagicV1    uint32 = 0xDAA320A7 // 1-byte topic length
	MagicV2    uint32 = 0xDAA320AB // 2-byte topic length
	MagicBlank uint32 = 0xCBD43194 // end-of-segment padding
)

// Limits of the stored-message encoding.
const (
	MaxPropertiesLen = math.MaxInt16 // PROPERTIES length is a Java short
	MaxTopicLen      = math.MaxInt16 // TOPIC length of MagicV2 is a Java short
	maxTopicLenV1    = 127           // TOPIC length of MagicV1 is a Java byte
)

// SysFlag bits (MessageSysFlag).
const (
	SysFlagCompressed          = 0x1
	SysFlagMultiTags           = 0x2
	SysFlagTransactionPrepared = 0x4
	SysFlagTransactionCommit   = 0x8
	SysFlagTransactionRollback = 0xC
	SysFlagTransactionMask     = 0xC
	SysFlagBornHostV6          = 0x10
	SysFlagStoreHostV6         = 0x20
)

// Pull request sysFlag bits (PullSysFlag).
const (
	PullFlagCommitOffset = 0x1
	PullFlagSuspend      = 0x2
	PullFlagSubscription = 0x4
	PullFlagClassFilter  = 0x8
	PullFlagLitePull     = 0x10
)

// Topic/queue permission bits (PermName).
const (
	PermPriority = 8
	PermRead     = 4
	PermWrite    = 2
	PermInherit  = 1
)

// Message property names (MessageConst).
const (
	PropKeys                           = "KEYS"
	PropTags                           = "TAGS"
	PropWaitStoreMsgOK                 = "WAIT"
	PropDelayLevel                     = "DELAY"
	PropRetryTopic                     = "RETRY_TOPIC"
	PropRealTopic                      = "REAL_TOPIC"
	PropRealQueueID                    = "REAL_QID"
	PropTransactionPrepared            = "TRAN_MSG"
	PropProducerGroup                  = "PGROUP"
	PropMinOffset                      = "MIN_OFFSET"
	PropMaxOffset                      = "MAX_OFFSET"
	PropBuyerID                        = "BUYER_ID"
	PropOriginMessageID                = "ORIGIN_MESSAGE_ID"
	PropTransferFlag                   = "TRANSFER_FLAG"
	PropCorrectionFlag                 = "CORRECTION_FLAG"
	PropMQ2Flag                        = "MQ2_FLAG"
	PropReconsumeTime                  = "RECONSUME_TIME"
	PropMsgRegion                      = "MSG_REGION"
	PropTraceSwitch                    = "TRACE_ON"
	PropUniqKey                        = "UNIQ_KEY"
	PropExtendUniqInfo                 = "EXTEND_UNIQ_INFO"
	PropMaxReconsumeTimes              = "MAX_RECONSUME_TIMES"
	PropConsumeStartTime               = "CONSUME_START_TIME"
	PropTransactionPreparedQueueOffset = "TRAN_PREPARED_QUEUE_OFFSET"
	PropTransactionCheckTimes          = "TRANSACTION_CHECK_TIMES"
	PropCheckImmunityTime              = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropInstanceID                     = "INSTANCE_ID"
	PropCorrelationID                  = "CORRELATION_ID"
	PropReplyTo                        = "REPLY_TO_CLIENT"
	PropMessageTTL                     = "TTL"
	PropReplyMessageArriveTime         = "ARRIVE_TIME"
	PropPushReplyTime                  = "PUSH_REPLY_TIME"
	PropCluster                        = "CLUSTER"
	PropMessageType                    = "MSG_TYPE"
	PropInnerMultiQueueOffset          = "INNER_MULTI_QUEUE_OFFSET"
	PropTimerDeliverMS                 = "TIMER_DELIVER_MS"
	PropTimerDelaySec                  = "TIMER_DELAY_SEC"
	PropTimerDelayMS                   = "TIMER_DELAY_MS"
	PropBornHost                       = "__BORNHOST"
	PropShardingKey                    = "__SHARDINGKEY"
	// PropGoShardingKey is what rocketmq-client-go v2 writes for
	// WithShardingKey (Java uses PropShardingKey).
	PropGoShardingKey = "SHARDING_KEY"
	// PropGoTransactionID is the Go client's local transaction-id property.
	PropGoTransactionID = "__transactionId__"
)

// Property separators.
const (
	nameValueSep = '\x01'
	propertySep  = '\x02'
)

func hostLen(a netip.AddrPort) (n int, v6 bool) {
	if isV6(a) {
		return 20, true
	}
	return 8, false
}

func isV6(a netip.AddrPort) bool {
	ad := a.Addr()
	return ad.Is6() && !ad.Is4In6()
}

// MessageExtSize is the length of m's stored encoding.
func MessageExtSize(m *MessageExt) int {
	bl, _ := hostLen(m.BornHost)
	sl, _ := hostLen(m.StoreHost)
	tl := 1
	if len(m.Topic) > maxTopicLenV1 {
		tl = 2
	}
	return 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + bl + 8 + sl + 4 + 8 +
		4 + len(m.Body) + tl + len(m.Topic) + 2 + len(EncodeProperties(m.Properties))
}

// CheckMessageExt reports why m cannot be encoded faithfully: a topic or
// properties too long for the format, properties that would not decode
// back to the same map, or a body past int32. Adapters call it before
// AppendMessageExt for messages that did not come through RocketMQ's own
// checks.
func CheckMessageExt(m *MessageExt) error {
	if len(m.Topic) > MaxTopicLen {
		return fmt.Errorf("compat: topic is %d bytes, limit %d", len(m.Topic), MaxTopicLen)
	}
	if len(m.Body) > math.MaxInt32 {
		return fmt.Errorf("compat: body is %d bytes, more than int32", len(m.Body))
	}
	return CheckProperties(m.Properties)
}

// CheckProperties reports properties that EncodeProperties would drop
// (an empty key, a separator byte in a key, \x02 in a value) or whose
// encoding is longer than MaxPropertiesLen.
func CheckProperties(p map[string]string) error {
	for k, v := range p {
		if k == "" || strings.ContainsAny(k, "\x01\x02") {
			return fmt.Errorf("compat: property key %q is empty or holds a separator byte", k)
		}
		if strings.ContainsRune(v, propertySep) {
			return fmt.Errorf("compat: property %q value holds the \\x02 separator", k)
		}
	}
	if n := len(EncodeProperties(p)); n > MaxPropertiesLen {
		return fmt.Errorf("compat: properties are %d bytes encoded, limit %d", n, MaxPropertiesLen)
	}
	return nil
}

// bodyCRC is RocketMQ's UtilAll.crc32: IEEE CRC-32 with the top bit cleared.
func bodyCRC(b []byte) uint32 { return crc32.ChecksumIEEE(b) & 0x7FFFFFFF }

// AppendMessageExt appends m's stored encoding (reference §3.7). It uses
// MagicV1 (1-byte topic length, the only form rocketmq-client-go reads)
// when the topic is at most 127 bytes, else MagicV2. It sets or clears the
// IPv6 sysFlag bits from the host addresses and computes BODYCRC.
//
// It panics if CheckMessageExt would report the topic or properties as
// too long: the length fields cannot carry them.
func AppendMessageExt(dst []byte, m *MessageExt) []byte {
	props := EncodeProperties(m.Properties)
	if len(props) > MaxPropertiesLen || len(m.Topic) > MaxTopicLen {
		panic(fmt.Sprintf("compat: AppendMessageExt: topic %d bytes, properties %d bytes; limit %d each (call CheckMessageExt first)",
			len(m.Topic), len(props), MaxPropertiesLen))
	}
	bl, bv6 := hostLen(m.BornHost)
	sl, sv6 := hostLen(m.StoreHost)
	sys := m.SysFlag &^ (SysFlagBornHostV6 | SysFlagStoreHostV6)
	if bv6 {
		sys |= SysFlagBornHostV6
	}
	if sv6 {
		sys |= SysFlagStoreHostV6
	}
	magic, tl := MagicV1, 1
	if len(m.Topic) > maxTopicLenV1 {
		magic, tl = MagicV2, 2
	}
	size := 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + bl + 8 + sl + 4 + 8 +
		4 + len(m.Body) + tl + len(m.Topic) + 2 + len(props)

	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	dst = binary.BigEndian.AppendUint32(dst, magic)
	dst = binary.BigEndian.AppendUint32(dst, bodyCRC(m.Body))
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.QueueID))
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.Flag))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.QueueOffset))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.PhysicalOffset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(sys))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.BornTimestamp))
	dst = appendHost(dst, m.BornHost)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.StoreTimestamp))
	dst = appendHost(dst, m.StoreHost)
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.ReconsumeTimes))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.PreparedTransactionOffset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Body)))
	dst = append(dst, m.Body...)
	if tl == 1 {
		dst = append(dst, byte(len(m.Topic)))
	} else {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(m.Topic)))
	}
	dst = append(dst, m.Topic...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(props)))
	return append(dst, props...)
}

// appendHost appends ip (4 or 16 bytes) and an int32 port.
func appendHost(dst []byte, a netip.AddrPort) []byte {
	ad := a.Addr()
	switch {
	case !ad.IsValid():
		dst = append(dst, 0, 0, 0, 0)
	case isV6(a):
		b := ad.As16()
		dst = append(dst, b[:]...)
	default:
		b := ad.Unmap().As4()
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(a.Port()))
}

// msgReader reads big-endian fields and remembers the first short read.
type msgReader struct {
	b   []byte
	off int
	err error
}

func (r *msgReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("%w: stored message truncated in %s at byte %d (need %d, have %d)",
			ErrMalformed, what, r.off, n, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *msgReader) u32(what string) uint32 {
	if p := r.take(4, what); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *msgReader) u64(what string) uint64 {
	if p := r.take(8, what); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *msgReader) u16(what string) uint16 {
	if p := r.take(2, what); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *msgReader) host(v6 bool, what string) netip.AddrPort {
	n := 4
	if v6 {
		n = 16
	}
	ip := r.take(n, what)
	port := r.u32(what + " port")
	if r.err != nil {
		return netip.AddrPort{}
	}
	if port > math.MaxUint16 {
		r.err = fmt.Errorf("%w: stored message %s port %d out of range", ErrMalformed, what, port)
		return netip.AddrPort{}
	}
	ad, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(ad, uint16(port))
}

// unmapHost turns a host stored as an IPv4-mapped IPv6 address (16
// bytes, ::ffff:a.b.c.d, with its v6 flag set) into the IPv4 address it
// is, and returns sysFlag without that flag. AppendMessageExt writes such
// an address in 4 bytes (RocketMQ clients expect IPv4 hosts in that
// form), so without this a decoded message would not survive being
// encoded and decoded again unchanged (found by FuzzDecodeMessageExt).
func unmapHost(a *netip.AddrPort, sysFlag, v6Flag int32) int32 {
	if !a.Addr().Is4In6() {
		return sysFlag
	}
	*a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	return sysFlag &^ v6Flag
}

// DecodeMessageExt decodes the stored message at the start of b and
// returns it with the number of bytes it used. Body aliases b. It checks
// TOTALSIZE against the fields and BODYCRC against the body.
func DecodeMessageExt(b []byte) (*MessageExt, int, error) {
	r := &msgReader{b: b}
	size := r.u32("TOTALSIZE")
	magic := r.u32("MAGICCODE")
	if r.err != nil {
		return nil, 0, r.err
	}
	if magic == MagicBlank {
		return nil, 0, fmt.Errorf("%w: blank (end-of-segment) magic", ErrMalformed)
	}
	if magic != MagicV1 && magic != MagicV2 {
		return nil, 0, fmt.Errorf("%w: stored message magic %#x", ErrMalformed, magic)
	}
	if uint64(size) > uint64(len(b)) {
		return nil, 0, fmt.Errorf("%w: stored message TOTALSIZE %d, only %d bytes", ErrMalformed, size, len(b))
	}
	r.b = b[:size]
	m := &MessageExt{}
	crc := r.u32("BODYCRC")
	m.QueueID = int32(r.u32("QUEUEID"))
	m.Flag = int32(r.u32("FLAG"))
	m.QueueOffset = int64(r.u64("QUEUEOFFSET"))
	m.PhysicalOffset = int64(r.u64("PHYSICALOFFSET"))
	m.SysFlag = int32(r.u32("SYSFLAG"))
	m.BornTimestamp = int64(r.u64("BORNTIMESTAMP"))
	m.BornHost = r.host(m.SysFlag&SysFlagBornHostV6 != 0, "BORNHOST")
	m.StoreTimestamp = int64(r.u64("STORETIMESTAMP"))
	m.StoreHost = r.host(m.SysFlag&SysFlagStoreHostV6 != 0, "STOREHOST")
	m.SysFlag = unmapHost(&m.BornHost, m.SysFlag, SysFlagBornHostV6)
	m.SysFlag = unmapHost(&m.StoreHost, m.SysFlag, SysFlagStoreHostV6)
	m.ReconsumeTimes = int32(r.u32("RECONSUMETIMES"))
	m.PreparedTransactionOffset = int64(r.u64("PREPAREDTRANSACTIONOFFSET"))
	bl := r.u32("BODY length")
	if bl > math.MaxInt32 {
		return nil, 0, fmt.Errorf("%w: stored message body length %d is negative", ErrMalformed, int32(bl))
	}
	body := r.take(int(bl), "BODY")
	var tl int
	if magic == MagicV1 {
		if p := r.take(1, "TOPIC length"); p != nil {
			tl = int(p[0])
		}
	} else {
		tl = int(r.u16("TOPIC length"))
	}
	topic := r.take(tl, "TOPIC")
	pl := int16(r.u16("PROPERTIES length"))
	if r.err == nil && pl < 0 {
		return nil, 0, fmt.Errorf("%w: stored message properties length %d is negative", ErrMalformed, pl)
	}
	props := r.take(int(pl), "PROPERTIES")
	if r.err != nil {
		return nil, 0, r.err
	}
	if r.off != int(size) {
		return nil, 0, fmt.Errorf("%w: stored message TOTALSIZE %d, fields use %d", ErrMalformed, size, r.off)
	}
	if got := bodyCRC(body); got != crc {
		return nil, 0, fmt.Errorf("%w: stored message BODYCRC %d, body has %d", ErrMalformed, crc, got)
	}
	if len(body) > 0 {
		m.Body = body
	}
	m.Topic = string(topic)
	m.Properties = DecodeProperties(string(props))
	return m, int(size), nil
}

// BatchEntry is one message of a SEND_BATCH_MESSAGE body.
type BatchEntry struct {
	Flag       int32
	Body       []byte
	Properties map[string]string
}

// batchFixedLen: totalSize, magic, bodyCRC, flag, bodyLen, propsLen.
const batchFixedLen = 4 + 4 + 4 + 4 + 4 + 2

// DecodeBatch decodes a SEND_BATCH_MESSAGE body: entries of
//
//	int32 totalSize | int32 magic | int32 bodyCRC | int32 flag |
//	int32 bodyLen | body | int16 propsLen | props
//
// back to back (MessageDecoder.encodeMessage; Go client Message.Marshal).
// Clients write magic and bodyCRC as 0; they are not checked. totalSize
// must match the fields. propsLen is read unsigned, as the Go client
// writes it. Bodies alias b.
func DecodeBatch(b []byte) ([]BatchEntry, error) {
	var out []BatchEntry
	for off := 0; off < len(b); {
		if len(b)-off < batchFixedLen {
			return nil, fmt.Errorf("%w: batch entry %d at byte %d: %d bytes left, need %d",
				ErrMalformed, len(out), off, len(b)-off, batchFixedLen)
		}
		p := b[off:]
		size := binary.BigEndian.Uint32(p)
		flag := int32(binary.BigEndian.Uint32(p[12:]))
		bl := binary.BigEndian.Uint32(p[16:])
		if uint64(bl) > uint64(len(p)-batchFixedLen) {
			return nil, fmt.Errorf("%w: batch entry %d at byte %d: body length %d, %d bytes left",
				ErrMalformed, len(out), off, bl, len(p)-batchFixedLen)
		}
		body := p[20 : 20+bl]
		pl := int(binary.BigEndian.Uint16(p[20+bl:]))
		rest := p[22+bl:]
		if pl > len(rest) {
			return nil, fmt.Errorf("%w: batch entry %d at byte %d: properties length %d, %d bytes left",
				ErrMalformed, len(out), off, pl, len(rest))
		}
		used := batchFixedLen + int(bl) + pl
		if uint64(size) != uint64(used) {
			return nil, fmt.Errorf("%w: batch entry %d at byte %d: totalSize %d, fields use %d",
				ErrMalformed, len(out), off, size, used)
		}
		e := BatchEntry{Flag: flag, Properties: DecodeProperties(string(rest[:pl]))}
		if len(body) > 0 {
			e.Body = body
		}
		out = append(out, e)
		off += used
	}
	return out, nil
}

// AppendBatchEntry appends e in the batch-body layout DecodeBatch reads,
// with magic and bodyCRC 0 as clients write them.
func AppendBatchEntry(dst []byte, e BatchEntry) []byte {
	props := EncodeProperties(e.Properties)
	dst = binary.BigEndian.AppendUint32(dst, uint32(batchFixedLen+len(e.Body)+len(props)))
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(e.Flag))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Body)))
	dst = append(dst, e.Body...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(props)))
	return append(dst, props...)
}

// EncodeProperties encodes p as "k\x01v\x02" for each entry, keys sorted
// so the output is deterministic, with the trailing \x02 both clients
// write. Entries that could not decode back (empty key, a separator in
// the key, \x02 in the value) are left out; CheckProperties reports them.
func EncodeProperties(p map[string]string) string {
	if len(p) == 0 {
		return ""
	}
	keys := make([]string, 0, len(p))
	n := 0
	for k, v := range p {
		if k == "" || strings.ContainsAny(k, "\x01\x02") || strings.ContainsRune(v, propertySep) {
			continue
		}
		keys = append(keys, k)
		n += len(k) + len(v) + 2
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.Grow(n)
	for _, k := range keys {
		sb.WriteString(k)
		sb.WriteByte(nameValueSep)
		sb.WriteString(p[k])
		sb.WriteByte(propertySep)
	}
	return sb.String()
}

// DecodeProperties decodes "k\x01v\x02..." as Java's
// MessageDecoder.string2messageProperties does: items split on \x02, each
// split at its first \x01. A missing trailing separator is accepted;
// empty items and items without \x01 are skipped. It returns nil for no
// properties.
func DecodeProperties(s string) map[string]string {
	var m map[string]string
	for s != "" {
		item := s
		if i := strings.IndexByte(s, propertySep); i >= 0 {
			item, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		k, v, ok := strings.Cut(item, string(nameValueSep))
		if !ok || k == "" {
			continue
		}
		if m == nil {
			m = make(map[string]string)
		}
		m[k] = v
	}
	return m
}

// OffsetMsgID is RocketMQ's offset message id (MessageDecoder.
// createMessageId): upper-case hex of the store host's address (4 or 16
// bytes), its port as int32, and the physical offset as int64.
func OffsetMsgID(storeHost netip.AddrPort, physicalOffset int64) string {
	b := appendHost(make([]byte, 0, 28), storeHost)
	b = binary.BigEndian.AppendUint64(b, uint64(physicalOffset))
	return strings.ToUpper(hex.EncodeToString(b))
}

// ParseOffsetMsgID is the inverse of OffsetMsgID: 32 hex digits for an
// IPv4 store host, 56 for IPv6.
func ParseOffsetMsgID(id string) (netip.AddrPort, int64, error) {
	if len(id) != 32 && len(id) != 56 {
		return netip.AddrPort{}, 0, fmt.Errorf("compat: offset message id %q: %d hex digits, want 32 (IPv4) or 56 (IPv6)", id, len(id))
	}
	b, err := hex.DecodeString(id)
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("compat: offset message id %q: %w", id, err)
	}
	n := len(b) - 12
	ad, _ := netip.AddrFromSlice(b[:n])
	port := binary.BigEndian.Uint32(b[n:])
	if port > math.MaxUint16 {
		return netip.AddrPort{}, 0, fmt.Errorf("compat: offset message id %q: port %d out of range", id, port)
	}
	off := int64(binary.BigEndian.Uint64(b[n+4:]))
	return netip.AddrPortFrom(ad, uint16(port)), off, nil
}
