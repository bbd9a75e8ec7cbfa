package wire

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestCallWriteEndsWithItsContext: a peer that stops reading makes a
// large request's write block; the call ends with its own deadline (not
// the 30 s write cap), and a second caller waiting for the writer does
// too.
func TestCallWriteEndsWithItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { // accepts and never reads; ends when the listener closes
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	c, err := Dial(context.Background(), ln.Addr().String(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := <-accepted
	defer peer.Close()
	big := make([]byte, 32<<20) // more than the socket buffers hold
	done := make(chan error, 2)
	for range 2 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			done <- c.Call(ctx, CodePull, &SendRequest{Messages: []Message{{Topic: "t", Body: big}}}, nil)
		}()
	}
	for range 2 {
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a call to a peer that does not read succeeded")
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrConnClosed) {
				t.Fatalf("call ended with %v, want its deadline or the closed connection", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a call stayed blocked in its write past its 300ms deadline (the 30 s write cap?)")
		}
	}
}
