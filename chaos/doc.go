// Package chaos runs rmq under faults across real processes and judges
// the run with a checker that trusts neither the broker nor its clients'
// conclusions (issue #17). It is a test harness: it needs root, iproute2
// and iptables, and it is driven by its own tests (TestSchedules, short)
// and by scripts/chaos.sh (TestChaosLong, long).
//
// # Harness
//
// Start builds a Cluster: a bridge in the root namespace and one network
// namespace per broker, joined by veth pairs, with a NameServer and the
// clients in the root namespace. Every broker is an rmq process started
// with `ip netns exec` (Pdeathsig: it dies with the harness).
//
//	root namespace                              one namespace per broker
//	 NameServer 10.77.X.1:9876                   rmqc-ID-n0: rmq broker 10.77.X.11
//	 workload clients        rmqc-ID-br ---veth--- rmqc-ID-n1: rmq broker 10.77.X.12
//	 checker, samplers                  ---veth--- rmqc-ID-n2: rmq broker 10.77.X.13
//
// Faults are iptables rules inside the brokers' namespaces (Net.Apply
// replaces the whole rule set of every namespace at once with
// iptables-restore): Drop both ways (Cut), one way (OneWay), or TCP
// resets (ResetLink); Host stands for the root namespace, whose own
// tables are never touched. Processes take SIGSTOP/SIGCONT, SIGKILL and
// SIGTERM. Delays are not offered: the kernel here has no sch_netem, so
// tc netem is unavailable.
//
// Names carry the prefix rmqc- and a random run id; a run's manifest
// (under $TMPDIR/rmqc/) lists what it created before creating it, and a
// lock file per 10.77.X.0/24 keeps parallel runs apart. Close removes
// everything; Sweep removes only what dead runs' manifests list.
//
// # Nemesis and workload
//
// A Schedule injects one fault per round into the agreed leader's
// surroundings (minority-leader, majority, bridge, ring, reset, one-way,
// pause, kill, rolling; none for a soak), holds it, heals it, and the
// runner waits until the group is whole (WaitHealthy: every node answers,
// a majority agrees on the leader, every node applied the leader's
// commit index, the NameServer names it) and takes writes again.
//
// Storage schedules (crash-roll, crash-snapshot, crash-purge,
// crash-install, slow-fsync, fsync-error) need a broker built with -tags
// rmqfault (the tests build one; internal/fault): every broker reads its
// fault settings from a control file under Dir/faults that SetFaults
// rewrites, and kills itself at the chosen step of the chosen storage
// event, so the SIGKILL lands inside a segment roll, a snapshot, a purge
// or an install rather than near one. Config.Storage gives those brokers
// a config file that makes the events frequent (64 KiB segments, a
// snapshot a second; for purge and install, retention of 8 s). A crash
// that never fires counts as misfired and fails the run.
//
// The Workload's send loops (Send or SendAsync, with or without sharding
// keys) and consumers (clustering or orderly) record a History: every
// send attempt with its outcome and acknowledged position, every
// delivery with its handler interval, and every replica's committed
// offsets sampled per process incarnation.
//
// # Checker
//
// After the run the replicas are read directly from every node (any
// replica serves reads from its own state) and Check compares them with
// the History: each acknowledged send stored exactly once at its
// acknowledged position on every replica; replicas identical (a hash per
// queue); per-key stored order for keyed sends and first-delivery order
// for orderly consumers; nothing received that was never sent, or that
// the replicas do not hold at its position (a read of an entry that was
// never committed); every acknowledged send delivered; no two orderly
// members holding one queue at once (stretches of contiguous deliveries
// overlapping in time); committed offsets never moving back within one
// process unless an operator reset happened in between. Under retention
// a replica holds a queue from some offset on (Replica.Min): replicas are
// compared over the range all still hold, and a send deleted from every
// replica must have been received at its acknowledged position with its
// body (else it is undelivered). No part is
// modelled as linearizable, so porcupine is not used.
//
// # Concurrency
//
// Cluster, Net and Workload are safe for concurrent use. Goroutines: one
// per process (start and reap, locked to its thread for Pdeathsig), the
// workload's send loops (ended by StopProducing), the consumers' own
// (ended by Close), and Run's samplers (ended before Run returns).
package chaos
