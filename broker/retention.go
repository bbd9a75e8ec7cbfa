package broker

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rmq-dev/rmq/fsm"
	"github.com/rmq-dev/rmq/raftlog"
)

// DiskUsage is one node's disk use, measured by that node.
type DiskUsage struct {
	FSUsed    uint64 // bytes in use on the file system holding DataDir (all programs)
	FSTotal   uint64 // its used plus available bytes (df: blocks reserved for root are left out)
	DataBytes int64  // bytes allocated to rmq's own files under DataDir
}

// Ratio is the file system's used fraction (0 if unknown).
func (d DiskUsage) Ratio() float64 {
	if d.FSTotal == 0 {
		return 0
	}
	return float64(d.FSUsed) / float64(d.FSTotal)
}

// PurgeRecord describes the last deletion of log segments on a node.
type PurgeRecord struct {
	At        time.Time
	Reason    string // the retention rules that released the segments
	Segments  int
	Bytes     int64
	FromIndex uint64 // first deleted entry
	ToIndex   uint64 // last deleted entry
}

// Retention rule names, the start of every reason.
const (
	reasonAge    = "age"
	reasonBudget = "disk budget"
	reasonRatio  = "disk ratio"
)

// nodeDisk is a node's disk use as the leader learned it.
type nodeDisk struct {
	Node string
	DiskUsage
}

// retentionPlan is one retention decision: release entries <= UpTo.
type retentionPlan struct {
	UpTo      uint64 // 0: nothing to release
	From      uint64 // first entry released
	Segments  int
	Bytes     int64
	Unexpired bool   // some released segment is younger than MaxAge
	Reason    string // rules that released segments, with their numbers
}

// planRetention applies the rules of RetentionConfig to segs (oldest
// first). Segments wholly below start were released by an earlier decision
// and await their purge: they count as freed, so a pending purge never
// makes a rule release more. The budget and force-clean rules take what
// the worst node needs in one step, not one segment per check.
func planRetention(segs []raftlog.SegmentInfo, start uint64, now time.Time, rc RetentionConfig, disks []nodeDisk) retentionPlan {
	var needBudget, needRatio int64
	var budgetWhy, ratioWhy string
	for _, d := range disks {
		if rc.MaxDiskBytes > 0 && d.DataBytes-rc.MaxDiskBytes > needBudget {
			needBudget = d.DataBytes - rc.MaxDiskBytes
			budgetWhy = fmt.Sprintf("%s: %s holds %d bytes of rmq files, budget %d", reasonBudget, d.Node, d.DataBytes, rc.MaxDiskBytes)
		}
		if rc.ForceDiskRatio > 0 && d.Ratio() > rc.ForceDiskRatio {
			if need := int64(d.FSUsed) - int64(rc.ForceDiskRatio*float64(d.FSTotal)); need > needRatio {
				needRatio = need
				ratioWhy = fmt.Sprintf("%s: %s's file system is %.1f%% full, force-clean ratio %.1f%%",
					reasonRatio, d.Node, 100*d.Ratio(), 100*rc.ForceDiskRatio)
			}
		}
	}
	var p retentionPlan
	var freed int64
	used := map[string]bool{}
	for _, s := range segs {
		if !s.Sealed {
			break
		}
		if s.Last < start {
			freed += s.Bytes
			continue
		}
		expired := rc.MaxAge > 0 && !s.LastAppendedAt.IsZero() && now.Sub(s.LastAppendedAt) > rc.MaxAge
		switch {
		case expired:
			used[reasonAge] = true
		case freed < needBudget:
			used[reasonBudget] = true
		case freed < needRatio:
			used[reasonRatio] = true
		}
		if !expired && freed >= needBudget && freed >= needRatio {
			break
		}
		if p.UpTo == 0 {
			p.From = s.First
		}
		p.UpTo = s.Last
		p.Segments++
		p.Bytes += s.Bytes
		p.Unexpired = p.Unexpired || !expired
		freed += s.Bytes
	}
	var why []string
	if used[reasonAge] {
		why = append(why, fmt.Sprintf("%s: sealed segments older than %s", reasonAge, rc.MaxAge))
	}
	if used[reasonBudget] {
		why = append(why, budgetWhy)
	}
	if used[reasonRatio] {
		why = append(why, ratioWhy)
	}
	p.Reason = strings.Join(why, "; ")
	return p
}

// runRetention is the leader-only retention service. It never deletes
// anything itself: it proposes TruncatePrefix{UpTo, Reason} through Raft so
// every replica moves its queue minimums at the same log position; each
// node's maintenance loop then purges the segments locally.
func (n *Node) runRetention(ctx context.Context) error {
	rc := n.cfg.Retention
	if rc.CheckInterval < 0 {
		return nil
	}
	ns := nameServerConns{tls: n.cfg.NameServerTLS}
	defer ns.close()
	t := time.NewTicker(rc.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var disks []nodeDisk
		if rc.MaxDiskBytes > 0 || rc.ForceDiskRatio > 0 {
			disks = n.groupDisks(ctx, &ns, true)
		}
		p := planRetention(n.store.Segments(), n.fsm.LogStart(), n.cfg.Now(), rc, disks)
		if applied := n.fsm.AppliedIndex(); p.UpTo > applied {
			p.UpTo = applied
		}
		if p.UpTo == 0 || p.UpTo < n.fsm.LogStart() {
			continue
		}
		n.proposeTruncate(ctx, p)
	}
}

func (n *Node) proposeTruncate(ctx context.Context, p retentionPlan) {
	data, err := fsm.Encode(&fsm.TruncatePrefix{UpTo: p.UpTo, Reason: p.Reason})
	if err != nil {
		n.log.Error("encode truncate command", "error", err)
		return
	}
	actx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	_, err = n.apply(actx, data)
	cancel()
	if err != nil {
		n.log.Warn("retention proposal failed", "up-to", p.UpTo, "error", err)
		return
	}
	kv := []any{"from-index", p.From, "up-to", p.UpTo, "segments", p.Segments, "bytes", p.Bytes, "reason", p.Reason}
	if p.Unexpired {
		n.log.Warn("retention released unexpired messages", kv...)
		return
	}
	n.log.Info("retention released expired segments", kv...)
}

// diskCache holds the last measurement of this node's disk use. Walking
// DataDir costs a stat per file, so status calls reuse the walk for a
// while; the file system's fullness (one statfs) is re-read more often,
// as often as the disk guard judges (measured on the real clock: the
// cache is a cost bound, not logic).
type diskCache struct {
	mu   sync.Mutex
	at   time.Time // of the last full measurement (statfs and walk)
	fsAt time.Time // of the last statfs
	use  DiskUsage
}

// diskCacheTTL bounds the age of a cached walk of DataDir served to
// status calls (heartbeats run every second).
const diskCacheTTL = 5 * time.Second

// diskUsage measures this node's disk use, or returns a measurement
// younger than diskCacheTTL (or the retention check interval, if shorter)
// unless fresh is set; the file-system part is at most a disk-guard
// check interval old.
func (n *Node) diskUsage(fresh bool) DiskUsage {
	n.disk.mu.Lock()
	defer n.disk.mu.Unlock()
	ttl := diskCacheTTL
	if ci := n.cfg.Retention.CheckInterval; ci > 0 {
		ttl = min(ttl, ci)
	}
	fsTTL := ttl
	if ci := n.cfg.DiskLimit.CheckInterval; ci > 0 && n.cfg.DiskLimit.HighWater >= 0 {
		fsTTL = min(fsTTL, ci)
	}
	now := time.Now()
	switch {
	case !fresh && !n.disk.at.IsZero() && now.Sub(n.disk.at) < ttl && now.Sub(n.disk.fsAt) < fsTTL:
		return n.disk.use
	case !fresh && !n.disk.at.IsZero() && now.Sub(n.disk.at) < ttl:
		fs, err := n.cfg.fsStat(n.cfg.DataDir)
		if err != nil {
			n.log.Debug("measure file system use", "error", err)
			return n.disk.use
		}
		n.disk.use.FSUsed, n.disk.use.FSTotal, n.disk.fsAt = fs.FSUsed, fs.FSTotal, now
		return n.disk.use
	}
	use, err := n.cfg.diskStat(n.cfg.DataDir)
	if err != nil {
		n.log.Debug("measure disk use", "error", err)
	}
	n.disk.use, n.disk.at, n.disk.fsAt = use, now, now
	return use
}

// statDisk measures the file system holding dir the way df's Use% does:
// used blocks against used plus available ones, so blocks reserved for
// root count as neither (on a file system with a large reservation,
// 1 - available/total read 70 % where df said 18 %, and retention purged
// at a quarter of real use). It also sums the bytes allocated to the files
// under dir (sparse, preallocated consume-queue files count only what they
// hold).
func statDisk(dir string) (DiskUsage, error) {
	u, err := statFS(dir)
	if err != nil {
		return u, err
	}
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed during the walk
		}
		info, ierr := d.Info()
		if ierr != nil || !info.Mode().IsRegular() {
			return nil
		}
		if s, ok := info.Sys().(*syscall.Stat_t); ok {
			u.DataBytes += s.Blocks * 512
		} else {
			u.DataBytes += info.Size()
		}
		return nil
	})
	return u, err
}

// statFS is the file-system half of statDisk (DataBytes left 0).
func statFS(dir string) (DiskUsage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return DiskUsage{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := uint64(st.Bsize)
	used := (st.Blocks - st.Bfree) * bs
	return DiskUsage{FSUsed: used, FSTotal: used + st.Bavail*bs}, nil
}

// runMaintenance runs on every node: it syncs consume-queue files and
// deletes log segments that retention released. A purge may not pass the
// latest snapshot (raft's start-up scan would panic), nor what that
// snapshot's state needs from the log (its log start), so a snapshot
// newer than the retention decision is taken first.
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
		n.purgeReleased()
		n.checkStore()
	}
}

// checkStore ends Run (errStoreFailed) once the CommitLog has failed a
// write or fsync: raft cannot store entries on this node any more, and a
// node that stays up would keep campaigning and stepping down (a leader
// steps down when its own append fails). Restarting re-reads the log from
// disk, cutting a torn tail. A failed fsync of the fsm's consume queues
// or index stops the node too: the fsm refuses every later sync, so no
// snapshot could be taken (and retention could not purge) until a
// restart, which re-applies the log after the last good snapshot.
func (n *Node) checkStore() {
	msg := "commitlog failed: stopping the node; free space or fix the disk, then restart it"
	err := n.store.Err()
	if err == nil {
		msg = "consume queue sync failed: stopping the node; fix the disk, then restart it"
		err = n.fsm.Err()
	}
	if err == nil || n.storeDown.Swap(true) {
		return // healthy, or already reported
	}
	n.log.Error(msg, "error", err)
	n.storeFailed <- fmt.Errorf("%w: %w", errStoreFailed, err) // buffered 1, sent once
}

// latestSnapshot is the index of the newest snapshot in the store, 0 if
// none.
func (n *Node) latestSnapshot() uint64 {
	metas, err := n.snaps.List()
	if err != nil || len(metas) == 0 {
		return 0
	}
	return metas[0].Index
}

// purgeReleased deletes the segments below the fsm's log start, logs the
// deletion at warn with the rule that released it and records it for node
// status.
func (n *Node) purgeReleased() {
	start := n.fsm.LogStart()
	if start <= 1 {
		return
	}
	floor := start - 1
	if segs := n.store.Segments(); len(segs) == 0 || !segs[0].Sealed || segs[0].Last > floor {
		return // no whole segment below the floor: skip PinnedIndex, which scans every timer
	}
	if pin, ok := n.fsm.PinnedIndex(); ok && pin <= floor {
		// A pending timer or a delivered delayed message still points at
		// a record there: keep the log from it (delay.go).
		floor = pin - 1
		if floor == 0 {
			return
		}
	}
	// The latest snapshot must not need what the purge deletes: raft
	// restores it on every start and sends it to every follower that
	// lags behind the log, and Restore rebuilds consume queues from the
	// log from the snapshot's own log start. One taken before the entries
	// that decided floor were applied may predate the TruncatePrefix that
	// moved the log start past it (raft's compaction after it already
	// allowed floor), so take one now; purge next time if that fails.
	applied := n.fsm.AppliedIndex() // after LogStart and PinnedIndex: the snapshot covers both
	if n.store.AllowedPrefix() < floor || n.latestSnapshot() < applied {
		if err := n.raft.Snapshot().Error(); err != nil {
			n.log.Debug("snapshot before purge", "error", err)
		}
		if n.latestSnapshot() < applied {
			return
		}
	}
	before, _ := n.store.FirstIndex()
	res, err := n.store.Purge(floor)
	if err != nil {
		n.log.Error("purge log segments", "error", err)
		return
	}
	if res.Segments == 0 {
		return
	}
	rec := &PurgeRecord{At: n.cfg.Now(), Reason: n.fsm.TruncateReason(), Segments: res.Segments, Bytes: res.Bytes,
		FromIndex: before, ToIndex: floor}
	if res.FirstIndex > 0 {
		rec.ToIndex = res.FirstIndex - 1
	}
	if rec.Reason == "" {
		rec.Reason = "released before this node last started (reasons are not kept across restarts)"
	}
	n.lastPurge.Store(rec)
	n.log.Warn("purged log segments", "segments", rec.Segments, "bytes", rec.Bytes,
		"from-index", rec.FromIndex, "to-index", rec.ToIndex, "reason", rec.Reason)
}
