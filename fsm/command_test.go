package fsm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func sampleMessages() []Message {
	return []Message{
		{Topic: "orders", TopicID: 7, QueueID: 3, Flag: 1, BornTimestamp: 1700000000123,
			ID: []byte("0123456789abcdef"), Tags: "TagA", Keys: "k1 k2",
			Properties: map[string]string{"UNIQ_KEY": "abc", "WAIT": "true", "empty": ""}, Body: []byte("hello")},
		{Topic: "a", QueueID: 0},
		{Topic: "pay_%RETRY%|x-1", TopicID: 1, QueueID: 1023, Tags: "标签😀", Body: bytes.Repeat([]byte{0xff}, 1000)},
	}
}

func sampleCommands() []Command {
	return []Command{
		MessageBatch{StoreTimestamp: 1700000000999, Messages: sampleMessages()},
		MessageBatch{StoreTimestamp: -1, Messages: []Message{}},
		CreateTopic{Name: "orders", Queues: 8, Perm: 6, Time: 1700000000000, Attributes: map[string]string{"message.type": "FIFO"}},
		CreateTopic{Name: "t", Queues: 1},
		UpdateTopic{Name: "orders", Queues: 16, Perm: 4},
		DeleteTopic{Name: "orders"},
		CommitOffsets{Group: "g1", Offsets: []OffsetEntry{{Topic: "orders", QueueID: 1, Offset: 42}, {Topic: "x", Offset: 1 << 62}}},
		CommitOffsets{Group: "g1", Offsets: []OffsetEntry{}},
		DeleteGroup{Group: "g1"},
		TruncatePrefix{UpTo: 123456789},
		TruncatePrefix{UpTo: 7, Reason: "disk ratio: n1 at 91.0%"},
		CommitOffsets{Group: "g2", Offsets: []OffsetEntry{{Topic: "orders", Offset: 7}}, Reset: true},
		RegisterNode{ID: "n0", Addr: "127.0.0.1:10911"},
		LockQueues{Group: "g1", ClientID: "c1", Queues: []QueueRef{{Topic: "orders", QueueID: 3}}, Now: 1700000000000, Lease: 60000},
		UnlockQueues{Group: "g1", ClientID: "c1", All: true, GrantedBefore: 1700000000000},
		DeliverTimers{Now: 1700000001000, Items: []TimerRef{{Due: 1700000000500, Index: 42, Pos: 14, Size: 80, TagHash: 7, TopicID: 3, QueueID: 1}}},
		SendBack{Now: 1700000001000, Record: TimerRef{Due: 1700000011000, Index: 42, Pos: 14, Size: 80, TagHash: 7, TopicID: 4},
			Retry: RetryInfo{Reconsume: 1, OriginTopicID: 3, OriginQueue: 1, OriginOffset: 9}},
		Pop{Now: 1700000002000, Group: "g", Invisible: 30000, Max: 32, MaxReconsume: 16, Tags: []uint32{7},
			Queues: []PopQueueRef{{Topic: "orders", TopicID: 3, QueueID: 0}, {Topic: "%RETRY%g", TopicID: 4}}},
		PopAck{Now: 1700000003000, Group: "g", Items: []PopHandle{{TopicID: 3, QueueID: 0, Offset: 9, PopTime: 1700000002000}}},
		PopChangeInvisible{Now: 1700000003000, Group: "g", Item: PopHandle{TopicID: 3, Offset: 9, PopTime: 1700000002000}, Invisible: 60000},
		SendBack{Now: 1700000004000, Record: TimerRef{Index: 42, Pos: 14, Size: 80, TagHash: 7, TopicID: 5},
			Retry: RetryInfo{Reconsume: 17, OriginTopicID: 3, OriginOffset: 9}, DLQ: true,
			Pop: &PopHandle{TopicID: 3, Offset: 9, PopTime: 1700000002000}, PopGroup: "g"},
		EndTx{Now: 1700000005000, Items: []TxEnd{{TxRef: TxRef{Index: 42, Pos: 14}, Commit: true}, {TxRef: TxRef{Index: 43}, ByBroker: true}}},
		CheckTx{Now: 1700000005000, Items: []TxRef{{Index: 42, Pos: 14}}},
		SetDedup{Window: 120000, Max: 1000000},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		t.Run(strings.TrimPrefix(c.Type().String(), "Cmd"), func(t *testing.T) {
			data, err := Encode(c)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if CommandType(data[0]) != c.Type() {
				t.Fatalf("type byte got %d, want %d", data[0], c.Type())
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(c, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			// Pointers encode the same bytes as values.
			if ptr := toPointer(c); ptr != nil {
				data2, err := Encode(ptr)
				if err != nil || !bytes.Equal(data, data2) {
					t.Errorf("Encode(pointer) differs: %v", err)
				}
			}
		})
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		cmd  Command
	}{
		{"empty topic name", CreateTopic{Queues: 1}},
		{"bad topic char", CreateTopic{Name: "a b", Queues: 1}},
		{"long topic", CreateTopic{Name: long, Queues: 1}},
		{"zero queues", CreateTopic{Name: "t", Queues: 0}},
		{"too many queues", CreateTopic{Name: "t", Queues: MaxQueues + 1}},
		{"bad perm", CreateTopic{Name: "t", Queues: 1, Perm: 0x10}},
		{"update bad perm", UpdateTopic{Name: "t", Perm: 0x80}},
		{"delete empty", DeleteTopic{}},
		{"commit empty group", CommitOffsets{}},
		{"delete long group", DeleteGroup{Group: long}},
		{"nil", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Encode(tc.cmd); !errors.Is(err, ErrInvalidCommand) {
				t.Errorf("got %v, want ErrInvalidCommand", err)
			}
		})
	}
}

func TestBatchEncoderLimits(t *testing.T) {
	tests := []struct {
		name string
		m    Message
	}{
		{"empty topic", Message{}},
		{"topic with space", Message{Topic: "a b"}},
		{"topic too long", Message{Topic: strings.Repeat("t", MaxTopicLen+1)}},
		{"id over 255", Message{Topic: "t", ID: make([]byte, 256)}},
		{"tags over u16", Message{Topic: "t", Tags: strings.Repeat("x", MaxTagsLen+1)}},
		{"keys over u16", Message{Topic: "t", Keys: strings.Repeat("x", MaxKeysLen+1)}},
		{"body over 4MiB", Message{Topic: "t", Body: make([]byte, MaxBodyLen+1)}},
		{"prop key with \\x01", Message{Topic: "t", Properties: map[string]string{"a\x01": "v"}}},
		{"prop value with \\x02", Message{Topic: "t", Properties: map[string]string{"a": "v\x02"}}},
		{"empty prop key", Message{Topic: "t", Properties: map[string]string{"": "v"}}},
		{"props too long", Message{Topic: "t", Properties: map[string]string{"k": strings.Repeat("v", MaxPropsLen)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e BatchEncoder
			e.Reset(1)
			before := append([]byte(nil), e.Bytes()...)
			if err := e.Add(&tc.m); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("got %v, want ErrInvalidMessage", err)
			}
			if e.Len() != 0 || !bytes.Equal(e.Bytes(), before) {
				t.Errorf("failed Add changed the batch")
			}
		})
	}
}

func TestBatchEncoderSlicing(t *testing.T) {
	var e BatchEncoder
	msgs := sampleMessages()
	for round := 0; round < 2; round++ { // the second round checks Reset reuse
		e.Reset(99)
		pos := []int{}
		for i := range msgs {
			pos = append(pos, e.Size())
			if err := e.Add(&msgs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if e.Len() != len(msgs) || e.Size() != len(e.Bytes()) {
			t.Fatalf("Len %d Size %d, want %d and %d", e.Len(), e.Size(), len(msgs), len(e.Bytes()))
		}
		for i := range msgs {
			rec := e.Bytes()[pos[i] : pos[i]+EncodedSize(&msgs[i])]
			got, err := DecodeMessage(rec)
			if err != nil {
				t.Fatalf("DecodeMessage(%d): %v", i, err)
			}
			if diff := cmp.Diff(msgs[i], got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("message %d (-want +got):\n%s", i, diff)
			}
		}
	}
}

func TestDecodeMessageErrors(t *testing.T) {
	var e BatchEncoder
	e.Reset(1)
	m := sampleMessages()[0]
	if err := e.Add(&m); err != nil {
		t.Fatal(err)
	}
	rec := e.Bytes()[batchHeaderLen:]
	flip := append([]byte(nil), rec...)
	flip[len(flip)-1] ^= 1
	tests := []struct {
		name string
		rec  []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"short", rec[:39], ErrCorrupt},
		{"size mismatch", rec[:len(rec)-1], ErrCorrupt},
		{"crc", flip, ErrChecksum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeMessage(tc.rec); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good, _ := Encode(DeleteTopic{Name: "t"})
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"unknown type", []byte{200, 1}, ErrUnknownCommand},
		{"unknown control version", append([]byte{good[0], 9}, good[2:]...), ErrUnknownVersion},
		{"unknown batch version", []byte{1, 2, 0, 0}, ErrUnknownVersion},
		{"bad msgpack", []byte{byte(CmdDeleteTopic), 1, 0xc1}, ErrCorrupt},
		{"batch count too large", []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, ErrCorrupt},
		{"batch trailing bytes", []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.data); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTagHashMatchesJava(t *testing.T) {
	tests := []struct {
		tags string
		want int32 // Java String.hashCode
	}{
		{"", 0},
		{"a", 97},
		{"hello", 99162322},
		{"TagA", 2598919},
		{"é", 233},
		{"😀", 31*0xD83D + 0xDE00}, // surrogate pair
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", javaHash("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")},
	}
	for _, tc := range tests {
		if got := TagHash(tc.tags); got != uint32(tc.want) {
			t.Errorf("TagHash(%q) got %d, want %d", tc.tags, int32(got), tc.want)
		}
	}
}

// javaHash is the textbook definition, for overflowing ASCII inputs.
func javaHash(s string) int32 {
	var h int32
	for _, c := range []byte(s) {
		h = 31*h + int32(c)
	}
	return h
}

func TestRecordOverhead(t *testing.T) {
	m := Message{Topic: "t", ID: make([]byte, 16), Body: make([]byte, 1024)}
	over := EncodedSize(&m) - len(m.Body) - len(m.Topic)
	if over > 70 {
		t.Errorf("record overhead %d bytes, want <= 70", over)
	}
	if disk := EncodedSize(&m) + UnitSize; disk > 1126 {
		t.Errorf("disk per 1 KiB message %d bytes, want <= 1.1 KiB", disk)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		data, err := Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same value,
		// unless it fails validation.
		again, err := Encode(c)
		if err != nil {
			return
		}
		c2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(c, c2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("re-decode differs:\n%s", diff)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	var e BatchEncoder
	for _, m := range sampleMessages() {
		e.Reset(0)
		if err := e.Add(&m); err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte(nil), e.Bytes()[batchHeaderLen:]...))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		m, err := DecodeMessage(rec)
		if err != nil {
			return
		}
		if len(m.Body) > len(rec) || len(m.ID) > len(rec) {
			t.Fatalf("decoded fields larger than the record")
		}
	})
}
