package namesrv

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/rmq-dev/rmq/wire"
)

// FuzzHandle feeds arbitrary bodies to every served code: the handler
// must never panic and must answer with a value or a *wire.Error.
func FuzzHandle(f *testing.F) {
	seed := func(code uint16, v any) {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(code, b)
	}
	seed(wire.CodeRegisterBroker, regReq(status("ga", "n0", "leader", 1), topic("t", 4)))
	seed(wire.CodeRegisterBroker, regReq(status("ga", "n1", "follower", 2)))
	seed(wire.CodeUnregisterBroker, wire.UnregisterBrokerRequest{Group: "ga", NodeID: "n0"})
	seed(wire.CodeGetRoute, wire.RouteRequest{Topic: "t", Default: true})
	seed(wire.CodeGetCluster, wire.Empty{})
	f.Add(uint16(999), []byte{0xc1})

	cfg := DefaultConfig().withDefaults()
	clk := newFakeClock()
	cfg.Now = clk.Now
	s := &Server{cfg: cfg, log: hclog.NewNullLogger(), reg: newRegistry(hclog.NewNullLogger(), cfg.ExpiryFactor, cfg.MinExpiry, cfg.DownRetention)}
	f.Fuzz(func(t *testing.T, code uint16, body []byte) {
		clk.Advance(time.Second)
		resp, err := s.handle(context.Background(), &wire.Request{Code: code, Body: body})
		var we *wire.Error
		if err != nil && !errors.As(err, &we) {
			t.Fatalf("code %d: got a non-wire error %v", code, err)
		}
		if err == nil {
			if _, merr := msgpack.Marshal(resp); merr != nil {
				t.Fatalf("code %d: response does not encode: %v", code, merr)
			}
		}
	})
}
