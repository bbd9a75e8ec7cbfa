package compat

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// jsonBodies lists every JSON body the broker and NameServer decode or
// the client reads back; a new body type belongs here.
var jsonBodies = []func() any{
	func() any { return new(TopicRouteData) },
	func() any { return new(HeartbeatData) },
	func() any { return new(SubscriptionData) },
	func() any { return new(LockBatchRequest) },
	func() any { return new(LockBatchResponse) },
	func() any { return new(ConsumerList) },
	func() any { return new(ClusterInfo) },
	func() any { return new(TopicList) },
	func() any { return new(BatchAckBody) },
	func() any { return new(BatchAck) },
	func() any { return new(BitSet) },
}

// FuzzDecodeJSON decodes arbitrary bytes as every remoting JSON body
// (the first input picks the type). A refusal wraps ErrMalformed and
// names the body type; an accepted body re-encodes to JSON that decodes
// and re-encodes to the same bytes (the first encoding may normalise:
// long BatchAck names become short ones, invalid UTF-8 becomes U+FFFD).
func FuzzDecodeJSON(f *testing.F) {
	seeds := []string{
		`{"queueDatas":[{"brokerName":"b","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],"brokerDatas":[{"cluster":"c","brokerName":"b","brokerAddrs":{"0":"127.0.0.1:10911"}}]}`,
		`{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"x"}}]}`,
		`{"clientID":"c@1","producerDataSet":[{"groupName":"p"}],"consumerDataSet":[{"groupName":"g","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[{"topic":"t","subString":"a||b","tagsSet":["a","b"],"codeSet":["97",98],"subVersion":1,"expressionType":"TAG"}],"unitMode":false}]}`,
		`{"topic":"t","codeSet":[1,"2",-3]}`,
		`{"consumerGroup":"g","clientId":"c","mqSet":[{"topic":"t","brokerName":"b","queueId":1}],"onlyThisBroker":true}`,
		`{"lockOKMQSet":[{"topic":"t","brokerName":"b","queueId":0}]}`,
		`{"consumerIdList":["a","b"]}`,
		`{"brokerAddrTable":{"b":{"cluster":"c","brokerName":"b","brokerAddrs":{"0":"a"}}},"clusterAddrTable":{"c":["b"]}}`,
		`{"topicList":["a","b"],"brokerAddr":"x"}`,
		`{"brokerName":"b","acks":[{"c":"g","t":"t","r":"0","so":5,"q":1,"rq":0,"pt":1,"it":30000,"b":"Aw=="},{"consumerGroup":"g","topic":"t","retry":"1","startOffset":9,"bitSet":[1,255,-128]}]}`,
		`{"c":"g","b":"AQ"}`,
		`"AwE="`, `[1,2,3]`, `null`,
	}
	for i := range jsonBodies {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		mk := jsonBodies[int(which)%len(jsonBodies)]
		v := mk()
		if err := DecodeJSON(b, v); err != nil {
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "body") {
				t.Fatalf("%T: refusal %q does not wrap ErrMalformed and name the body", v, err)
			}
			return
		}
		first, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%T: decoded %+v does not encode: %v", v, v, err)
		}
		v2 := mk()
		if err := DecodeJSON(first, v2); err != nil {
			t.Fatalf("%T: its own encoding %s does not decode: %v", v, first, err)
		}
		second, err := json.Marshal(v2)
		if err != nil || !bytes.Equal(first, second) {
			t.Fatalf("%T: encoding changed through a decode:\n%s\n%s", v, first, second)
		}
	})
}

// FuzzBitSetOffsets: Offsets lists start+i for each set bit i, in order,
// and refuses (instead of truncating) more than limit of them.
func FuzzBitSetOffsets(f *testing.F) {
	f.Add([]byte{0x03, 0x80}, int64(5), 16)
	f.Add(bytes.Repeat([]byte{0xff}, 64), int64(1<<40), 32)
	f.Add([]byte{}, int64(0), 0)
	f.Fuzz(func(t *testing.T, set []byte, start int64, limit int) {
		limit = max(limit%4096, 0)
		n := 0
		for _, c := range set {
			n += bits.OnesCount8(c)
		}
		offs, err := BitSet(set).Offsets(start, limit)
		if n > limit {
			if err == nil {
				t.Fatalf("%d bits set, limit %d: no error", n, limit)
			}
			return
		}
		if err != nil || len(offs) != n {
			t.Fatalf("%d bits set, limit %d: got %d offsets, %v", n, limit, len(offs), err)
		}
		for i, o := range offs {
			bit := o - start
			if bit < 0 || bit >= int64(8*len(set)) || set[bit/8]&(1<<(bit%8)) == 0 || i > 0 && o <= offs[i-1] {
				t.Fatalf("offset %d (bit %d) is not a set bit in order", o, bit)
			}
		}
	})
}

// FuzzParseOffsetMsgID: an offset message ID that parses is the
// upper-case form of the ID OffsetMsgID writes for what it parsed to
// (an IPv4-mapped IPv6 host is written as IPv4, the one exception).
func FuzzParseOffsetMsgID(f *testing.F) {
	f.Add(OffsetMsgID(netip.MustParseAddrPort("127.0.0.1:10911"), 1<<40))
	f.Add(OffsetMsgID(netip.MustParseAddrPort("[fd00::1]:10911"), 7))
	f.Add("7F0000010000" + "2A9F00000000000000FF")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, id string) {
		ap, off, err := ParseOffsetMsgID(id)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "compat: offset message id") {
				t.Fatalf("error %q does not name the id", err)
			}
			return
		}
		again := OffsetMsgID(ap, off)
		if ap.Addr().Is4In6() {
			if ap2, off2, err := ParseOffsetMsgID(again); err != nil || ap2.Port() != ap.Port() || off2 != off || ap2.Addr() != ap.Addr().Unmap() {
				t.Fatalf("%q -> %v %d -> %q -> %v %d %v", id, ap, off, again, ap2, off2, err)
			}
			return
		}
		if again != strings.ToUpper(id) {
			t.Fatalf("%q parsed to %v %d, which is written %q", id, ap, off, again)
		}
	})
}

// FuzzDecodeCommand: the in-memory decoder agrees with the stream one,
// uses no more bytes than the frame's prefix declares, and refuses with a
// named error.
func FuzzDecodeCommand(f *testing.F) {
	for _, ser := range []byte{SerializeJSON, SerializeBinary} {
		for _, c := range sampleCommands() {
			c.Serialize = ser
			b, _ := AppendCommand(nil, c)
			f.Add(append(b, 0, 1, 2))
		}
	}
	f.Add([]byte{0, 0, 0, 8, 1, 0, 0, 4, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, n, err := DecodeCommand(b, 1<<16)
		rc, rerr := ReadCommand(bytes.NewReader(b), 1<<16)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("DecodeCommand: %v, ReadCommand: %v", err, rerr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("refusal %v is none of the package's errors", err)
			}
			return
		}
		if n < 8 || n > len(b) {
			t.Fatalf("used %d of %d bytes", n, len(b))
		}
		if d := cmp.Diff(c, rc); d != "" {
			t.Fatalf("DecodeCommand and ReadCommand differ (-decode +read):\n%s", d)
		}
	})
}

// FuzzExtFields: typed ext-field reads accept exactly the decimal
// integers of their width and name the field in every refusal.
func FuzzExtFields(f *testing.F) {
	for _, s := range []string{"12", "-1", "", "2147483648", "9223372036854775808", "+5", " 1", "0x10", "true", "TRUE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c := NewRequest(ReqPullMessage, map[string]string{"queueId": v}, nil)
		check := func(bitSize int, got int64, err error) {
			want, werr := strconv.ParseInt(v, 10, bitSize)
			var fe *FieldError
			switch {
			case werr == nil && (err != nil || got != want):
				t.Fatalf("int%d %q: got %d, %v; want %d", bitSize, v, got, err, want)
			case werr != nil && (!errors.As(err, &fe) || fe.Field != "queueId" || !strings.Contains(err.Error(), `"queueId"`)):
				t.Fatalf("int%d %q: got %d, %v; want a FieldError naming queueId", bitSize, v, got, err)
			}
		}
		n64, err := c.ExtInt64("queueId")
		check(64, n64, err)
		n32, err := c.ExtInt32("queueId")
		check(32, int64(n32), err)
		if v == "" {
			if d, err := c.ExtOptInt64("queueId", 9); d != 9 || err != nil {
				t.Fatalf("empty optional field: got %d, %v; want the default", d, err)
			}
		}
		if c.ExtBool("queueId") != strings.EqualFold(v, "true") {
			t.Fatalf("ExtBool(%q) = %v", v, c.ExtBool("queueId"))
		}
	})
}
