package flightrec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"time"
)

// Recorder is a running flight recorder with its watchdog (see the package
// comment). The zero value is not usable; Start returns one.
type Recorder struct {
	cfg  Config
	fr   *trace.FlightRecorder
	trig chan string
	stop chan struct{}
	wg   sync.WaitGroup
	now  func() time.Time
	// stopTicker stops the watchdog's ticker (nil: none or a test's).
	stopTicker func()

	mu      sync.Mutex
	pending int // triggers refused while one waited (the channel was full)
}

// Start validates cfg, creates Dir and starts the flight recorder, the
// writer and the watchdog. It fails if another flight recorder runs in the
// process.
func Start(cfg Config) (*Recorder, error) {
	cfg = cfg.withDefaults()
	if cfg.StallThreshold < 0 {
		return start(cfg, nil, time.Now)
	}
	t := time.NewTicker(cfg.Tick)
	r, err := start(cfg, t.C, time.Now)
	if err != nil {
		t.Stop()
		return nil, err
	}
	r.stopTicker = t.Stop
	return r, nil
}

// start is Start with the watchdog's ticks (nil: no watchdog) and clock
// given, for tests; cfg has its defaults applied.
func start(cfg Config, ticks <-chan time.Time, now func() time.Time) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("flightrec: %w", err)
	}
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: cfg.Window, MaxBytes: cfg.MaxBytes})
	if err := fr.Start(); err != nil {
		return nil, fmt.Errorf("flightrec: start the flight recorder: %w", err)
	}
	r := &Recorder{cfg: cfg, fr: fr, trig: make(chan string, 1), stop: make(chan struct{}), now: now}
	r.wg.Add(1)
	go r.runWriter()
	if ticks != nil {
		r.wg.Add(1)
		go r.runWatchdog(ticks)
	}
	return r, nil
}

// Trigger asks for a dump named after reason. It never blocks: while a
// dump waits (Config.After) further triggers are only counted, and it does
// nothing on a nil Recorder.
func (r *Recorder) Trigger(reason string) {
	if r == nil {
		return
	}
	trace.Log(context.Background(), "flightrec", reason) // marks the moment in the trace
	select {
	case r.trig <- reason:
	default:
		r.mu.Lock()
		r.pending++
		r.mu.Unlock()
	}
}

// Close stops the watchdog, the writer (a dump waiting for Config.After is
// dropped, one being written finishes) and the flight recorder.
func (r *Recorder) Close() {
	if r == nil {
		return
	}
	close(r.stop)
	r.wg.Wait()
	if r.stopTicker != nil {
		r.stopTicker()
	}
	r.fr.Stop()
}

// runWriter writes a dump per trigger, at most one per MinInterval.
func (r *Recorder) runWriter() {
	defer r.wg.Done()
	var last time.Time
	for {
		var reason string
		select {
		case <-r.stop:
			return
		case reason = <-r.trig:
		}
		if !last.IsZero() && r.now().Sub(last) < r.cfg.MinInterval {
			r.cfg.Logger.Info("flight recorder: no trace for this trigger, the last dump was too recent",
				"reason", reason, "last", last.UTC().Format(time.RFC3339), "min_interval", r.cfg.MinInterval)
			continue
		}
		if !r.wait(r.cfg.After) {
			return
		}
		r.mu.Lock()
		also := r.pending
		r.pending = 0
		r.mu.Unlock()
		last = r.now()
		path, n, err := r.dump(reason, last)
		if err != nil {
			r.cfg.Logger.Error("flight recorder: writing a trace failed", "reason", reason, "error", err)
			continue
		}
		r.cfg.Logger.Warn("flight recorder: wrote the last seconds of execution trace (go tool trace FILE)",
			"reason", reason, "file", path, "bytes", n, "more_triggers", also)
		r.prune()
	}
}

// wait sleeps d unless stopped first; it reports whether it was not
// stopped.
func (r *Recorder) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.stop:
		return false
	case <-t.C:
		return true
	}
}

// dump writes the window to Dir through a temporary name, so that a file
// with the .trace suffix is always whole.
func (r *Recorder) dump(reason string, at time.Time) (string, int64, error) {
	name := at.UTC().Format("20060102T150405.000Z") + "-" + fileSafe(reason) + ".trace"
	path := filepath.Join(r.cfg.Dir, name)
	f, err := os.CreateTemp(r.cfg.Dir, ".flightrec-*")
	if err != nil {
		return "", 0, err
	}
	n, err := r.fr.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", n, err
	}
	return path, n, nil
}

// prune removes the oldest trace files beyond Keep. The names start with
// the time, so name order is age order.
func (r *Recorder) prune() {
	ents, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		r.cfg.Logger.Warn("flight recorder: list traces", "error", err)
		return
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".trace") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for len(names) > r.cfg.Keep {
		if err := os.Remove(filepath.Join(r.cfg.Dir, names[0])); err != nil {
			r.cfg.Logger.Warn("flight recorder: remove an old trace", "file", names[0], "error", err)
		}
		names = names[1:]
	}
}

// runWatchdog reports every tick that fired more than StallThreshold
// after the one before it (plus Tick). A ticker's value is when its timer
// fired, which a stalled process delays as much as the receive.
func (r *Recorder) runWatchdog(ticks <-chan time.Time) {
	defer r.wg.Done()
	prev := r.now()
	for {
		var now time.Time
		select {
		case <-r.stop:
			return
		case now = <-ticks: // the time the timer fired
		}
		if late := now.Sub(prev) - r.cfg.Tick; late > r.cfg.StallThreshold {
			r.cfg.Logger.Warn("process stalled: the watchdog's timer fired late; no goroutine of this process may have run meanwhile",
				"late", late.Round(time.Millisecond), "threshold", r.cfg.StallThreshold)
			r.Trigger(fmt.Sprintf("stall-%dms", late.Milliseconds()))
		}
		prev = now
	}
}

// fileSafe keeps letters, digits, '.', '_' and '-' of s (others become
// '-'), at most 64 of them.
func fileSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	if len(b) == 0 {
		return "trigger"
	}
	return string(b)
}
