package wire

// Request codes. Stable numbers: never reuse or renumber one.
const (
	// Broker requests.
	CodeSend          uint16 = 10 // SendRequest -> SendResponse
	CodePull          uint16 = 11 // PullRequest -> PullResponse
	CodeCreateTopic   uint16 = 20 // TopicRequest -> TopicInfo
	CodeUpdateTopic   uint16 = 21 // TopicRequest -> TopicInfo
	CodeDeleteTopic   uint16 = 22 // TopicRequest -> Empty
	CodeListTopics    uint16 = 23 // Empty -> TopicList
	CodeTopicStatus   uint16 = 24 // TopicRequest -> TopicStatus
	CodeCommitOffsets uint16 = 30 // CommitOffsetsRequest -> Empty (may be one-way)
	CodeQueryOffset   uint16 = 31 // QueryOffsetRequest -> QueryOffsetResponse
	CodeSearchOffset  uint16 = 32 // SearchOffsetRequest -> QueryOffsetResponse
	CodeResetOffsets  uint16 = 33 // ResetOffsetsRequest -> ResetOffsetsResponse
	CodeSendBack      uint16 = 34 // SendBackRequest -> SendBackResponse
	CodeDeadLetters   uint16 = 35 // DeadLettersRequest -> PullResponse
	CodeResendDead    uint16 = 36 // ResendDeadRequest -> ResendDeadResponse
	CodeReceive       uint16 = 37 // ReceiveRequest -> ReceiveResponse (pop consumption)
	CodeAck           uint16 = 38 // AckRequest -> AckResponse
	CodeChangeInvis   uint16 = 39 // ChangeInvisibleRequest -> ChangeInvisibleResponse
	CodeHeartbeat     uint16 = 40 // HeartbeatRequest -> HeartbeatResponse
	CodeLeaveGroup    uint16 = 41 // LeaveGroupRequest -> Empty
	CodeLockQueues    uint16 = 42 // LockRequest -> LockResponse
	CodeUnlockQueues  uint16 = 43 // LockRequest -> Empty
	CodeListGroups    uint16 = 44 // Empty -> GroupList
	CodeDescribeGroup uint16 = 45 // DescribeGroupRequest -> GroupDescription
	CodeNodeStatus    uint16 = 50 // Empty -> NodeStatus
	CodeTransfer      uint16 = 51 // TransferRequest -> Empty
	CodeProducerHello uint16 = 60 // ProducerHello -> Empty: this connection takes server-initiated requests
	CodeEndTx         uint16 = 63 // EndTxRequest -> EndTxResponse
	CodeCheckTx       uint16 = 64 // broker -> producer: CheckTxRequest -> CheckTxResponse
	CodeListTx        uint16 = 65 // ListTxRequest -> TxList
	CodeQueryMessages uint16 = 66 // QueryMessagesRequest -> QueryMessagesResponse
	CodeSendReply     uint16 = 61 // ReplyRequest -> Empty: a responder's reply, pushed to its requester
	CodePushReply     uint16 = 62 // PushReply -> Empty, broker to client: a reply to the client's Request

	// Membership (the group's Raft configuration), served by the leader.
	CodeAddNode     uint16 = 70 // MemberRequest -> MemberList: add as a non-voter
	CodePromoteNode uint16 = 71 // MemberRequest -> MemberList: make a non-voter a voter
	CodeRemoveNode  uint16 = 72 // MemberRequest -> MemberList (the leader hands over first)
	CodeListMembers uint16 = 73 // Empty -> MemberList (any node: its latest configuration)

	// NameServer requests.
	CodeRegisterBroker   uint16 = 100 // RegisterBrokerRequest -> Empty
	CodeUnregisterBroker uint16 = 101 // UnregisterBrokerRequest -> Empty
	CodeGetRoute         uint16 = 102 // RouteRequest -> RouteInfo
	CodeGetCluster       uint16 = 103 // ClusterRequest (or Empty) -> ClusterInfo
)
