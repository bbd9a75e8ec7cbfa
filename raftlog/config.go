package raftlog

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// FlushMode selects when appended records are made durable with fdatasync.
type FlushMode int

const (
	// FlushSync fsyncs the active segment before StoreLogs returns. An
	// acknowledged entry survives process crash and power loss.
	FlushSync FlushMode = iota
	// FlushAsync fsyncs from a background goroutine every FlushInterval. An
	// acknowledged entry survives a process crash (it is in the page cache)
	// but up to FlushInterval of entries may be lost on power loss.
	FlushAsync
)

// String returns "sync" or "async".
func (m FlushMode) String() string {
	switch m {
	case FlushSync:
		return "sync"
	case FlushAsync:
		return "async"
	default:
		return fmt.Sprintf("FlushMode(%d)", int(m))
	}
}

// ParseFlushMode parses "sync" or "async" (case-insensitive).
func ParseFlushMode(s string) (FlushMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "sync":
		return FlushSync, nil
	case "async":
		return FlushAsync, nil
	default:
		return 0, fmt.Errorf("raftlog: unknown flush mode %q (want sync or async)", s)
	}
}

const (
	// DefaultSegmentSize is the default segment roll size (1 GiB).
	DefaultSegmentSize int64 = 1 << 30
	// MaxSegmentSize bounds SegmentSize: offsets in .idx files are u32.
	MaxSegmentSize int64 = 1<<32 - 1
	// MinSegmentSize is the smallest accepted SegmentSize.
	MinSegmentSize int64 = 4 << 10
	// DefaultFlushInterval is the async fsync period.
	DefaultFlushInterval = 100 * time.Millisecond
	// DefaultCacheEntries is the default count bound of the recent-entry
	// cache. Followers read back entries just after storing them and the
	// leader replicates at most 64 entries per RPC with two RPCs in
	// flight, so a few hundred entries cover both.
	DefaultCacheEntries = 256
	// MaxCacheEntries bounds CacheEntries (the cache's slot array is
	// allocated up front).
	MaxCacheEntries = 1 << 20
	// DefaultCacheBytes is the default byte budget of the cache: two full
	// AppendEntries RPCs of broker batches (64 entries of up to 256 KiB).
	// Counted in entries alone, the cache held 256 of those batches,
	// ~140 MB of live heap and ~330 MiB RSS per broker under load
	// (BENCHMARKS.md, Memory); a miss costs one pread from the page cache.
	DefaultCacheBytes int64 = 32 << 20
)

// Config configures a Store. The zero value of every field except Dir means
// "use the default".
type Config struct {
	// Dir is the segment directory; it is created if missing. Required.
	Dir string
	// SegmentSize is the size in bytes at which a segment rolls. Default
	// 1 GiB; must be in [4 KiB, 4 GiB).
	SegmentSize int64
	// FlushMode is FlushSync (default) or FlushAsync.
	FlushMode FlushMode
	// FlushInterval is the fsync period in FlushAsync mode. Default 100ms.
	FlushInterval time.Duration
	// CacheEntries and CacheBytes bound the cache of the most recently
	// stored entries that GetLog serves: at most CacheEntries entries
	// holding at most CacheBytes bytes (Data + Extensions + 128 per
	// entry), oldest dropped first. Defaults 256 and 32 MiB; a negative
	// value of either disables the cache. CacheEntries must be at most
	// MaxCacheEntries.
	CacheEntries int
	CacheBytes   int64
	// Logger receives lifecycle logs. Default hclog.NewNullLogger().
	Logger hclog.Logger
	// FS is the file-system seam. Default the OS file system.
	FS VFS
	// OnSync, if set, is called after every fsync of the active segment
	// (each sync-mode append, each async flush, Sync) with how long the
	// fsync took, successful or not. It runs on the syncing goroutine,
	// holding the write lock in sync mode, so it must be quick and must
	// not call the Store (a metrics histogram's Observe fits).
	OnSync func(time.Duration)
}

// DefaultConfig returns a Config with every default filled in except Dir.
func DefaultConfig() Config {
	return Config{
		SegmentSize:   DefaultSegmentSize,
		FlushMode:     FlushSync,
		FlushInterval: DefaultFlushInterval,
		CacheEntries:  DefaultCacheEntries,
		CacheBytes:    DefaultCacheBytes,
		Logger:        hclog.NewNullLogger(),
		FS:            defaultFS(), // the OS; with faults in the rmqfault build
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SegmentSize == 0 {
		c.SegmentSize = d.SegmentSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = d.FlushInterval
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = d.CacheEntries
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = d.CacheBytes
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.FS == nil {
		c.FS = d.FS
	}
	return c
}

// Validate reports every problem with c at once. It does not apply defaults.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("raftlog: Dir is required"))
	}
	if c.SegmentSize < MinSegmentSize || c.SegmentSize > MaxSegmentSize {
		errs = append(errs, fmt.Errorf("raftlog: SegmentSize %d out of range [%d, %d]", c.SegmentSize, MinSegmentSize, MaxSegmentSize))
	}
	if c.FlushMode != FlushSync && c.FlushMode != FlushAsync {
		errs = append(errs, fmt.Errorf("raftlog: invalid FlushMode %d", int(c.FlushMode)))
	}
	if c.FlushMode == FlushAsync && c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("raftlog: FlushInterval must be positive in async mode, got %s", c.FlushInterval))
	}
	if c.CacheEntries > MaxCacheEntries {
		errs = append(errs, fmt.Errorf("raftlog: CacheEntries %d exceeds %d", c.CacheEntries, MaxCacheEntries))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("raftlog: Logger is nil"))
	}
	if c.FS == nil {
		errs = append(errs, errors.New("raftlog: FS is nil"))
	}
	return errors.Join(errs...)
}
