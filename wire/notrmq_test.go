package wire

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// A server that answers in another protocol (here HTTP) gets an error
// naming it, not "frame too large: 1213486160 bytes".
func TestCallToAnotherProtocol(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_, _ = nc.Read(make([]byte, 64))
		_, _ = io.WriteString(nc, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, ln.Addr().String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Call(ctx, CodeGetCluster, nil, nil)
	var nr *NotRMQError
	if !errors.As(err, &nr) || !errors.Is(err, ErrNotRMQ) || errors.Is(err, ErrConnClosed) {
		t.Fatalf("got %v, want a *NotRMQError (and not ErrConnClosed, which callers retry)", err)
	}
	want := "the server at " + ln.Addr().String() + ` does not speak the rmq protocol (it sent "HTTP/1.1 400 Bad")`
	if err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	if strings.Contains(err.Error(), "too large") {
		t.Fatalf("error %q still talks about frame sizes", err)
	}
}
