package compat

import (
	"context"
	"errors"
	"math/rand"
	"net"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

func remotingFrame(t testing.TB, c *Command) []byte {
	f, err := AppendCommand(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSniff(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want Protocol
	}{
		{"rmq id 1", wire.AppendFrame(nil, wire.Frame{Code: 3, ID: 1, Body: []byte{0x80}}), ProtoRMQ},
		{"rmq response", wire.AppendFrame(nil, wire.Frame{Flags: wire.FlagResponse, ID: 1 << 40}), ProtoRMQ},
		{"rmq empty body", wire.AppendFrame(nil, wire.Frame{ID: 7}), ProtoRMQ},
		{"remoting JSON", remotingFrame(t, NewRequest(ReqGetRouteInfoByTopic, map[string]string{"topic": "T"}, nil)), ProtoRemoting},
		{"remoting binary", remotingFrame(t, &Command{Code: ReqHeartBeat, Serialize: SerializeBinary}), ProtoRemoting},
		{"remoting binary code 1", remotingFrame(t, &Command{Code: 1, Serialize: SerializeBinary}), ProtoRemoting},
		{"remoting binary negative code", remotingFrame(t, &Command{Code: -2, Serialize: SerializeBinary}), ProtoRemoting},
		{"binary code 0", remotingFrame(t, &Command{Code: 0, Serialize: SerializeBinary}), ProtoRMQ}, // a response; a client never opens with one
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ProtoUnknown},
		{"TLS hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03}, ProtoUnknown},
		{"short", []byte{0, 0, 0, 1}, ProtoUnknown},
		{"zeros", make([]byte, 16), ProtoUnknown},
		{"JSON header past frame", []byte{0, 0, 0, 5, 0, 0, 0, 9, '{', '}'}, ProtoUnknown},
		{"binary header too short", []byte{0, 0, 0, 30, 1, 0, 0, 20, 0, 10}, ProtoUnknown},
		{"rmq shorter than header", []byte{0, 0, 0, 11, 1, 0, 0, 3, 0, 0}, ProtoUnknown},
		{"other version", []byte{0, 0, 0, 12, 2, 0, 0, 3, 0, 0}, ProtoUnknown},
	}
	for _, tc := range cases {
		if got := Sniff(tc.b); got != tc.want {
			t.Errorf("%s: Sniff(%x) = %v, want %v", tc.name, tc.b[:min(len(tc.b), SniffLen)], got, tc.want)
		}
	}
}

// TestSniffGeneratedFrames checks the rule on many frames from both
// encoders (seeded, so reproducible).
func TestSniffGeneratedFrames(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 5000; i++ {
		f := wire.AppendFrame(nil, wire.Frame{Flags: uint8(rng.Intn(4)), Code: uint16(rng.Intn(1 << 16)),
			ID: uint64(rng.Int63n(1<<48-1) + 1), Body: make([]byte, rng.Intn(3))})
		if p := Sniff(f); p != ProtoRMQ {
			t.Fatalf("wire frame %x sniffed as %v", f[:SniffLen], p)
		}
		code := int32(rng.Intn(1<<15-1) + 1)
		if rng.Intn(2) == 0 {
			code = -code
		}
		c := &Command{Code: code, Opaque: rng.Int31(), Flag: rng.Int31n(4), Language: "GO", Version: 317,
			Serialize: byte(rng.Intn(2)), Body: make([]byte, rng.Intn(3))}
		if rng.Intn(2) == 0 {
			c.Ext = map[string]string{"k": "v"}
		}
		if p := Sniff(remotingFrame(t, c)); p != ProtoRemoting {
			t.Fatalf("command %+v sniffed as %v", c, p)
		}
	}
}

type testMux struct {
	m    *Mux
	addr string
	log  *logRecorder
	stop func() error
}

func startMux(t *testing.T, sniffTimeout time.Duration) *testMux {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tm := &testMux{addr: ln.Addr().String(), log: &logRecorder{}}
	tm.m = NewMux(ln, MuxConfig{SniffTimeout: sniffTimeout, Logf: tm.log.logf})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tm.m.Run(ctx) }()
	stopped := false
	var serr error
	tm.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case serr = <-done:
			case <-time.After(10 * time.Second):
				serr = errors.New("Mux.Run did not return after its context ended")
			}
		}
		return serr
	}
	t.Cleanup(func() {
		if err := tm.stop(); err != nil {
			t.Error(err)
		}
	})
	return tm
}

func TestMuxRoutesBothProtocols(t *testing.T) {
	tm := startMux(t, 10*time.Second)
	if tm.m.Listener(ProtoRemoting).Addr().String() != tm.addr || tm.m.Listener(ProtoUnknown) != nil {
		t.Fatal("sub-listener Addr or Listener(ProtoUnknown) wrong")
	}

	// Remoting: a whole Serve behind the sub-listener.
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, tm.m.Listener(ProtoRemoting), echo, ServerConfig{}) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	cl := dial(t, tm.addr)
	for _, ser := range []byte{SerializeJSON, SerializeBinary} {
		req := NewRequest(ReqHeartBeat, map[string]string{"k": "v"}, nil)
		req.Serialize = ser
		resp, err := cl.Call(callCtx(t), req)
		if err != nil || resp.Ext["k"] != "v" {
			t.Fatalf("serialize %d through the mux: %+v, %v", ser, resp, err)
		}
	}

	// rmq: the sniffed bytes are replayed, so the whole frame reads back.
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := tm.m.Listener(ProtoRMQ).Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	nc := rawConn(t, tm.addr)
	sent := wire.Frame{Code: 5, ID: 1, Body: []byte("msgpack body")}
	if _, err := nc.Write(wire.AppendFrame(nil, sent)); err != nil {
		t.Fatal(err)
	}
	sc, ok := <-accepted
	if !ok {
		t.Fatal("rmq Accept failed")
	}
	defer sc.Close()
	_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := wire.ReadFrame(sc, wire.DefaultMaxFrame)
	if err != nil || got.Code != 5 || got.ID != 1 || string(got.Body) != "msgpack body" {
		t.Fatalf("rmq frame after the mux: %+v, %v", got, err)
	}
}

func TestMuxClosesGarbage(t *testing.T) {
	tm := startMux(t, 10*time.Second)
	nc := rawConn(t, tm.addr)
	if _, err := nc.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, nc)
	eventually(t, 5*time.Second, func() error { return tm.log.has("474554202f20485454") }) // "GET / HTT" in hex
}

func TestMuxSilentConnectionDoesNotBlock(t *testing.T) {
	// A sniff timeout far longer than the test: the second connection can
	// only get through if the silent one is sniffed on its own.
	tm := startMux(t, time.Hour)
	silent := rawConn(t, tm.addr)
	if _, err := silent.Write([]byte{0, 0}); err != nil { // part of a prefix, then nothing
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, tm.m.Listener(ProtoRemoting), echo, ServerConfig{}) }()
	cl := dial(t, tm.addr)
	if _, err := cl.Call(callCtx(t), NewRequest(ReqHeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	// Stopping the mux closes the connection still being sniffed.
	if err := tm.stop(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, silent)
	for _, p := range []Protocol{ProtoRMQ, ProtoRemoting} {
		if _, err := tm.m.Listener(p).Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("%v Accept after Run: got %v, want net.ErrClosed", p, err)
		}
	}
	checkNoGoroutines(t)
}

func TestMuxSniffTimeout(t *testing.T) {
	tm := startMux(t, 20*time.Millisecond)
	silent := rawConn(t, tm.addr)
	waitClosed(t, silent)
	eventually(t, 5*time.Second, func() error { return tm.log.has("before its protocol was known") })
}

func TestMuxSubListenerClose(t *testing.T) {
	tm := startMux(t, 10*time.Second)
	l := tm.m.Listener(ProtoRMQ)
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("got %v, want net.ErrClosed", err)
	}
	// A later rmq connection is closed, not left hanging.
	nc := rawConn(t, tm.addr)
	if _, err := nc.Write(wire.AppendFrame(nil, wire.Frame{ID: 1})); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, nc)
}

// TestMuxRulesOutShortPrefixes: a connection whose first bytes already
// rule out both protocols (a length no frame has, a fifth byte that is no
// version or serialize type) is closed at once, without waiting for the
// sniff timeout (an hour here) or for more bytes.
func TestMuxRulesOutShortPrefixes(t *testing.T) {
	tm := startMux(t, time.Hour)
	for name, prefix := range map[string][]byte{
		"length too short": {0, 0, 0, 3},
		"length too long":  {0x80, 0, 0, 0},
		"bad fifth byte":   {0, 0, 0, 40, 9},
	} {
		t.Run(name, func(t *testing.T) {
			nc := rawConn(t, tm.addr)
			if _, err := nc.Write(prefix); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
			waitClosed(t, nc)
		})
	}
}
