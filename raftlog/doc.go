// Package raftlog is rmq's CommitLog: a segmented raft.LogStore whose
// replicated raft log holds the broker's messages. It stores, reads,
// truncates and retains entries, and ships the retained log to new
// followers inside raft snapshots. It knows nothing about topics (fsm/
// does) and is not a StableStore (use raft-boltdb or raft.InmemStore).
//
// Entry points: Open(Config) returns a *Store; NewSnapshotStore wraps a
// raft.FileSnapshotStore around it. Hand both to raft.NewRaft directly; the
// Store has its own cache of the last stored entries, bounded by
// CacheEntries and CacheBytes (raft followers read back every entry they
// store, the leader every entry it replicates), so no raft.LogCache is
// needed.
//
// # On-disk format
//
// Dir holds <first index %020d>.seg files, each with a 24-byte header
// (u32 magic "RMQL", u32 version 1, u64 first index, u32 crc32c of the
// previous 16 bytes, u32 zero) followed by one record per raft entry, all
// little endian. There are no batch frames, so a segment's bytes depend only
// on the entries, never on how raft batched them:
//
//	+--------+--------+-------+------+------+------------+--------+-----+------+
//	| length | crc32c | index | term | type | appendedAt | extLen | ext | data |
//	|  u32   |  u32   |  u64  | u64  |  u8  | i64 unixns |  u32   |     |      |
//	+--------+--------+-------+------+------+------------+--------+-----+------+
//	         |<------------- length bytes, covered by crc32c (Castagnoli) --->|
//
// A segment rolls when the next record would not fit in SegmentSize (a
// bigger record gets a segment of its own). On roll the segment is trimmed,
// fsynced and sealed by writing <first>.idx (u32 record offsets, hasExt flag,
// end, first/last appendedAt, crc; tmp file + rename + dir fsync), so Open
// reads sealed segments' offsets without scanning them. The active (last)
// segment is zero-filled 8 MiB ahead of the writer in sync mode so
// fdatasync never has to journal a size change (async mode lets writes
// extend the file); it is scanned on Open.
//
// # Durability: flush modes
//
// FlushSync: StoreLogs returns after fdatasync. Acknowledged entries
// survive a process crash and power loss of every node. FlushAsync: a Store
// goroutine fdatasyncs every FlushInterval (and Close). Acknowledged entries
// survive a process crash (they are in the page cache), but power loss of
// all nodes together can lose up to FlushInterval of entries that raft
// already counted as committed. In both modes readers see entries only after
// the write (and, in sync mode, the fsync).
//
// # Recovery
//
// In the last segment, a record that fails validation (length, CRC, index
// not previous+1) is a torn tail and is cut off, unless a valid record (CRC
// ok, index greater than the last good one) exists at any later byte
// offset; that is corruption and Open returns a *CorruptError naming file
// and offset. Sealed segments are never repaired: a bad .idx is rebuilt by a
// strict scan, and any bad record there, or a CRC mismatch on read, is a
// *CorruptError (errors.Is(err, ErrCorrupt)). Nothing is skipped silently.
// A write or sync error makes the Store fail-stop: that and every later
// write returns the same *FailStopError, because after a failed follower
// StoreLogs raft's in-memory lastLog no longer matches the disk and the node
// wedges (hashicorp/raft #612); restarting re-reads the log from disk.
// Store.Err reports it, so the owner can stop the node. A full disk is
// such an error: a short write leaves a torn tail (cut on Open), and a
// segment whose creation failed is removed (one a crash left without a
// complete header is dropped by Open), so after space is freed the log
// opens with every entry acknowledged before the failure.
//
// # DeleteRange and retention
//
// raft calls DeleteRange(first, snapshotIndex-TrailingLogs) after every
// snapshot. Because the log is the message store, a range with min <= first
// deletes nothing: it only raises AllowedPrefix (in memory, 0 after Open),
// even if it covers the whole log. A range from min > first through the end
// is a suffix truncation (raft resolving a conflict) and is honoured
// exactly: files are cut and fsynced, later segments removed. A middle range
// is an error. StoreLogs overwriting at index <= last truncates from there
// first; one leaving a gap (or below first) resets the log to start there,
// which is how stale entries disappear after a snapshot install. The Store
// is deliberately not a raft.MonotonicLogStore: raft would then wipe the log
// after every install. Old entries go only through Purge(upTo), which
// deletes whole sealed segments with last <= min(upTo, AllowedPrefix, lowest
// Pin - 1) and never the active segment, so it cannot pass the snapshot
// index raft needs (raft panics on a missing entry it believes it has).
// Purge unlinks the files under the locks while their descriptors are
// still open, which is cheap, and frees the blocks afterwards without
// locks, shrinking each file by 64 MiB every 50 ms before closing it:
// freeing a 1 GiB segment costs ~0.6 s of kernel time on ext4 with online
// discard, appends used to wait for it (BENCHMARKS.md, the end-to-end
// stall), and freed in one go it still starves concurrent fsyncs.
//
// # Shipping the log in snapshots
//
// Local snapshots hold only FSM state. SnapshotStore.Open serves
// "RMQSHIP1" | u64 stateLen | state | u64 first | u64 last | u64 logBytes |
// records [first, meta.Index], with an exact meta.Size; records are read
// lazily and pinned until Close, and SnapshotState gives FSM.Restore just
// the state. A sink whose first 8 bytes are the magic installs: state goes to
// the inner store, records to a staging Store in <Dir>.install. Close then
// appends the live entries (meta.Index, last] if the live log holds
// meta.Index+1 (raft's in-memory lastLog is not reset by an install, so they
// must stay readable; if they diverge, raft's AppendEntries term check finds
// the conflict and truncates them), writes <Dir>.install/INSTALL naming the
// snapshot, commits the inner snapshot, and swaps directories under the
// Store's locks. Crash before the marker or before the snapshot commit: the
// staging dir is discarded on open. Marker present and snapshot committed:
// NewSnapshotStore rolls the swap forward (Open does so itself once the live
// dir was renamed away). FSM state must not begin with "RMQSHIP1". Declared
// lengths are checked before they are used: stateLen <= MaxStateSize (on
// both ends), first >= 1, last <= meta.Index, logBytes between one record
// header and MaxRecordSize per entry, each record within logBytes
// (ErrBadShipLength); the sink buffers at most one record.
//
// # Concurrency
//
// All methods are safe for concurrent use. writeMu serializes mutations
// (appends, truncation, purge, swap, fsync in sync mode) and is held across
// file writes (the FlushAsync flusher takes it only to pick the file);
// mu (RWMutex) guards the in-memory index, cache and pins. Readers hold
// mu.RLock only across their preads, so they run concurrently with appends;
// files are cut, closed or removed only under mu.Lock (purged segments are
// detached under it and closed later). Lock order: writeMu,
// then mu. The only goroutine is the FlushAsync flusher, started by Open and
// stopped by Close (idempotent).
//
// # Fault build
//
// Built with -tags rmqfault (fault_on.go), the default file system (FS
// unset) injects the faults that RMQ_FAULT_ variables or the control file
// RMQ_FAULT_FILE ask for, as internal/fault documents: fsync delays and
// EIO errors, and a SIGKILL of the process at the K-th operation inside a
// storage event, a write half done. The events are segment-roll
// (rollLocked: records, trim, fsync, .idx, next segment), purge (the
// unlinks and directory fsync), snapshot (a local snapshot's sink writes
// and commit), install (a shipped snapshot, from the first staged write
// to the swap) and install-finish (finishInstall: suffix, marker, commit,
// swap). The default build's hooks (fault_off.go) are empty and
// internal/fault is not linked into it. The rmqfault tests
// (fault_on_test.go) crash at every step of roll, purge and install.
//
// # Observing
//
// The package knows nothing of metrics systems. Config.OnSync, if set, is
// called after every fsync of the active segment with its duration, on
// the syncing goroutine (holding writeMu in sync mode, so it must be
// quick). SnapshotStore.Stats counts snapshots committed since it was
// opened: local ones (Created) and shipped ones installed from a leader
// (Installed); the counters are atomics.
package raftlog
