package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rmq-dev/rmq/wire"
)

// settleRounds is how many heartbeat rounds a consumer keeps its current
// queues after reaching a new group leader (failover) before moving any:
// the other members need a round to re-register there, and allocating
// from a partial member list would shuffle every queue twice.
const settleRounds = 2

func (c *Consumer) rebalanceLoop() {
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.loops.Done():
			return
		case <-t.C:
		}
		if err := c.rebalance(c.loops); err != nil && c.loops.Err() == nil {
			c.log.Warn("rebalance", "error", err)
		}
	}
}

func (c *Consumer) commitLoop() {
	t := time.NewTicker(c.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-c.loops.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.loops, max(c.cfg.CommitInterval, 3*time.Second))
		if err := c.commitRuns(ctx, c.ownedRuns()); err != nil && c.loops.Err() == nil {
			c.log.Warn("commit offsets", "error", err)
		}
		cancel()
	}
}

func (c *Consumer) ownedRuns() []*queueRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	runs := make([]*queueRun, 0, len(c.queues))
	for _, qr := range c.queues {
		runs = append(runs, qr)
	}
	return runs
}

// rebalance is one heartbeat round: heartbeat every broker group that
// holds a subscribed topic, allocate queues among the live members,
// release queues no longer ours (commit, then unlock), lock and start
// new ones, renew locks of owned ones when due, and apply offset resets.
func (c *Consumer) rebalance(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(2*c.cfg.HeartbeatInterval, 2*time.Second))
	defer cancel()

	// Queues per topic, and topics per broker group.
	all := make(map[string][]Queue)
	groupTopics := make(map[string][]string)
	var firstErr error
	noRetryTopic := false
	for topic := range c.subs {
		tr, err := c.router.route(ctx, topic, false, routeMaxAge)
		if err != nil {
			if topic == c.retryTopic && errors.Is(err, ErrTopicNotFound) {
				noRetryTopic = true // no retry yet: the broker creates it with the first
				continue
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, g := range tr.groups {
			if g.Perm != 0 && g.Perm&permRead == 0 {
				continue
			}
			for i := uint32(0); i < g.Queues; i++ {
				all[topic] = append(all[topic], Queue{Topic: topic, Group: g.Group, QueueID: i})
			}
			groupTopics[g.Group] = append(groupTopics[g.Group], topic)
		}
	}

	// Heartbeats.
	members := make(map[string][]string) // broker group -> members
	settling := make(map[string]bool)
	var resets []string
	// Every group is heartbeated at once: one whose leader is gone (a
	// call waiting out the failover) must not use up the round's budget
	// of the others.
	type answer struct {
		addr string
		resp wire.HeartbeatResponse
	}
	type beat struct {
		ans answer
		err error
	}
	beats := make(map[string]*beat, len(groupTopics))
	var wg sync.WaitGroup
	for g, topics := range groupTopics {
		sort.Strings(topics)
		b := &beat{}
		beats[g] = b
		wg.Add(1)
		go func() { // bounded by ctx; waited for below
			defer wg.Done()
			b.ans, b.err = leaderCall(ctx, c.router, g, 0, func(ctx context.Context, a string) (answer, error) {
				out := answer{addr: a}
				err := c.pool.call(ctx, a, wire.CodeHeartbeat, wire.HeartbeatRequest{
					Group: c.cfg.Group, ClientID: c.cfg.ClientID, Mode: c.cfg.Mode.String(), Topics: topics,
				}, &out.resp)
				return out, err
			})
		}()
	}
	wg.Wait()
	for g, b := range beats {
		addr, resp, err := b.ans.addr, b.ans.resp, b.err
		c.mu.Lock()
		if err != nil {
			c.hbLeader[g] = ""
			settling[g] = true
			c.mu.Unlock()
			if errors.Is(err, ErrGroupModeMismatch) || errors.Is(err, ErrAccessDenied) {
				return err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if prev, ok := c.hbLeader[g]; ok && prev != addr {
			c.settle[g] = settleRounds
		}
		c.hbLeader[g] = addr
		if c.settle[g] > 0 {
			c.settle[g]--
			settling[g] = true
		}
		if e, ok := c.epochs[g]; ok && resp.ResetEpoch > e {
			resets = append(resets, g)
		}
		c.epochs[g] = resp.ResetEpoch
		c.mu.Unlock()
		members[g] = resp.Members
	}
	for _, g := range resets {
		c.log.Info("offsets reset, re-reading committed offsets", "broker-group", g)
		for _, qr := range c.ownedRuns() {
			if qr.q.Group == g {
				qr.requestReset()
			}
		}
	}

	// Desired assignment.
	desired := make(map[Queue]bool)
	keep := make(map[string]bool) // topics whose assignment must not change this round
	for topic, qs := range all {
		if c.cfg.Mode == Broadcasting {
			for _, q := range qs {
				desired[q] = true
			}
			continue
		}
		var cids []string
		ok := false
		for _, q := range qs { // members of the first reachable group
			if settling[q.Group] {
				keep[topic] = true
			}
			if m, found := members[q.Group]; found && !ok {
				cids, ok = m, true
			}
		}
		if !ok {
			keep[topic] = true
			continue
		}
		for _, q := range AllocateAveragely(qs, cids, c.cfg.ClientID) {
			desired[q] = true
		}
	}
	for topic := range c.subs {
		if _, ok := all[topic]; !ok && !(topic == c.retryTopic && noRetryTopic) {
			keep[topic] = true // route unknown this round
		}
	}

	// Release what is no longer ours.
	c.mu.Lock()
	owned := make(map[Queue]*queueRun, len(c.queues))
	for q, qr := range c.queues {
		owned[q] = qr
	}
	c.mu.Unlock()
	for q, qr := range owned {
		if !desired[q] && !keep[q.Topic] {
			c.log.Info("queue released", "queue", q.String())
			qr.requestStop(true)
			delete(owned, q)
		}
	}

	if c.cfg.Mode == Broadcasting {
		c.mu.Lock()
		for q := range desired {
			if _, ok := c.queues[q]; !ok && c.state == stateStarted {
				c.startQueue(q, c.cfg.Now())
			}
		}
		c.noteAssignment(desired, keep)
		c.mu.Unlock()
		return firstErr
	}

	// Lock wanted queues and renew owned ones, per broker group. A
	// group's owned queues are renewed together once one is due
	// (lockRenew): each lock request is a Raft entry on the broker, so a
	// member writes about one per renewal period, not one per round.
	want := make(map[string][]Queue)
	renew := make(map[string]bool)
	for q, qr := range owned {
		qr.mu.Lock()
		due := c.cfg.Now().Sub(qr.lockedAt) >= lockRenew
		qr.mu.Unlock()
		renew[q.Group] = renew[q.Group] || due
	}
	for q := range owned {
		if renew[q.Group] {
			want[q.Group] = append(want[q.Group], q)
		}
	}
	for q := range desired {
		if _, ok := owned[q]; !ok && !keep[q.Topic] {
			want[q.Group] = append(want[q.Group], q)
		}
	}
	for g, qs := range want {
		if _, ok := members[g]; !ok {
			continue // leader unreachable this round: keep going as we are
		}
		sent := c.cfg.Now() // the lock is trusted from here, not from the answer
		locked, err := c.lock(ctx, g, qs)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		c.mu.Lock()
		for _, q := range qs {
			qr, isOwned := c.queues[q]
			switch {
			case locked[q] && isOwned:
				qr.mu.Lock()
				qr.lockedAt = sent
				qr.mu.Unlock()
			case locked[q] && c.state == stateStarted:
				if isStopping(c, q) {
					continue // the previous run of q is still finishing
				}
				c.log.Info("queue acquired", "queue", q.String())
				c.startQueue(q, sent)
			case !locked[q] && isOwned:
				c.log.Warn("queue lock held by another member, stopping", "queue", q.String())
				qr.requestStop(true)
			}
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.noteAssignment(desired, keep)
	c.mu.Unlock()
	return firstErr
}

// isStopping reports whether a stopped run of q has not finished; called
// with c.mu held. (Finished runs delete themselves from c.queues.)
func isStopping(c *Consumer, q Queue) bool {
	qr, ok := c.queues[q]
	return ok && qr.stopPull.Err() != nil
}

func (c *Consumer) lock(ctx context.Context, group string, qs []Queue) (map[Queue]bool, error) {
	req := wire.LockRequest{Group: c.cfg.Group, ClientID: c.cfg.ClientID}
	for _, q := range qs {
		req.Queues = append(req.Queues, wire.QueueOffset{Topic: q.Topic, QueueID: q.QueueID})
	}
	var resp wire.LockResponse
	if err := c.router.callLeader(ctx, group, 0, wire.CodeLockQueues, req, &resp); err != nil {
		return nil, err
	}
	out := make(map[Queue]bool, len(resp.Locked))
	for _, l := range resp.Locked {
		out[Queue{Topic: l.Topic, Group: group, QueueID: l.QueueID}] = true
	}
	return out, nil
}

func (c *Consumer) unlock(ctx context.Context, q Queue) {
	req := wire.LockRequest{Group: c.cfg.Group, ClientID: c.cfg.ClientID,
		Queues: []wire.QueueOffset{{Topic: q.Topic, QueueID: q.QueueID}}}
	if err := c.router.callLeader(ctx, q.Group, 0, wire.CodeUnlockQueues, req, nil); err != nil {
		c.log.Debug("unlock", "queue", q.String(), "error", err)
	}
}

// leave tells every broker group this member is gone.
func (c *Consumer) leave(ctx context.Context) {
	c.mu.Lock()
	groups := make([]string, 0, len(c.hbLeader))
	for g := range c.hbLeader {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	for _, g := range groups {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.router.callLeader(lctx, g, 0, wire.CodeLeaveGroup,
			wire.LeaveGroupRequest{Group: c.cfg.Group, ClientID: c.cfg.ClientID}, nil)
		cancel()
		if err != nil {
			c.log.Debug("leave group", "broker-group", g, "error", err)
		}
	}
}

// commitRuns stores the consumed offsets of runs that moved: one
// CommitOffsets per broker group leader, or the local store.
func (c *Consumer) commitRuns(ctx context.Context, runs []*queueRun) error {
	byGroup := make(map[string][]commitItem)
	for _, qr := range runs {
		if off, ok := qr.toCommit(); ok {
			byGroup[qr.q.Group] = append(byGroup[qr.q.Group], commitItem{qr, off})
		}
	}
	if c.local != nil {
		for _, its := range byGroup {
			for _, it := range its {
				c.local.set(it.qr.q, it.off)
				it.qr.markCommitted(it.off)
			}
		}
		if len(byGroup) > 0 {
			return c.local.persist()
		}
		return nil
	}
	var errs []error
	for g, its := range byGroup {
		c.mu.Lock()
		req := wire.CommitOffsetsRequest{Group: c.cfg.Group, ResetEpoch: c.epochs[g]}
		c.mu.Unlock()
		for _, it := range its {
			req.Offsets = append(req.Offsets, wire.QueueOffset{Topic: it.qr.q.Topic, QueueID: it.qr.q.QueueID, Offset: it.off})
		}
		if err := c.router.callLeader(ctx, g, 1, wire.CodeCommitOffsets, req, nil); err != nil {
			if errors.Is(err, ErrStaleEpoch) {
				// An operator reset the group's offsets after our last
				// heartbeat: drop these positions and re-read committed ones.
				c.log.Info("commit refused after an offset reset; re-reading committed offsets", "broker-group", g)
				for _, it := range its {
					it.qr.requestReset()
				}
				continue
			}
			if errors.Is(err, ErrOffsetIllegal) {
				// The broker refuses the whole commit; store the healthy
				// queues one by one and restart the refused ones from
				// their committed offsets.
				errs = append(errs, c.commitEach(ctx, g, req, its)...)
				continue
			}
			errs = append(errs, err)
			continue
		}
		for _, it := range its {
			it.qr.markCommitted(it.off)
		}
	}
	return errors.Join(errs...)
}

// commitItem is one queue's offset to commit.
type commitItem struct {
	qr  *queueRun
	off uint64
}

// commitEach commits each of its on its own after a commit of them all
// was refused for an offset above a queue's end (CodeOffsetIllegal).
func (c *Consumer) commitEach(ctx context.Context, g string, req wire.CommitOffsetsRequest, its []commitItem) []error {
	var errs []error
	for i, it := range its {
		one := req
		one.Offsets = req.Offsets[i : i+1]
		err := c.router.callLeader(ctx, g, 1, wire.CodeCommitOffsets, one, nil)
		switch {
		case err == nil:
			it.qr.markCommitted(it.off)
		case errors.Is(err, ErrOffsetIllegal):
			c.log.Warn("commit refused: offset beyond the queue's end; re-reading the committed offset",
				"queue", it.qr.q.String(), "offset", it.off, "error", err)
			it.qr.requestReset()
			errs = append(errs, fmt.Errorf("queue %s: %w", it.qr.q, err))
		default:
			errs = append(errs, err)
		}
	}
	return errs
}

// AllocateAveragely is RocketMQ's AllocateMessageQueueAveragely: queues
// and client ids are sorted, each client gets a contiguous block, and the
// first len(queues)%len(clients) clients get one extra queue. It returns
// self's share (nil if self is not among clients).
func AllocateAveragely(queues []Queue, clients []string, self string) []Queue {
	qs := append([]Queue(nil), queues...)
	sort.Slice(qs, func(i, j int) bool { return qs[i].less(qs[j]) })
	cids := append([]string(nil), clients...)
	sort.Strings(cids)
	idx := sort.SearchStrings(cids, self)
	if idx == len(cids) || cids[idx] != self || len(qs) == 0 {
		return nil
	}
	n, c := len(qs), len(cids)
	mod := n % c
	var size int
	switch {
	case n <= c:
		size = 1
	case mod > 0 && idx < mod:
		size = n/c + 1
	default:
		size = n / c
	}
	var start int
	if mod > 0 && idx < mod {
		start = idx * size
	} else {
		start = idx*size + mod
	}
	rng := min(size, n-start)
	if rng <= 0 {
		return nil
	}
	return qs[start : start+rng]
}
