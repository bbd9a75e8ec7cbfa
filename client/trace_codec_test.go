package client

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

func traceBatchFixture(n int) []TraceRecord {
	base := time.UnixMilli(1_764_590_000_000)
	var out []TraceRecord
	for i := range n {
		out = append(out, TraceRecord{Kind: []string{TraceSend, TraceDeliver, TraceConsume}[i%3],
			MsgID: fmt.Sprintf("7F0000010C3A5E1B%016X", 1000+i), Topic: "orders", Client: "host@42@ab12", Group: "shop",
			Broker: "broker-a", QueueID: uint32(i % 8), Offset: uint64(50_000 + i), StoreTime: base.Add(time.Duration(i) * time.Millisecond),
			At: base.Add(time.Duration(i) * time.Millisecond), Cost: int64(300 + i%50), Result: "ok", Reconsume: i % 2})
	}
	return out
}

// TestTraceBatchRoundTrip: every field a record carries comes back, and the
// keys are the hashes of the distinct ids.
func TestTraceBatchRoundTrip(t *testing.T) {
	batch := traceBatchFixture(traceBatch)
	batch[5].Result = "send failed: broker down\nagain\x01" // any text
	batch[6].MsgID = "not-a-counter-id"                     // ids not ending in 16 hex digits
	batch[7].MsgID = ""
	batch[8].StoreTime = time.Time{}
	batch[9].At = batch[9].At.Add(-time.Hour) // before the base time
	body, keys := encodeTraceBatch(batch)
	// Ids 0x3E8..0x4E7 of one producer fall in two 256-id buckets, plus
	// the one odd id.
	if len(keys) != 3 || !slices.Contains(keys, traceKey(batch[0].MsgID)) || !slices.Contains(keys, traceKey(batch[255].MsgID)) ||
		!slices.Contains(keys, traceKey("not-a-counter-id")) {
		t.Fatalf("keys %q, want the hashes of buckets ...03 and ...04 and of the odd id", keys)
	}
	if traceKey(batch[0].MsgID) == traceKey(batch[255].MsgID) || len(keys[0]) > 12 {
		t.Fatalf("keys %q: buckets must differ, at most 12 hex digits", keys)
	}
	got := parseTraceBody(body)
	if len(got) != len(batch) {
		t.Fatalf("parsed %d records of %d", len(got), len(batch))
	}
	for i := range batch {
		want := batch[i]
		want.Tags, want.Keys = "", nil
		if !reflect.DeepEqual(got[i], want) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
	t.Logf("%d records: %d body bytes (%.1f a record)", len(batch), len(body), float64(len(body))/float64(len(batch)))
}

// TestTraceBodyNotATrace: bodies that are not trace batches give no records.
func TestTraceBodyNotATrace(t *testing.T) {
	body, _ := encodeTraceBatch(traceBatchFixture(4))
	for name, b := range map[string][]byte{
		"empty":       nil,
		"no header":   []byte("hello"),
		"old format":  []byte("rmqtrace1 c g\ns\x01id\x01t\x01b\x010\x010\x01\x011\x011\x01ok\x010\n"),
		"truncated":   body[:len(body)-1],
		"bad varints": append([]byte("rmqtrace2 c g\n"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"huge counts": append([]byte("rmqtrace2 c g\n"), 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f),
	} {
		if got := parseTraceBody(b); len(got) > 0 {
			t.Errorf("%s: %d records", name, len(got))
		}
	}
}

func FuzzParseTraceBody(f *testing.F) {
	body, _ := encodeTraceBatch(traceBatchFixture(10))
	f.Add(body)
	f.Add([]byte("rmqtrace2 c g\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, r := range parseTraceBody(b) {
			if r.Kind == "" {
				t.Fatalf("record without a kind: %+v", r)
			}
		}
	})
}

// TestTraceRawMatchesFormatted: a send recorded from its raw id encodes
// exactly as the record of its formatted id, with the same keys.
func TestTraceRawMatchesFormatted(t *testing.T) {
	base := time.UnixMilli(1_764_590_000_000)
	str := newTraceEnc("host@1@ab", "shop", base.UnixMilli())
	raw := newTraceEnc("host@1@ab", "shop", base.UnixMilli())
	for i := range 600 {
		id := [16]byte{0x7f, 0, 0, 1, 0x0c, 0x3a, 0x5e, 0x1b, 0, 0, 1, 0x9a, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		if i == 300 {
			id[3] = 2 // another producer's prefix
		}
		at := base.Add(time.Duration(i%7) * time.Millisecond)
		res := SendResult{Group: "broker-a", QueueID: uint32(i % 4), QueueOffset: uint64(i), StoreTime: at}
		if i%5 == 0 {
			res = SendResult{}
		}
		str.add(&TraceRecord{Kind: TraceSend, MsgID: FormatMsgID(id[:]), Topic: "orders", Broker: res.Group, QueueID: res.QueueID,
			Offset: res.QueueOffset, StoreTime: res.StoreTime, At: at, Cost: int64(i), Result: "ok"})
		raw.addRaw('s', id[:], "orders", res.Group, res.QueueID, res.QueueOffset, res.StoreTime, at, int64(i), "ok", 0)
		if k, want := traceKeyHex(id[:15]), traceKey(FormatMsgID(id[:])); k != want {
			t.Fatalf("id %d: raw key %s, formatted key %s", i, k, want)
		}
	}
	sb, sk := str.finish()
	rb, rk := raw.finish()
	if !bytes.Equal(sb, rb) || !reflect.DeepEqual(sk, rk) {
		t.Fatalf("raw encoding differs: %d vs %d bytes, keys %v vs %v", len(rb), len(sb), rk, sk)
	}
	if got := parseTraceBody(rb); len(got) != 600 || got[300].MsgID != "7F0000020C3A5E1B0000019A0000012C" {
		t.Fatalf("parsed %d records, record 300 id %q", len(got), got[300].MsgID)
	}
}

// BenchmarkTraceSend is a traced send's cost on the producer: recording
// it (traceSend's path), and its share of finishing the batch's body.
func BenchmarkTraceSend(b *testing.B) {
	tr := &tracer{kick: make(chan struct{}, 1)}
	res := SendResult{Group: "broker-a", QueueID: 3, QueueOffset: 50_000, StoreTime: time.Now()}
	b.ReportAllocs()
	var size, n int
	for i := 0; b.Loop(); i++ {
		id := [16]byte{0x7f, 0, 0, 1, 0x0c, 0x3a, 0x5e, 0x1b, 0, 0, 1, 0x9a, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		res.QueueOffset++
		tr.addSend("host@42@ab12", "shop", id[:], "orders", &res, res.StoreTime, 300, "ok")
		if i%traceBatch == traceBatch-1 {
			for _, e := range tr.take(false) {
				body, _ := e.finish()
				size, n = size+len(body), n+e.n
			}
		}
	}
	if n > 0 {
		b.ReportMetric(float64(size)/float64(n), "body-B/record")
	}
}
