package acl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultReloadInterval is how often a Watcher looks at its file.
const DefaultReloadInterval = time.Second

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	// Path is the rules file. Required.
	Path string
	// Interval is how often the file is read to see whether it changed.
	// Default DefaultReloadInterval.
	Interval time.Duration
	// Logger logs reloads and bad files. Default: discard.
	Logger hclog.Logger
}

// Watcher holds the rules of one file and reloads them when the file's
// content changes: it reads the file every Interval (a small file; the
// content, not the mtime, decides, so a rewrite within one mtime tick or
// a ConfigMap's symlink swap is seen too). A file that no longer parses,
// or has gone, keeps the previous rules and logs an error each time its
// content changes. Rules is safe for concurrent use and never blocks.
type Watcher struct {
	cfg   WatcherConfig
	log   hclog.Logger
	rules atomic.Pointer[Rules]

	mu   sync.Mutex // serialises Reload
	last [sha256.Size]byte
}

// NewWatcher loads cfg.Path; a missing or bad file is an error here.
func NewWatcher(cfg WatcherConfig) (*Watcher, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("acl: no rules file")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultReloadInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	w := &Watcher{cfg: cfg, log: cfg.Logger}
	data, err := os.ReadFile(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	r, err := Parse(data, formatOf(cfg.Path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	w.rules.Store(r)
	w.last = sha256.Sum256(data)
	w.log.Info("access control on", "file", cfg.Path, "accounts", r.Accounts())
	return w, nil
}

// Rules returns the current rules.
func (w *Watcher) Rules() *Rules { return w.rules.Load() }

// Reload reads the file now and swaps in its rules if its content
// changed and parses. It reports whether the rules changed; a bad file
// is returned as an error and the old rules stay.
func (w *Watcher) Reload() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := os.ReadFile(w.cfg.Path)
	if err != nil {
		return false, fmt.Errorf("acl: %w (keeping the previous rules)", err)
	}
	sum := sha256.Sum256(data)
	if bytes.Equal(sum[:], w.last[:]) {
		return false, nil
	}
	r, err := Parse(data, formatOf(w.cfg.Path))
	if err != nil {
		return false, fmt.Errorf("%s: %w (keeping the previous rules)", w.cfg.Path, err)
	}
	w.rules.Store(r)
	w.last = sum
	return true, nil
}

// Run reloads every Interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := w.Reload()
		switch {
		case err != nil:
			if err.Error() != lastErr { // log a bad file once, not every tick
				w.log.Error("access control rules not reloaded", "file", w.cfg.Path, "error", err)
				lastErr = err.Error()
			}
		case changed:
			lastErr = ""
			w.log.Info("access control rules reloaded", "file", w.cfg.Path, "accounts", w.Rules().Accounts())
		}
	}
}
