// Command rmq is the one rmq binary: the servers (rmq namesrv, rmq broker)
// and every client command (send, request, consume, topic, group, cluster,
// failover, bench), each a thin action over package client. main only turns
// run(ctx, args, stdout, stderr) into an exit code, so tests drive run
// directly. Results go to stdout (table or --output json, the same
// struct), logs and progress to stderr; errors end with a non-zero exit and
// a one-line reason.
//
// The client commands, noun then verb (natscli style):
//
//	rmq send TOPIC [BODY]          body from BODY, --file PATH, or stdin (- or piped);
//	                               --tag, --key (repeatable), --property k=v (repeatable),
//	                               --sharding-key, --count N (one row per message, a
//	                               per-queue summary above 20), --no-auto-create;
//	                               one of --delay D, --deliver-at RFC3339|unix-ms,
//	                               --delay-level N makes it a delayed message, and a
//	                               line after the table says when it is due
//	rmq request TOPIC [BODY]       send a request (body as for send; --tag, --key, --property)
//	                               and print the reply body a responder sends back, waiting
//	                               at most --timeout; -o json adds its correlation id,
//	                               properties and round trip
//	rmq consume TOPIC              --group G (required unless --broadcast),
//	                               --from last|first|RFC3339, --tag "a || b", --orderly,
//	                               --broadcast, --count N, --exit (-e), --wait D; one line
//	                               (or JSON line) per message until N, caught up (--exit:
//	                               every owned queue read to its max offset as of its last
//	                               pull), D since the start, or Ctrl-C, whichever is first;
//	                               then commits and leaves the group cleanly
//	rmq topic create NAME          --queues 8 --perm 6 [--broker-group G]; waits until
//	                               the NameServer routes it unless --no-wait
//	rmq topic update NAME          [--queues N] [--perm r|w|rw|4|2|6] [--broker-group G];
//	                               changes only the flags given; queues only grow
//	rmq topic list
//	rmq topic describe NAME        per queue: min/max offset, messages, last store time
//	rmq topic delete NAME
//	rmq group list
//	rmq group describe GROUP       members; per queue: broker and consumer offset, lag, owner
//	rmq group reset-offset GROUP --topic T --to RFC3339|earliest|now|10m
//	rmq cluster status             per broker group and node: role, term, commit and
//	                               applied index, lag behind the leader, address;
//	                               nodes that stopped registering as down, last seen
//	rmq node status --addr A       one node: Raft indexes, log and data bytes, disk
//	                               use, and its last log purge with the reason
//
// The load generators, rmq bench produce|consume|e2e|delay, create the topic
// (default "bench", --queues 8) when missing and report, per client and
// in total, messages, errors, duration, msgs/s, MiB/s and latency
// min/p50/p90/p99/p99.9/max (HdrHistogram, 1µs resolution, merged across
// clients for the total):
//
//	rmq bench produce             --clients N (one Producer each), --size 1024,
//	                              --count N | --duration D, --mode async (--inflight
//	                              1024 SendAsync outstanding per client) | sync
//	                              (--concurrency goroutines per client, one Send at a
//	                              time), --batch N (SendBatch), --rate R msgs/s in all
//	rmq bench consume             --clients N push consumers in --group (default a fresh
//	                              bench-<unix-nanos>); --from first drains the backlog as
//	                              of the start, --from last follows writes for --duration
//	rmq bench e2e                 producers as above at --rate (default 1000) stamp the
//	                              due time in property bench-sent; one consumer records
//	                              delivery - bench-sent; reports sent, received, missing
//	rmq bench delay               async producers send --count delayed messages due over
//	                              --spread (sequential or --order random) while a consumer
//	                              of a fresh group receives them; reports delivered,
//	                              duplicates, lost (after --grace), peak pending and the
//	                              lateness p50..max of receipt - due and StoreTime - due
//
// With --rate, send latency is measured from the time the schedule said a
// message was due, not from when it was sent, so a stall counts against
// every message it delayed (no coordinated omission). A progress bar (a
// plain line every 5s when stderr is not a terminal) goes to stderr unless
// --no-progress; errors are counted per client and the first distinct ones
// printed on stderr; a run in which every send fails exits non-zero.
//
// Global flags (--namesrv, --timeout, --output, --log-level) and a
// command's own flags may come before or after its arguments: client
// commands parse their flags themselves (interspersed in clientcmd.go)
// because urfave/cli v2 stops at the first argument. --timeout bounds each
// command's requests; consume runs until --count, --exit, --wait or Ctrl-C
// regardless. consume --exit polls client.Consumer.Progress every 50ms
// and shortens the long poll to 500ms (librdkafka's fetch.wait.max.ms),
// since an empty queue answers only when its long poll ends.
//
// Profiling: every command takes --cpuprofile FILE (a client or bench run);
// rmq broker and rmq dev take --pprof ADDR to serve net/http/pprof on a
// loopback address.
package main
