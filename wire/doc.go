// Package wire is rmq's network protocol, shared by the client, the broker
// and the NameServer. It imports only the standard library, msgpack,
// internal/msgpackguard (the length-checked decode it shares with fsm) and
// internal/tlsconf (the TLS dial).
//
// A connection carries length-prefixed frames in both directions (see
// Frame for the byte layout). Every request has a 64-bit ID chosen by the
// sender, so many requests can be in flight on one connection; the
// response carries the same ID and the FlagResponse bit. One-way requests
// (FlagOneway) get no response. Request bodies are msgpack; a response's
// Code is CodeOK or an error code from the table in errors.go, whose body
// then carries an ErrorBody (message; for "not leader" the leader's
// address; for "offset moved" and "offset illegal" the queue's valid
// [MinOffset, MaxOffset]). A SendResponse carries a code and message per
// message, so one refused message does not fail the others of its request.
//
// Frames are bounded: a length prefix above the configured maximum
// (DefaultMaxFrame, 16 MiB as in RocketMQ) or below the header size is
// rejected before any allocation, and the peer closes that connection
// with a logged reason. ReadFrame allocates at most the frame's length.
// FuzzDecodeFrame checks that no input panics or over-reads.
//
// Conn is the client side: Dial starts one reader goroutine that matches
// responses to pending Calls by ID and ends when the connection dies or
// Close is called; writes are serialised by a mutex. Serve is the server
// side: one reader goroutine per connection and one goroutine per request
// (bounded by MaxInflight), all stopped and waited for when Serve's
// context ends. Handlers return an *Error to answer with a specific code.
// A client pipelines with Start (write now) and Pending.Wait (the answer
// later); requests started one after the other are written in that order.
// Requests run concurrently on the server, so for the codes
// ServerConfig.InOrder names each request also gets an Order (order.go):
// its handler waits at Order.Wait until the request that arrived before it
// on the connection called Done (or returned), which lets the broker put a
// client's pipelined sends into its commit queue in the order they were
// sent while decoding and waiting for the commit still overlap.
// Message bodies (messages.go) use short msgpack tags; new fields must be
// optional so older peers keep working. Request codes are in codes.go.
//
// The client checks the first bytes a server sends: a length within the
// limit followed by the version byte. Anything else is another protocol
// (an HTTP status line, a RocketMQ remoting frame), reported as a
// *NotRMQError naming the server and its first bytes; callers do not
// retry it. A TLS alert there means the port takes TLS only and this
// client dialed in plaintext: that error matches ErrTLSRequired (and
// ErrNotRMQ) and says to give the client a CA.
//
// DialTLS dials with a *tls.Config (nil: plaintext, as Dial) and completes
// the handshake before it returns; a failed handshake matches
// ErrTLSHandshake and its message hints at the cause (an unknown CA, a
// plaintext server, a refused client certificate). Frames are the same
// inside TLS.
//
// # Request codes
//
// Every request code, the server that answers it, and its bodies (the
// types in messages.go; Empty is an empty msgpack map). codes.go holds
// the numbers; TestDocListsEveryCode keeps this table complete.
//
//	code  name                  server     request                  response
//	  10  CodeSend              broker     SendRequest              SendResponse (a result per message)
//	  11  CodePull              broker     PullRequest              PullResponse
//	  20  CodeCreateTopic       broker     TopicRequest             TopicInfo
//	  21  CodeUpdateTopic       broker     TopicRequest (0 = keep)  TopicInfo
//	  22  CodeDeleteTopic       broker     TopicRequest             Empty
//	  23  CodeListTopics        broker     Empty                    TopicList
//	  24  CodeTopicStatus       broker     TopicRequest             TopicStatus
//	  30  CodeCommitOffsets     broker     CommitOffsetsRequest     Empty (may be one-way)
//	  31  CodeQueryOffset       broker     QueryOffsetRequest       QueryOffsetResponse
//	  32  CodeSearchOffset      broker     SearchOffsetRequest      QueryOffsetResponse
//	  33  CodeResetOffsets      broker     ResetOffsetsRequest      ResetOffsetsResponse
//	  34  CodeSendBack          broker     SendBackRequest          SendBackResponse
//	  35  CodeDeadLetters       broker     DeadLettersRequest       PullResponse
//	  36  CodeResendDead        broker     ResendDeadRequest        ResendDeadResponse
//	  37  CodeReceive           broker     ReceiveRequest           ReceiveResponse (pop consumption)
//	  38  CodeAck               broker     AckRequest               AckResponse (a code per handle)
//	  39  CodeChangeInvis       broker     ChangeInvisibleRequest   ChangeInvisibleResponse
//	  40  CodeHeartbeat         broker     HeartbeatRequest         HeartbeatResponse
//	  41  CodeLeaveGroup        broker     LeaveGroupRequest        Empty
//	  42  CodeLockQueues        broker     LockRequest              LockResponse
//	  43  CodeUnlockQueues      broker     LockRequest              Empty
//	  44  CodeListGroups        broker     Empty                    GroupList
//	  45  CodeDescribeGroup     broker     DescribeGroupRequest     GroupDescription
//	  50  CodeNodeStatus        broker     Empty                    NodeStatus
//	  51  CodeTransfer          broker     TransferRequest          Empty
//	  60  CodeProducerHello     broker     ProducerHello            Empty (the connection takes server requests)
//	  61  CodeSendReply         broker     ReplyRequest             Empty once the requester took it (any node)
//	  62  CodePushReply         client     PushReply                Empty (sent by a broker on a hello'd connection)
//	  63  CodeEndTx             broker     EndTxRequest             EndTxResponse
//	  64  CodeCheckTx           producer   CheckTxRequest           CheckTxResponse (sent by the broker)
//	  65  CodeListTx            broker     ListTxRequest            TxList
//	  66  CodeQueryMessages     broker     QueryMessagesRequest     QueryMessagesResponse (any replica)
//	  70  CodeAddNode           broker     MemberRequest            MemberList (leader: AddNonvoter)
//	  71  CodePromoteNode       broker     MemberRequest            MemberList (leader: AddVoter)
//	  72  CodeRemoveNode        broker     MemberRequest            MemberList (leader; hands over first if it is the one)
//	  73  CodeListMembers       broker     Empty                    MemberList (any node)
//	 100  CodeRegisterBroker    namesrv    RegisterBrokerRequest    Empty
//	 101  CodeUnregisterBroker  namesrv    UnregisterBrokerRequest  Empty
//	 102  CodeGetRoute          namesrv    RouteRequest             RouteInfo
//	 103  CodeGetCluster        namesrv    ClusterRequest or Empty  ClusterInfo
//
// Writes (send, topic changes, offsets, locks, transfer) go to a group's
// leader; a follower answers CodeNotLeader with the leader in ErrorBody.
// Reads (pull, status, query) may go to any replica.
//
// Access control: a request flagged FlagAuth carries an auth block
// (access key, unix-ms timestamp, HMAC-SHA256 signature over code |
// timestamp | body; see Auth and Sign) between the header and the body.
// Conn.SetCredentials signs every request of a connection; the server
// hands the block to its handler in Request.Auth, and brokers check it
// (package acl). Frames without the flag are unchanged. A refused
// request is answered CodeAccessDenied with a message naming what is
// missing; NameServers ignore the block.
//
// Versioning: the header's version byte is 1. A peer that sees another
// version closes the connection with ErrMalformed; a later version will
// negotiate instead.
package wire
