package wire

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func benchSendRequest(n int) *SendRequest {
	req := &SendRequest{TimeoutMillis: 3000}
	for i := 0; i < n; i++ {
		req.Messages = append(req.Messages, Message{
			Topic: "bench", QueueID: uint32(i % 8), Tags: "tag", Body: make([]byte, 1024),
			ID: make([]byte, 16), BornTimestamp: 1700000000000 + int64(i),
			Properties: map[string]string{"k": "v"},
		})
	}
	return req
}

// BenchmarkEncodeSendRequest measures the client's per-request encoding
// of 32 x 1 KiB messages (pooled buffers, as Conn.Call does).
func BenchmarkEncodeSendRequest(b *testing.B) {
	req := benchSendRequest(32)
	b.SetBytes(32 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		eb, err := encode(req)
		if err != nil {
			b.Fatal(err)
		}
		eb.release()
	}
}

// BenchmarkDecodeSendRequest measures the broker's decoding of the same.
func BenchmarkDecodeSendRequest(b *testing.B) {
	body, err := msgpack.Marshal(benchSendRequest(32))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(32 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		var req SendRequest
		if err := msgpack.Unmarshal(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFrameRoundTrip measures framing alone (64 KiB body).
func BenchmarkFrameRoundTrip(b *testing.B) {
	f := Frame{Code: CodeSend, ID: 42, Body: make([]byte, 64<<10)}
	buf := make([]byte, 0, 70<<10)
	b.SetBytes(int64(len(f.Body)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFrame(buf[:0], f)
		if _, _, err := DecodeFrame(buf, DefaultMaxFrame); err != nil {
			b.Fatal(err)
		}
	}
}
