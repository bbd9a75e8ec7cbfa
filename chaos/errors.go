package chaos

import "errors"

var (
	// ErrUnavailable: the harness cannot run here (not root, no ip or
	// iptables, network namespaces refused). Tests skip on it.
	ErrUnavailable = errors.New("chaos: network namespaces unavailable")
	// ErrNoLeader: no node claimed leadership with the others agreeing
	// within the wait.
	ErrNoLeader = errors.New("chaos: no agreed leader")
	// ErrUnknownSchedule: a schedule name that Schedules does not list.
	ErrUnknownSchedule = errors.New("chaos: unknown schedule")
	// ErrNoFaultHooks: a storage fault asked of a binary built without
	// -tags rmqfault.
	ErrNoFaultHooks = errors.New("chaos: the rmq binary has no storage fault hooks (build it with -tags rmqfault)")
	// ErrClosed: the cluster was closed.
	ErrClosed = errors.New("chaos: cluster closed")
)
