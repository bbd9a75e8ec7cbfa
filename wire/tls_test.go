package wire

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/internal/tlsconf"
)

// A plaintext client of a TLS port and a TLS client of a plaintext port
// both get an error at once that says what is wrong; neither hangs.
func TestTLSMismatch(t *testing.T) {
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	handler := func(context.Context, *Request) (any, error) { return Empty{}, nil }
	serve := func(t *testing.T, tlsOn bool) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if tlsOn {
			ln = tlsconf.NewListener(ln, srv, tlsconf.ListenerConfig{})
		}
		sctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Serve(sctx, ln, handler, ServerConfig{}) }()
		t.Cleanup(func() { stop(); <-done })
		return ln.Addr().String()
	}

	t.Run("tls both ends", func(t *testing.T) {
		addr := serve(t, true)
		c, err := DialTLS(ctx, addr, 0, cli)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Call(ctx, CodeGetCluster, Empty{}, nil); err != nil {
			t.Fatalf("call over TLS: %v", err)
		}
	})
	t.Run("plaintext client, TLS port", func(t *testing.T) {
		addr := serve(t, true)
		c, err := Dial(ctx, addr, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Call(ctx, CodeGetCluster, Empty{}, nil)
		if !errors.Is(err, ErrTLSRequired) || !errors.Is(err, ErrNotRMQ) || errors.Is(err, ErrConnClosed) {
			t.Fatalf("got %v, want ErrTLSRequired (and ErrNotRMQ, not ErrConnClosed)", err)
		}
		if !strings.Contains(err.Error(), "requires TLS") || !strings.Contains(err.Error(), "--tls-ca") {
			t.Fatalf("error %q does not say what to do", err)
		}
	})
	t.Run("TLS client, plaintext port", func(t *testing.T) {
		addr := serve(t, false)
		_, err := DialTLS(ctx, addr, 0, cli)
		if !errors.Is(err, ErrTLSHandshake) || !strings.Contains(err.Error(), "TLS off") {
			t.Fatalf("got %v, want ErrTLSHandshake hinting that TLS is off", err)
		}
	})
}
