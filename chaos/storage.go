package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Storage faults: brokers built with -tags rmqfault (internal/fault) read
// their fault settings from a control file the harness rewrites mid-run
// (RMQ_FAULT_FILE, one per broker under Dir/faults). The storage
// schedules slow or fail fsyncs and SIGKILL a broker in the middle of a
// segment roll, a raft snapshot, a retention purge or a snapshot install;
// the broker kills itself at the chosen step of the event, so the crash
// lands inside it, not near it.

// hasFaultHooks reports whether bin is an rmqfault build: it names the
// control file's environment variable, which the default build does not
// hold (e2e TestDefaultBuildHasNoFaultHooks).
func hasFaultHooks(bin string) (bool, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return false, fmt.Errorf("chaos: read %s: %w", bin, err)
	}
	return bytes.Contains(b, []byte("RMQ_FAULT_FILE")), nil
}

func (c *Cluster) faultFile(i int) string {
	return filepath.Join(c.dir, "faults", NodeID(i)+".conf")
}

// FaultHooks reports whether the brokers take storage faults (Bin was
// built with -tags rmqfault).
func (c *Cluster) FaultHooks() bool { return c.faultHooks }

// SetFaults replaces broker i's storage fault settings (internal/fault's
// key=value lines; "" clears them). The broker applies them the next
// time it touches storage.
func (c *Cluster) SetFaults(i int, settings string) error {
	if !c.faultHooks {
		return fmt.Errorf("%w: %s", ErrNoFaultHooks, c.cfg.Bin)
	}
	path := c.faultFile(i)
	if settings == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(settings), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Exited waits (within ctx) until broker i's process has ended by itself
// and returns the last lines of its log.
func (c *Cluster) Exited(ctx context.Context, i int) (string, error) {
	c.mu.Lock()
	p := c.procs[NodeID(i)]
	c.mu.Unlock()
	if p == nil {
		return "", fmt.Errorf("chaos: %s was not started", NodeID(i))
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return "", fmt.Errorf("chaos: %s still runs: %w", NodeID(i), ctx.Err())
	}
	c.mu.Lock()
	if c.procs[NodeID(i)] == p {
		delete(c.procs, NodeID(i))
	}
	c.mu.Unlock()
	c.dropConn(i)
	return c.lastIncarnation(i), nil
}

// lastIncarnation is the log of broker i's latest process (its last 400
// lines at most): the log file holds every start.
func (c *Cluster) lastIncarnation(i int) string {
	lines := c.Tail(NodeID(i), 400)
	if at := strings.LastIndex(lines, "---- chaos: start"); at >= 0 {
		lines = lines[at:]
	}
	return lines
}

// crashHold waits until node x killed itself as armed, or fails the round
// with the node's last lines.
func crashHold(e *env, x int, what string, within time.Duration) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		wctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		lines, err := e.c.Exited(wctx, x)
		if err != nil {
			return fmt.Errorf("%s armed on %s did not fire within %s: %w; last lines:\n%s", what, NodeID(x), within, err, e.c.Tail(NodeID(x), 10))
		}
		if !strings.Contains(lines, "rmqfault: crash at") && !strings.Contains(lines, "stopping the node") {
			return fmt.Errorf("%s ended otherwise than by the armed fault; last lines:\n%s", NodeID(x), lastLines(lines, 10))
		}
		return nil
	}
}

// clearAndRestart is the heal of a fault that ended node x: it clears the
// settings first, so the restarted process does not crash again.
func clearAndRestart(e *env, x int) func(ctx context.Context) error {
	return func(context.Context) error {
		if err := e.c.SetFaults(x, ""); err != nil {
			return err
		}
		return e.c.Restart(x)
	}
}

// crashAt arms a crash at event on the leader (even rounds) or a
// follower (odd rounds), at a random step among the event's first steps
// (0: at its start) of operations named op ("" any).
func crashAt(ctx context.Context, e *env, event, op string, steps int) (fault, error) {
	x := e.leader
	if e.round%2 == 1 {
		x = e.others(e.leader)[e.rng.IntN(e.c.Nodes()-1)]
	}
	var step int
	var settings string
	if op == "" {
		step = e.rng.IntN(steps + 1) // 0: at the event's start
		settings = fmt.Sprintf("crash-at=%s\ncrash-step=%d\n", event, step)
	} else { // the step-th operation named op (there is no step 0 of one)
		step = 1 + e.rng.IntN(max(steps, 1))
		settings = fmt.Sprintf("crash-at=%s\ncrash-step=%d\ncrash-op=%s\n", event, step, op)
	}
	if err := e.c.SetFaults(x, settings); err != nil {
		return fault{}, err
	}
	what := fmt.Sprintf("SIGKILL %s (%s) in a %s, step %d%s", NodeID(x), e.role(x), event, step, opSuffix(op))
	return fault{name: what, hold: crashHold(e, x, what, 60*time.Second), heal: clearAndRestart(e, x)}, nil
}

// crashOp is an operation of an event to crash at, and how many of its
// first occurrences every such event has.
type crashOp struct {
	name  string
	steps int
}

// crashAtOneOf injects crashAt at one of ops, chosen at random each round.
func crashAtOneOf(event string, ops ...crashOp) func(context.Context, *env) (fault, error) {
	return func(ctx context.Context, e *env) (fault, error) {
		op := ops[e.rng.IntN(len(ops))]
		return crashAt(ctx, e, event, op.name, op.steps)
	}
}

func opSuffix(op string) string {
	if op == "" {
		return ""
	}
	return " of " + op
}

// installCrash stops a follower, waits until the leader's retention has
// deleted past the follower's log end (so it must install a snapshot),
// arms a crash in the install (the stream's staging or the final swap)
// and restarts it; it crashes there, and the heal restarts it clean to
// install again. An install whose operations end before the step does
// not crash: the round counts as misfired.
func installCrash(ctx context.Context, e *env) (fault, error) {
	x := e.others(e.leader)[e.rng.IntN(e.c.Nodes()-1)]
	st, err := e.c.Status(ctx, x)
	if err != nil {
		return fault{}, err
	}
	last := st.LastIndex
	if err := e.c.Kill(x); err != nil {
		return fault{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = poll(wctx, 200*time.Millisecond, func() error {
		l, err := e.c.Leader(wctx)
		if err != nil {
			return err
		}
		lst, err := e.c.Status(wctx, l)
		if err != nil {
			return err
		}
		if lst.FirstIndex <= last {
			return fmt.Errorf("leader %s keeps its log from %d; %s's ends at %d", NodeID(l), lst.FirstIndex, NodeID(x), last)
		}
		return nil
	})
	if err != nil {
		return fault{}, errors.Join(fmt.Errorf("chaos: retention did not pass a stopped follower's log: %w", err), e.c.Restart(x))
	}
	// Steps every install has (e2e TestStorageFaultCrashAtPurgeAndInstall):
	// the staged log's writes, the renames of the swap.
	event, op, steps := "install", "write", 2
	if e.rng.IntN(2) == 1 {
		event, op, steps = "install-finish", "rename", 3
	}
	step := 1 + e.rng.IntN(steps)
	if err := e.c.SetFaults(x, fmt.Sprintf("crash-at=%s\ncrash-step=%d\ncrash-op=%s\n", event, step, op)); err != nil {
		return fault{}, err
	}
	missed := strings.Count(e.c.Tail(NodeID(x), 1000), "not reached")
	if err := e.c.Restart(x); err != nil {
		return fault{}, err
	}
	what := fmt.Sprintf("SIGKILL follower %s in a snapshot %s, step %d of %s", NodeID(x), event, step, op)
	return fault{name: what, heal: clearAndRestart(e, x), hold: func(ctx context.Context) error {
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return poll(wctx, 100*time.Millisecond, func() error {
			if !e.c.Running(x) {
				return nil // crashed as armed (the heal restarts it)
			}
			if strings.Count(e.c.Tail(NodeID(x), 1000), "not reached") > missed {
				return fmt.Errorf("%s's install ended before step %d of %s", NodeID(x), step, op)
			}
			return fmt.Errorf("%s has not crashed in its install yet", NodeID(x))
		})
	}}, nil
}

// storageSchedules are the schedules that need an rmqfault build.
func storageSchedules() []Schedule {
	return []Schedule{
		{Name: "crash-roll", Nodes: 3, Storage: StorageEvents,
			Doc: "SIGKILL in the middle of a segment roll (the leader and a follower by turns, at a random step: new segment's header, sealed index)",
			inject: func(ctx context.Context, e *env) (fault, error) {
				return crashAt(ctx, e, "segment-roll", "", 6)
			}},
		{Name: "crash-snapshot", Nodes: 3, Storage: StorageEvents,
			Doc:    "SIGKILL in the middle of a raft snapshot (its state half written, or just before its commit)",
			inject: crashAtOneOf("snapshot", crashOp{"snapshot-write", 2}, crashOp{"snapshot-commit", 1})},
		{Name: "crash-purge", Nodes: 3, Storage: StorageRetention,
			Doc:    "SIGKILL in the middle of a retention purge (between the removals of segments, before the directory sync)",
			inject: crashAtOneOf("purge", crashOp{"remove", 3}, crashOp{"syncdir", 1})},
		{Name: "crash-install", Nodes: 3, Storage: StorageRetention,
			Doc: "a follower left behind by retention is SIGKILLed while it installs the leader's snapshot, then restarted to install again",
			inject: func(ctx context.Context, e *env) (fault, error) {
				return installCrash(ctx, e)
			}},
		{Name: "slow-fsync", Nodes: 3, Storage: StorageEvents, Hold: 3 * time.Second,
			Doc: "every fsync of the leader's CommitLog and consume queues sleeps 20-200 ms for the hold",
			inject: func(ctx context.Context, e *env) (fault, error) {
				l := e.leader
				d := time.Duration(20+e.rng.IntN(181)) * time.Millisecond
				if err := e.c.SetFaults(l, fmt.Sprintf("fsync-delay=%s\nfsync-on=log,fsm\n", d)); err != nil {
					return fault{}, err
				}
				return fault{name: fmt.Sprintf("fsyncs of leader %s slowed by %s", NodeID(l), d),
					heal: func(context.Context) error { return e.c.SetFaults(l, "") }}, nil
			}},
		{Name: "fsync-error", Nodes: 3, Storage: StorageEvents,
			Doc: "the leader's (or a follower's) fsyncs fail with EIO after a few pass; the node must stop by itself, and is restarted clean",
			inject: func(ctx context.Context, e *env) (fault, error) {
				x := e.leader
				if e.round%2 == 1 {
					x = e.others(e.leader)[e.rng.IntN(e.c.Nodes()-1)]
				}
				on := []string{"log", "fsm"}[e.rng.IntN(2)]
				n := e.rng.IntN(20)
				if err := e.c.SetFaults(x, fmt.Sprintf("fsync-error-after=%d\nfsync-on=%s\n", n, on)); err != nil {
					return fault{}, err
				}
				what := fmt.Sprintf("fsyncs of %s (%s) on %s fail after %d more", NodeID(x), e.role(x), on, n)
				return fault{name: what, hold: crashHold(e, x, what, 60*time.Second), heal: clearAndRestart(e, x)}, nil
			}},
	}
}
