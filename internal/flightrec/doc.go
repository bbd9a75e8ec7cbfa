// Package flightrec keeps the last seconds of the process's Go execution
// trace in memory and writes them to a file when something went wrong, so
// that a rare pause (a leader that stopped sending heartbeats for half a
// second once in ten minutes of load) can be read afterwards with
// `go tool trace` instead of being guessed at.
//
// Start runs a runtime/trace.FlightRecorder, which holds a moving window of
// at least Config.Window of trace data (bounded by MaxBytes), and a stall
// watchdog. Trigger(reason) asks for a dump: after Config.After (so the
// file also shows how the trouble ended) the writer goroutine writes the
// window to Dir/<UTC time>-<reason>.trace. Triggers are rate limited
// (MinInterval between dumps; those in between are counted and logged, not
// written) and at most Keep files are kept, the oldest removed first, so a
// flapping cluster cannot fill the disk. The callers decide what is worth a
// dump: the broker triggers when its Raft node starts an election or loses
// leadership (broker.Config.OnIncident), the watchdog when the process
// itself stalled.
//
// The watchdog ticks every Config.Tick and measures how late each tick
// arrived. A tick later than StallThreshold means no goroutine of the
// process could run for that long, or the timer's could not: a long GC
// pause, every thread blocked in the kernel (page faults on mapped files
// are invisible to the Go scheduler), or the whole process descheduled
// (CPU starvation, a VM stealing the host's cores, SIGSTOP). It logs the
// lateness at warn and triggers a dump.
//
// Only one flight recorder may run in a process (a runtime limit), so one
// Recorder serves every broker node of a process (rmq dev runs three).
// Start owns two goroutines, the writer and the watchdog; Close stops both
// and the flight recorder, waiting for a dump in progress. Trigger is safe
// for concurrent use, never blocks (it may be called from Raft's observer
// callbacks), and does nothing on a nil *Recorder. Tracing costs a few
// percent of CPU while it runs, so it is off unless asked for (rmq
// broker/dev --trace-dir).
package flightrec
