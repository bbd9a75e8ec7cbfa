package broker

import (
	"context"
	"sync"
)

// leaderService is a goroutine that runs only on the serving leader. Its
// context ends when leadership is lost or the node stops, and it acts on
// the group only by proposing Raft commands (apply), so whatever it
// decides every replica applies at the same log position, and a deposed
// leader's late proposal fails with ErrNotLeader. (The preferred-leader
// service proposes nothing: it only asks Raft for a leadership transfer.)
type leaderService struct {
	name string
	run  func(ctx context.Context) error
}

// leaderServices lists the leader-only services. Adding one (timers,
// retry, transaction check-back, pop revive) is one entry here.
func (n *Node) leaderServices() []leaderService {
	return []leaderService{
		{name: "retention", run: n.runRetention},              // retention.go: TruncatePrefix by age, budget, ratio
		{name: "disk-guard", run: n.runDiskGuard},             // diskguard.go: refuses sends while a node's disk is full
		{name: "lock-janitor", run: n.runLockJanitor},         // locks.go: releases departed members' locks
		{name: "timers", run: n.runTimers},                    // delay.go: delivers due delayed messages
		{name: "pop-revive", run: n.runPopRevive},             // pop.go: dead-letters pop messages past their last delivery
		{name: "tx-check", run: n.runTxChecks},                // tx.go: checks back open transactions, rolls back unanswered ones
		{name: "preferred-leader", run: n.runPreferredLeader}, // preferred.go: hands leadership to PreferredLeader (proposes nothing)
	}
}

// runLeaderServices runs every leader service in its own goroutine with
// ctx and returns once all have returned. A service that fails is logged;
// the others go on.
func (n *Node) runLeaderServices(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range n.leaderServices() {
		wg.Add(1)
		go func() { // ends with ctx
			defer wg.Done()
			if err := s.run(ctx); err != nil && ctx.Err() == nil {
				n.log.Error("leader service stopped", "service", s.name, "error", err)
			}
		}()
	}
	wg.Wait()
}
