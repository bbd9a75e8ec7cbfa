package broker

import (
	"context"

	"github.com/rmq-dev/rmq/fsm"
)

// nodeAPI lists every operation a client can ask a node for, each a
// method with the broker's own Go types that returns the package's errors
// (errors.go). Protocol adapters decode a request, call one of these and
// encode the answer: the rmq wire protocol in wire_adapter.go; the
// RocketMQ remoting protocol in remoting_adapter.go; the HTTP admin API
// is to be one alike. Which node may answer: writes (and Heartbeat, locks, resets)
// need the serving leader and answer *NotLeaderError elsewhere; reads and
// queries answer from any replica's applied state.
//
// The node's listeners are listed in run.go, its leader-only services in
// leader_services.go.
type nodeAPI interface {
	// Messages.
	Send(ctx context.Context, msgs []*fsm.Message) ([]SendResult, error)                       // send.go
	SendWith(ctx context.Context, msgs []*fsm.Message, opts SendOptions) ([]SendResult, error) // send.go
	Read(ctx context.Context, req ReadRequest) (ReadResult, error)                             // pull.go
	MessageAt(pos Position) (StoredMessage, error)                                             // pull.go
	SendBack(ctx context.Context, req SendBackRequest) (SendBackResult, error)                 // retry.go
	DeadLetters(ctx context.Context, group string, offset uint64, max int) (ReadResult, error) // retry.go
	ResendDeadLetters(ctx context.Context, group string, ids [][]byte, all bool) (int, error)  // retry.go

	// Topics.
	CreateTopic(ctx context.Context, spec TopicSpec) (fsm.Topic, error)    // topics.go
	UpdateTopic(ctx context.Context, u TopicUpdate) (fsm.Topic, error)     // topics.go
	DeleteTopic(ctx context.Context, name string) error                    // topics.go
	Topic(name string) (fsm.Topic, bool)                                   // topics.go
	Topics() []fsm.Topic                                                   // topics.go
	TopicStatus(name string) (TopicStatus, error)                          // topics.go
	QueueRange(topic string, queueID uint32) (min, next uint64, err error) // topics.go

	// Consumer offsets.
	CommitOffsets(ctx context.Context, group string, offsets []fsm.OffsetEntry, epoch uint64) error // offsets.go
	ConsumerOffset(group, topic string, queueID uint32) (uint64, bool)                              // offsets.go
	OffsetForTime(topic string, queueID uint32, ts int64) (uint64, error)                           // offsets.go
	ResetOffsets(ctx context.Context, group, topic string, ts int64) ([]fsm.OffsetEntry, error)     // offsets.go
	GroupResetEpoch(group string) uint64                                                            // offsets.go

	// Consumer groups and queue locks.
	Heartbeat(ctx context.Context, req HeartbeatRequest) (HeartbeatResult, error)                          // groups.go
	ListGroups() []string                                                                                  // groups.go
	GroupMembers(group string) []string                                                                    // groups.go
	DescribeGroup(group string) (GroupDescription, error)                                                  // groups.go
	LeaveGroup(ctx context.Context, group, clientID string) error                                          // locks.go
	LockQueues(ctx context.Context, group, clientID string, queues []fsm.QueueRef) ([]fsm.QueueRef, error) // locks.go
	UnlockQueues(ctx context.Context, group, clientID string, queues []fsm.QueueRef, all bool) error       // locks.go

	// The node itself.
	Status() Status                                          // status.go
	TransferLeadership(ctx context.Context, to string) error // leader.go

	// Membership (the group's Raft configuration; changes on the leader).
	Members() ([]Member, uint64, error)                 // membership.go
	AddNode(ctx context.Context, id, addr string) error // membership.go
	PromoteNode(ctx context.Context, id string) error   // membership.go
	RemoveNode(ctx context.Context, id string) error    // membership.go
}

var _ nodeAPI = (*Node)(nil)
