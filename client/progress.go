package client

import "sort"

// Progress is how far this member has read the queues it owns, for
// "exit when caught up" consumers (kcat -e): see Progress.CaughtUp.
type Progress struct {
	// Settled reports that the latest rebalance round allocated every
	// subscribed topic and this member runs every queue allocated to it:
	// no route was missing, no broker group was settling after a leader
	// change, no queue was still held by another member. Before the first
	// such round Queues may be empty or partial.
	Settled bool
	// Queues are the owned queues, sorted; queues being released are left
	// out.
	Queues []QueueProgress
}

// QueueProgress is one owned queue's read position.
type QueueProgress struct {
	Queue Queue
	// Next is the next offset to pull: past every message the handler
	// consumed (push) or Poll delivered, and every one the tag filter
	// skipped.
	Next uint64
	// Max is the queue's max offset (exclusive) in the latest pull answer.
	Max uint64
	// Pulled reports that a pull answer arrived since the queue was
	// acquired, reset or moved; until then Max means nothing.
	Pulled bool
	// CaughtUp: Pulled and Next >= Max, with no batch Poll delivered
	// still uncommitted. Messages stored after that pull answer do not
	// count.
	CaughtUp bool
}

// CaughtUp reports whether p is Settled and every owned queue is caught
// up. A member that owns no queues (other members own them all) is caught
// up once Settled.
func (p Progress) CaughtUp() bool {
	if !p.Settled {
		return false
	}
	for _, q := range p.Queues {
		if !q.CaughtUp {
			return false
		}
	}
	return true
}

// Progress returns the read position of every owned queue.
func (c *Consumer) Progress() Progress {
	c.mu.Lock()
	p := Progress{Settled: c.settled && c.state == stateStarted}
	runs := make([]*queueRun, 0, len(c.queues))
	for _, qr := range c.queues {
		if qr.stopPull.Err() == nil {
			runs = append(runs, qr)
		}
	}
	c.mu.Unlock()
	for _, qr := range runs {
		p.Queues = append(p.Queues, qr.progress())
	}
	sort.Slice(p.Queues, func(i, j int) bool { return p.Queues[i].Queue.less(p.Queues[j].Queue) })
	return p
}

func (qr *queueRun) progress() QueueProgress {
	qr.mu.Lock()
	defer qr.mu.Unlock()
	pulled := qr.pulled && !qr.reset
	return QueueProgress{
		Queue: qr.q, Next: qr.next, Max: qr.max, Pulled: pulled,
		CaughtUp: pulled && qr.next >= qr.max && !qr.outstandingLocked(),
	}
}

// notePull records the max offset of a pull answer for Progress.
func (qr *queueRun) notePull(gen, max uint64) {
	qr.mu.Lock()
	if qr.gen == gen {
		qr.max, qr.pulled = max, true
	}
	qr.mu.Unlock()
}

// noteAssignment records, at the end of a rebalance round, whether every
// subscribed topic was allocated (keep is empty) and every desired queue
// runs. Called with c.mu held.
func (c *Consumer) noteAssignment(desired map[Queue]bool, keep map[string]bool) {
	settled := len(keep) == 0
	for q := range desired {
		if qr, ok := c.queues[q]; !ok || qr.stopPull.Err() != nil {
			settled = false
		}
	}
	c.settled = settled
}
