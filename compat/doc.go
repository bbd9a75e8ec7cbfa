// Package compat is the RocketMQ remoting-protocol codec and connection
// layer that rmq's broker and NameServer adapters are built on. It lets
// stock RocketMQ clients (rocketmq-client-go v2, the Java client) talk to
// rmq. It knows the bytes and the connection rules; it knows nothing of
// topics, queues or Raft. The adapters decode a Command, call the
// protocol-neutral broker or NameServer core, and encode the answer.
//
// # Frames
//
// A remoting connection carries frames (reference §3.1-§3.3):
//
//	+--------------+--------------------------------+--------+------+
//	| int32 length | byte serialize | int24 hdrLen  | header | body |
//	+--------------+--------------------------------+--------+------+
//	  length counts everything after itself: 4 + hdrLen + len(body)
//
//	serialize 0, JSON header: {"code":105,"extFields":{"topic":"T"},"flag":0,
//	  "language":"GO","opaque":7,"version":317}
//	serialize 1, ROCKETMQ binary header, big-endian:
//	  int16 code | int8 language | int16 version | int32 opaque | int32 flag |
//	  int32 remarkLen | remark | int32 extLen | {int16 kLen | k | int32 vLen | v}*
//
// ReadCommand/DecodeCommand and AppendCommand convert between frames and
// Command. ReadCommand never allocates more than its limit
// (DefaultMaxFrame, 16 MiB) whatever the prefix claims. Bad bytes give
// errors wrapping ErrMalformed or ErrFrameTooLarge with the reason; a
// stream that ends inside a frame gives io.ErrUnexpectedEOF. We write JSON
// keys sorted (ext too) and add Java's "serializeTypeCurrentRPC"; binary
// can carry only int16 codes, so POP codes (2000xx) need JSON. Ext values
// are strings; Command.ExtString/ExtInt64/... return *FieldError naming
// the field ("header field \"queueId\": missing").
//
// # Connections
//
// Serve runs a remoting server: one reader goroutine per connection and
// one goroutine per request (at most MaxInflight per connection, then the
// reader waits), all stopped and awaited by Serve when its ctx ends. A
// response goes out with the request's serialization and opaque; a
// FlagOneway request gets none. Requests flow both ways on a connection:
// ServerConn.Invoke sends broker-to-client requests (CHECK_TRANSACTION_STATE,
// NOTIFY_CONSUMER_IDS_CHANGED, ...) with opaques from the connection's own
// counter and matches the client's FlagResponse frames to them. Client is
// the same machinery from the other end, for rmq's tests and tools. Every
// write has WriteTimeout (10 s) so a client that stops reading cannot
// block a handler; a failed write closes the connection. ServerConn,
// Client and Mux methods are safe for concurrent use. Caveat: while all
// MaxInflight slots are busy the reader stops, so a handler that Invokes
// the client then waits for its ctx or the connection to end.
//
// # One port, two protocols
//
// Mux splits one listener into rmq's own protocol (package wire) and
// remoting by the first SniffLen (10) bytes of each connection, sniffed in
// a goroutine per connection with SniffTimeout; the bytes are replayed to
// the sub-listener's connection. Both frames start with an int32 length:
//
//	rmq:      len | byte version(1) | byte flags | uint16 code | uint64 id ...
//	remoting: len | byte serialize  | 3 bytes hdrLen          | header ...
//
// Rule: byte 4 == 0 and byte 8 == '{' (with 2 <= hdrLen <= len-4) is JSON
// remoting; byte 4 == 1 and bytes 8-9 (the int16 request code) != 0 with
// 21 <= hdrLen <= len-4 is binary remoting; byte 4 == wire.Version and
// bytes 8-9 == 0 (the top of the request id) with len >= 12 is rmq; else
// unknown, closed and logged. A connection whose first bytes already rule
// out both (a length below 6 or above MuxConfig.MaxFrame, a fifth byte
// that is neither) is closed at once rather than after SniffTimeout.
// Limits: wire.Version and the binary type are
// both 1, so the rule relies on rmq request ids staying below 2^48 and on
// no remoting client opening with code 0 (a response); a binary remoting
// request with code 0 would be taken for rmq. Anything else (HTTP, TLS) is
// unknown; a TLS ClientHello is logged as "TLS is off on this port". A port
// with TLS on (internal/tlsconf's listener under the Mux) completes the
// handshake first, so the Mux sniffs the decrypted bytes.
//
// # Stored messages
//
// Pull bodies are stored messages back to back (§3.7), written by
// AppendMessageExt: MagicV1 (1-byte topic length) for topics up to 127
// bytes, since rocketmq-client-go ignores the magic and always reads one
// byte; MagicV2 above that (Java 5.x only). BODYCRC is UtilAll.crc32, IEEE
// with the top bit cleared. The IPv6 sysFlag bits follow the host
// addresses: an IPv4 host, also one given as ::ffff:a.b.c.d, is written in
// 4 bytes, and DecodeMessageExt reads a stored mapped host back as IPv4
// without its v6 bit, so decode and encode agree. The adapters fill in: QueueOffset (the consume-queue offset),
// PhysicalOffset (unique and stable per message: clients use it as
// CommitLogOffset and it is half of OffsetMsgID, which VIEW_MESSAGE_BY_ID
// must map back), StoreHost (the broker's advertised address, the other
// half of OffsetMsgID), BornHost/BornTimestamp/StoreTimestamp, SysFlag
// from the send (compressed and transaction bits; rmq's broker stores a
// compressed body inflated, so it serves sysFlag 0), Flag, ReconsumeTimes, and Properties as sent (UNIQ_KEY is
// the client's message id; clients add MIN_OFFSET/MAX_OFFSET themselves).
// Call CheckMessageExt for messages that did not come through a RocketMQ
// send: AppendMessageExt panics on a topic or properties too long for the
// length fields. Send only whole messages: the Go client's decoder has no
// bounds checks. Properties are "k\x01v\x02..." with keys sorted; the Go
// client drops a property whose value holds \x01 (Java keeps it).
// DecodeBatch reads SEND_BATCH_MESSAGE bodies (magic and CRC are 0 there).
//
// # JSON bodies and quirks
//
// The body types carry RocketMQ's field names. DecodeJSON also accepts
// fastjson's unquoted integer map keys ({0:"ip:port"}), which Java sends
// to clients older than V4_9_4; we always write quoted keys, which Java
// and the Go client both read (the Go client splits the brokerAddrs text
// on ',' and the first ':' and strips quotes). Surprises found in
// rocketmq-client-go v2.1.2: its route decoder slices the brokerAddrs text
// and panics on null or a missing field, and a null queueDatas fails, so
// BrokerData and TopicRouteData never marshal nil as null; its QueueData
// reads "topicSynFlag" (sic), so our "topicSysFlag" is ignored by it; its
// heartbeat sends codeSet as strings (Java: numbers; SubscriptionData
// takes both) and sets as arrays; it reads the JSON header language only
// unquoted, so it sees our "JAVA" as unknown (harmless); it prints IPv6
// hosts of stored messages as their first 4 bytes in IPv4 form, though it
// decodes the rest of the message and the offset message id correctly.
//
// # Supported features
//
// What rmq's broker and NameServer adapters serve to RocketMQ 4.x clients
// and RocketMQ 5 pop consumers (broker/remoting_*.go,
// namesrv/remoting_adapter.go); the proof is the e2e/rocketmq module
// (unmodified rocketmq-client-go v2.1.2; for pop see its row). A code not
// listed is answered REQUEST_CODE_NOT_SUPPORTED (3) with a remark naming
// it. Keep this table true.
//
//	feature                        codes / properties             status   notes
//	routes                         105 GET_ROUTEINFO_BY_TOPIC     yes      brokerName = group; Raft leader = brokerId 0, followers 1..n; TBW102 lists writable groups (8 queues) for auto-create; a %RETRY% topic not created yet gets a one-queue default route
//	cluster, topic lists           106, 206, 224                  yes      GET_BROKER_CLUSTER_INFO, GET_ALL_TOPIC_LIST_FROM_NAMESERVER, GET_TOPICS_BY_CLUSTER
//	KV config                      101 GET_KV_CONFIG              partly   always QUERY_NOT_FOUND: rmq keeps no KV config
//	RocketMQ brokers registering   103, 104                       no       rmq brokers register over rmq's protocol
//	send sync / async / oneway     10 (V1), 310 (V2)              yes      auto-create when a default topic is named (queues: defaultTopicQueueNums, at most 8); zlib bodies stored inflated; LZ4/ZSTD refused; sends pipelined on one channel are stored in the order sent (ServerConfig.InOrder)
//	batch send                     320                            yes      all or nothing, one queue, consecutive offsets
//	tags, keys, properties, ids    TAGS, KEYS, UNIQ_KEY, any      yes      TAGS/KEYS/UNIQ_KEY become rmq's Tags/Keys/ID; a non-upper-case UNIQ_KEY is also kept verbatim
//	pull, long polling             11 PULL_MESSAGE                yes      suspend up to the broker's LongPollMax (20 s); tag filter from the pull or the heartbeat's subscription; the commitOffset flag is ignored (offsets come by 15)
//	stored-message encoding        pull bodies                    yes      physical offset = Raft index << 28 | position in the entry; born host not stored (0.0.0.0:0)
//	offsets                        14, 15, 29, 30, 31, 32         yes      commits go through Raft; a group with no offset on a queue that still holds offset 0 starts at 0 (RocketMQ 4.x rule) unless it heartbeat CONSUME_FROM_TIMESTAMP
//	heartbeat, members, rebalance  34, 38, 35; 40 pushed          yes      members recorded on every node (120 s TTL, dropped when the connection closes); NOTIFY_CONSUMER_IDS_CHANGED on change; %RETRY%group created
//	ordered consumption            41, 42 LOCK/UNLOCK_BATCH_MQ    yes      replicated queue locks, 60 s lease
//	topic admin                    17, 215                        yes      UPDATE_AND_CREATE_TOPIC (queues = max(read, write); perm read/write only), DELETE_TOPIC_IN_BROKER
//	view message by id             33 VIEW_MESSAGE_BY_ID          yes      any replica resolves the physical offset
//	SQL92 filters                  11, 34, 200050 SQL92           yes      RocketMQ's grammar (internal/sql92) over properties and TAGS, evaluated by the broker on pull and pop; a bad expression: SUBSCRIPTION_PARSE_FAILED with its position; proven by e2e/rocketmq TestSQL92Subscription
//	query by key / unique key      12 QUERY_MESSAGE               yes      by topic + key through rmq's message index, or by UNIQ_KEY with _UNIQUE_KEY_QUERY=true; begin/endTimestamp filter by store time; none found: QUERY_NOT_FOUND
//	retry, DLQ                     36 CONSUMER_SEND_MSG_BACK      yes      retry into %RETRY%group after level 3 + failures (10s, 30s, 1m, ...), then %DLQ%group (write-only) past maxReconsumeTimes; the original record is redelivered, not copied; a failed send-back is left unanswered (rocketmq-client-go v2.1.2 takes any answer as success) so the client redelivers locally
//	delay levels, timers           DELAY, TIMER_* properties      yes      levels per broker config (RocketMQ's 18 by default), TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS up to MaxDelay (3 days); stored once, delivered by the leader's scheduler; the send answers queueOffset -1
//	transactions                   TRAN_MSG, 37; 39 pushed        yes      half messages (TRAN_MSG / sysFlag prepared, PGROUP) stored once and invisible; END_TRANSACTION 8 commit / 12 rollback / 0 unknown by commitLogOffset (rmq's physical offset); CHECK_TRANSACTION_STATE one-way to a connection whose heartbeat named the producer group, after transaction_timeout (6s), every transaction_check_interval (60s), up to transaction_check_max (15), then rolled back by the broker; proven by e2e/rocketmq TestTransactionProducer
//	request-reply                  324, 325; 326 pushed           yes      the requester is found by client ID from its producer heartbeats or from a send naming it in REPLY_TO_CLIENT (on that connection); CLUSTER is stamped on requests; replies are pushed, not stored (no <cluster>_REPLY_TOPIC messages); a requester not connected to the node: SYSTEM_ERROR
//	pop consumption (RocketMQ 5)   200050, 200051, 200053, 200151 yes      POP_MESSAGE, ACK_MESSAGE, CHANGE_MESSAGE_INVISIBLETIME, BATCH_ACK_MESSAGE (JSON headers); expired messages come back in place with reconsumeTimes + 1 (retry flag 0, reviveQid 0, no %RETRY% topic); POP_CK on every message; nothing after pollTime: POLLING_TIMEOUT; a stale handle: NO_MESSAGE; TAG filters; maxMsgNums 1..32; checked against frames built as the Java client builds them (broker/remoting_pop_test.go), not a Java client
//	pop: ordered, peek, rollback   200052, 200054-200056          no       POP_MESSAGE with order=true refused INVALID_PARAMETER (ordered pop: use an orderly push consumer); PEEK_MESSAGE, NOTIFICATION, POLLING_INFO, POP_ROLLBACK not served (issue #12)
//	admin statistics               21, 28, 43, 202-208, 307       no       not planned yet (fastjson object-keyed maps); rmq's dashboard, HTTP API and /metrics serve these figures
//	ACL 1.0 (RocketMQ 4.x)         AccessKey, Signature ext       yes      with broker ACLFile: HmacSHA1 over sorted ext values + body (Sign, VerifySignature; SecurityToken in or out of the content); refusals NO_PERMISSION (16) naming what is missing; bornTimestamp (send) and bornTime (pop) checked against the time window; the NameServer does not check (as RocketMQ's); proven by e2e/rocketmq TestACLRocketMQClient
//	TLS                            -                              yes      optional, on the same port (README "TLS"); remoting is sniffed after the handshake; tested with compat.NewClient over a TLS conn (namesrv TestTLS), not with a Java client
package compat
