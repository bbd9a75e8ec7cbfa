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
// Sends join the batcher's queue in the order they get there. A client
// pipelines several SendRequests on one connection (client
// MaxInflightRequests) and the wire server runs each on its own goroutine,
// so the wire adapter passes the request's wire.Order as SendOptions.Order:
// SendWith decodes and validates concurrently, then waits for the sends
// that arrived before it on the connection to be queued before it queues
// its own. The remoting adapter does the same for SEND_MESSAGE(_V2) and
// SEND_BATCH_MESSAGE (compat.ServerConfig.InOrder), as the Java broker's
// single send thread does for a RocketMQ producer's async sends.
//
// New opens raftlog.Store (the raft.LogStore), raftlog.SnapshotStore (which
// ships the retained log to new followers inside snapshots), raft-boltdb
// for term and vote, and the fsm; it builds a TCP transport (TLS with
// mutual authentication when Config.RaftTLS is set) and starts
// raft (never with raft.BootstrapCluster: see below). Run(ctx) then
// starts the node's loops and listeners (run.go).
//
// # Bootstrap and rejoin
//
// Raft's safety needs every server to vote at most once per term, which
// it keeps in raft-stable.db. A node whose data directory was replaced has
// lost that record, so it must neither bootstrap again nor vote in a term
// it may have voted in. A node that starts without Raft state therefore:
//
//  1. writes vote-guard.json {pending} (fsynced) and starts Raft behind a
//     vote guard (rejoin.go) that refuses every vote while pending;
//  2. asks every other peer in Peers for its current term with a term-0
//     pre-vote request, retrying until all have answered (the missing ones
//     are logged every 5s). A pre-vote changes nothing on the receiver,
//     and Raft answers it in every state, configured or not, with its
//     current term; peers with a leader log that they rejected it. An RPC
//     a peer sends this node meanwhile (appends, heartbeats, snapshots,
//     votes; not another guarded node's term-0 probe) counts as that
//     peer's answer with the term it carries: a follower of a leader that
//     then dies need not wait for that leader to answer a probe;
//  3. floor = the highest answer, recorded in vote-guard.json. If every
//     answer was 0 the group is brand new, and a node with Bootstrap
//     writes the full voter set (every node of a new group does the same
//     with identical Peers, the usual hashicorp pattern). Any answer > 0
//     means the group exists: no bootstrap, a warning, and the node
//     rejoins as a replica; the leader ships it the log in a snapshot;
//  4. the guard refuses votes in terms <= floor, and also this node's own
//     candidacy there (its self-vote is a vote too): its outgoing pre-vote and vote requests (answered
//     with the floor as newer term, so Raft moves past it) and leadership
//     transfers (TimeoutNow) while Raft's term + 1 <= floor. Appends,
//     snapshots and heartbeats pass, so the node replicates and counts
//     towards commit at once. Once Raft's own persisted term exceeds the
//     floor, Raft keeps one vote per term by itself: the file is removed
//     and the guard passes everything. A node with state and no guard
//     file uses the raw transport.
//
// Why the floor bounds past votes: in its earlier life the node voted in
// some terms up to T. The candidate it voted for had persisted T as its
// term first, as has every node that took anything from a leader of T, so
// any peer that still holds a trace of term T answers >= T; if none does, a
// second vote in T contradicts nothing that still exists. Hence all peers,
// not a majority, must answer: a permanently dead peer blocks a wiped
// node's votes until it is removed from Peers (after "rmq node remove",
// restart a wiped node with --peers listing the current members, "rmq
// node list"), and blocks the bootstrap of a brand-new
// group until every node has started once. A node restarted again before
// the probe finished finds {pending} and probes again; Bootstrap with no
// Peers is refused by Validate, and without Peers the guard cannot bound
// anything (it warns and votes). Raft state arriving from a leader rules
// out bootstrapping (raft refuses then) and answers for that leader only:
// the term a peer states at any time after this node lost its state is at
// least every term this node can have voted for it in, as with a probe.
//
// A new server identity for the wiped node was the alternative; it was not
// chosen because with two of three nodes wiped the old IDs still form a
// majority of the configuration, which then needs membership tooling to
// recover, whereas with the guard the survivor wins votes at floor+1 and
// rebuilds both. Entries that only the two wiped nodes held are lost;
// nothing can recover them. Bootstrap is therefore safe to pass on every
// start (docker-compose.yml and rmq dev do).
//
// # Membership
//
// The group's voters and non-voters are Raft's configuration, which Raft
// stores as configuration entries in the log (the CommitLog) and in
// snapshots: every replica and every restart sees the same membership, and
// Peers matters only for bootstrap and the vote guard. The leader changes
// it (membership.go), one change at a time, each committed before the call
// returns:
//
//   - AddNode: AddNonvoter. The new node (Config.Join: never bootstraps,
//     Peers are the current members, whose terms its vote guard reads)
//     receives the log from the leader: from index 1 while the leader still
//     holds it, else a snapshot with the retained log (raftlog's
//     SnapshotStore), so its consume queues and index are rebuilt from the
//     same entries at the same offsets. A non-voter neither votes nor
//     counts for commit, so a slow catch-up never stalls writes.
//   - PromoteNode: AddVoter for a member that is a non-voter. The caller
//     (client.Admin.WaitCaughtUp, "rmq node add") waits until the node has
//     applied the history from before it joined and is within a few
//     entries; Raft has no staging, the node counts for commit at once.
//   - RemoveNode: RemoveServer. A leader asked to remove itself transfers
//     leadership to the most caught-up voter first and answers
//     *NotLeaderError naming the new leader, which the client asks again;
//     so a removal pauses writes only for a transfer. The last voter stays.
//
// Every node's NodeStatus (registration, node status) carries its
// suffrage in its latest configuration, which cluster status shows.
//
// # Preferred leader
//
// With Config.PreferredLeader set, the preferred-leader leader service
// (preferred.go) hands leadership to that node once it is a voter,
// answers a status request as a follower of this leader in this term, and
// has applied to within PreferredMaxLag entries of the leader's log, on
// two checks in a row (PreferredCheckInterval). It proposes nothing: it
// calls LeadershipTransferToServer, during which Raft refuses writes
// (clients retry at the new leader). A failed hand-over backs off
// exponentially (to 64 intervals); a node that regains leadership within
// a minute of handing it over waits longer each time (4, 8, ... up to 300
// intervals) before trying again, so a preferred node that cannot hold
// leadership does not make it flap. The preferred node itself never hands
// over.
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
// a silent leader (a dead host, a partition, a paused process) after
// 400-800ms and wins pre-vote and vote within a round trip, then the
// Barrier takes one more commit. A leader whose process died on a live
// host is found sooner (crashwatch.go, on unless DisableCrashDetection):
// its Raft connections end, a probe of its Raft port is refused or reset,
// and the first follower in line (by ID) asks its own Raft for TimeoutNow,
// the leadership-transfer request, so it stands at once without pre-vote
// and the other follower grants the vote although it still remembers the
// old leader; the next in line stands 100ms later if the first could not
// win. Writes resumed 20-50ms after a SIGKILL (135ms at worst over 50
// measured kills) instead of 0.5-1.1s. Close transfers leadership first (a
// few milliseconds of write pause) and takes a snapshot, so the next start
// restores it instead of replaying the log.
//
// A restarted node reports (Status, NameServer registration) the applied
// index of the snapshot it restored (0 without one: after a crash before
// any snapshot the state machine really is empty until the log is
// replayed) and CommitUnknown until it learns the commit index: raft's is
// 0 until the leader's first AppendEntries, which raft's replication
// back-off can delay by seconds after a long outage (leader heartbeats do
// not carry it). Until it has learned the commit index and applied up to
// it, the registration loop re-registers on each of those steps (polled
// every 20ms) instead of a RegisterInterval later.
//
// # Retention
//
// The leader-only retention service proposes fsm.TruncatePrefix{UpTo,
// Reason} every Retention.CheckInterval (planRetention, rules in
// RetentionConfig order: age, MaxDiskBytes budget, ForceDiskRatio last
// resort, over sealed segments oldest first); every replica applies it at
// the same log position, moving queue minimums identically. The budget
// and ratio rules free in one step what the worst node needs; segments
// already released but not yet purged count as freed. Disks per node:
// the leader measures its own (statfs plus the bytes allocated under
// DataDir, cached a few seconds) and reads every other node's from the
// NodeStatus it heartbeats to the NameServer (DiskUsed, DiskTotal,
// DataBytes; reports older than three heartbeats are ignored). A node no
// NameServer heard from lately is not considered: without NameServers only
// the leader's disk counts. Each node's maintenance loop then takes a
// snapshot if needed and calls raftlog.Store.Purge, which never passes
// raft's snapshot-allowed prefix or a pinned reader, so raft never misses
// an entry it expects; it logs each purge at warn with the segments,
// bytes, entry range and the TruncatePrefix reason, and keeps it as
// Status().LastPurge (node status, in memory only).
//
// # Disk limits
//
// The leader-only disk guard (diskguard.go) judges every
// DiskLimit.CheckInterval the disks groupDisks returns, the same readings
// retention uses (so every replica's disk counts, as far as the
// NameServers heard from it): at DiskLimit.HighWater fullness on any node
// (or, with Retention.MaxDiskBytes, when the rmq files retention cannot
// release, all but sealed segments, reach that fraction of the budget) it
// sets the node's verdict, and SendWith and CreateTopic answer
// *DiskFullError (ErrDiskFull; wire.CodeDiskFull, remoting
// SERVICE_NOT_AVAILABLE) after checkWritable; the verdict clears once
// every node is at or below LowWater (and within the budget). Status
// carries it (DiskFull, DiskFullSince). The file-system part of the
// node's own reading is re-read every check (one statfs); the walk of
// DataDir stays cached a few seconds.
//
// If a disk fills anyway, raftlog fails stop: raft answers the pending
// sends with the store's error (ErrIndeterminate, never an
// acknowledgement) and a leader steps down; the maintenance loop sees
// Store.Err and Run returns it (errStoreFailed), so rmq broker exits
// instead of campaigning and stepping down forever. A restart re-reads the
// log (torn tail cut). A failed fsync of the fsm's consume queues or index
// stops the node the same way (fsm.Err: the fsm refuses every later sync,
// so no snapshot could be taken); the restart re-applies the log after the
// last good snapshot. The fsm reserves consume-queue and index blocks
// before storing into their mappings, so ENOSPC marks a queue broken
// (rebuilt from the log on restart) instead of raising SIGBUS.
//
// Built with -tags rmqfault, a broker injects storage faults that its
// environment or control file (RMQ_FAULT_FILE) asks for: slow or failing
// fsyncs and a SIGKILL inside a segment roll, purge, snapshot or install
// (raftlog's doc.go, internal/fault; e2e/storage_fault_test.go drives it).
// The default build has none of it.
//
// # Consumer groups and queue locks
//
// Members (heartbeats, mode, subscriptions) are leader-local soft state
// (groups.go, expiring on Config.Now): a new leader starts empty and members re-register within a
// heartbeat. Queue locks are replicated (locks.go): a lock request from a
// live member becomes one fsm.LockQueues entry stamped with the leader's
// clock (Config.Now) and LockLease (none when no requested queue is grantable);
// Apply grants each queue that is free, already the requester's, or whose
// lease ended at the stamped time. Unlock and LeaveGroup propose
// fsm.UnlockQueues. The leader-only lock janitor releases the locks of
// members that are not live here, but only wire.LockTrust (30s) after
// their last grant. Because the table is in the fsm (and its snapshots),
// a new leader past its Barrier refuses every queue an earlier leader
// leased, while the old owner still trusts its lock. This differs from
// RocketMQ, whose RebalanceLockManager is local to the master.
//
// Timing contract: a client trusts a lock for wire.LockTrust (30s) from
// when it sent the request, and renews every 20s; the broker lease is
// LockLease (60s) from the leader's clock when it proposed the grant,
// which is after the send. Leases granted by one leader are judged by the
// next leader's clock, so skew between the broker nodes' wall clocks eats
// into the 30s margin: the design assumes the nodes' clocks (NTP) agree to
// well within LockLease - LockTrust. Client clocks do not matter (clients
// measure durations only).
//
// # Layout: one core, protocols as adapters
//
// Every operation a client can ask for is a method of Node with the
// broker's own types (the list: node_api.go); protocol adapters decode,
// call and encode. No wire type appears in the core files.
//
//	node_api.go         the operations, one interface, each line naming its file
//	send.go             Send/SendWith: the one validation of the write path, auto-create
//	batcher.go          group commit: batcher and completer goroutines
//	apply.go            apply: the ctx -> raft.Apply bridge; raft/fsm error mapping
//	pull.go             Read (pull, long poll, tag filter), MessageAt
//	topics.go           create/update/delete/list topics, TopicStatus, name rules
//	offsets.go          commit/query/search/reset consumer offsets
//	groups.go           Heartbeat, ListGroups, GroupMembers, DescribeGroup; members
//	locks.go            replicated queue locks; the lock janitor (leader service)
//	delay.go            delay levels and timer properties; the timer scheduler (leader service)
//	dedup.go            producer dedup: a new leader proposes its window settings
//	retry.go            SendBack (retry queue, then DLQ), DeadLetters, ResendDeadLetters
//	pop.go              pop consumption: Receive, Ack, ChangeInvisible, receipt handles; pop revive (leader service)
//	pop_wire.go         rmq wire handlers of pop consumption
//	remoting_pop.go     RocketMQ 5 pop over remoting: POP_MESSAGE, (BATCH_)ACK_MESSAGE, CHANGE_MESSAGE_INVISIBLETIME
//	tx.go               transactions: half messages, EndTransaction, Transactions; check-backs (leader service)
//	tx_wire.go          rmq wire handlers of transactions; the rmq check-back call
//	remoting_tx.go      RocketMQ END_TRANSACTION and CHECK_TRANSACTION_STATE
//	producers.go        rmq producers' connections by producer group and client id (ProducerHello)
//	filter.go           tag filters and SQL92 filters (internal/sql92) of pulls and receives
//	query.go            message queries: by id and key (the fsm's index), by store time (consume queues)
//	query_wire.go, remoting_query.go   the queries over rmq's protocol and RocketMQ's QUERY_MESSAGE
//	status.go           Status
//	leader.go           leadership watcher, leader session, writability, transfer
//	leader_services.go  the list of leader-only services
//	run.go              Run; the list of the node's loops and of its listeners
//	node.go             New (storage, Raft, bound listeners), Close/Shutdown/Abort
//	retention.go        retention planning (leader service), disk use, purge loop
//	diskguard.go        disk high/low-water marks: refuses sends while a node's disk is full (leader service)
//	rejoin.go           vote guard for a node that lost its Raft state
//	crashwatch.go       a follower stands for election at once when its leader's process died
//	incident.go         Config.OnIncident: this node became a candidate or lost leadership
//	membership.go       Members, AddNode, PromoteNode, RemoveNode: the Raft configuration
//	preferred.go        the preferred-leader service (leader service; proposes nothing)
//	wire_adapter.go     rmq wire protocol adapter
//	remoting_adapter.go RocketMQ remoting adapter: the client port's mux, dispatch, error codes
//	remoting_messages.go  remoting send/pull/offsets: RocketMQ messages <-> fsm.Message
//	remoting_clients.go   RocketMQ clients: heartbeats, subscriptions, notifications, locks
//	reply.go            request-reply: PushReply to a requester's connection, CLUSTER on requests
//	remoting_reply.go   request-reply over remoting: SEND_REPLY_MESSAGE(_V2), PUSH_REPLY_MESSAGE_TO_CLIENT
//	register.go, namesrv_client.go   NameServer registration and queries (wire)
//	acl.go              access control (Config.ACLFile, package acl): both protocols' checks, the reload loop
//
// Access control, when Config.ACLFile is set: the rmq adapter
// authenticates each request before decoding it (acl.AuthenticateWire:
// white lists, access key, HMAC-SHA256 signature, time window) and
// carries the account in the request's ctx; decodeThen authorises the
// decoded request on the topics and groups it names (authorizeWire), and
// a send's topics are checked per message through SendOptions.Allow, so
// one refused topic fails only its own messages of a coalesced send. The
// remoting adapter checks signature and resources from the header (and
// the heartbeat, lock and batch-ack bodies) before dispatch. Refusals are
// wire.CodeAccessDenied or remoting NO_PERMISSION with the acl message.
// With ACLFile empty none of this runs (one nil check per request).
//
//	raft_tls.go         TLS: the Raft stream layer over TLS, wrapTLS for listeners, TLS config checks
//	metrics.go          Prometheus: counters on the request paths, a scrape-time collector, /metrics
//
// Both protocols share the client port: compat.Mux reads the first bytes
// of each connection and hands it to the rmq or the remoting adapter
// (compat/doc.go has the rule and the table of RocketMQ features served).
// With Config.ClientTLS the port is wrapped by wrapTLS (internal/tlsconf):
// each connection's handshake runs on its first read, in the Mux's
// per-connection sniffing goroutine, so the Mux sniffs decrypted bytes and
// a slow handshake blocks no other client. Any listener entry (run.go) with
// tls set is wrapped the same way (HTTP listeners: Config.HTTPTLS). With
// Config.RaftTLS the Raft transport's stream layer is TLS at both ends:
// each side requires the other's certificate and verifies it against the
// group's CA, so a node certified by another CA is refused at the
// handshake and can neither vote, nor replicate, nor answer the term
// probes of a rejoining node. NameServer dials use Config.NameServerTLS.
// The remoting adapter maps RocketMQ's ids onto rmq's: a group is a
// RocketMQ broker (brokerName = Group), a message's "physical offset" is
// its Raft index << 28 | its byte position in the entry (the same on
// every replica, so offset message ids survive failover), and a RocketMQ
// consumer is a group member with a 120 s TTL that every node records
// (its clients heartbeat all nodes every 30 s), so a new leader knows the
// members at once.
//
// Delayed messages (delay.go): the leader resolves a send's DELAY level or
// TIMER_* property into an absolute TIMER_DELIVER_MS by Config.Now; the
// fsm keeps a replicated timer pointing at the record; the "timers" leader
// service lists due timers in DeliverTimers every TimerPoll, one proposal
// at a time; a new leader, past its Barrier, continues from the timers the
// fsm holds, and a listing repeated across a leader change delivers once.
// The purge keeps the log from fsm.PinnedIndex.
//
// Retries (retry.go): SendBack finds the failed delivery's record (by
// queue and offset, or by position for RocketMQ clients, whose count then
// comes from the record's latest retry delivery), chooses the backoff
// (delay level 3 + earlier failures) or, past MaxReconsume, the group's
// dead-letter queue (created write-only), and proposes fsm.SendBack; the
// timers service delivers a retry when due. A new leader continues from
// the replicated timers and metadata. Dead letters are read and resent by
// operators (DeadLetters, ResendDeadLetters: through the retry queue).
//
// Pop consumption (pop.go): Receive proposes fsm.Pop with the leader's
// clock, after checking (fsm.PopAvailable) that something is there;
// otherwise it long-polls on the topic's append notifications until the
// next in-flight deadline or its wait ends. The messages are read from
// the records the applied Pop names. Ack and ChangeInvisible propose
// PopAck and PopChangeInvisible. A receipt handle is RocketMQ's POP_CK
// text ("ck popTime invisible reviveQid retryFlag broker queue offset",
// plus the topic for rmq's clients), so one parser serves both
// protocols. The "pop-revive" leader service dead-letters dead items
// (fsm.DeadPops) one SendBack at a time. Unlike RocketMQ there is no
// %RETRY%group_topic: an expired message is received again from its own
// queue offset, and nothing is written for it.
//
// Transactions (tx.go): a half message (TRAN_MSG=true, PGROUP) is an
// ordinary send the fsm keeps invisible; EndTransaction proposes
// fsm.EndTx (commit: a unit pointing at the half's record; rollback:
// forgotten; a half no longer pending: nothing). The "tx-check" leader
// service proposes CheckTx for halves open past TransactionTimeout (and
// then every TransactionCheckInterval), and only then asks a producer of
// the group: rmq producers by a server-initiated wire.CodeCheckTx call
// on a connection they said hello on (producers.go), RocketMQ producers
// by a one-way CHECK_TRANSACTION_STATE (their answer is an
// END_TRANSACTION). Past TransactionCheckMax checks the service rolls
// the half back (EndTx ByBroker), which the fsm counts and remembers.
// The counts are replicated, so a new leader neither re-asks early nor
// resets the maximum.
//
// Filters (filter.go): a tag filter skips units by the tag hash in the
// consume queue, then checks the tag string; a SQL92 filter (RocketMQ's
// grammar, internal/sql92) must read every record and evaluates the
// expression over its properties and TAGS. Either travels with each pull
// or receive, so filtering keeps no per-group state and a new leader
// filters alike at once (RocketMQ keeps SQL subscriptions in the
// broker's consumer manager instead). A pop receive takes units by tag
// hash only; records the SQL92 expression rejects are acked at once.
//
// Queries (query.go): MessagesByID and MessagesByKey read the candidates
// of the fsm's message index and keep the records that really carry the
// id or key (hashes collide); MessagesByTime reads each queue between the
// offsets its store times bound. Any replica answers from its own state.
// Producer dedup (dedup.go; the fsm's "Producer dedup" has the window):
// a message with an ID (the rmq client always sets one and keeps it on
// every retry, including a SendAsync that falls back to the slow path,
// which keeps its queue; a RocketMQ UNIQ_KEY of 32 hex digits is decoded
// into one) that the group stored on its topic within the window is not
// stored again, and SendWith answers it as it answered the original:
// Duplicate set, the original's queue, offset (or due time), entry,
// position and store time, hence for remoting the same msgId, queueId and
// queueOffset (a batch answers its first message's, as always). The check
// is the fsm's, at apply, not the leader's before proposing: only apply
// sees the entries an earlier leader committed that are not yet applied,
// and earlier copies in the same entry; the price is that a duplicate's
// record stays in the CommitLog, with no unit. DedupWindow and
// DedupMaxEntries are group state: after its Barrier and before it
// serves, a leader proposes fsm.SetDedup when the group's differ from its
// own (so during a rolling change the current leader's apply). On by
// default (the measured cost is in BENCHMARKS.md). Not covered: a retry
// to another group (RocketMQ clients may switch brokers on retry), a retry
// after the window (2 min, or fewer at high rates: 1M IDs last 20 s at 50k
// msgs/s), an application sending the message again as a new one, and
// messages without an ID.
//
// Time: every stamp and judgement of time goes through Config.Now (store
// time, topic creation, lock grants and leases, member expiry, retention
// age, purge records), so schedulers can be tested with a settable clock;
// how often loops run, Raft's timeouts and context deadlines stay real.
//
// # Goroutines and locks
//
// New opens the stores, binds the listeners and starts Raft; Run starts
// the loops listed in run.go, all stopped by Close/Shutdown/Abort through
// stopCh and waited for with wg: the batcher (sole owner of the
// BatchEncoder), the completer (resolves proposed entries in order), the
// leadership watcher, the maintenance loop, the registration loop (with
// NameServers), the access-control reload loop (with ACLFile) and the rejoin prober (on a node with a vote guard; it ends
// once the guard is off). Run also starts one goroutine per listener (the
// client port, whose mux and two protocol servers are three goroutines
// that end together; the metrics listener, whose HTTP server's handler
// goroutines it waits for), each serving until the node stops, and
// returns when its ctx is done (or the CommitLog failed, seen by the
// maintenance loop); the node serves on until Close. runMu
// orders Run's start against shutdown, so no goroutine starts after
// shutdown began. The leadership watcher starts one leaderSession
// goroutine per term of leadership, cancelled when leadership ends: the
// session passes the Barrier, then runs every leader service of
// leader_services.go in its own goroutine with the session's context, and
// ends when all have returned. The registration loop has one goroutine per
// NameServer so that one that does not answer delays no other
// (register.go). apply and transfer start one short goroutine per call
// that ends when raft resolves the future (on commit, loss of leadership
// or shutdown; raft v1.7.3 can leave an entry queued for its FSM at
// shutdown unanswered, so the completer and the leader's Barrier wait
// through await, which gives up once raft.Shutdown returned). The vote guard owns one
// goroutine that moves RPCs from the transport to Raft; it stops when Raft
// shuts down or closeStores closes the transport. leaderMu orders setting serving
// against ending a session; it is never held with any other lock. The
// notifier's mutex, the vote guard's and the disk cache's (held while
// measuring DataDir) are leaf locks. The requester registries (rmq
// producers.go, RocketMQ remoting_reply.go) watch each registered
// connection with a goroutine that ends when the connection does; their
// mutexes are leaf locks too, and a reply push holds none of them.
//
// # Memory
//
// What a node holds, at the defaults, and what bounds it:
//
//	CommitLog entry cache   LogCacheBytes (32 MiB) and 256 entries: the
//	                        newest entries, read back by Raft to replicate
//	                        and to apply (raftlog, Config.CacheBytes)
//	proposed entries        leader: up to 64 (maxInflightBatches) of up to
//	                        MaxBatchBytes each, 16 MiB, mostly the same
//	                        bytes as the cache's newest entries
//	queued sends            up to 4096 requests (sendQueueLen) waiting for
//	                        the batcher, each at most MaxFrame
//	AppendEntries           follower: one RPC decoded at a time, up to
//	                        MaxAppendEntries x MaxBatchBytes (16 MiB)
//	message index           8 MiB of slot table per index file (one per
//	                        4 Mi retained messages; fsm/index.go)
//	dedup window            ~76 B per remembered ID, at most
//	                        DedupMaxEntries (76 MB when full)
//	mapped files            consume-queue units and index entries, 48 B a
//	                        message: fsm.Sync (every MaintenanceInterval)
//	                        unmaps the synced pages, so they stay in the
//	                        page cache, not in the process's RSS
//
// The Go heap grows to about twice its live size (GOGC=100) before a
// collection. rmq broker's memory_limit (--memory-limit) feeds
// debug.SetMemoryLimit, a soft limit: the collector runs earlier as the
// process nears it, and never fails an allocation, so a limit below the
// live heap costs CPU, not errors. The package itself never touches
// process-wide GC settings. Measured under rmq bench produce with 4
// clients: ~50 MB live heap and ~125 MiB RSS per broker, flat across runs
// (BENCHMARKS.md, "Memory").
//
// # Metrics
//
// With Config.MetricsListen set, the node has its own prometheus.Registry
// (never the global one) served on /metrics by the "metrics" listener;
// without it n.metrics is nil and nothing is counted (metrics.go). Sends,
// pulls, receives, send-backs to the DLQ and every request of both
// protocols update cached label children once per call; raftlog reports
// each fsync through Config.OnSync, and a raft observer whose filter
// counts leader changes on raft's goroutine (it keeps no channel). The
// rest is computed when scraped, by nodeCollector on the HTTP handler's
// goroutine, from raft's getters, the fsm's read methods, DescribeGroup
// and the disk cache; the consumer lag series come from the serving
// leader only. nodeMetrics' two mutexes are leaf locks; a scrape holds
// none of them while it reads node state.
package broker
