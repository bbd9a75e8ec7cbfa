package broker

import (
	"context"
	"syscall"
	"time"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/raftlog"
)

// runRetention is the leader-only retention service. It never deletes
// anything itself: it proposes TruncatePrefix{UpTo} through Raft so every
// replica moves its queue minimums at the same log position; each node's
// maintenance loop then purges the segments locally.
func (n *Node) runRetention(ctx context.Context) {
	t := time.NewTicker(n.cfg.Retention.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		upTo := retentionTarget(n.store.Segments(), time.Now(), n.cfg.Retention, n.diskUsage())
		if applied := n.fsm.AppliedIndex(); upTo > applied {
			upTo = applied
		}
		if upTo == 0 || upTo < n.fsm.LogStart() {
			continue
		}
		data, err := fsm.Encode(&fsm.TruncatePrefix{UpTo: upTo})
		if err != nil {
			n.log.Error("encode truncate command", "error", err)
			continue
		}
		actx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		_, err = n.apply(actx, data)
		cancel()
		if err != nil {
			n.log.Warn("retention proposal failed", "up-to", upTo, "error", err)
			continue
		}
		n.log.Info("retention truncated log prefix", "up-to", upTo)
	}
}

// retentionTarget returns the last index of the newest sealed segment that
// retention releases (0 for none). Segments go oldest first, and only while
// one of the rules holds for the oldest remaining segment.
func retentionTarget(segs []raftlog.SegmentInfo, now time.Time, rc RetentionConfig, usage float64) uint64 {
	var total int64
	for _, s := range segs {
		total += s.Bytes
	}
	var upTo uint64
	for _, s := range segs {
		if !s.Sealed {
			break
		}
		expired := rc.MaxAge > 0 && !s.LastAppendedAt.IsZero() && now.Sub(s.LastAppendedAt) > rc.MaxAge
		overSize := rc.MaxBytes > 0 && total > rc.MaxBytes
		overDisk := rc.DiskUsageRatio > 0 && usage > rc.DiskUsageRatio
		if !expired && !overSize && !overDisk {
			break
		}
		upTo = s.Last
		total -= s.Bytes
		if overDisk && !expired && !overSize {
			// Free one segment per check when only the disk is full: the
			// next check sees the new usage.
			break
		}
	}
	return upTo
}

// diskUsage is the used fraction of the file system holding DataDir.
func (n *Node) diskUsage() float64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.cfg.DataDir, &st); err != nil || st.Blocks == 0 {
		return 0
	}
	return 1 - float64(st.Bavail)/float64(st.Blocks)
}

// runMaintenance runs on every node: it syncs consume-queue files and
// deletes log segments that retention released. A purge may not pass the
// latest snapshot (raft's start-up scan would panic), so when retention has
// moved past it, a snapshot is taken first.
func (n *Node) runMaintenance() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stopCh:
			return
		case <-t.C:
		}
		if err := n.fsm.Sync(); err != nil {
			n.log.Error("sync consume queues", "error", err)
		}
		start := n.fsm.LogStart()
		if start <= 1 {
			continue
		}
		floor := start - 1
		if n.store.AllowedPrefix() < floor {
			if err := n.raft.Snapshot().Error(); err != nil {
				n.log.Debug("snapshot before purge", "error", err)
			}
		}
		res, err := n.store.Purge(floor)
		if err != nil {
			n.log.Error("purge log segments", "error", err)
			continue
		}
		if res.Segments > 0 {
			n.log.Info("purged log segments", "segments", res.Segments, "bytes", res.Bytes, "first-index", res.FirstIndex)
		}
	}
}
