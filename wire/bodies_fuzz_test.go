package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rmq-dev/rmq/internal/msgpackguard"
)

// bodyTypes lists every request and response body of the protocol (and
// the types nested in them), so FuzzBodies reaches every decoder. A new
// body type belongs here.
var bodyTypes = []func() any{
	func() any { return new(Empty) },
	func() any { return new(Message) },
	func() any { return new(StoredMessage) },
	func() any { return new(SendRequest) },
	func() any { return new(SendResult) },
	func() any { return new(SendResponse) },
	func() any { return new(PullRequest) },
	func() any { return new(PullResponse) },
	func() any { return new(TopicRequest) },
	func() any { return new(TopicInfo) },
	func() any { return new(TopicList) },
	func() any { return new(QueueStatus) },
	func() any { return new(TopicStatus) },
	func() any { return new(QueueOffset) },
	func() any { return new(CommitOffsetsRequest) },
	func() any { return new(QueryOffsetRequest) },
	func() any { return new(SearchOffsetRequest) },
	func() any { return new(QueryOffsetResponse) },
	func() any { return new(ResetOffsetsRequest) },
	func() any { return new(SendBackRequest) },
	func() any { return new(SendBackResponse) },
	func() any { return new(DeadLettersRequest) },
	func() any { return new(ResendDeadRequest) },
	func() any { return new(ProducerHello) },
	func() any { return new(EndTxRequest) },
	func() any { return new(EndTxResponse) },
	func() any { return new(CheckTxRequest) },
	func() any { return new(CheckTxResponse) },
	func() any { return new(ListTxRequest) },
	func() any { return new(TxHalf) },
	func() any { return new(TxDiscard) },
	func() any { return new(TxList) },
	func() any { return new(QueryMessagesRequest) },
	func() any { return new(QueriedMessage) },
	func() any { return new(QueryMessagesResponse) },
	func() any { return new(ReplyRequest) },
	func() any { return new(PushReply) },
	func() any { return new(ReceiveRequest) },
	func() any { return new(ReceivedMessage) },
	func() any { return new(ReceiveResponse) },
	func() any { return new(AckRequest) },
	func() any { return new(AckResponse) },
	func() any { return new(ChangeInvisibleRequest) },
	func() any { return new(ChangeInvisibleResponse) },
	func() any { return new(ResendDeadResponse) },
	func() any { return new(ResetOffsetsResponse) },
	func() any { return new(HeartbeatRequest) },
	func() any { return new(HeartbeatResponse) },
	func() any { return new(LeaveGroupRequest) },
	func() any { return new(LockRequest) },
	func() any { return new(LockResponse) },
	func() any { return new(GroupList) },
	func() any { return new(DescribeGroupRequest) },
	func() any { return new(GroupQueue) },
	func() any { return new(GroupDescription) },
	func() any { return new(NodeStatus) },
	func() any { return new(PurgeStatus) },
	func() any { return new(TransferRequest) },
	func() any { return new(RegisterBrokerRequest) },
	func() any { return new(UnregisterBrokerRequest) },
	func() any { return new(RouteRequest) },
	func() any { return new(NodeRoute) },
	func() any { return new(GroupRoute) },
	func() any { return new(RouteInfo) },
	func() any { return new(ClusterRequest) },
	func() any { return new(ClusterInfo) },
	func() any { return new(ClusterNode) },
	func() any { return new(MemberRequest) },
	func() any { return new(Member) },
	func() any { return new(MemberList) },
	func() any { return new(ErrorBody) },
}

// fill sets every field of v (a pointer) to a non-zero value, recursing
// into structs, slices (two elements) and maps (one entry), so a seed
// exercises every field's decoder.
func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Pointer:
		if depth > 4 {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), depth+1)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(fmt.Sprintf("b%d", depth)))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			fill(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, depth+1)
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", depth))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(depth + 1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(depth + 1))
	}
}

// allocated returns the bytes fn allocated (on this goroutine's process;
// a fuzz worker runs one input at a time).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// maxDecodeAlloc bounds what decoding n body bytes may allocate: a
// constant for the decoder's own state plus a fixed multiple of the input.
// A length field may not make it allocate more than the bytes that
// follow it justify.
func maxDecodeAlloc(n int) uint64 { return 2*msgpackguard.BoundedSlack + 64*uint64(n) }

// nilMessages is a SendRequest body {m: [n nils]}.
func nilMessages(n int) []byte {
	b := binary.BigEndian.AppendUint32([]byte{0x81, 0xa1, 'm', 0xdd}, uint32(n))
	return append(b, bytes.Repeat([]byte{0xc0}, n)...)
}

// TestNilElementsRefused: a nil decodes to a zero 136-byte Message, so
// before UnmarshalBounded a 1 MiB send of nils allocated 136 MiB (and a
// 16 MiB frame over 2 GiB). It is refused now, having allocated little.
func TestNilElementsRefused(t *testing.T) {
	b := nilMessages(1 << 20)
	var req SendRequest
	var err error
	if n := allocated(func() { err = Unmarshal(b, &req) }); n > maxDecodeAlloc(len(b)) {
		t.Errorf("decoding allocated %d bytes, want <= %d", n, maxDecodeAlloc(len(b)))
	}
	if !errors.Is(err, msgpackguard.ErrTooManyElements) {
		t.Fatalf("got %v, want ErrTooManyElements", err)
	}
	// Real sends of many small messages still decode.
	msgs := make([]Message, 20000)
	for i := range msgs {
		msgs[i] = Message{Topic: "t", ID: make([]byte, 16)}
	}
	ok, _ := msgpack.Marshal(&SendRequest{Messages: msgs})
	if err := Unmarshal(ok, &req); err != nil || len(req.Messages) != len(msgs) {
		t.Fatalf("20000 small messages: got %d, %v", len(req.Messages), err)
	}
}

// FuzzBodies decodes arbitrary bytes as every body type (the first byte
// of the input picks the type). A body that decodes must re-encode and
// decode to the same value, and decoding may not allocate more than
// maxDecodeAlloc for its size, whatever lengths it declares.
func FuzzBodies(f *testing.F) {
	for i, mk := range bodyTypes {
		zero, full := mk(), mk()
		fill(reflect.ValueOf(full), 0)
		for _, v := range []any{zero, full} {
			b, err := msgpack.Marshal(v)
			if err != nil {
				f.Fatalf("%T: %v", v, err)
			}
			f.Add(uint8(i), b)
		}
	}
	f.Add(uint8(3), nilMessages(4))
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		mk := bodyTypes[int(which)%len(bodyTypes)]
		v := mk()
		var err error
		if n := allocated(func() { err = Unmarshal(b, v) }); n > maxDecodeAlloc(len(b)) {
			t.Fatalf("%T: decoding %d bytes allocated %d, limit %d", v, len(b), n, maxDecodeAlloc(len(b)))
		}
		if err != nil {
			return
		}
		again, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatalf("%T: decoded %+v does not encode: %v", v, v, err)
		}
		v2 := mk()
		if err := Unmarshal(again, v2); err != nil {
			t.Fatalf("%T: re-encoded body does not decode: %v", v, err)
		}
		if d := cmp.Diff(v, v2, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("%T: round trip differs (-decoded +again):\n%s", v, d)
		}
	})
}

// FuzzDecodeResponse is the client's side of a response: an error code
// always yields an *Error with that code (whatever the body), a success
// decodes into the awaited body or fails with a wrapped decode error.
func FuzzDecodeResponse(f *testing.F) {
	eb, _ := msgpack.Marshal(ErrorBody{Message: "no", Leader: "127.0.0.1:1", MinOffset: 1, MaxOffset: 9})
	f.Add(CodeNotLeader, uint8(0), eb)
	f.Add(CodeOK, uint8(7), []byte{0x80})
	f.Add(CodeOffsetMoved, uint8(0), []byte{0xc1})
	f.Fuzz(func(t *testing.T, code uint16, which uint8, body []byte) {
		resp := bodyTypes[int(which)%len(bodyTypes)]()
		err := decodeResponse(Frame{Flags: FlagResponse, Code: code, Body: body}, resp)
		var we *Error
		switch {
		case code != CodeOK:
			if !errors.As(err, &we) || we.Code != code {
				t.Fatalf("code %d: got %v, want *Error with that code", code, err)
			}
		case err != nil && errors.As(err, &we):
			t.Fatalf("code OK: got a wire error %v", err)
		}
	})
}
