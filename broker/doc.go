// Package broker runs one node of a broker group: a hashicorp/raft member
// whose replicated log is the CommitLog (package raftlog) and whose state
// machine builds consume queues, topics and consumer offsets (package fsm).
//
// # Wiring
//
//	     Send ──► batcher ──► raft.Apply ──► leader StoreLogs (raftlog) ──► AppendEntries ──► followers
//	                ▲                                                           │
//	concurrent sends queue here while                       quorum commit ◄─────┘
//	raft is busy; the next entry takes                            │
//	them all (≤ MaxBatchBytes)                                    ▼
//	     completer ◄── ApplyFuture ◄── fsm.ApplyBatch on every replica: queue offsets + CQ units
//
//	     Read (any replica) ──► fsm.Units(topic, queue, offset) ──► raftlog.ReadAt(index, pos, size)
//
// New opens raftlog.Store (the raft.LogStore), raftlog.SnapshotStore (which
// ships the retained log to new followers inside snapshots), raft-boltdb
// for term and vote, and the fsm; it builds a TCP transport and starts
// raft. Bootstrap writes the initial voter set on a node without state.
//
// # Writes
//
// Only the leader accepts writes, and only after its Barrier: a new leader
// first applies every entry committed in earlier terms, so its topic table
// and queue offsets are complete. Followers answer *NotLeaderError with
// the leader's ID and Raft address. Send validates each message once, on
// the request's goroutine, against the limits and the applied topic table
// (each distinct topic looked up once) and stamps it with the topic's ID;
// a message that fails (unknown or unwritable topic, too large, bad queue)
// gets its own error in its SendResult and the rest of the request is
// written, so coalesced sends never share another message's refusal. The
// batcher packs all queued sends into one entry (adaptive group commit, no
// linger) stamped with the leader's clock, encoding without a second check;
// Apply assigns offsets deterministically.
// A send whose entry was proposed but whose leader lost office returns
// ErrIndeterminate: it may be committed, so a retry can duplicate
// (at-least-once, as in RocketMQ).
//
// # Reads
//
// Any replica serves committed data: the fsm's consume queue maps a
// logical offset to (raft index, byte position, size) and the message is
// read from the local CommitLog with one pread; neighbouring messages of
// one entry are read together. A read with Wait long-polls on a per-queue
// notifier woken by the fsm's OnAppend hook (and, on the node that applied
// it, by a topic update or delete). Every pass of a read checks the
// topic's read permission in the replicated topic table, so any replica
// refuses a pull from a topic without PermRead (ErrNoPermission), long
// polls included. A read below the queue's min offset, or above its max
// offset on the serving leader, gets *OffsetMovedError with the valid
// range [min, max] (RocketMQ PULL_OFFSET_MOVED); a follower answers a read
// above its max like one at max (it waits), since it may lag the leader.
// The serving leader has applied every committed entry (Barrier), so
// nothing a consumer saw can lie beyond its max. For the same reason
// CommitOffsets, on the leader, refuses an offset above its queue's max
// with *OffsetIllegalError (nothing of that commit is stored).
//
// # Failover timing
//
// HeartbeatTimeout = ElectionTimeout = 400ms by default: a follower notices
// a dead leader after 400-800ms and wins pre-vote and vote within a round
// trip, then the Barrier takes one more commit. Close transfers leadership
// first (a few milliseconds of write pause) and takes a snapshot, so the
// next start restores it instead of replaying the log.
//
// # Retention
//
// The leader-only retention service proposes fsm.TruncatePrefix{UpTo}
// (age, size and disk-usage rules over sealed segments); every replica
// applies it at the same log position, moving queue minimums identically.
// Each node's maintenance loop then takes a snapshot if needed and calls
// raftlog.Store.Purge, which never passes raft's snapshot-allowed prefix or
// a pinned reader, so raft never misses an entry it expects.
//
// # Goroutines and locks
//
// New starts four goroutines, all stopped by Close/Abort through stopCh and
// waited for with wg: the batcher (sole owner of the BatchEncoder), the
// completer (resolves proposed entries in order), the leadership watcher
// (starts one leaderSession goroutine per term of leadership, cancelled
// when leadership ends; the session runs the retention service), and the
// maintenance loop. apply and transfer start one short goroutine per call
// that ends when raft resolves the future (raft resolves every future on
// commit, loss of leadership or shutdown). leaderMu orders setting serving
// against ending a session; it is never held with any other lock. The
// notifier's mutex is a leaf lock.
package broker
