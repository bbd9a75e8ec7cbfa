package compat

import "strconv"

// Request codes (RocketMQ RequestCode.java; reference §3.4).
const (
	ReqSendMessage                      = 10
	ReqPullMessage                      = 11
	ReqQueryMessage                     = 12
	ReqQueryBrokerOffset                = 13
	ReqQueryConsumerOffset              = 14
	ReqUpdateConsumerOffset             = 15
	ReqUpdateAndCreateTopic             = 17
	ReqGetAllTopicConfig                = 21
	ReqGetBrokerRuntimeInfo             = 28
	ReqSearchOffsetByTimestamp          = 29
	ReqGetMaxOffset                     = 30
	ReqGetMinOffset                     = 31
	ReqGetEarliestMsgStoreTime          = 32
	ReqViewMessageByID                  = 33
	ReqHeartBeat                        = 34
	ReqUnregisterClient                 = 35
	ReqConsumerSendMsgBack              = 36
	ReqEndTransaction                   = 37
	ReqGetConsumerListByGroup           = 38
	ReqCheckTransactionState            = 39
	ReqNotifyConsumerIDsChanged         = 40
	ReqLockBatchMQ                      = 41
	ReqUnlockBatchMQ                    = 42
	ReqGetAllConsumerOffset             = 43
	ReqCheckClientConfig                = 46
	ReqGetClientConfig                  = 47
	ReqPutKVConfig                      = 100
	ReqGetKVConfig                      = 101
	ReqDeleteKVConfig                   = 102
	ReqRegisterBroker                   = 103
	ReqUnregisterBroker                 = 104
	ReqGetRouteInfoByTopic              = 105
	ReqGetBrokerClusterInfo             = 106
	ReqUpdateAndCreateSubscriptionGroup = 200
	ReqGetAllSubscriptionGroupConfig    = 201
	ReqGetTopicStatsInfo                = 202
	ReqGetConsumerConnectionList        = 203
	ReqGetProducerConnectionList        = 204
	ReqGetAllTopicListFromNameServer    = 206
	ReqGetConsumeStats                  = 208
	ReqDeleteTopicInBroker              = 215
	ReqDeleteTopicInNamesrv             = 216
	ReqResetConsumerClientOffset        = 220
	ReqGetConsumerStatusFromClient      = 221
	ReqInvokeBrokerToResetOffset        = 222
	ReqGetTopicsByCluster               = 224
	ReqGetConsumerRunningInfo           = 307
	ReqConsumeMessageDirectly           = 309
	ReqSendMessageV2                    = 310
	ReqSendBatchMessage                 = 320
	ReqSendReplyMessage                 = 324
	ReqSendReplyMessageV2               = 325
	ReqPushReplyMessageToClient         = 326
	ReqLitePullMessage                  = 361
	ReqQueryAssignment                  = 400
	ReqSetMessageRequestMode            = 401
	ReqPopMessage                       = 200050
	ReqAckMessage                       = 200051
	ReqPeekMessage                      = 200052
	ReqChangeMessageInvisibleTime       = 200053
	ReqNotification                     = 200054
	ReqPollingInfo                      = 200055
	ReqPopRollback                      = 200056
	ReqBatchAckMessage                  = 200151
	ReqUpdateBrokerConfig               = 25
	ReqGetBrokerConfig                  = 26
	ReqGetAllDelayOffset                = 45
	ReqWipeWritePermOfBroker            = 205
	ReqDeleteSubscriptionGroup          = 207
	ReqRegisterTopicInNamesrv           = 217
	ReqGetKVListByNamespace             = 219
	ReqQueryTopicConsumeByWho           = 300
	ReqGetSystemTopicListFromNS         = 304
	ReqGetBrokerConsumeStats            = 317
	ReqQueryConsumeQueue                = 321
	ReqAddWritePermOfBroker             = 327
	ReqGetTopicConfig                   = 351
	ReqGetSubscriptionGroupConfig       = 352
)

// Response codes (RemotingSysResponseCode.java, ResponseCode.java; reference §3.5).
const (
	RespSuccess                    = 0
	RespSystemError                = 1
	RespSystemBusy                 = 2
	RespRequestCodeNotSupported    = 3
	RespTransactionFailed          = 4
	RespFlushDiskTimeout           = 10
	RespSlaveNotAvailable          = 11
	RespFlushSlaveTimeout          = 12
	RespMessageIllegal             = 13
	RespServiceNotAvailable        = 14
	RespVersionNotSupported        = 15
	RespNoPermission               = 16
	RespTopicNotExist              = 17
	RespTopicExistAlready          = 18
	RespPullNotFound               = 19
	RespPullRetryImmediately       = 20
	RespPullOffsetMoved            = 21
	RespQueryNotFound              = 22
	RespSubscriptionParseFailed    = 23
	RespSubscriptionNotExist       = 24
	RespSubscriptionNotLatest      = 25
	RespSubscriptionGroupNotExist  = 26
	RespFilterDataNotExist         = 27
	RespFilterDataNotLatest        = 28
	RespInvalidParameter           = 29
	RespTransactionShouldCommit    = 200
	RespTransactionShouldRollback  = 201
	RespTransactionStateUnknow     = 202
	RespTransactionStateGroupWrong = 203
	RespNoBuyerID                  = 204
	RespNotInCurrentUnit           = 205
	RespConsumerNotOnline          = 206
	RespConsumeMsgTimeout          = 207
	RespNoMessage                  = 208
	RespPollingFull                = 209
	RespPollingTimeout             = 210
	RespBrokerNotExist             = 211
	RespFlowControl                = 215
	RespNotLeaderForQueue          = 501
	RespGoAway                     = 1500
	RespUserNotExist               = 3001
	RespPolicyNotExist             = 3002
)

var requestNames = map[int32]string{
	ReqSendMessage:                      "SEND_MESSAGE",
	ReqPullMessage:                      "PULL_MESSAGE",
	ReqQueryMessage:                     "QUERY_MESSAGE",
	ReqQueryBrokerOffset:                "QUERY_BROKER_OFFSET",
	ReqQueryConsumerOffset:              "QUERY_CONSUMER_OFFSET",
	ReqUpdateConsumerOffset:             "UPDATE_CONSUMER_OFFSET",
	ReqUpdateAndCreateTopic:             "UPDATE_AND_CREATE_TOPIC",
	ReqGetAllTopicConfig:                "GET_ALL_TOPIC_CONFIG",
	ReqGetBrokerRuntimeInfo:             "GET_BROKER_RUNTIME_INFO",
	ReqSearchOffsetByTimestamp:          "SEARCH_OFFSET_BY_TIMESTAMP",
	ReqGetMaxOffset:                     "GET_MAX_OFFSET",
	ReqGetMinOffset:                     "GET_MIN_OFFSET",
	ReqGetEarliestMsgStoreTime:          "GET_EARLIEST_MSG_STORETIME",
	ReqViewMessageByID:                  "VIEW_MESSAGE_BY_ID",
	ReqHeartBeat:                        "HEART_BEAT",
	ReqUnregisterClient:                 "UNREGISTER_CLIENT",
	ReqConsumerSendMsgBack:              "CONSUMER_SEND_MSG_BACK",
	ReqEndTransaction:                   "END_TRANSACTION",
	ReqGetConsumerListByGroup:           "GET_CONSUMER_LIST_BY_GROUP",
	ReqCheckTransactionState:            "CHECK_TRANSACTION_STATE",
	ReqNotifyConsumerIDsChanged:         "NOTIFY_CONSUMER_IDS_CHANGED",
	ReqLockBatchMQ:                      "LOCK_BATCH_MQ",
	ReqUnlockBatchMQ:                    "UNLOCK_BATCH_MQ",
	ReqGetAllConsumerOffset:             "GET_ALL_CONSUMER_OFFSET",
	ReqCheckClientConfig:                "CHECK_CLIENT_CONFIG",
	ReqGetClientConfig:                  "GET_CLIENT_CONFIG",
	ReqPutKVConfig:                      "PUT_KV_CONFIG",
	ReqGetKVConfig:                      "GET_KV_CONFIG",
	ReqDeleteKVConfig:                   "DELETE_KV_CONFIG",
	ReqRegisterBroker:                   "REGISTER_BROKER",
	ReqUnregisterBroker:                 "UNREGISTER_BROKER",
	ReqGetRouteInfoByTopic:              "GET_ROUTEINFO_BY_TOPIC",
	ReqGetBrokerClusterInfo:             "GET_BROKER_CLUSTER_INFO",
	ReqUpdateAndCreateSubscriptionGroup: "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP",
	ReqGetAllSubscriptionGroupConfig:    "GET_ALL_SUBSCRIPTIONGROUP_CONFIG",
	ReqGetTopicStatsInfo:                "GET_TOPIC_STATS_INFO",
	ReqGetConsumerConnectionList:        "GET_CONSUMER_CONNECTION_LIST",
	ReqGetProducerConnectionList:        "GET_PRODUCER_CONNECTION_LIST",
	ReqGetAllTopicListFromNameServer:    "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
	ReqGetConsumeStats:                  "GET_CONSUME_STATS",
	ReqDeleteTopicInBroker:              "DELETE_TOPIC_IN_BROKER",
	ReqDeleteTopicInNamesrv:             "DELETE_TOPIC_IN_NAMESRV",
	ReqResetConsumerClientOffset:        "RESET_CONSUMER_CLIENT_OFFSET",
	ReqGetConsumerStatusFromClient:      "GET_CONSUMER_STATUS_FROM_CLIENT",
	ReqInvokeBrokerToResetOffset:        "INVOKE_BROKER_TO_RESET_OFFSET",
	ReqGetTopicsByCluster:               "GET_TOPICS_BY_CLUSTER",
	ReqGetConsumerRunningInfo:           "GET_CONSUMER_RUNNING_INFO",
	ReqConsumeMessageDirectly:           "CONSUME_MESSAGE_DIRECTLY",
	ReqSendMessageV2:                    "SEND_MESSAGE_V2",
	ReqSendBatchMessage:                 "SEND_BATCH_MESSAGE",
	ReqSendReplyMessage:                 "SEND_REPLY_MESSAGE",
	ReqSendReplyMessageV2:               "SEND_REPLY_MESSAGE_V2",
	ReqPushReplyMessageToClient:         "PUSH_REPLY_MESSAGE_TO_CLIENT",
	ReqLitePullMessage:                  "LITE_PULL_MESSAGE",
	ReqQueryAssignment:                  "QUERY_ASSIGNMENT",
	ReqSetMessageRequestMode:            "SET_MESSAGE_REQUEST_MODE",
	ReqPopMessage:                       "POP_MESSAGE",
	ReqAckMessage:                       "ACK_MESSAGE",
	ReqPeekMessage:                      "PEEK_MESSAGE",
	ReqChangeMessageInvisibleTime:       "CHANGE_MESSAGE_INVISIBLETIME",
	ReqNotification:                     "NOTIFICATION",
	ReqPollingInfo:                      "POLLING_INFO",
	ReqPopRollback:                      "POP_ROLLBACK",
	ReqBatchAckMessage:                  "BATCH_ACK_MESSAGE",
	ReqUpdateBrokerConfig:               "UPDATE_BROKER_CONFIG",
	ReqGetBrokerConfig:                  "GET_BROKER_CONFIG",
	ReqGetAllDelayOffset:                "GET_ALL_DELAY_OFFSET",
	ReqWipeWritePermOfBroker:            "WIPE_WRITE_PERM_OF_BROKER",
	ReqDeleteSubscriptionGroup:          "DELETE_SUBSCRIPTIONGROUP",
	ReqRegisterTopicInNamesrv:           "REGISTER_TOPIC_IN_NAMESRV",
	ReqGetKVListByNamespace:             "GET_KVLIST_BY_NAMESPACE",
	ReqQueryTopicConsumeByWho:           "QUERY_TOPIC_CONSUME_BY_WHO",
	ReqGetSystemTopicListFromNS:         "GET_SYSTEM_TOPIC_LIST_FROM_NS",
	ReqGetBrokerConsumeStats:            "GET_BROKER_CONSUME_STATS",
	ReqQueryConsumeQueue:                "QUERY_CONSUME_QUEUE",
	ReqAddWritePermOfBroker:             "ADD_WRITE_PERM_OF_BROKER",
	ReqGetTopicConfig:                   "GET_TOPIC_CONFIG",
	ReqGetSubscriptionGroupConfig:       "GET_SUBSCRIPTIONGROUP_CONFIG",
}

var responseNames = map[int32]string{
	RespSuccess:                    "SUCCESS",
	RespSystemError:                "SYSTEM_ERROR",
	RespSystemBusy:                 "SYSTEM_BUSY",
	RespRequestCodeNotSupported:    "REQUEST_CODE_NOT_SUPPORTED",
	RespTransactionFailed:          "TRANSACTION_FAILED",
	RespFlushDiskTimeout:           "FLUSH_DISK_TIMEOUT",
	RespSlaveNotAvailable:          "SLAVE_NOT_AVAILABLE",
	RespFlushSlaveTimeout:          "FLUSH_SLAVE_TIMEOUT",
	RespMessageIllegal:             "MESSAGE_ILLEGAL",
	RespServiceNotAvailable:        "SERVICE_NOT_AVAILABLE",
	RespVersionNotSupported:        "VERSION_NOT_SUPPORTED",
	RespNoPermission:               "NO_PERMISSION",
	RespTopicNotExist:              "TOPIC_NOT_EXIST",
	RespTopicExistAlready:          "TOPIC_EXIST_ALREADY",
	RespPullNotFound:               "PULL_NOT_FOUND",
	RespPullRetryImmediately:       "PULL_RETRY_IMMEDIATELY",
	RespPullOffsetMoved:            "PULL_OFFSET_MOVED",
	RespQueryNotFound:              "QUERY_NOT_FOUND",
	RespSubscriptionParseFailed:    "SUBSCRIPTION_PARSE_FAILED",
	RespSubscriptionNotExist:       "SUBSCRIPTION_NOT_EXIST",
	RespSubscriptionNotLatest:      "SUBSCRIPTION_NOT_LATEST",
	RespSubscriptionGroupNotExist:  "SUBSCRIPTION_GROUP_NOT_EXIST",
	RespFilterDataNotExist:         "FILTER_DATA_NOT_EXIST",
	RespFilterDataNotLatest:        "FILTER_DATA_NOT_LATEST",
	RespInvalidParameter:           "INVALID_PARAMETER",
	RespTransactionShouldCommit:    "TRANSACTION_SHOULD_COMMIT",
	RespTransactionShouldRollback:  "TRANSACTION_SHOULD_ROLLBACK",
	RespTransactionStateUnknow:     "TRANSACTION_STATE_UNKNOW",
	RespTransactionStateGroupWrong: "TRANSACTION_STATE_GROUP_WRONG",
	RespNoBuyerID:                  "NO_BUYER_ID",
	RespNotInCurrentUnit:           "NOT_IN_CURRENT_UNIT",
	RespConsumerNotOnline:          "CONSUMER_NOT_ONLINE",
	RespConsumeMsgTimeout:          "CONSUME_MSG_TIMEOUT",
	RespNoMessage:                  "NO_MESSAGE",
	RespPollingFull:                "POLLING_FULL",
	RespPollingTimeout:             "POLLING_TIMEOUT",
	RespBrokerNotExist:             "BROKER_NOT_EXIST",
	RespFlowControl:                "FLOW_CONTROL",
	RespNotLeaderForQueue:          "NOT_LEADER_FOR_QUEUE",
	RespGoAway:                     "GO_AWAY",
	RespUserNotExist:               "USER_NOT_EXIST",
	RespPolicyNotExist:             "POLICY_NOT_EXIST",
}

// RequestName is the RocketMQ name of a request code ("SEND_MESSAGE"), or
// "code N" for a code this package does not know.
func RequestName(code int32) string {
	if n, ok := requestNames[code]; ok {
		return n
	}
	return "code " + strconv.FormatInt(int64(code), 10)
}

// ResponseName is the RocketMQ name of a response code ("SUCCESS"), or
// "code N" for a code this package does not know.
func ResponseName(code int32) string {
	if n, ok := responseNames[code]; ok {
		return n
	}
	return "code " + strconv.FormatInt(int64(code), 10)
}
