package e2e

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/drill"
)

// Storage faults across real processes: slow and failing fsyncs, and
// SIGKILL in the middle of a segment roll, a snapshot, a retention purge
// and a snapshot install, each under the drill's produce and consume.
// The brokers are built with -tags rmqfault (internal/fault); each reads
// its faults from a control file the test rewrites mid-run. After every
// fault the node is restarted and must catch up; at the end no
// acknowledged message may be lost and every queue must be identical on
// all three replicas.
//
// RMQ_STORAGE_FAULT_LONG=1 crashes at every step of every event instead
// of at one chosen step each (several minutes).

// storageConfig makes storage events frequent: 64 KiB segments roll
// every fraction of a second under the drill, raft snapshots every
// second or two.
const storageConfig = `
segment_size = "64KiB"
snapshot_interval = "1s"
snapshot_threshold = 128
`

// noRetention keeps every message, so the replicas are compared over the
// whole run.
const noRetention = storageConfig + `retention_check_interval = "off"
`

// shortRetention purges segments older than 4s (long enough for the
// drill's consumer to receive them across a failover, whose messages
// must not expire before they are consumed).
const shortRetention = storageConfig + `retention_max_age = "4s"
retention_check_interval = "500ms"
`

// drillTopic is the drill workload's default topic, with 8 queues.
const drillTopic = "drill"

func longStorageFaults() bool { return os.Getenv("RMQ_STORAGE_FAULT_LONG") != "" }

// TestDefaultBuildHasNoFaultHooks: the fault injection is compiled only
// into the rmqfault build. The default binary names neither the package
// nor any of its settings; the fault binary names both.
func TestDefaultBuildHasNoFaultHooks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	for _, b := range []struct {
		name, path string
		want       bool
	}{{"default", rmqBinary(t), false}, {"rmqfault", rmqFaultBinary(t), true}} {
		bin, err := os.ReadFile(b.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"github.com/rmq-dev/rmq/internal/fault", "RMQ_FAULT_", "crash at %s"} {
			if got := bytes.Contains(bin, []byte(s)); got != b.want {
				t.Errorf("%s binary contains %q: %v, want %v", b.name, s, got, b.want)
			}
		}
	}
}

// TestStorageFaultSlowFsync makes every fsync take 50ms, first on the
// leader, then on a follower (the CommitLog's and the fsm's): sends slow
// down, nothing is lost, the replicas stay identical.
func TestStorageFaultSlowFsync(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process test")
	}
	fc := startFaultCluster(t, noRetention)
	w := startDrill(t, fc.procCluster)
	l := fc.leaderID(20 * time.Second)
	f := fc.follower(l)
	for _, tc := range []struct{ id, faults string }{
		{l, "fsync-delay=50ms\n"},
		{f, "fsync-delay=50ms\nfsync-on=log,fsm\n"},
	} {
		w.Mark("slow fsync on " + tc.id)
		start := time.Now()
		fc.setFaults(tc.id, tc.faults)
		waitMore(t, w, 100)
		t.Logf("%s: 100 acknowledged in %s with every fsync 50ms slower", tc.id, time.Since(start).Round(time.Millisecond))
		fc.setFaults(tc.id, "")
		if l := lineWith(fc.logText(tc.id), "rmqfault: loaded fsync-delay=50ms"); l == "" {
			t.Fatalf("%s never loaded the fsync delay", tc.id)
		}
	}
	waitMore(t, w, 100)
	finishStorageDrill(t, fc, w, drillTopic)
}

// TestStorageFaultFsyncError fails every fsync (EIO) of the leader's
// CommitLog, then of a follower's, then of a follower's consume queues:
// the node must stop by itself (exit status 1, not a crash) without
// acknowledging what it could not sync, the others go on, and after a
// restart without the fault it catches up.
func TestStorageFaultFsyncError(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process test")
	}
	fc := startFaultCluster(t, noRetention)
	w := startDrill(t, fc.procCluster)
	for _, tc := range []struct{ role, faults, stopped string }{
		{"leader", "fsync-error-after=0\n", "commitlog failed: stopping the node"},
		{"follower", "fsync-error-after=0\n", "commitlog failed: stopping the node"},
		{"follower", "fsync-error-after=0\nfsync-on=fsm\n", "consume queue sync failed: stopping the node"},
	} {
		l := fc.leaderID(20 * time.Second)
		id := l
		if tc.role == "follower" {
			id = fc.follower(l)
		}
		w.Mark("fsync error on " + tc.role + " " + id)
		fc.setFaults(id, tc.faults)
		log, ws := fc.waitExit(id, 30*time.Second)
		if !ws.Exited() || ws.ExitStatus() == 0 {
			t.Fatalf("%s ended with %v, want a clean stop with an error status; last lines:\n%s", id, ws, tail(log, 15))
		}
		for _, want := range []string{"rmqfault: failing fsync", tc.stopped} {
			if lineWith(log, want) == "" {
				t.Fatalf("%s's log lacks %q; last lines:\n%s", id, want, tail(log, 15))
			}
		}
		t.Logf("%s (%s) stopped: %s", id, tc.role, strings.TrimSpace(lineWith(log, tc.stopped)))
		if nl := fc.leaderID(20 * time.Second); nl == id {
			t.Fatalf("%s still leads after its fsync failed", id)
		}
		waitMore(t, w, 100)
		fc.setFaults(id, "")
		fc.start(id)
		fc.waitCaughtUp(id, 30*time.Second)
	}
	waitMore(t, w, 100)
	finishStorageDrill(t, fc, w, drillTopic)
}

// crashCase is one crash: where (leader or follower) and the control
// file that arms it.
type crashCase struct {
	role   string
	event  string
	faults string // beyond crash-at
}

// crashSteps returns the short list, or with RMQ_STORAGE_FAULT_LONG every
// step 1..n of event on role.
func crashSteps(short []crashCase, event, role string, n int) []crashCase {
	if !longStorageFaults() {
		return short
	}
	var out []crashCase
	for k := 1; k <= n; k++ {
		out = append(out, crashCase{role: role, event: event, faults: fmt.Sprintf("crash-step=%d\n", k)})
	}
	return out
}

// TestStorageFaultCrashAtRollAndSnapshot SIGKILLs brokers in the middle
// of a segment roll (the new segment's header half written: the case that
// used to zero a sealed segment; the sealed .idx half written) and of a
// raft snapshot (its state half written; just before its commit), on the
// leader and on a follower, and restarts each.
func TestStorageFaultCrashAtRollAndSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process test")
	}
	cases := crashSteps([]crashCase{
		{"leader", "segment-roll", "crash-op=write\ncrash-path=.seg@0\n"},
		{"follower", "segment-roll", "crash-op=write\ncrash-path=.idx.tmp\n"},
		{"leader", "snapshot", "crash-op=snapshot-write\n"},
		{"follower", "snapshot", "crash-op=snapshot-commit\n"},
	}, "segment-roll", "leader", 12)
	if longStorageFaults() {
		cases = append(cases, crashSteps(nil, "segment-roll", "follower", 12)...)
		cases = append(cases, crashSteps(nil, "snapshot", "leader", 2)...)
		cases = append(cases, crashSteps(nil, "snapshot", "follower", 2)...)
	}
	flush := []string{"sync"}
	if longStorageFaults() {
		flush = append(flush, "async") // a flusher goroutine fsyncs beside the rolls
	}
	for _, mode := range flush {
		t.Run(mode, func(t *testing.T) {
			fc := startFaultCluster(t, noRetention+"flush = \""+mode+"\"\n")
			w := startDrill(t, fc.procCluster)
			for _, cc := range cases {
				fc.crashCycle(t, w, cc)
			}
			finishStorageDrill(t, fc, w, drillTopic)
		})
	}
}

// TestStorageFaultCrashAtPurgeAndInstall SIGKILLs brokers in the middle
// of a retention purge (leader and follower) and a follower while it
// installs a snapshot from the leader (a staged write half done; between
// the two renames of the swap), and restarts each.
func TestStorageFaultCrashAtPurgeAndInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process test")
	}
	purges := crashSteps([]crashCase{
		{"leader", "purge", "crash-op=remove\ncrash-step=2\n"},
		{"follower", "purge", "crash-op=syncdir\n"},
	}, "purge", "leader", 3)
	installs := []crashCase{
		{"follower", "install", "crash-op=write\ncrash-step=2\n"},
		{"follower", "install-finish", "crash-op=rename\ncrash-step=3\n"},
	}
	if longStorageFaults() {
		purges = append(purges, crashSteps(nil, "purge", "follower", 3)...)
		// The FSM state comes first in the stream: steps 1..n without a
		// filter crash in it, crash-op=write in the staged log.
		installs = crashSteps(nil, "install", "follower", 3)
		for _, cc := range crashSteps(nil, "install", "follower", 6) {
			installs = append(installs, crashCase{cc.role, cc.event, "crash-op=write\n" + cc.faults})
		}
		installs = append(installs, crashSteps(nil, "install-finish", "follower", 16)...)
	}
	fc := startFaultCluster(t, shortRetention)
	w := startDrill(t, fc.procCluster)
	for _, cc := range purges {
		start := time.Now()
		fc.crashCycle(t, w, cc)
		t.Logf("cycle took %s", time.Since(start).Round(time.Millisecond))
	}
	for _, cc := range installs {
		start := time.Now()
		fc.installCrashCycle(t, w, cc)
		n := fc.checkReplicas(drillTopic, 8, false, 30*time.Second)
		t.Logf("cycle took %s; replicas identical in the %d stored messages all hold", time.Since(start).Round(time.Millisecond), n)
	}
	finishStorageDrill(t, fc, w, drillTopic)
}

// crashCycle arms cc on the leader or a follower, waits until the node
// kills itself at the event, and restarts it.
func (fc *faultCluster) crashCycle(t *testing.T, w *drill.Workload, cc crashCase) {
	t.Helper()
	l := fc.leaderID(20 * time.Second)
	id := l
	if cc.role == "follower" {
		id = fc.follower(l)
	}
	w.Mark(fmt.Sprintf("crash %s %s at %s", cc.role, id, cc.event))
	missed := strings.Count(fc.logText(id), "not reached")
	fc.setFaults(id, "crash-at="+cc.event+"\n"+cc.faults)
	if !fc.expectCrash(t, id, cc, missed+3, 60*time.Second) {
		fc.setFaults(id, "")
		return
	}
	fc.setFaults(id, "")
	fc.start(id)
	fc.waitCaughtUp(id, 30*time.Second)
	waitMore(t, w, 50)
}

// installCrashCycle stops a follower until the leader's retention has
// purged past the follower's log, so that the restarted follower gets a
// snapshot, and arms cc for that install. After the crash the follower
// restarts without faults and must install (or finish installing) and
// catch up.
func (fc *faultCluster) installCrashCycle(t *testing.T, w *drill.Workload, cc crashCase) {
	t.Helper()
	l := fc.leaderID(20 * time.Second)
	id := fc.follower(l)
	var last uint64
	Eventually(t, 10*time.Second, func() error {
		st, err := fc.statusOf(id)
		last = st.LastIndex
		return err
	})
	w.Mark("stop " + id + " for an install")
	fc.kill(id)
	start := time.Now()
	Eventually(t, 60*time.Second, func() error {
		ld := fc.leaderID(20 * time.Second)
		st, err := fc.statusOf(ld)
		if err != nil {
			return err
		}
		if st.FirstIndex <= last {
			return fmt.Errorf("leader %s keeps its log from %d, %s ends at %d", ld, st.FirstIndex, id, last)
		}
		return nil
	})
	t.Logf("leader purged past %s's log end %d after %s", id, last, time.Since(start).Round(time.Millisecond))
	fc.setFaults(id, "crash-at="+cc.event+"\n"+cc.faults)
	w.Mark(fmt.Sprintf("crash %s at %s", id, cc.event))
	fc.start(id)
	if !fc.expectCrash(t, id, cc, 1, 60*time.Second) { // one install per start
		fc.setFaults(id, "")
		fc.waitCaughtUp(id, 60*time.Second)
		return
	}
	fc.setFaults(id, "")
	fc.start(id)
	fc.waitCaughtUp(id, 60*time.Second)
	// Installed anew, rolled forward on start, or swapped in before the
	// crash: the log no longer holds the entries the leader purged.
	if st, err := fc.statusOf(id); err != nil || st.FirstIndex <= last {
		t.Fatalf("%s caught up with its log from %d (%v), but the leader purged past %d: no snapshot installed; last lines:\n%s",
			id, st.FirstIndex, err, last, tail(fc.logText(id), 15))
	}
	waitMore(t, w, 50)
}

// expectCrash waits until node id has killed itself at cc's event. In a
// long run that tries every step, an event may have fewer steps than
// asked (a roll writes no records of its own when the first record of a
// batch is the one that does not fit): once the node's log counts misses
// lines saying an occurrence ended before the step, it reports false.
func (fc *faultCluster) expectCrash(t *testing.T, id string, cc crashCase, misses int, timeout time.Duration) bool {
	t.Helper()
	p := fc.proc(id)
	Eventually(t, timeout, func() error {
		select {
		case <-p.done:
			return nil
		default:
		}
		if longStorageFaults() && strings.Count(fc.logText(id), "not reached") >= misses {
			return nil
		}
		return fmt.Errorf("%s has not crashed at %s", id, cc.event)
	})
	select {
	case <-p.done:
	default:
		t.Logf("%s (%s): %s has fewer steps: %s", id, cc.role, cc.event, strings.TrimSpace(lineWith(fc.logText(id), "not reached")))
		return false
	}
	log, ws := fc.waitExit(id, time.Second)
	line := lineWith(log, "rmqfault: crash at "+cc.event+" ")
	if line == "" || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s ended with %v without crashing at %s; last lines:\n%s", id, ws, cc.event, tail(log, 15))
	}
	t.Logf("%s (%s): %s", id, cc.role, strings.TrimPrefix(strings.TrimSpace(line), "rmqfault: "))
	return true
}

// finishStorageDrill stops the workload (0 lost, no order errors, no
// message stored twice) and compares every queue of every replica.
func finishStorageDrill(t *testing.T, fc *faultCluster, w *drill.Workload, topic string) {
	t.Helper()
	r := finishDrill(t, w)
	if r.StoredDuplicates > 0 {
		t.Errorf("%d messages stored twice (%d resends, %d answered as duplicates)", r.StoredDuplicates, r.Resends, r.Deduplicated)
	}
	n := fc.checkReplicas(topic, 8, true, 60*time.Second)
	t.Logf("replicas identical: %d stored messages compared on each of %d nodes (%d acknowledged)", n, len(fc.ids), r.Acked)
	if n == 0 {
		t.Error("no stored message to compare")
	}
}
