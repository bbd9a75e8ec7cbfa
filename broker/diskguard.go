package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// The disk guard: the leader refuses data-growing writes (sends of every
// kind, topic creation) while some node of the group is short of disk
// (or of its share, Retention.MaxDiskBytes),
// and takes them again once every node is back below the low-water mark.
// Every replica must store every entry, so the leader judges all the
// disks it can see (its own and its followers' NameServer heartbeats, the
// same readings retention uses: groupDisks), not only its own. Reads,
// offset commits, acks, deletes and retention go on: they free space or
// barely use any.

// DiskLimitConfig sets the disk marks of the write guard. A node's
// fullness is its file system's used fraction, counting other programs'
// files (df's Use%). With a Retention.MaxDiskBytes budget the same marks
// also apply to the rmq files retention cannot release (all but sealed
// log segments) as a fraction of the budget. Zero fields take the
// defaults.
type DiskLimitConfig struct {
	// HighWater: once some node's file system is at least this full
	// (0..1], the leader refuses sends and topic creation with
	// ErrDiskFull. Default 0.90 (RocketMQ diskSpaceWarningLevelRatio).
	// Negative turns the guard off.
	HighWater float64
	// LowWater: writes are taken again once every node is at or below
	// it (hysteresis). Default 0.85 (RocketMQ diskSpaceCleanForciblyRatio,
	// and Retention.ForceDiskRatio's default: the force-clean rule frees
	// the log down to it). Must be below HighWater, and not below
	// Retention.ForceDiskRatio (retention would stop short of it).
	LowWater float64
	// CheckInterval is how often the leader reads the group's disks.
	// Default 1s.
	CheckInterval time.Duration
}

// DefaultDiskLimit returns the guard's defaults.
func DefaultDiskLimit() DiskLimitConfig {
	return DiskLimitConfig{HighWater: 0.90, LowWater: 0.85, CheckInterval: time.Second}
}

func (d DiskLimitConfig) withDefaults() DiskLimitConfig {
	def := DefaultDiskLimit()
	setDefault(&d.HighWater, def.HighWater)
	setDefault(&d.LowWater, def.LowWater)
	setDefault(&d.CheckInterval, def.CheckInterval)
	return d
}

// validate reports every problem; force is Retention.ForceDiskRatio.
func (d DiskLimitConfig) validate(force float64) []error {
	if d.HighWater < 0 {
		return nil // off
	}
	var errs []error
	if d.HighWater > 1 || math.IsNaN(d.HighWater) {
		errs = append(errs, fmt.Errorf("DiskLimit.HighWater %v must be in (0, 1], or negative for off", d.HighWater))
	}
	if !(d.LowWater > 0 && d.LowWater < d.HighWater) {
		errs = append(errs, fmt.Errorf("DiskLimit.LowWater %v must be in (0, HighWater %v)", d.LowWater, d.HighWater))
	}
	if force > 0 && force > d.LowWater {
		errs = append(errs, fmt.Errorf("Retention.ForceDiskRatio %v must not exceed DiskLimit.LowWater %v: retention would free the disk only to a fullness that still refuses writes", force, d.LowWater))
	}
	if d.CheckInterval < 0 {
		errs = append(errs, fmt.Errorf("DiskLimit.CheckInterval %s must be positive", d.CheckInterval))
	}
	return errs
}

// DiskFullError is the refusal of a write while the group is short of
// disk; errors.Is(err, ErrDiskFull) holds.
type DiskFullError struct {
	Reason string // which node, how full, which mark
}

func (e *DiskFullError) Error() string {
	return "broker: disk full, writes refused: " + e.Reason
}

// Is makes errors.Is(err, ErrDiskFull) true.
func (e *DiskFullError) Is(target error) bool { return target == ErrDiskFull }

// diskGuard holds the guard's verdict. The leader's disk-guard service
// writes it; sends read it. The verdict outlives leadership: a node that
// becomes leader keeps its last one until its service judges again (at
// once, when it starts).
type diskGuard struct {
	mu     sync.Mutex
	reason string // "" while writes are taken
	since  time.Time
}

func (g *diskGuard) get() (reason string, since time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reason, g.since
}

// set stores a verdict and reports whether it changed between taking and
// refusing writes.
func (g *diskGuard) set(reason string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	changed := (reason == "") != (g.reason == "")
	if changed {
		g.since = now
	}
	g.reason = reason
	return changed
}

// judgeDisks applies the marks to the group's disks. full is the previous
// verdict: a group that refuses writes takes them again only when every
// node is at or below the low-water marks; one that takes them refuses at
// the high-water marks. With a MaxDiskBytes budget the same fractions
// apply to the part of a node's rmq files that retention cannot release:
// its files minus freeable, the sealed segments of the leader's log
// (replicas hold the same log). Retention keeps the rest within the
// budget, so this refuses only when the active segment, consume queues,
// index and snapshots alone fill the budget. It returns the reason writes
// are refused, "" if they are taken.
func judgeDisks(full bool, disks []nodeDisk, dl DiskLimitConfig, budget, freeable int64) string {
	if dl.HighWater < 0 {
		return ""
	}
	mark := dl.HighWater
	if full {
		mark = dl.LowWater
	}
	over := func(r float64) bool { return r >= mark && !full || r > mark && full }
	for _, d := range disks {
		if r := d.Ratio(); d.FSTotal > 0 && over(r) {
			return fmt.Sprintf("%s's file system is %.1f%% full (high-water mark %.1f%%, writes resume at %.1f%%)",
				d.Node, 100*r, 100*dl.HighWater, 100*dl.LowWater)
		}
		if kept := d.DataBytes - freeable; budget > 0 && over(float64(kept)/float64(budget)) {
			return fmt.Sprintf("%s holds %d bytes of rmq files that retention cannot release, %.1f%% of the %d-byte budget (high-water mark %.1f%%, writes resume at %.1f%%)",
				d.Node, kept, 100*float64(kept)/float64(budget), budget, 100*dl.HighWater, 100*dl.LowWater)
		}
	}
	return ""
}

// freeableBytes is the bytes of this node's sealed log segments: what
// retention can release.
func (n *Node) freeableBytes() int64 {
	var b int64
	for _, s := range n.store.Segments() {
		if s.Sealed {
			b += s.Bytes
		}
	}
	return b
}

// checkDiskRoom refuses a data-growing write while the group is short of
// disk. Call it after checkWritable.
func (n *Node) checkDiskRoom() error {
	if reason, _ := n.diskGuard.get(); reason != "" {
		return &DiskFullError{Reason: reason}
	}
	return nil
}

// runDiskGuard is the leader-only disk guard: it judges the group's disks
// at once and then every DiskLimit.CheckInterval, and logs every change
// between taking and refusing writes.
func (n *Node) runDiskGuard(ctx context.Context) error {
	dl := n.cfg.DiskLimit
	if dl.HighWater < 0 {
		return nil
	}
	var ns nameServerConns
	defer ns.close()
	t := time.NewTicker(dl.CheckInterval)
	defer t.Stop()
	for {
		n.judgeDiskRoom(ctx, &ns)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (n *Node) judgeDiskRoom(ctx context.Context, ns *nameServerConns) {
	prev, _ := n.diskGuard.get()
	var freeable int64
	if n.cfg.Retention.MaxDiskBytes > 0 {
		freeable = n.freeableBytes()
	}
	reason := judgeDisks(prev != "", n.groupDisks(ctx, ns, false), n.cfg.DiskLimit, n.cfg.Retention.MaxDiskBytes, freeable)
	if ctx.Err() != nil {
		return // leadership ended mid-read: the next leader judges afresh
	}
	if !n.diskGuard.set(reason, n.cfg.Now()) {
		return
	}
	if reason != "" {
		n.log.Error("disk full: refusing sends until every node is below the low-water mark", "reason", reason)
		return
	}
	n.log.Info("disk below the low-water mark: taking sends again")
}

// errStoreFailed ends Run when the CommitLog has failed (a write or fsync
// error, such as a full disk) or an fsync of the fsm's files has: the
// node cannot store entries (or snapshots) any more and must be restarted
// once the cause is fixed.
var errStoreFailed = errors.New("broker: storage failed")
