package wire

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"
)

func TestMessageCodecRoundTrip(t *testing.T) {
	in := PullResponse{NextOffset: 9, MinOffset: 1, MaxOffset: 10, Messages: []StoredMessage{
		{Message: Message{Topic: "t", QueueID: 3, Flag: 1, Tags: "a", Keys: "k1 k2",
			Properties: map[string]string{"x": "y", "": "empty key"}, Body: []byte("body"), ID: []byte{1, 2}, BornTimestamp: -5},
			QueueOffset: 7, StoreTime: 1700000000000, RaftIndex: 42},
		{Message: Message{Topic: "t2", Body: []byte{}}, QueueOffset: 8},
		{Message: Message{Topic: "t3", Body: []byte("r")}, QueueOffset: 2, Reconsume: 3, OriginTopic: "orders", OriginQueue: 5, OriginOffset: 77},
	}}
	b, err := msgpack.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out PullResponse
	if err := msgpack.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Fatalf("round trip (-in +out):\n%s", diff)
	}
	send := SendRequest{Messages: []Message{in.Messages[0].Message}, AutoCreateQueues: 4}
	if b, err = msgpack.Marshal(&send); err != nil {
		t.Fatal(err)
	}
	var got SendRequest
	if err := msgpack.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(send, got); diff != "" {
		t.Fatalf("send round trip (-in +out):\n%s", diff)
	}
}

// TestMessageDecodeSkipsNewerFields: a newer peer may append fields.
func TestMessageDecodeSkipsNewerFields(t *testing.T) {
	b, _ := msgpack.Marshal([]any{"t", 1, 0, "", "", nil, []byte("b"), []byte("i"), 3, "future field", 99})
	var m Message
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Topic != "t" || m.QueueID != 1 || string(m.Body) != "b" || m.BornTimestamp != 3 {
		t.Fatalf("decoded %+v", m)
	}
	short, _ := msgpack.Marshal([]any{"t", 1})
	if err := msgpack.Unmarshal(short, &m); err == nil {
		t.Fatal("a two-field message decoded without error")
	}
}

func FuzzDecodeBodies(f *testing.F) {
	for _, v := range []any{
		&SendRequest{Messages: []Message{{Topic: "t", Body: []byte("x"), Properties: map[string]string{"a": "b"}}}},
		&PullResponse{Messages: []StoredMessage{{Message: Message{Topic: "t"}, QueueOffset: 1}}},
		&ReceiveResponse{Messages: []ReceivedMessage{{Stored: StoredMessage{Message: Message{Topic: "t"}}, Handle: "0 1 2 0 0 b 0 1 t"}}},
		&AckRequest{Group: "g", Handles: []string{"h"}},
	} {
		b, _ := msgpack.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte{0x91, 0xdf, 0xff, 0xff, 0xff, 0xff}) // a map claiming 4 billion entries
	f.Fuzz(func(t *testing.T, b []byte) {
		var s SendRequest
		_ = Unmarshal(b, &s)
		var p PullResponse
		_ = Unmarshal(b, &p)
		var r ReceiveResponse
		_ = Unmarshal(b, &r)
		var a AckRequest
		_ = Unmarshal(b, &a)
	})
}

func TestCheckLengths(t *testing.T) {
	valid, _ := msgpack.Marshal(&SendRequest{Messages: []Message{{Topic: "t", Body: make([]byte, 300), Properties: map[string]string{"a": "b"}}}})
	if err := checkLengths(valid); err != nil {
		t.Fatalf("valid body rejected: %v", err)
	}
	for name, b := range map[string][]byte{
		"array32 of 4 billion":     {0xdd, 0xff, 0xff, 0xff, 0xff},
		"map in struct field":      []byte("\x84\xa1m\xdd\xdd\xdd\xdd\x00"),
		"map32 claiming too much":  {0xdf, 0x00, 0x01, 0x00, 0x00, 0x01},
		"str32 longer than body":   {0xdb, 0x00, 0x00, 0x10, 0x00, 'x'},
		"bin8 truncated":           {0xc4, 0x05, 1, 2},
		"truncated fixarray items": {0x93, 0x01},
		"never-used byte":          {0xc1},
	} {
		if err := checkLengths(b); !errors.Is(err, errBadLength) {
			t.Errorf("%s: got %v, want errBadLength", name, err)
		}
	}
}

// TestReceivedMessageRoundTrip: a received message keeps its handle and
// deadline next to the stored message's own codec.
func TestReceivedMessageRoundTrip(t *testing.T) {
	in := ReceiveResponse{Messages: []ReceivedMessage{{Stored: StoredMessage{Message: Message{Topic: "t", Body: []byte("x")}, QueueOffset: 3, Reconsume: 2},
		Handle: "0 1 2 0 0 b 0 3 t", DeadlineMillis: 5}}}
	b, err := msgpack.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out ReceiveResponse
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	got := out.Messages[0]
	if got.Handle != in.Messages[0].Handle || got.DeadlineMillis != 5 || got.Stored.QueueOffset != 3 || got.Stored.Reconsume != 2 || string(got.Stored.Body) != "x" {
		t.Fatalf("round trip: %+v", got)
	}
}
