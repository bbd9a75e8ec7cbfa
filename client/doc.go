// Package client is rmq's Go client: Producer, Consumer and Admin over the
// wire protocol (package wire). It does not run servers.
//
// # Producing
//
//	p, err := client.NewProducer(client.ProducerConfig{NameServers: []string{"127.0.0.1:9876"}})
//	defer p.Close(ctx)
//	res, err := p.Send(ctx, &client.Message{Topic: "orders", Tags: "paid", Body: b, ShardingKey: orderID})
//
// Send returns after a quorum of the topic's broker group committed the
// message. The SendTimeout (3s) is the budget of the whole call: leader
// failover inside it is invisible. While no leader is reachable (connection
// refused, NotLeader without a hint, NameServer still naming a dead leader)
// the client probes the group's other nodes, follows NotLeader hints and
// re-reads the NameServer with a 10-50ms backoff; only attempts that may
// have reached a leader (timeout, lost connection, indeterminate) count
// against Retries. Retrying those can store a duplicate with the same MsgID:
// delivery is at least once. A leader that stops answering without closing
// its connections (GC pause, VM freeze, black-holed link) costs about as
// much as a crash: once a request has gone unanswered for AttemptTimeout
// (1s) the client asks the NameServer again and, if a newer leader is
// named, sends the same request there while the first stays pending; the
// first answer wins and is reported once. If the same node is still named
// it keeps waiting, asking again every tenth of AttemptTimeout. A frozen
// leader cannot commit on its own, but a resend may store a copy it had
// already replicated: ProducerStats.Resends counts such attempts. Consumer
// heartbeats, locks and offset commits do the same, and a pull is dropped
// once another node is known to lead. SendAsync/Flush, SendOneway (no answer, no
// retry) and SendBatch (one topic, one queue, one request) complete the set.
// Concurrent sends to one leader are coalesced: a goroutine per leader
// address takes whatever queued while MaxInflightRequests (4) earlier
// SendRequests were awaiting their answers (no linger), so a lone Send
// costs one round trip plus the commit. The broker stores a connection's
// requests in the order they were sent and the producer hands out their
// outcomes in that order, so a queue's messages keep their send order
// unless a request fails (its messages are then retried behind later ones,
// as in Kafka without idempotence).
// The broker checks each message of a request on its own: a message for a
// deleted or read-only topic, or over the broker's size limit, fails its
// own Send or SendAsync callback with a non-retriable *Error while the
// other messages of the request are stored.
//
// # Request-reply
//
//	reply, err := p.Request(ctx, &client.Message{Topic: "quotes", Body: q}) // waits until ctx's deadline (3s if none)
//	// the responder, in its push handler:
//	err = c.Reply(ctx, request, answer)
//
// RocketMQ 4.6's request-reply (request.go): Request stores an ordinary
// message carrying CORRELATION_ID, REPLY_TO_CLIENT (ProducerConfig.ClientID)
// and TTL, and waits; Reply sends the answer to the broker group that
// stored the request, whose node pushes it over the requester's own
// connection (wire.CodePushReply). No reply in time is an error matching
// ErrNoReply and context.DeadlineExceeded; a late reply is dropped.
// Replies are not stored. SimpleConsumer and Producer have Reply too.
// Either side may be a RocketMQ client.
//
// # Admin
//
// CreateTopic, UpdateTopic, DeleteTopic, ListTopics, TopicStatus, group
// and cluster calls. UpdateTopic changes only the fields its TopicUpdate
// sets (nil pointers keep the topic's value). Queues can be added, never
// removed: RocketMQ shrinks by lowering write then read queue counts, but
// an rmq topic has one count and a dropped queue would orphan its
// messages and offsets, so a smaller count is refused. LookupGroup is
// DescribeGroup that answers ErrGroupNotFound for a group no broker group
// knows (rmq group describe and the HTTP admin API use it).
//
// Membership (admin_members.go): Members, AddNode (a non-voter),
// WaitCaughtUp (from the NameServer's view of every node, refreshed by
// each registration), PromoteNode and RemoveNode (the leader hands over
// first if it is the one removed) change a broker group's Raft
// configuration through its leader; each change is idempotent.
//
// # Consuming: push
//
//	c, err := client.NewConsumer(client.ConsumerConfig{NameServers: ns, Group: "billing",
//		Subscriptions: map[string]string{"orders": "paid || refunded"}})
//	err = c.Start(ctx, func(ctx context.Context, msgs []*client.MessageExt) client.ConsumeResult {
//		return client.ConsumeSuccess // or ConsumeRetryLater: redelivered later, see below
//	})
//	defer c.Close(ctx)
//
// # Retries and dead letters
//
// A Clustering consumer subscribes to its group's retry topic
// (%RETRY%group) by itself. ConsumeRetryLater sends each message of the
// batch back to its broker (wire.CodeSendBack), which redelivers it
// through the retry queue after a backoff that grows with each failure
// (RocketMQ's: delay levels 3, 4, ...: 10s, 30s, 1m, ... 2h) and, after
// MaxReconsume (16) failures, moves it to the group's dead-letter queue
// (%DLQ%group; Admin.DeadLetters, Admin.ResendDeadLetters, rmq dlq). The
// queue moves on meanwhile. A redelivery has Topic set to the original
// topic, Queue to the retry queue (for its offset), ReconsumeTimes to
// the failures so far and RetryOf to where it was first stored. The
// broker redelivers the stored record: nothing is written again. When
// the broker cannot take a message back it is retried in place after
// RetryBackoff. Orderly groups retry in place (their order would break
// otherwise), up to MaxReconsume, then dead-letter; Broadcasting groups
// do not retry, as in RocketMQ (the batch is dropped, logged and counted
// in Stats().Dropped). LocalRetry restores in-place retries for a
// Clustering group. A handler call that runs past ConsumeTimeout (15m)
// has its context cancelled and counts as failed, whatever it returns
// later (RocketMQ's consumeTimeout).
//
// # Consuming: pop (SimpleConsumer)
//
//	sc, err := client.NewSimpleConsumer(client.SimpleConsumerConfig{NameServers: ns, Group: "workers",
//		Subscriptions: map[string]string{"jobs": "*"}, InvisibleDuration: 30 * time.Second})
//	for {
//		msgs, err := sc.Receive(ctx, 32, 0) // long-polls up to AwaitDuration
//		...
//		for _, m := range msgs {
//			process(m)
//			err = sc.Ack(ctx, m.Handle) // or AckAll; ChangeInvisibleDuration for more time
//		}
//	}
//
// RocketMQ 5's SimpleConsumer: members share every queue (no lock, no
// rebalance, no heartbeat); a received message is invisible to the
// group for its invisible duration and comes back, to any member, with
// ReconsumeTimes one higher if not acked by then; after MaxReconsume
// such expiries it is dead-lettered. Receive asks one broker group of
// one subscribed topic per call, in turn, at its leader (CodeReceive),
// retried once across a failover (messages a lost answer took come back
// after their invisible time). Acks are idempotent per handle, so AckAll
// resends an ack whose answer was lost; a handle that no longer names
// the message fails with ErrReceiptHandle (it was received again, its
// invisible time changed, or it was dead-lettered). The receipt handle
// is text, usable by any process of the group until its deadline.
//
// # Exactly-once publish
//
// A send that is retried after an indeterminate outcome may be stored
// twice (at least once). ProducerConfig.Idempotent marks each message
// (property __IDEMPOTENT__) so the broker group's replicated dedup window
// stores it once and answers a resend like the first send
// (ProducerStats.Duplicates counts those answers). Off by default: the
// window costs produce throughput; transactional halves always use it.
//
// # Transactions
//
//	p, _ := client.NewProducer(client.ProducerConfig{NameServers: ns, Group: "shop",
//		TransactionChecker: func(ctx context.Context, m *client.MessageExt) client.TxState {
//			return lookUpOrder(m) // what the local database says
//		}})
//	res, state, err := p.SendInTransaction(ctx, msg, func(ctx context.Context, m *client.Message) client.TxState {
//		return saveOrder(m) // TxCommit, TxRollback or TxUnknown
//	})
//
// The half message is stored once and invisible; the local transaction's
// answer commits or rolls it back (EndTransaction, idempotent). Halves
// left open (TxUnknown, a crash, a lost end) are checked back by the
// broker over the producer's own connection (wire.CodeCheckTx); a
// producer with a TransactionChecker says hello (wire.CodeProducerHello)
// on every new connection and to every broker group leader each second,
// so a new leader can reach it. Admin.Transactions lists open halves.
//
// # Filters
//
// ConsumerConfig.Subscriptions filters by tag; SQLSubscriptions by a
// RocketMQ SQL92 expression over properties and TAGS ("region = 'eu' AND
// amount > 100"), which the broker evaluates. A missing property makes a
// comparison unknown, so the message does not match; a bad expression
// fails NewConsumer with its position.
//
// # Queries and traces
//
// Admin.MessageByID, MessagesByKey and MessagesByTime find stored
// messages (the broker's message index, or store times). A Producer or
// Consumer created with Trace records its sends, deliveries and consume
// results to the trace topic in the background (a full buffer drops
// records, never blocks); Admin.MessageTrace returns a message's
// timeline.
//
// # Consuming: pull
//
//	for batch, err := range c.Batches(ctx) {
//		if err != nil {
//			return err // ErrClosed or ctx
//		}
//		process(batch.Messages())
//		if err := c.Commit(ctx, batch); err != nil { ... }
//	}
//
// Commit is explicit and synchronous; nothing is committed for a Poll
// user that does not call it.
//
// # Progress: reading to the end
//
// Consumer.Progress tells a consumer that wants to stop at the end of a
// topic (rmq consume --exit, kcat -e) how far it has read. Each queue
// goroutine records the queue's max offset from every pull answer; a
// queue is caught up once its next pull offset (past consumed messages
// and those the tag filter skipped) reaches that max with no Poll batch
// left uncommitted. Settled says the latest rebalance round allocated
// every subscribed topic and runs every queue allocated to this member,
// so a member still waiting for its queues (first round failed, a broker
// group settling after a leader change, another member still holding a
// lock) is never caught up. Progress.CaughtUp covers only the queues this
// member owns: in a group with other members it says nothing about
// theirs, and it is as fresh as the last rebalance round and pull answers.
//
// # Groups, rebalance and handoff
//
// Clustering (default): every HeartbeatInterval the consumer heartbeats
// the leader of each broker group holding a subscribed topic, gets the
// live members and allocates queues with AllocateAveragely. A queue is
// consumed only while this member holds its broker-side lock
// (LockQueues; owned queues are renewed every 20s, new ones asked for
// every round). The broker replicates locks through Raft, so they survive
// a leader failover. A queue taken away is stopped,
// its in-flight batch finishes, its offset is committed synchronously and
// then it is unlocked; the new owner keeps asking for the lock each round
// and starts from the committed offset. So members joining and leaving
// without failures consume every message exactly once. After reaching a
// new broker leader a member waits two rounds before moving queues, so
// members re-registering after a failover do not shuffle queues. A reset
// epoch higher than last seen (Admin.ResetOffsets) makes owned queues
// re-read their committed offsets. Broadcasting: every member takes every
// queue, without locks, with offsets in memory and OffsetDir.
//
// Messages of one queue reach the handler in offset order, one batch at a
// time; different queues run concurrently. Orderly additionally stops
// delivering a queue whose lock was not renewed for wire.LockTrust (30s),
// counted from when the granting request was sent; the broker's lease
// (60s) is longer, so two members never hold one queue. That lock logic
// reads ConsumerConfig.Now (born timestamps read ProducerConfig.Now), so
// tests can move a client's clock; timeouts, waits and backoffs use real
// timers, and the Admin reads no clock. After a failover
// consumption continues from in-memory positions (pulls go to any
// replica when the leader is unknown); messages past the last commit may
// be delivered again (MessageExt.Redelivered, ConsumerStats.Redelivered).
//
// A pull outside a queue's offsets gets ErrOffsetMoved with the valid
// range (Error.MinOffset, Error.MaxOffset) and the queue continues at the
// minimum if it was below it (retention), or where From says if above the
// maximum (topic recreated): FromFirst the minimum, FromLast the maximum,
// FromTimestamp the first message at or after it. The corrected position
// is committed. A commit above a queue's max offset is refused with
// ErrOffsetIllegal; the consumer then commits its other queues one by one
// and restarts the refused queue from its committed offset.
//
// # Several broker groups
//
// A topic's queues are those of every broker group it was created on,
// sorted by group then queue id; the default selector sends a message
// with a ShardingKey to one of them by hash and spreads the others round
// robin over all of them, and consumers rebalance over all of them. The
// producer avoids a sick group (latency fault tolerance, RocketMQ's
// MQFaultStrategy, on by default): after a send to a group failed in a
// way another group may not (leader unreachable or unanswered for
// AttemptTimeout, no leader, NotLeader without a usable hint, unavailable,
// disk full, a timeout) or a Send took longer than SlowSend (500ms), messages
// without a ShardingKey skip that group for GroupBackoff (1s, doubled for
// each further failure in a row, up to 16x; a fast success ends it), and
// the failed send itself goes on to another group at once with the same
// MsgID instead of waiting for a new leader. A send moved after an
// unknown outcome may store a copy on each group (counted in
// ProducerStats.Resends; broker dedup is per group). A message with a
// ShardingKey, or under a custom QueueSelector, keeps its queue (its order
// depends on it) and waits or fails there as with one group. When every
// group is avoided all queues are used again. GroupBackoff < 0 turns it off.
//
// # Goroutines
//
// Every leader call runs each attempt on a goroutine of its own; those
// still pending when the call returns are cancelled, and Close waits for
// them after closing the connections (one may sit in a write to a frozen
// node). A pull runs beside a watcher that it waits for. Concurrent
// NameServer cluster look-ups of one client share one request.
// Producer: one batcher per leader address (started on first use), and a
// goroutine per SendRequest awaiting its answer (at most
// MaxInflightRequests per batcher). A
// SendAsync whose route and leader are cached goes straight into the
// batcher, which runs its callback (keep callbacks short); only a
// SendAsync that must look up a route or retry gets a goroutine of its
// own. Close waits for SendAsync callbacks (within ctx) and stops the
// batchers. Consumer: Start (or the first Poll) starts
// the heartbeat/rebalance loop, the commit loop and one goroutine per
// owned queue; Close stops the loops, releases every queue (commit,
// unlock), sends LeaveGroup and waits for all of them. Each wire.Conn has
// its reader goroutine, closed with the pool. Close is idempotent
// everywhere; all methods are safe for concurrent use.
//
// # Access control
//
// Brokers with an ACL file refuse unsigned requests. Set Credentials
// (access key and secret key of an account of that file) on the config:
// every request is then signed (HMAC-SHA256 over code, timestamp and
// body; wire.Auth) on every connection of that Producer, Consumer,
// SimpleConsumer or Admin. A front end acting for a logged-in user (an
// HTTP admin API, a dashboard) builds an Admin with that user's
// Credentials. Refusals match ErrAccessDenied and name what is missing.
// The client's clock must be within the brokers' window (2m by default).
//
// # Errors
//
// Server errors are *Error{Code, Retriable, Message, LeaderHint}; errors.Is
// matches them against the sentinels (ErrNotLeader, ErrTopicNotFound,
// ErrAccessDenied, ...) by code. Context errors pass through; a budget that runs out returns the
// context error wrapping the last failure.
//
// # NameServers
//
// NameServers share nothing; the client asks one (the last that answered)
// and moves to the next on a connection failure or an error answer. An
// empty answer (topic not found, no broker registered) is not final
// either: a NameServer just restarted knows nothing until the brokers'
// next heartbeats, so the client asks the others and returns it only if
// no reachable one knows better.
//
// # TLS
//
// Every config has a TLS field (LoadTLS builds one from a CA file and an
// optional client certificate); when set, connections to the NameServers
// and to every broker they name use it, with the handshake done at dial
// (the name checked is the host dialed, unless the config's ServerName
// says otherwise). A plaintext client of a TLS port fails at once with an
// error matching wire.ErrTLSRequired; a failed handshake (unknown CA,
// refused certificate, a plaintext server) matches wire.ErrTLSHandshake,
// and a NameServer failing that way counts as refused, not as down.
package client
