package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// Queue locks are replicated: every grant, renewal and release is a Raft
// entry (fsm.LockQueues / fsm.UnlockQueues) stamped with the leader's
// clock, so a new leader, once past its Barrier, refuses every queue whose
// lease an earlier leader granted. Member liveness stays leader-local
// (groups.go). A lock request costs one entry per batch, and none when no
// requested queue can be granted; members renew every 20s, not per
// heartbeat.

// LockQueues grants clientID, a live member of group, each of queues that
// is free, its own already, or whose lease ended; it returns the queues
// clientID holds now. Each granted lock lasts LockLease from now in this
// leader's clock.
func (n *Node) LockQueues(ctx context.Context, group, clientID string, queues []fsm.QueueRef) ([]fsm.QueueRef, error) {
	if err := n.checkWritable(); err != nil {
		return nil, err
	}
	if err := validateLockTarget(group, clientID, queues); err != nil {
		return nil, err
	}
	if !n.groups.isMember(group, clientID) {
		return nil, fmt.Errorf("%w: client %q is not a live member of group %q; heartbeat first", ErrInvalidArgument, clientID, group)
	}
	now := n.cfg.Now().UnixMilli()
	// Propose only what the applied table says may be granted: a request
	// for queues other members hold costs no Raft entry. Apply decides
	// again with the same stamped time.
	held := map[fsm.QueueRef]fsm.QueueLock{}
	for _, l := range n.fsm.Locks(group) {
		held[fsm.QueueRef{Topic: l.Topic, QueueID: l.QueueID}] = l
	}
	var ask []fsm.QueueRef
	for _, q := range queues {
		if l, ok := held[q]; !ok || l.Owner == clientID || now >= l.Expires {
			ask = append(ask, q)
		}
	}
	if len(ask) == 0 {
		return nil, nil
	}
	data, err := fsm.Encode(&fsm.LockQueues{Group: group, ClientID: clientID, Queues: ask, Now: now, Lease: n.cfg.LockLease.Milliseconds()})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	res, err := n.propose(ctx, data)
	if err != nil {
		return nil, mapFSMError(err)
	}
	lr, ok := res.(*fsm.LockResult)
	if !ok {
		return nil, fmt.Errorf("broker: lock apply returned %T", res)
	}
	return lr.Granted, nil
}

// UnlockQueues releases the queues (all of them when all is set) that
// clientID holds in group. Queues it does not hold are ignored; when it
// holds none of them no Raft entry is written.
func (n *Node) UnlockQueues(ctx context.Context, group, clientID string, queues []fsm.QueueRef, all bool) error {
	if err := n.checkWritable(); err != nil {
		return err
	}
	if err := validateLockTarget(group, clientID, queues); err != nil {
		return err
	}
	want := map[fsm.QueueRef]bool{}
	for _, q := range queues {
		want[q] = true
	}
	holds := false
	for _, l := range n.fsm.Locks(group) {
		if l.Owner == clientID && (all || want[fsm.QueueRef{Topic: l.Topic, QueueID: l.QueueID}]) {
			holds = true
			break
		}
	}
	if !holds {
		return nil
	}
	cmd := &fsm.UnlockQueues{Group: group, ClientID: clientID, All: all}
	if !all {
		cmd.Queues = queues
	}
	return n.proposeCommand(ctx, cmd)
}

// LeaveGroup removes a member at once and releases its queue locks.
func (n *Node) LeaveGroup(ctx context.Context, group, clientID string) error {
	n.groups.leave(group, clientID)
	return n.UnlockQueues(ctx, group, clientID, nil, true)
}

func validateLockTarget(group, clientID string, queues []fsm.QueueRef) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if clientID == "" || len(clientID) > 255 {
		return fmt.Errorf("%w: client id length %d outside [1, 255]", ErrInvalidArgument, len(clientID))
	}
	if len(queues) > fsm.MaxLockQueues {
		return fmt.Errorf("%w: %d queues in one lock request; at most %d", ErrInvalidArgument, len(queues), fsm.MaxLockQueues)
	}
	for _, q := range queues {
		if err := ValidateTopicName(q.Topic); err != nil {
			return err
		}
	}
	return nil
}

// queueOwners returns the holders of group's unexpired locks.
func (n *Node) queueOwners(group string) map[fsm.QueueRef]string {
	now := n.cfg.Now().UnixMilli()
	out := map[fsm.QueueRef]string{}
	for _, l := range n.fsm.Locks(group) {
		if now < l.Expires {
			out[fsm.QueueRef{Topic: l.Topic, QueueID: l.QueueID}] = l.Owner
		}
	}
	return out
}

// runLockJanitor is the leader-only service that releases the locks of
// members that are gone (expired here, or never heartbeated to this
// leader) so their queues move before the lease ends. It releases a lock
// only clientLockTrust after its last grant, when the member can no longer
// be consuming under it, and says so in the command (GrantedBefore) so a
// renewal that commits first keeps the lock.
func (n *Node) runLockJanitor(ctx context.Context) error {
	t := time.NewTicker(min(n.cfg.MemberTimeout/2, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n.releaseDeparted(ctx, n.cfg.Now())
	}
}

func (n *Node) releaseDeparted(ctx context.Context, now time.Time) {
	cutoff := now.Add(-clientLockTrust).UnixMilli()
	type owner struct{ group, client string }
	var due []owner
	seen := map[owner]bool{}
	for _, l := range n.fsm.Locks("") {
		o := owner{l.Group, l.Owner}
		if l.Granted >= cutoff || seen[o] || n.groups.isMember(l.Group, l.Owner) {
			continue
		}
		seen[o] = true
		due = append(due, o)
	}
	for _, o := range due {
		actx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		err := n.applyCommand(actx, &fsm.UnlockQueues{Group: o.group, ClientID: o.client, All: true, GrantedBefore: cutoff})
		cancel()
		if err != nil {
			n.log.Warn("release locks of departed member", "consumer-group", o.group, "client-id", o.client, "error", err)
			return
		}
		n.log.Info("released locks of departed member", "consumer-group", o.group, "client-id", o.client)
	}
}
