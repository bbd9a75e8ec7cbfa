package wire

// Message bodies, msgpack-encoded. Short field tags keep frames small; new
// fields get new tags and must be optional (omitempty), so old peers
// ignore them.

// Empty is the body of requests and responses that carry nothing.
type Empty struct{}

// Message is a message as producers send it.
type Message struct {
	Topic      string            `msgpack:"t"`
	QueueID    uint32            `msgpack:"q"`
	Flag       uint32            `msgpack:"f,omitempty"`
	Tags       string            `msgpack:"g,omitempty"`
	Keys       string            `msgpack:"k,omitempty"`
	Properties map[string]string `msgpack:"p,omitempty"`
	Body       []byte            `msgpack:"b"`
	// ID is the client-generated unique message id (16 bytes).
	ID            []byte `msgpack:"i"`
	BornTimestamp int64  `msgpack:"bt"` // unix ms
}

// StoredMessage is a committed message as consumers receive it.
type StoredMessage struct {
	Message     `msgpack:",inline"`
	QueueOffset uint64 `msgpack:"o"`
	StoreTime   int64  `msgpack:"st"` // leader time of the entry, unix ms
	RaftIndex   uint64 `msgpack:"ri"`
	// A delivery from a retry or dead-letter queue: how many deliveries
	// failed before, and where the message was first stored.
	Reconsume    uint32 `msgpack:"rc,omitempty"`
	OriginTopic  string `msgpack:"ot,omitempty"`
	OriginQueue  uint32 `msgpack:"oq,omitempty"`
	OriginOffset uint64 `msgpack:"oo,omitempty"`
}

// SendRequest writes messages (any topics and queues of one group).
type SendRequest struct {
	Messages []Message `msgpack:"m"`
	// AutoCreateQueues, if non-zero, creates missing topics with that many
	// queues (when the broker allows auto-creation).
	AutoCreateQueues uint32 `msgpack:"ac,omitempty"`
	// AutoTopics, if set, limits auto-creation to these topics: the ones
	// whose senders asked for it, so a coalesced message for a deleted
	// topic does not recreate it. Empty (older clients): every missing
	// topic of the request.
	AutoTopics    []string `msgpack:"at,omitempty"`
	TimeoutMillis int64    `msgpack:"to,omitempty"`
	// Atomic asks for all messages or none: a refusal of any one fails
	// the whole request (SendBatch). Otherwise each message that fails a
	// check gets its own SendResult error and the rest are stored.
	Atomic bool `msgpack:"aa,omitempty"`
}

// SendResult is one message's outcome, in request order.
type SendResult struct {
	QueueID     uint32 `msgpack:"q"`
	QueueOffset uint64 `msgpack:"o"`
	RaftIndex   uint64 `msgpack:"ri"`
	StoreTime   int64  `msgpack:"st"`
	// DeliverAt, if set, is the due time (unix ms) of a delayed message:
	// it has no queue offset until then (QueueOffset is 0).
	DeliverAt int64 `msgpack:"da,omitempty"`
	// Half marks a transactional half message: stored, invisible until
	// committed; (RaftIndex, Pos) names it in EndTxRequest.
	Half bool   `msgpack:"h,omitempty"`
	Pos  uint32 `msgpack:"p,omitempty"`
	// Duplicate: the broker had stored a message with this ID on this
	// topic within its dedup window and did not store this one; the
	// other fields are the original's.
	Duplicate bool `msgpack:"dup,omitempty"`
	// Error is non-empty if this message was rejected at apply.
	ErrorCode uint16 `msgpack:"ec,omitempty"`
	Error     string `msgpack:"e,omitempty"`
}

// SendResponse answers SendRequest.
type SendResponse struct {
	Results []SendResult `msgpack:"r"`
}

// PullRequest reads one queue from Offset. With WaitMillis > 0 the broker
// holds the request until a message arrives or the wait ends (long poll).
type PullRequest struct {
	Topic       string `msgpack:"t"`
	QueueID     uint32 `msgpack:"q"`
	Offset      uint64 `msgpack:"o"`
	MaxMessages int    `msgpack:"n,omitempty"`
	MaxBytes    int    `msgpack:"b,omitempty"`
	WaitMillis  int64  `msgpack:"w,omitempty"`
	// Tags filters by tag ("a || b"); empty or "*" takes every message.
	Tags string `msgpack:"g,omitempty"`
	// SQL, if set, filters by a RocketMQ SQL92 expression over the
	// message's properties and TAGS instead of Tags.
	SQL string `msgpack:"sq,omitempty"`
	// ConsumerGroup is the pulling consumer's group, for the broker's
	// metrics (rocketmq_messages_out_total); empty pulls are not counted.
	ConsumerGroup string `msgpack:"cg,omitempty"`
}

// PullResponse answers PullRequest. Messages skipped by the tag filter
// still advance NextOffset.
type PullResponse struct {
	Messages   []StoredMessage `msgpack:"m"`
	NextOffset uint64          `msgpack:"no"`
	MinOffset  uint64          `msgpack:"mi"`
	MaxOffset  uint64          `msgpack:"ma"`
}

// TopicRequest names a topic and, for create/update, its shape.
type TopicRequest struct {
	Name   string `msgpack:"t"`
	Queues uint32 `msgpack:"q,omitempty"`
	Perm   uint8  `msgpack:"p,omitempty"`
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name      string `msgpack:"t"`
	Queues    uint32 `msgpack:"q"`
	Perm      uint8  `msgpack:"p"`
	CreatedAt int64  `msgpack:"c,omitempty"`
}

// TopicList answers CodeListTopics.
type TopicList struct {
	Topics []TopicInfo `msgpack:"t"`
}

// QueueStatus is one queue's offsets.
type QueueStatus struct {
	QueueID       uint32 `msgpack:"q"`
	MinOffset     uint64 `msgpack:"mi"`
	MaxOffset     uint64 `msgpack:"ma"`
	LastStoreTime int64  `msgpack:"ls,omitempty"`
	Delayed       int    `msgpack:"dl,omitempty"` // delayed messages stored for this queue, not yet due
}

// TopicStatus answers CodeTopicStatus.
type TopicStatus struct {
	Topic  TopicInfo     `msgpack:"t"`
	Queues []QueueStatus `msgpack:"q"`
}

// QueueOffset is a group's position in one queue.
type QueueOffset struct {
	Topic   string `msgpack:"t"`
	QueueID uint32 `msgpack:"q"`
	Offset  uint64 `msgpack:"o"`
}

// CommitOffsetsRequest stores a group's offsets (through Raft).
// ResetEpoch is the group reset epoch the committer last saw in a
// heartbeat; a commit from before the latest reset is refused with
// CodeStaleEpoch so it cannot undo the reset.
type CommitOffsetsRequest struct {
	Group      string        `msgpack:"g"`
	Offsets    []QueueOffset `msgpack:"o"`
	ResetEpoch uint64        `msgpack:"r,omitempty"`
}

// QueryOffsetRequest asks for a group's committed offset of one queue.
type QueryOffsetRequest struct {
	Group   string `msgpack:"g"`
	Topic   string `msgpack:"t"`
	QueueID uint32 `msgpack:"q"`
}

// SearchOffsetRequest asks for the first offset stored at or after
// Timestamp (unix ms).
type SearchOffsetRequest struct {
	Topic     string `msgpack:"t"`
	QueueID   uint32 `msgpack:"q"`
	Timestamp int64  `msgpack:"ts"`
}

// QueryOffsetResponse answers QueryOffset and SearchOffset.
type QueryOffsetResponse struct {
	Offset uint64 `msgpack:"o"`
	Found  bool   `msgpack:"f"`
}

// ResetOffsetsRequest moves a group's offsets of a topic to the first
// message stored at or after Timestamp (unix ms) in every queue. Members
// notice through the reset epoch in heartbeat responses.
type ResetOffsetsRequest struct {
	Group     string `msgpack:"g"`
	Topic     string `msgpack:"t"`
	Timestamp int64  `msgpack:"ts"`
}

// SendBackRequest asks the leader to redeliver a failed delivery later,
// through the group's retry queue, or into its dead-letter queue.
type SendBackRequest struct {
	Group   string `msgpack:"g"`
	Topic   string `msgpack:"t"` // the queue the failed delivery came from
	QueueID uint32 `msgpack:"q"`
	Offset  uint64 `msgpack:"o"`
	// DelayLevel > 0: retry after that level; 0: the backoff for the
	// failure count; < 0: the dead-letter queue at once.
	DelayLevel   int `msgpack:"dl,omitempty"`
	MaxReconsume int `msgpack:"mx,omitempty"` // failed deliveries before the DLQ; 0: 16
}

// SendBackResponse says what became of it.
type SendBackResponse struct {
	DLQ       bool   `msgpack:"dlq,omitempty"`
	Reconsume uint32 `msgpack:"n"`
	DeliverAt int64  `msgpack:"da,omitempty"` // a retry's due time, unix ms
}

// DeadLettersRequest reads a group's dead-letter queue (an operator's
// read: the queue is write-only to consumers).
type DeadLettersRequest struct {
	Group  string `msgpack:"g"`
	Offset uint64 `msgpack:"o"`
	Max    int    `msgpack:"n,omitempty"`
}

// ResendDeadRequest redelivers dead letters (by message ID, or All)
// through the group's retry queue.
type ResendDeadRequest struct {
	Group string   `msgpack:"g"`
	IDs   [][]byte `msgpack:"i,omitempty"`
	All   bool     `msgpack:"a,omitempty"`
}

// ProducerHello tells a broker node that this connection belongs to a
// producer (Group, for transaction check-backs) or a requester (ClientID,
// for pushed replies) and answers server-initiated requests.
type ProducerHello struct {
	Group    string `msgpack:"g,omitempty"`
	ClientID string `msgpack:"c,omitempty"`
}

// EndTxRequest commits or rolls back a transactional half message,
// named by its send's RaftIndex and Pos. State: 1 commit, 2 rollback
// (0, unknown, leaves it open).
type EndTxRequest struct {
	ProducerGroup string `msgpack:"g"`
	RaftIndex     uint64 `msgpack:"ri"`
	Pos           uint32 `msgpack:"p"`
	State         int    `msgpack:"s"`
	FromCheck     bool   `msgpack:"fc,omitempty"`
}

// EndTxResponse says what became of the half: Outcome 1 committed (at
// QueueOffset), 2 rolled back, 3 ended before (nothing changed), 4
// committed but its topic is gone.
type EndTxResponse struct {
	Outcome     uint8  `msgpack:"o"`
	QueueOffset uint64 `msgpack:"qo,omitempty"`
}

// CheckTxRequest is the broker asking a producer of the half's group for
// the outcome of its local transaction; Checks counts the asks so far.
type CheckTxRequest struct {
	Message   StoredMessage `msgpack:"m"`
	RaftIndex uint64        `msgpack:"ri"`
	Pos       uint32        `msgpack:"p"`
	Checks    int           `msgpack:"c"`
}

// CheckTxResponse answers CheckTxRequest: State as in EndTxRequest.
type CheckTxResponse struct {
	State int `msgpack:"s"`
}

// ListTxRequest lists a broker group's open half messages (Max 0: all).
type ListTxRequest struct {
	Max int `msgpack:"n,omitempty"`
}

// TxHalf is one open half message.
type TxHalf struct {
	Message       StoredMessage `msgpack:"m"`
	ProducerGroup string        `msgpack:"g"`
	AgeMillis     int64         `msgpack:"a"`
	Checks        int           `msgpack:"c"`
	LastCheck     int64         `msgpack:"lc,omitempty"` // unix ms
	Pos           uint32        `msgpack:"p"`
}

// TxDiscard is a half the broker rolled back after its check maximum.
type TxDiscard struct {
	Topic     string `msgpack:"t"`
	QueueID   uint32 `msgpack:"q"`
	RaftIndex uint64 `msgpack:"ri"`
	Pos       uint32 `msgpack:"p"`
	Stored    int64  `msgpack:"s"`
	At        int64  `msgpack:"at"`
	Checks    uint32 `msgpack:"c"`
}

// TxList answers ListTxRequest.
type TxList struct {
	Open             []TxHalf    `msgpack:"o"`
	Committed        uint64      `msgpack:"cm"`
	RolledBack       uint64      `msgpack:"rb"`
	BrokerRolledBack uint64      `msgpack:"brb"`
	Discards         []TxDiscard `msgpack:"d,omitempty"`
}

// QueryMessagesRequest finds messages: by ID, by Topic and Key, or by
// Topic and a store-time range [SinceMillis, UntilMillis).
type QueryMessagesRequest struct {
	ID          []byte `msgpack:"i,omitempty"`
	Topic       string `msgpack:"t,omitempty"`
	Key         string `msgpack:"k,omitempty"`
	SinceMillis int64  `msgpack:"s,omitempty"`
	UntilMillis int64  `msgpack:"u,omitempty"`
	Max         int    `msgpack:"n,omitempty"`
}

// QueriedMessage is one found message; Pending is "delayed" or
// "transaction" for one without a queue offset yet.
type QueriedMessage struct {
	Stored  StoredMessage `msgpack:"m"`
	Pos     uint32        `msgpack:"p"`
	Pending string        `msgpack:"pd,omitempty"`
}

// QueryMessagesResponse answers QueryMessagesRequest; More says a time
// range held more than Max.
type QueryMessagesResponse struct {
	Messages []QueriedMessage `msgpack:"m"`
	More     bool             `msgpack:"mo,omitempty"`
}

// ReplyRequest is a responder's reply to a request message
// (CodeSendReply). Message carries the request's CORRELATION_ID and
// REPLY_TO_CLIENT properties; its Topic may be empty (the broker names
// it <cluster>_REPLY_TOPIC). Any node of a group may take it: the reply
// is not stored, only pushed, and the node answers CodeUnavailable if the
// requester has no connection to it.
type ReplyRequest struct {
	Message Message `msgpack:"m"`
}

// PushReply is a reply as a broker node pushes it over the requester's
// own connection (CodePushReply, broker to client).
type PushReply struct {
	Message  Message `msgpack:"m"`
	Group    string  `msgpack:"g,omitempty"` // broker group of the pushing node
	PushTime int64   `msgpack:"pt"`          // unix ms, the pushing node's clock
}

// ReceiveRequest pops messages for a pop (simple) consumer group: any
// member receives from any queue; a received message is invisible to
// the others for InvisibleMillis unless acked.
type ReceiveRequest struct {
	Group           string `msgpack:"g"`
	Topic           string `msgpack:"t"`
	QueueID         int32  `msgpack:"q"` // -1: any queue
	Max             int    `msgpack:"n,omitempty"`
	InvisibleMillis int64  `msgpack:"i,omitempty"` // 0: 30 s
	WaitMillis      int64  `msgpack:"w,omitempty"`
	Tags            string `msgpack:"tg,omitempty"`
	SQL             string `msgpack:"sq,omitempty"` // a SQL92 filter instead of Tags
	MaxReconsume    int    `msgpack:"mx,omitempty"` // expiries before the DLQ; 0: 16
	FromFirst       bool   `msgpack:"ff,omitempty"` // a queue never received from starts at its oldest message
}

// ReceivedMessage is a popped message: Reconsume counts its earlier
// deliveries that expired unacked; Handle acks it.
type ReceivedMessage struct {
	// Stored is a named field, not embedded: StoredMessage's own
	// msgpack codec (message_codec.go) would be promoted and drop the
	// fields below.
	Stored         StoredMessage `msgpack:"s"`
	Handle         string        `msgpack:"h"`
	DeadlineMillis int64         `msgpack:"dl"` // invisible until then, unix ms
}

// ReceiveResponse answers ReceiveRequest (empty when the wait ran out).
type ReceiveResponse struct {
	Messages []ReceivedMessage `msgpack:"m"`
}

// AckRequest acks received messages by their handles.
type AckRequest struct {
	Group   string   `msgpack:"g"`
	Handles []string `msgpack:"h"`
}

// AckResponse has one entry per handle: 0 (acked) or an error code, with
// its message in Errors.
type AckResponse struct {
	Codes  []uint16 `msgpack:"c"`
	Errors []string `msgpack:"e,omitempty"`
}

// ChangeInvisibleRequest makes a received message invisible for
// InvisibleMillis from now.
type ChangeInvisibleRequest struct {
	Group           string `msgpack:"g"`
	Handle          string `msgpack:"h"`
	InvisibleMillis int64  `msgpack:"i"`
}

// ChangeInvisibleResponse carries the message's new handle.
type ChangeInvisibleResponse struct {
	Handle         string `msgpack:"h"`
	DeadlineMillis int64  `msgpack:"dl"`
}

// ResendDeadResponse counts the dead letters resent.
type ResendDeadResponse struct {
	Resent int `msgpack:"n"`
}

// ResetOffsetsResponse lists the new offsets.
type ResetOffsetsResponse struct {
	Offsets []QueueOffset `msgpack:"o"`
}

// Consumer group modes.
const (
	ModeClustering   = "clustering"
	ModeBroadcasting = "broadcasting"
)

// HeartbeatRequest keeps a consumer in its group on one broker group.
type HeartbeatRequest struct {
	Group    string   `msgpack:"g"`
	ClientID string   `msgpack:"c"`
	Mode     string   `msgpack:"m"`
	Topics   []string `msgpack:"t"`
}

// HeartbeatResponse lists the group's live members (sorted) so the
// client can rebalance, and the group's reset epoch.
type HeartbeatResponse struct {
	Members    []string `msgpack:"m"`
	ResetEpoch uint64   `msgpack:"r"`
}

// LeaveGroupRequest removes a consumer at once (clean shutdown) and
// releases its queue locks.
type LeaveGroupRequest struct {
	Group    string `msgpack:"g"`
	ClientID string `msgpack:"c"`
}

// LockRequest locks or unlocks queues for one member of a group. A lock
// lasts the broker's lock lease from its last grant, and the member renews
// it by locking again; the member trusts it for LockTrust.
type LockRequest struct {
	Group    string        `msgpack:"g"`
	ClientID string        `msgpack:"c"`
	Queues   []QueueOffset `msgpack:"q"` // Offset unused
}

// LockResponse lists the queues now held by the requester.
type LockResponse struct {
	Locked []QueueOffset `msgpack:"l"`
}

// GroupList answers CodeListGroups.
type GroupList struct {
	Groups []string `msgpack:"g"`
}

// DescribeGroupRequest asks for one group's progress.
type DescribeGroupRequest struct {
	Group string `msgpack:"g"`
}

// GroupQueue is a group's progress on one queue.
type GroupQueue struct {
	Topic          string `msgpack:"t"`
	QueueID        uint32 `msgpack:"q"`
	BrokerOffset   uint64 `msgpack:"b"` // queue max offset
	ConsumerOffset uint64 `msgpack:"c"`
	Lag            uint64 `msgpack:"l"`
	Owner          string `msgpack:"o,omitempty"` // lock holder, if any
	// Pop consumption: received and not acked; expired, to be received again.
	InFlight int `msgpack:"if,omitempty"`
	Visible  int `msgpack:"vi,omitempty"`
}

// GroupDescription answers DescribeGroup.
type GroupDescription struct {
	Group   string       `msgpack:"g"`
	Mode    string       `msgpack:"m,omitempty"`
	Members []string     `msgpack:"mb"`
	Queues  []GroupQueue `msgpack:"q"`
	// Retries waiting for their backoff, and dead letters, on this broker group.
	PendingRetries int    `msgpack:"pr,omitempty"`
	DeadLetters    uint64 `msgpack:"dl,omitempty"`
}

// NodeStatus is one broker node's Raft and storage state.
type NodeStatus struct {
	Cluster      string `msgpack:"cl"`
	Group        string `msgpack:"g"`
	NodeID       string `msgpack:"n"`
	Addr         string `msgpack:"a"`
	RaftAddr     string `msgpack:"ra"`
	Role         string `msgpack:"r"` // leader, follower, candidate
	Serving      bool   `msgpack:"s"`
	LeaderID     string `msgpack:"l,omitempty"`
	Term         uint64 `msgpack:"tm"`
	CommitIndex  uint64 `msgpack:"ci"`
	AppliedIndex uint64 `msgpack:"ai"`
	FirstIndex   uint64 `msgpack:"fi"`
	LastIndex    uint64 `msgpack:"li"`
	LogBytes     int64  `msgpack:"lb"`
	// Disk use of the node, for retention (fields added later: omitted
	// when unknown, ignored by older decoders).
	DiskUsed  uint64 `msgpack:"du,omitempty"` // bytes used on the data dir's file system
	DiskTotal uint64 `msgpack:"dt,omitempty"` // that file system's size
	DataBytes int64  `msgpack:"db,omitempty"` // bytes of rmq's own files
	// LastPurge is the last deletion of log segments on this node.
	LastPurge *PurgeStatus `msgpack:"lp,omitempty"`
	// DiskFull says why the node's group refuses sends (a node's disk is
	// above the high-water mark; CodeDiskFull), "" while it takes them.
	DiskFull string `msgpack:"df,omitempty"`
	// CommitUnknown: the node has not learned the commit index yet (a
	// just-started follower learns it from the leader's first
	// AppendEntries); CommitIndex is then 0 and means nothing. Older
	// brokers leave it unset and send 0.
	CommitUnknown bool `msgpack:"cu,omitempty"`
	// Suffrage is the node's place in its latest Raft configuration:
	// "voter", "nonvoter", or "" when it is in none (not yet added, or
	// removed) or the broker is older.
	Suffrage string `msgpack:"sf,omitempty"`
}

// PurgeStatus is one deletion of log segments and the retention rules
// that released them.
type PurgeStatus struct {
	AtMillis  int64  `msgpack:"at"` // unix ms
	Reason    string `msgpack:"r"`
	Segments  int    `msgpack:"s"`
	Bytes     int64  `msgpack:"b"`
	FromIndex uint64 `msgpack:"f"`
	ToIndex   uint64 `msgpack:"t"`
}

// TransferRequest moves leadership to To (or the best follower if empty).
type TransferRequest struct {
	To string `msgpack:"to,omitempty"`
}

// RegisterBrokerRequest is a broker node's registration and heartbeat.
type RegisterBrokerRequest struct {
	Node   NodeStatus  `msgpack:"n"`
	Topics []TopicInfo `msgpack:"t"`
	// HeartbeatMillis tells the NameServer how often to expect the next
	// registration; it expires the node after a few missed ones.
	HeartbeatMillis int64 `msgpack:"h"`
}

// UnregisterBrokerRequest removes a node at once (clean shutdown).
type UnregisterBrokerRequest struct {
	Group  string `msgpack:"g"`
	NodeID string `msgpack:"n"`
}

// RouteRequest asks which groups serve a topic. With Default set and no
// group holding the topic, the NameServer returns every writable group
// with Queues = 0, for auto-creation on first send.
type RouteRequest struct {
	Topic   string `msgpack:"t"`
	Default bool   `msgpack:"d,omitempty"`
	// Cluster, if set, limits the answer to groups of that cluster (the
	// ClusterName their nodes registered with); empty means every cluster.
	Cluster string `msgpack:"cl,omitempty"`
}

// NodeRoute is one node of a group in a route.
type NodeRoute struct {
	NodeID string `msgpack:"n"`
	Addr   string `msgpack:"a"`
}

// GroupRoute is one broker group serving a topic.
type GroupRoute struct {
	Group     string      `msgpack:"g"`
	Cluster   string      `msgpack:"cl,omitempty"` // the cluster the group registered with
	Queues    uint32      `msgpack:"q"`
	Perm      uint8       `msgpack:"p"`
	Leader    *NodeRoute  `msgpack:"l,omitempty"` // nil while no leader is known
	Term      uint64      `msgpack:"tm"`
	Followers []NodeRoute `msgpack:"f,omitempty"`
}

// RouteInfo answers RouteRequest; Groups are sorted by name.
type RouteInfo struct {
	Topic  string       `msgpack:"t"`
	Groups []GroupRoute `msgpack:"g"`
}

// ClusterRequest asks for the registered nodes (CodeGetCluster). An empty
// body is the same as an empty Cluster: every cluster.
type ClusterRequest struct {
	Cluster string `msgpack:"cl,omitempty"`
}

// ClusterInfo answers CodeGetCluster: every registered node (of the asked
// cluster), sorted by group then node ID, with the time since its last
// heartbeat, and the broker groups of each cluster (RocketMQ's
// clusterAddrTable), each list sorted. Down lists, in the same order, the
// nodes that stopped registering recently (expired, disconnected or
// unregistered) as last heard, with Down set; they are in no route and
// not in Nodes, so peers that do not know the field see only live nodes.
type ClusterInfo struct {
	Nodes    []ClusterNode       `msgpack:"n"`
	Clusters map[string][]string `msgpack:"cs,omitempty"`
	Down     []ClusterNode       `msgpack:"dn,omitempty"`
}

// ClusterNode is a registered node as the NameServer last heard it.
type ClusterNode struct {
	NodeStatus  `msgpack:",inline"`
	StaleLeader bool  `msgpack:"sl,omitempty"` // claims leadership of an older term
	Down        bool  `msgpack:"dn,omitempty"` // no longer registered (ClusterInfo.Down)
	AgeMillis   int64 `msgpack:"age"`          // since the last heartbeat
}
