package acl

import (
	"fmt"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// BenchmarkAuthenticateWire is the broker's per-request cost of access
// control on rmq's protocol: white lists, account, HMAC-SHA256 of the
// body, time window (a producer's coalesced send is up to 4 MiB; 1 KiB
// is one message, 64 KiB a typical batch).
func BenchmarkAuthenticateWire(b *testing.B) {
	r := mustParse(b, testRules, "yaml")
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("body=%dKiB", size>>10), func(b *testing.B) {
			body := make([]byte, size)
			now := time.Now()
			ts := now.UnixMilli()
			req := WireRequest{Remote: "127.0.0.1:4000", Code: wire.CodeSend, Body: body,
				Auth: &wire.Auth{AccessKey: "producer", Timestamp: ts, Signature: wire.Sign([]byte("producer-secret"), wire.CodeSend, ts, body)}}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				a, err := r.AuthenticateWire(req, now, DefaultWindow)
				if err != nil {
					b.Fatal(err)
				}
				if err := a.Topic("orders", Pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
