// Package fsm is the rmq raft.FSM (and raft.BatchingFSM). The replicated
// raft log is the message CommitLog; fsm decodes committed entries and
// derives from them, identically on every replica: topic metadata,
// per-(topic, queue) consume queues (CQ) and consumer-group offsets. It does
// not store messages (they stay in the raft log, package raftlog), talk to
// the network, read clocks during Apply or start goroutines.
//
// Entry point: New(Config) returns *FSM; hand it to raft.NewRaft. Producers
// build entries with BatchEncoder, control commands with Encode; Decode and
// DecodeMessage read them back.
//
// # Commands
//
// raft Log.Data is [u8 type][u8 version][body]. Control commands (CreateTopic,
// UpdateTopic, DeleteTopic, CommitOffsets, DeleteGroup, TruncatePrefix,
// RegisterNode, LockQueues, UnlockQueues, DeliverTimers, SendBack, Pop,
// PopAck, PopChangeInvisible, SetDedup) have msgpack bodies. A CommitOffsets with Reset set bumps the
// group's reset epoch, which tells live consumers to re-read committed
// offsets; RegisterNode maps a broker node ID to its client address so a
// follower can name the leader's address to clients. A message batch (type 1) is binary so that a consumer can
// slice one record by (Pos, Size) from its CQ unit without decoding the rest.
// Integers are big-endian.
//
// Every control command is one entry in the registry in command.go
// (commands, built by def[T]): its type byte (T.Type), msgpack body (T's
// fields), validation (*T.validate, shared by Encode and Apply) and state
// change (*T.apply, whose result is the raft Apply result). Encode, Decode,
// Apply and CommandType.String all dispatch through it, so adding a
// command touches no switch: a new CommandType constant, the struct, its
// Type, validate and apply methods, and one def line. The golden file
// testdata/commands.golden pins each command's bytes.
//
//	+------+-----+----------------+---------+--------+--------+-----
//	| 0x01 | 0x01| i64 storeTs ms | u32 cnt | record | record | ...
//	+------+-----+----------------+---------+--------+--------+-----
//	 record (40 bytes fixed + variable parts):
//	+---------+----------+-----------+--------+-------+-----------+----------+
//	| u32 size| u32 crc32c| u32 topicID| u8 len| topic | u32 queueID| u32 flag |
//	+---------+----------+-----------+--------+-------+-----------+----------+
//	| i64 bornTs | u8 len | id | u16 len | tags | u16 len | keys |
//	| u16 len | props k\x01v\x02k\x01v | u32 len | body |
//
// size covers the whole record; crc32c (Castagnoli) covers everything after
// the crc field. Apply checks structure only (the raft log frames entries
// with its own CRC); DecodeMessage also checks the CRC, end to end.
//
// # Determinism
//
// Every input to Apply is in the entry: the leader stamps storeTs, topic
// creation times and each message's TopicID (the topic incarnation it
// validated against). A message is accepted iff its topic exists with that
// ID and QueueID < Queues; it then gets the queue's next dense offset.
// Limits that Apply checks (MaxQueues, name rules) are constants, never
// Config; settings Apply judges by (the dedup window) are replicated
// state, set by a command. TruncatePrefix{UpTo} moves each queue's min to
// its first unit with raft index > UpTo.
//
// # Queue locks
//
// The FSM keeps the consumer-group queue lock table: (group, topic, queue)
// -> owner, granted, expires (leader clock, unix ms). LockQueues{Group,
// ClientID, Queues, Now, Lease} grants each queue that has no lock, is
// ClientID's, or whose lock has Expires <= Now, setting granted = Now and
// expires = Now+Lease; its Apply result (*LockResult) lists the granted
// queues. It also drops the group's locks expired at Now. UnlockQueues
// releases ClientID's locks (listed, or All), optionally only those
// granted before GrantedBefore. Time comes only from the stamped Now, so
// replicas agree; leases written by one leader are judged against a later
// leader's Now, so the skew between leaders' clocks shortens or stretches
// a lease (the broker assumes it is small next to the 30s margin between
// its lease and what clients trust). RocketMQ keeps these locks on the
// master only; here they survive failover.
//
// # Delayed messages
//
// A record whose property TIMER_DELIVER_MS (unix ms; the broker resolves
// delay levels and relative delays into it) is later than its batch's
// store time gets no unit when its batch is applied (BatchResult offset
// OffsetDelayed): it becomes a pending timer {due, entry, position, size,
// tag hash, topic ID, queue} in a heap ordered by (due, entry, position),
// 40 bytes each, snapshotted packed. DeliverTimers{Now, Items} lists
// timers (self-contained: a consume-queue rebuild replays it from the log
// alone); applying it appends, for each listed timer still pending, a unit
// stamped Now, and removes the timer, so a listing repeated by a later
// leader delivers nothing twice; a timer whose topic incarnation is gone
// is dropped. The body is never written again. A delivered unit's Index is
// the DeliverTimers entry (so every queue stays in raft-index order and
// TruncatePrefix's binary search holds) and bit 31 of its Size marks it;
// the record's own entry is in the queue's delivered table (offset ->
// entry, snapshotted), which Units resolves, so readers see the record's
// entry, position and size. PinnedIndex is the lowest entry a pending
// timer or a live delivered unit points to: the broker keeps the log from
// there (a timer far in the future keeps the log after its record).
//
// # Retries and dead letters
//
// SendBack{Now, Record, Retry, DLQ} redelivers a record into a group's
// retry or dead-letter queue (Record names the target queue): a retry due
// later becomes a pending timer whose RetryInfo (failed deliveries,
// origin topic ID, queue and offset) waits in retryMeta; a dead letter,
// or a retry due now, gets its unit at once. The delivered unit's
// RetryInfo is kept in the queue's delivered table next to the record's
// entry, and Units returns it in Unit.Retry. LastRetry finds a record's
// latest delivery in a retry queue, for callers that know only the
// record (RocketMQ's send-back names its physical offset). Snapshots
// carry the metadata of pending retries and of delivered units; rebuild
// replays SendBack like DeliverTimers.
//
// # Pop consumption
//
// A pop (simple) consumer group shares every queue: Pop{Now, Group,
// Invisible, Max, MaxReconsume, Tags, FromFirst, Queues} takes, per
// named queue, first the group's expired unacked items (redeliveries,
// reconsume count + 1), then new units from the group's committed
// offset, which is its pop cursor. Each taken unit becomes an in-flight
// item {record, pop time = Now, deadline = Now + Invisible, reconsume,
// max}. PopAck and PopChangeInvisible name items by (topic ID, queue,
// offset, pop time): a receipt handle; a changed item gets pop time Now,
// so older handles are superseded. An acked item stays as a tombstone
// until its deadline, so a repeated ack succeeds. Expiry is judged by
// each command's Now, the proposing leader's clock, never by a replica's
// clock, so replicas agree and a new leader continues with the same
// items; no redelivery copies the record or appends a unit. An item
// whose last allowed delivery expires is dead: Pop no longer takes it,
// an ack fails (PopExpired), DeadPops lists it, and the broker's revive
// service dead-letters it with SendBack{DLQ, Pop, PopGroup}, which
// appends the DLQ unit (whatever the item's state, so rebuild replays it
// unchanged) and drops the item. Unacked items pin their records
// (PinnedIndex). Per group queue the items live in a map by offset, the
// unacked ones in a deadline heap that knows each item's position, the
// tombstones in a second heap: receive, ack and change are O(log n).
// Snapshots pack the items (61 bytes each) per group queue.
//
// # Transactions
//
// A record whose properties hold TRAN_MSG=true is a half message:
// applying its batch gives it no unit (BatchResult offset OffsetHalf)
// but a pending half {record, target queue, store time, checks, last
// check}. EndTx{Now, Items} commits (a delivered unit pointing at the
// half's record, as for timers) or rolls back each listed half still
// pending, and skips the rest, so a repeated or late answer changes
// nothing. CheckTx{Now, Items} counts a check-back of each. ByBroker
// rollbacks (the check maximum passed) are counted in TxStats and the
// latest 64 kept for operators. Halves pin their records; rebuild
// replays the first commit of each half its scan saw stored. Snapshots
// pack the halves (48 bytes each) and carry the counters.
//
// # Message index
//
// Apply indexes every accepted message's ID and each of its keys (per
// topic) in Dir/index (index.go): fixed-size mapped hash files of 20-byte
// entries {hash, raft index, position, previous in the slot's chain},
// derived from the log alone, so every replica holds the same entries.
// Like the consume queues it is a cache: Sync fsyncs it and records in
// state.json what is durable; after a crash Restore re-indexes the log
// past that, and Apply skips entries already covered, so a replay adds
// nothing twice. TruncatePrefix retires files wholly below the log
// start. LookupID / LookupKey return candidates newest first (the
// broker reads each record to confirm). A replica that installed a
// snapshot without the log before it has no entries for that part.
// # Producer dedup
//
// A send retried after an indeterminate outcome (a timeout, a lost
// connection, a leader killed after replicating it) must be stored once.
// Only messages that ask for it are checked and remembered: those whose
// properties hold __IDEMPOTENT__=1 (rmq's ProducerConfig.Idempotent,
// every transactional half), or every message with an ID when SetDedup
// has All (the broker's dedup_all, for RocketMQ producers): the window
// over every message cost about 14 % of produce throughput, measured.
// Producers of both protocols send a message ID and keep it on every
// retry (rmq: 16 bytes; RocketMQ: UNIQ_KEY, 32 hex digits, decoded by the
// broker into 16 bytes), so the FSM keeps a window of the IDs it stored,
// as NATS JetStream does with Nats-Msg-Id (dedup.go). Kafka's idempotent
// producer (producer id, epoch, per-partition sequence) was not chosen:
// RocketMQ clients send no sequence, so it could not cover them; and its
// per-producer state needs an expiry guess as well.
//
// A message with a non-empty ID whose key (ID, topic ID) is in the window
// gets no unit and no timer: its BatchResult offset is the original's
// (OffsetDelayed for a delayed original, delivered or not) and
// BatchResult.Duplicates gives the original's queue, entry, position,
// store time and due time, so the sender gets the first send's answer.
// A copy within the same batch is found too. The key holds a 16-byte ID as
// is and any other length as its SHA-256 truncated to 16 bytes (a
// collision is as likely as one of random 128-bit IDs). The topic ID is in
// the key: a recreated topic or another topic never matches, a resend to
// another queue of the topic (a client may pick one on retry) does.
//
// The window is judged by batch store time only (the leader's clock, in
// the entry): it ends at the latest store time applied, which never moves
// back when a new leader's clock is behind, and an entry leaves it Window
// ms after its store time, or when Max newer ones joined (oldest first).
// Entries live in store order in a ring (56 bytes each) with an
// open-addressing index (8-byte slots, at most half of them live; an
// evicted entry's slot goes stale, so eviction costs no cache miss):
// about 76 heap bytes per entry, measured, so the default million costs
// ~76 MB on every replica, and a lookup about one cache miss. Window (ms, <= MaxDedupWindow) and Max (<= MaxDedupEntries)
// are replicated state, set by SetDedup (Window 0: off, also the initial
// state), which the broker proposes as a new leader when its own
// configuration differs. They are not Config: a replica that judged one
// entry by another window would give other offsets from then on, and a
// node restarted with changed flags replays the log exactly; turning dedup
// on at a log position also makes every replica start with the same empty
// window, whatever snapshot (from before dedup) each restored.
//
// A consume-queue rebuild (rebuild.go) must skip what Apply skipped, but
// the window that decided may be older than the retained log. So the FSM
// keeps the position (entry, record position) of every duplicate at or
// above the log start, TruncatePrefix drops older ones, and a rebuild
// skips those records and counts units from the log start on (units
// below it are below every queue's min). While 2^20 are kept a duplicate
// is stored instead (logged): the list is bounded too. A duplicate's
// record stays in the CommitLog; only the broker could keep it out, and it
// cannot see the committed entries not yet applied or its own batch.
//
// # Consume queues
//
// Dir/cq/<topicID>/<queueID>/<baseOffset %020d>.cq, UnitsPerFile units per
// file, preallocated (ftruncate) and mmapped (MAP_SHARED). A unit is 28 bytes:
//
//	+-----------------+---------+----------+-------------+---------------+
//	| u64 raft index  | u32 pos | u32 size | u32 tagHash | i64 storeTs ms|
//	+-----------------+---------+----------+-------------+---------------+
//
// Apply writes units without fsync; Sync (called periodically by the
// broker, and by every snapshot Persist) fsyncs dirty files and directories
// and finishes deferred deletions (files retired by TruncatePrefix or
// DeleteTopic are unlinked from the state at once but closed and removed by
// Sync).
//
// Mapped pages: a mapped page the process touched counts in its RSS until
// it is unmapped, so without help RSS grows by ~48 bytes per message (a
// 28-byte unit plus a 20-byte index entry) for as long as the files are
// retained. After fsyncing a file, Sync therefore drops its whole pages
// below the writer from the process with MADV_DONTNEED (release_linux.go;
// Linux only). The data stays in the page cache and the file, and a
// reader faults a page back in on its next access.
//
// A unit at offset o of topic ID T is a pure function of the log, so CQ
// files are a cache: stale ones can be validated or overwritten.
//
// # Snapshots
//
// Snapshot copies the small state: topics, the topic ID counter, each
// queue's min, next and creation index, consumer offsets and reset epochs,
// registered node addresses, queue locks, pending timers and delivered
// tables, pop items, half messages, the dedup settings, window and
// duplicate positions (entries packed oldest first, about 27 bytes each: a
// full default window adds ~27 MB to each snapshot; Snapshot only copies
// the ring, Persist packs it), applied index and log start. Fields added
// after the first release (reset epochs, nodes, locks, timers, delivered,
// pops, halves, dedup) are optional, so the version byte stays 1 and older
// snapshots restore.
//
// Persist syncs the CQ first, then writes a version byte and msgpack. Restore
// reads the whole state (at most MaxSnapshotSize) and decodes it, like every
// msgpack command body, through internal/msgpackguard, which refuses any
// declared length larger than the bytes present (msgpack preallocates what a
// header declares). It then discards everything, loads the state, opens
// each queue's files and checks the units at min and next-1. Missing or
// short queues (a new or wiped node) are rebuilt by scanning the retained raft log through Config.Log
// (LogReader): a message of entry i maps to queue (T, q) iff T's ID equals
// its TopicID, q < T's queue count and q was created before i; the last n
// found get offsets [next-n, next). See rebuild.go. Units at >= next are
// ignored and overwritten by re-applied entries.
//
// # Concurrency
//
// No goroutines. raft calls Apply, ApplyBatch, Snapshot and Restore from one
// goroutine. Queries (AppliedIndex, Topic, QueueRange, Units, OffsetForTime,
// ConsumerOffset, ...), Sync, Persist and Close are safe concurrently with
// them. One RWMutex guards state and the mapped units: Apply copies units
// into the maps and advances next under the write lock; readers copy units
// out under the read lock, so they only ever see complete units below next.
// Sync, Restore and Close first take syncMu (lock order: syncMu, then mu);
// Sync fsyncs without holding mu. Config.OnAppend runs after mu is released.
//
// A local I/O error while writing a unit does not change replicated state
// (next still advances); the queue is marked broken, Units and Sync report
// it, and a restart rebuilds it. A failed fsync (Sync, so also Persist)
// is sticky: every later Sync returns it (ErrSyncFailed, Err), because the
// kernel may have dropped the pages and a retried fsync would succeed
// without them; the broker stops the node, and the restart re-applies the
// log after the last good snapshot (fault_on.go: in the rmqfault build,
// fsync-on=fsm delays or fails these fsyncs; see internal/fault). A store
// into a mapped hole on a full disk would raise SIGBUS (as with
// RocketMQ's MappedFile), so the blocks of
// consume-queue and index files are reserved with fallocate 16 KiB ahead of
// the writer (reserve.go): a full disk is then an ENOSPC error that breaks
// the queue (or the index) instead of killing the process.
package fsm
