package flightrec

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config configures a Recorder. Zero fields take the defaults of
// DefaultConfig, except Dir, which is required.
type Config struct {
	// Dir receives the trace files; it is created if missing.
	Dir string
	// Window is how much of the past a dump covers at least. Default 10s.
	Window time.Duration
	// MaxBytes bounds the trace data held in memory; a busy process may
	// then keep less than Window. Default 64 MiB.
	MaxBytes uint64
	// After is how long a dump waits after its trigger, so that it also
	// shows what happened next. Default 2s.
	After time.Duration
	// MinInterval is the least time between two dumps. Default 30s.
	MinInterval time.Duration
	// Keep is how many trace files Dir keeps (the oldest are removed).
	// Default 20.
	Keep int
	// Tick and StallThreshold drive the watchdog: a tick that arrives
	// more than StallThreshold late is a stall. Defaults 10ms and 250ms;
	// a negative StallThreshold turns the watchdog off.
	Tick           time.Duration
	StallThreshold time.Duration
	// Logger gets a warn line per stall and dump. Default: hclog's null
	// logger.
	Logger hclog.Logger
}

// DefaultConfig returns the defaults, with no Dir.
func DefaultConfig() Config {
	return Config{
		Window: 10 * time.Second, MaxBytes: 64 << 20, After: 2 * time.Second,
		MinInterval: 30 * time.Second, Keep: 20, Tick: 10 * time.Millisecond,
		StallThreshold: 250 * time.Millisecond,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.After == 0 {
		c.After = d.After
	}
	if c.MinInterval == 0 {
		c.MinInterval = d.MinInterval
	}
	if c.Keep == 0 {
		c.Keep = d.Keep
	}
	if c.Tick == 0 {
		c.Tick = d.Tick
	}
	if c.StallThreshold == 0 {
		c.StallThreshold = d.StallThreshold
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

// Validate reports the first unusable field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("flightrec: Dir is required")
	case c.Window < 0:
		return fmt.Errorf("flightrec: Window %v is negative", c.Window)
	case c.After < 0:
		return fmt.Errorf("flightrec: After %v is negative", c.After)
	case c.MinInterval < 0:
		return fmt.Errorf("flightrec: MinInterval %v is negative", c.MinInterval)
	case c.Keep < 0:
		return fmt.Errorf("flightrec: Keep %d is negative", c.Keep)
	case c.Tick < 0:
		return fmt.Errorf("flightrec: Tick %v is negative", c.Tick)
	case c.StallThreshold > 0 && c.StallThreshold <= c.Tick:
		return fmt.Errorf("flightrec: StallThreshold %v must be longer than Tick %v", c.StallThreshold, c.Tick)
	}
	return nil
}
