package flightrec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// eventually polls f every 5ms until it returns nil, for at most d.
func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		<-tick.C
	}
}

// syncBuf is a log sink the writer goroutine and the test share.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func traces(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.trace"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func wantTraces(dir string, n int) func() error {
	return func() error {
		m, _ := filepath.Glob(filepath.Join(dir, "*.trace"))
		if len(m) != n {
			return &countErr{dir, len(m), n}
		}
		return nil
	}
}

type countErr struct {
	dir       string
	got, want int
}

func (e *countErr) Error() string {
	return fmt.Sprintf("%s: %d trace files, want %d", filepath.Base(e.dir), e.got, e.want)
}

func TestTriggerWritesExecutionTrace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "traces") // created by Start
	log := &syncBuf{}
	r, err := Start(Config{Dir: dir, After: time.Millisecond, StallThreshold: -1,
		Logger: hclog.New(&hclog.LoggerOptions{Output: log})})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Trigger("n1: lost leadership")
	eventually(t, 10*time.Second, wantTraces(dir, 1))
	f := traces(t, dir)[0]
	if !strings.HasSuffix(f, "-n1--lost-leadership.trace") {
		t.Errorf("trace file %s: want the reason in its name", f)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("go 1.")) || len(b) < 1000 {
		t.Errorf("%s: %d bytes starting %q, want a Go execution trace", f, len(b), b[:min(len(b), 16)])
	}
	eventually(t, 5*time.Second, func() error {
		if !strings.Contains(log.String(), "wrote the last seconds of execution trace") {
			return errors.New("no log line for the dump")
		}
		return nil
	})
	if _, err := Start(Config{Dir: t.TempDir()}); err == nil {
		t.Error("a second flight recorder started in the same process")
	} else if !strings.Contains(err.Error(), "flight recorder") {
		t.Errorf("second Start: %v, want an error naming the flight recorder", err)
	}
}

func TestDumpsAreRateLimitedAndPruned(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	log := &syncBuf{}
	r, err := start(Config{Dir: dir, After: time.Millisecond, MinInterval: time.Minute, Keep: 2,
		Logger: hclog.New(&hclog.LoggerOptions{Output: log})}.withDefaults(), nil, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Trigger("first")
	eventually(t, 10*time.Second, wantTraces(dir, 1))
	clk.add(time.Second) // inside MinInterval: logged, not written
	r.Trigger("too-soon")
	eventually(t, 10*time.Second, func() error {
		if !strings.Contains(log.String(), "last dump was too recent") {
			return errors.New("no log line for the trigger inside MinInterval")
		}
		return nil
	})
	for _, reason := range []string{"second", "third"} {
		clk.add(time.Minute)
		r.Trigger(reason)
		eventually(t, 10*time.Second, func() error {
			m, _ := filepath.Glob(filepath.Join(dir, "*-"+reason+".trace"))
			if len(m) != 1 {
				return &countErr{dir, len(m), 1}
			}
			return nil
		})
	}
	eventually(t, 5*time.Second, wantTraces(dir, 2)) // Keep: "first" was removed
	for _, f := range traces(t, dir) {
		if strings.Contains(f, "first") || strings.Contains(f, "too-soon") {
			t.Errorf("%s should not be kept", f)
		}
	}
}

func TestWatchdogReportsLateTicks(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	log := &syncBuf{}
	ticks := make(chan time.Time)
	r, err := start(Config{Dir: dir, After: time.Millisecond, Tick: 10 * time.Millisecond, StallThreshold: 250 * time.Millisecond,
		Logger: hclog.New(&hclog.LoggerOptions{Output: log})}.withDefaults(), ticks, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	at := clk.now()                                             // the watchdog's start
	for _, gap := range []time.Duration{10, 10, 10, 250, 310} { // on time, 240ms late (under the threshold), 300ms late
		at = at.Add(gap * time.Millisecond)
		ticks <- at
	}
	eventually(t, 10*time.Second, wantTraces(dir, 1))
	if f := traces(t, dir)[0]; !strings.HasSuffix(f, "-stall-300ms.trace") {
		t.Errorf("trace %s, want one named stall-300ms", f)
	}
	if n := strings.Count(log.String(), "process stalled"); n != 1 {
		t.Errorf("%d stall warnings, want 1:\n%s", n, log.String())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Dir is required"},
		{Config{Dir: "d", Keep: -1}, "Keep"},
		{Config{Dir: "d", Tick: time.Second, StallThreshold: time.Second}, "longer than Tick"},
		{Config{Dir: "d", After: -time.Second}, "After"},
	} {
		err := tc.cfg.withDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if err := (Config{Dir: "d", StallThreshold: -1}).withDefaults().Validate(); err != nil {
		t.Errorf("watchdog off: %v", err)
	}
}

func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.Trigger("nothing")
	r.Close()
}
