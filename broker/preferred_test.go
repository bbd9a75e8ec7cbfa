package broker

import (
	"strings"
	"testing"
	"time"
)

// TestPreferredStartDelay: a leader session starts checking after one
// interval, unless this node handed leadership over within the flap
// window, when each such session waits twice as long as the last (capped).
func TestPreferredStartDelay(t *testing.T) {
	const iv = time.Second
	var p preferredState
	if got := p.startDelay(iv); got != iv {
		t.Fatalf("first session: got %s, want %s", got, iv)
	}
	want := []time.Duration{4 * iv, 8 * iv, 16 * iv}
	for i, w := range want {
		p.handedOver()
		if got := p.startDelay(iv); got != w {
			t.Fatalf("session %d after a hand-over: got %s, want %s", i+2, got, w)
		}
	}
	for range 10 {
		p.handedOver()
		p.startDelay(iv)
	}
	p.handedOver()
	if got := p.startDelay(iv); got != 300*iv {
		t.Fatalf("capped: got %s, want %s", got, 300*iv)
	}
	p.mu.Lock()
	p.last = time.Now().Add(-2 * preferredFlapWindow) // long ago: no flap
	p.mu.Unlock()
	if got := p.startDelay(iv); got != iv {
		t.Fatalf("after the flap window: got %s, want %s", got, iv)
	}
}

func TestConfigJoin(t *testing.T) {
	base := func() Config {
		return Config{NodeID: "n3", DataDir: t.TempDir(), RaftBind: "127.0.0.1:0",
			Peers: []Peer{{ID: "n0", Addr: "127.0.0.1:1"}}}.withDefaults()
	}
	cfg := base()
	cfg.Join = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a joining node need not be among its Peers: got %v", err)
	}
	cfg.Bootstrap = true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Join and Bootstrap") {
		t.Fatalf("Join with Bootstrap: got %v, want an error", err)
	}
	if err := base().Validate(); err == nil || !strings.Contains(err.Error(), "does not include") {
		t.Fatalf("not joining, not among Peers: got %v, want an error", err)
	}
}
