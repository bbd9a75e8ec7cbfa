package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", d, err)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // poll interval, not a wait for state
	}
}

// packageGoroutines lists goroutines running code of this package, other
// than the test's own.
func packageGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		if strings.Contains(s, "rmq/compat.") && !strings.Contains(s, "testing.tRunner") &&
			!strings.Contains(s, "packageGoroutines") {
			out = append(out, s)
		}
	}
	return out
}

func checkNoGoroutines(t *testing.T) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		if g := packageGoroutines(); len(g) > 0 {
			return fmt.Errorf("%d goroutines left, first:\n%s", len(g), g[0])
		}
		return nil
	})
}

// logRecorder is a Logf that keeps messages.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) logf(msg string, kv ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, fmt.Sprint(append([]any{msg}, kv...)...))
}

func (l *logRecorder) has(sub string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, sub) {
			return nil
		}
	}
	return fmt.Errorf("no log containing %q in %q", sub, l.msgs)
}

// testServer runs Serve on a loopback port until the test ends.
type testServer struct {
	addr string
	log  *logRecorder
	stop func() error // cancels and waits for Serve
}

func startServer(t *testing.T, h Handler, cfg ServerConfig) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), log: &logRecorder{}}
	if cfg.Logf == nil {
		cfg.Logf = ts.log.logf
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, cfg) }()
	var once sync.Once
	var serr error
	ts.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-done:
			case <-time.After(10 * time.Second):
				serr = fmt.Errorf("Serve did not return after its context ended")
			}
		})
		return serr
	}
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Error(err)
		}
	})
	return ts
}

func dial(t *testing.T, addr string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitClosed reads nc until the peer closes it (EOF or reset: a peer that
// closes with unread input resets the connection).
func waitClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	_, err := io.Copy(io.Discard, nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("waiting for the peer to close: %v", err)
	}
}
