package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A client whose every NameServer refuses (wrong port, unknown host) and
// that never reached one fails at once with one error naming them all,
// instead of retrying until its deadline.
func TestEveryNameServerRefusedFailsFast(t *testing.T) {
	refused := closedAddr(t)
	p, err := NewProducer(ProducerConfig{NameServers: []string{refused, "nosuchhost.invalid:9876"}, SendTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = p.Send(ctx, &Message{Topic: "t", Body: []byte("x")})
	if !errors.Is(err, ErrNoNameServer) || ctx.Err() != nil {
		t.Fatalf("send: got %v (ctx %v), want ErrNoNameServer before the deadline", err, ctx.Err())
	}
	for _, want := range []string{refused + ": connection refused", "nosuchhost.invalid:9876: no such host"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if got := classify(err); got != failFatal {
		t.Errorf("classify: got %v, want failFatal", got)
	}
}

// Once a NameServer has answered, a refusal is a restart in progress:
// the error stays retriable.
func TestRefusalAfterReachingNameServerIsRetriable(t *testing.T) {
	pl := newPool(nil)
	defer pl.close()
	r := &router{namesrvs: []string{closedAddr(t)}, pool: pl, log: hclog.NewNullLogger()}
	r.nsReached = true
	err := r.nsCall(context.Background(), 0, nil, nil)
	if !errors.Is(err, ErrNoNameServer) || classify(err) == failFatal {
		t.Fatalf("got %v (class %v), want a retriable ErrNoNameServer", err, classify(err))
	}
}

// A NameServer address that answers in another protocol counts as a
// definite refusal: the others are still asked, and the error names it.
func TestNameServerSpeakingAnotherProtocol(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = nc.Read(make([]byte, 64))
			_, _ = nc.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			nc.Close()
		}
	}()
	refused := closedAddr(t)
	a, err := NewAdmin(AdminConfig{NameServers: []string{ln.Addr().String(), refused}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = a.ClusterStatus(ctx)
	if !errors.Is(err, ErrNoNameServer) || ctx.Err() != nil {
		t.Fatalf("got %v, want ErrNoNameServer at once", err)
	}
	for _, want := range []string{"the server at " + ln.Addr().String() + " does not speak the rmq protocol", refused + ": connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}
