// Package fault injects storage faults into a broker process built with
// the rmqfault build tag (go build -tags rmqfault ./cmd/rmq). Without the
// tag this package has no code: nothing imports it, and the default
// binary holds neither its symbols nor the names of its settings (the e2e
// test TestDefaultBuildHasNoFaultHooks checks). It is for cross-process
// tests (e2e/storage_fault_test.go) and chaos runs, never for production.
//
// # Control
//
// Settings come from the environment when the process starts and, if
// RMQ_FAULT_FILE names a control file, from that file whenever it changes
// (it replaces the environment's settings; a missing file means the
// environment's). A test toggles faults at run time by rewriting the file
// (best atomically: tmp file + rename). Every change is confirmed on
// stderr with one line "rmqfault: loaded ..." once the process next
// touches storage (the file is looked at, at most every 5 ms, by storage
// operations only: the package has no goroutine). Lines are key=value,
// '#' starts a comment; each key's environment name is RMQ_FAULT_ and the
// key upper-cased with '-' as '_' (crash-at: RMQ_FAULT_CRASH_AT).
//
//	fsync-delay=50ms        sleep before every fsync (file and directory)
//	fsync-error-after=N     let N more fsyncs pass, then fail every one
//	                        (EIO, without syncing) until the settings change
//	fsync-on=log,fsm        whose fsyncs the two above affect: the
//	                        CommitLog's (log, the default) and/or the
//	                        fsm's consume-queue and index files (fsm)
//	crash-at=EVENT          SIGKILL this process at a storage event:
//	                        segment-roll, purge, snapshot, install,
//	                        install-finish (see raftlog's doc.go)
//	crash-after=N           skip the first N occurrences (default 0)
//	crash-step=K            crash at the K-th matching operation inside
//	                        the event (0, the default: at its start)
//	crash-op=OP             count only operations named OP (step 1 if unset)
//	crash-path=S            count only operations on paths containing S
//
// Operations are the mutating calls of the event's domain: create (an
// open with O_CREATE), write, sync, truncate, rename, remove, remove-all,
// mkdir and syncdir on CommitLog files; snapshot-write and snapshot-commit
// on a snapshot sink; a write's path is PATH@OFFSET, so crash-path=.seg@0
// picks the header write of a new segment. The crash comes before the
// operation; a write is
// half done first, so the crash leaves a partial write behind, as a
// process killed inside write(2) would. Counters (fsyncs passed,
// occurrences, steps) start again at every change of the settings. An
// event whose operations end before step K does not crash (a line says
// so); the next occurrence is armed again.
//
// Just before the kill the process writes "rmqfault: crash at EVENT #N
// step K: OP PATH" to stderr, so a test can tell where it died. The kill
// is a real SIGKILL of the process itself: nothing is flushed or closed.
//
// # Concurrency
//
// One Injector serves the whole process (Get); its methods are safe for
// concurrent use. Steps are counted across goroutines: an event holding
// the CommitLog's write lock (segment-roll, purge, install-finish) sees
// only its own log operations, snapshot events count only sink
// operations.
package fault
