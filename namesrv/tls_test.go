package namesrv

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/compat"
	"github.com/rmq-dev/rmq/internal/tlsconf"
	"github.com/rmq-dev/rmq/wire"
)

// With TLS on, the NameServer serves rmq's protocol and RocketMQ remoting
// over TLS on its one port, and a plaintext client is told that TLS is
// required.
func TestTLS(t *testing.T) {
	f, err := tlsconf.WriteDev(t.TempDir(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := f.Config.Server()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsconf.Config{CAFile: f.CA}.Client()
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(c *Config) { c.TLS = srv })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	c, err := wire.DialTLS(ctx, s.Addr(), 0, cli)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := wire.TopicInfo{Name: "orders", Queues: 4, Perm: 6}
	register(t, c, regReq(status("g1", "n0", RoleLeader, 1), topic))

	tc, err := tlsconf.Dial(ctx, s.Addr(), cli)
	if err != nil {
		t.Fatal(err)
	}
	rc := compat.NewClient(tc)
	defer rc.Close()
	resp, err := rc.Call(ctx, compat.NewRequest(compat.ReqGetRouteInfoByTopic, map[string]string{"topic": "orders"}, nil))
	if err != nil || resp.Code != compat.RespSuccess {
		t.Fatalf("remoting route over TLS: %v, %+v", err, resp)
	}

	plain, err := wire.Dial(ctx, s.Addr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Call(ctx, wire.CodeGetCluster, wire.Empty{}, nil); !errors.Is(err, wire.ErrTLSRequired) {
		t.Fatalf("plaintext call: got %v, want ErrTLSRequired", err)
	}
}
