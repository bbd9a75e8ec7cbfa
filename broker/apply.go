package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rmq-dev/rmq/fsm"
)

// The one bridge from a caller's context to raft's timeout-based Apply,
// and the mapping of raft's and the fsm's errors to the broker's. Every
// write other than a send (which the batcher packs) goes through propose,
// after exactly one writability check (apply, or the operation itself);
// leader services act only through it.

// applyError maps raft's errors to the broker's: whether the write may
// have happened decides whether a retry can duplicate.
func (n *Node) applyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: raft enqueue timed out", ErrLeaderNotReady)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: leadership lost before commit", ErrIndeterminate)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrIndeterminate, ErrClosed)
	}
	return fmt.Errorf("%w: %w", ErrIndeterminate, err)
}

// apply checks that this node may write, then proposes one control
// command and waits for its result.
func (n *Node) apply(ctx context.Context, data []byte) (any, error) {
	if err := n.checkWritable(); err != nil {
		return nil, err
	}
	return n.propose(ctx, data)
}

// propose is the broker's one bridge from a context to raft's
// timeout-based Apply, for operations that called checkWritable already
// (before their look-ups, so a follower answers "not leader" first): each
// write is checked once. Raft itself refuses a proposal on a node that lost
// leadership in between (ErrNotLeader, mapped by applyError).
func (n *Node) propose(ctx context.Context, data []byte) (any, error) {
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	f := n.raft.Apply(data, timeout)
	done := futureDone(f)
	select {
	case err := <-done:
		if err != nil {
			return nil, n.applyError(err)
		}
		if rerr, ok := f.Response().(error); ok && rerr != nil {
			return nil, rerr
		}
		return f.Response(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrIndeterminate, ctx.Err())
	}
}

// await waits for f, or until Raft has shut down. Raft v1.7.3 does not
// answer every future on Shutdown: an entry committed but still queued for
// its FSM goroutine when that goroutine stops is never answered, and a
// goroutine waiting for it would block Close forever (seen: a test killed
// a leader mid-load and its completer hung in Abort). After Raft is down
// such an entry counts as ErrRaftShutdown (indeterminate to a sender); the
// helper goroutine of an unanswered future outlives the node.
func (n *Node) await(f raft.Future) error {
	done := futureDone(f)
	select {
	case err := <-done:
		return err
	case <-n.raftDown:
		select {
		case err := <-done:
			return err
		default:
			return raft.ErrRaftShutdown
		}
	}
}

// futureDone returns a channel that receives f's error once raft answers
// f. Its goroutine is the only one that may outlive a node (an unanswered
// future, see await); goleak checks elsewhere ignore it by this name.
func futureDone(f raft.Future) <-chan error {
	done := make(chan error, 1)
	go waitFuture(f, done)
	return done
}

// waitFuture is futureDone's goroutine, named so leak checks can tell it
// from a goroutine of ours that should have ended.
func waitFuture(f raft.Future, done chan<- error) { done <- f.Error() }

// applyCommand encodes cmd and proposes it with apply.
func (n *Node) applyCommand(ctx context.Context, cmd fsm.Command) error {
	if err := n.checkWritable(); err != nil {
		return err
	}
	return n.proposeCommand(ctx, cmd)
}

// proposeCommand encodes cmd and proposes it with propose: for operations
// that checked writability already.
func (n *Node) proposeCommand(ctx context.Context, cmd fsm.Command) error {
	data, err := fsm.Encode(cmd)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	_, err = n.propose(ctx, data)
	return mapFSMError(err)
}

// mapFSMError turns the state machine's errors into the broker's.
func mapFSMError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fsm.ErrTopicNotFound):
		return fmt.Errorf("%w: %w", ErrTopicNotFound, err)
	case errors.Is(err, fsm.ErrTopicExists):
		return fmt.Errorf("%w: %w", ErrTopicExists, err)
	case errors.Is(err, fsm.ErrInvalidCommand):
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return err
}
