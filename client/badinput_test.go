package client_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/e2e"
)

// TestWrongGroupMode: a broadcasting member cannot join a group that is
// being consumed in clustering mode; it gets ErrGroupModeMismatch from
// Start and the group keeps working.
func TestWrongGroupMode(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	createTopic(t, c, "modes", 2)
	subs := map[string]string{"modes": "*"}
	ctx := ctxT(t, 30*time.Second)
	ok := newConsumer(t, c, "mixed", subs, nil)
	if err := ok.Start(ctx, func(context.Context, []*client.MessageExt) client.ConsumeResult { return client.ConsumeSuccess }); err != nil {
		t.Fatal(err)
	}
	bad := newConsumer(t, c, "mixed", subs, func(cfg *client.ConsumerConfig) { cfg.Mode = client.Broadcasting })
	err := bad.Start(ctx, func(context.Context, []*client.MessageExt) client.ConsumeResult { return client.ConsumeSuccess })
	if !errors.Is(err, client.ErrGroupModeMismatch) {
		t.Fatalf("got %v, want ErrGroupModeMismatch", err)
	}
	t.Logf("wrong mode rejected with: %v", err)
}

// TestBrokerSurvivesMalformedFrame: garbage on a broker's client port
// closes that connection only; the broker keeps serving.
func TestBrokerSurvivesMalformedFrame(t *testing.T) {
	c := e2e.StartCluster(t, e2e.Options{})
	leader := c.LeaderID(10 * time.Second)
	for _, garbage := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), // a length prefix far above the limit
		{0, 0, 0, 2, 1, 2},                          // shorter than a header
	} {
		nc, err := net.Dial("tcp", c.ClientAddr(leader))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(garbage); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil {
			t.Fatal("broker answered garbage instead of closing the connection")
		}
		nc.Close()
	}
	p := newProducer(t, c, nil)
	if _, err := p.Send(ctxT(t, 10*time.Second), &client.Message{Topic: "after-garbage", Body: []byte("still serving")}); err != nil {
		t.Fatalf("broker stopped serving after malformed frames: %v", err)
	}
}
