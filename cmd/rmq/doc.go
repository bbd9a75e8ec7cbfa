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
//	rmq topic create NAME          --queues 8 --perm 6 [--broker-group G,H (alias --groups)]; waits until
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
//	rmq node list                  the group's Raft configuration: voters, non-voters
//	rmq node add ID RAFTADDR       add a node started with --join as a non-voter, wait
//	                               until it caught up, promote it (--no-promote: not)
//	rmq node promote ID            make a caught-up non-voter a voter
//	rmq node remove ID             take a node out (the leader hands over first)
//	rmq node replace OLD NEW ADDR  add NEW, promote it once caught up, remove OLD
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
// Global flags (--namesrv, --timeout, --output, --log-level, and
// --access-key/--secret-key, env RMQ_ACCESS_KEY/RMQ_SECRET_KEY, which
// sign every request for brokers with access control) and a command's
// own flags may come before or after its arguments: client
// commands parse their flags themselves (interspersed in clientcmd.go)
// because urfave/cli v2 stops at the first argument. --timeout bounds each
// command's requests; consume runs until --count, --exit, --wait or Ctrl-C
// regardless. consume --exit polls client.Consumer.Progress every 50ms
// and shortens the long poll to 500ms (librdkafka's fetch.wait.max.ms),
// since an empty queue answers only when its long poll ends.
//
// rmq dashboard --listen 127.0.0.1:8080 serves the web dashboard and the
// HTTP admin API (package dashboard, dashboard/API.md) for the cluster at
// --namesrv; rmq dev serves it too (--dashboard ADDR, "" turns it off) and
// prints its URL. Its clients are the same client.Admin the commands use.
// TLS (tls.go, dev_tls.go, tls_cmd.go): the global --tls-ca, --tls-cert,
// --tls-key, --tls-server-name (env RMQ_TLS_*) give every client command a
// TLS config, built once per run (again when they follow the command).
// rmq broker takes --tls-cert, --tls-key, --tls-ca, --tls-client-auth and
// --tls-on (which parts: client, raft, http, namesrv) over the [tls]
// table of its TOML file, whose [tls.client|raft|http|namesrv] tables
// override per part; rmq namesrv takes the first four. Servers never read
// RMQ_TLS_*. rmq dev --tls makes a throwaway CA in --dir/tls and prints the
// export line for RMQ_TLS_CA; rmq tls dev-certs writes the same files.
//
// rmq dev --groups N runs N three-node groups (broker-a, broker-b, ...;
// group g's node i on --broker-port+100*g+10*i, Raft one above) and
// --namesrvs M NameServers on --namesrv-port, +1, ... (default 1, or 2
// with several groups); every node registers with every NameServer
// (dev_groups.go).
//
// Profiling: every command takes --cpuprofile FILE (a client or bench run);
// rmq broker and rmq dev take --pprof ADDR to serve net/http/pprof on a
// loopback address, and --trace-dir DIR (broker TOML key trace_dir) to run
// the process's flight recorder (internal/flightrec): the last seconds of
// execution trace are written to DIR whenever a node starts an election or
// loses leadership (broker.Config.OnIncident) or the process stalls.
//
// Metrics: rmq broker and rmq namesrv take --metrics ADDR (broker TOML key
// metrics) to serve Prometheus metrics on http://ADDR/metrics, off by
// default; rmq dev serves them for every process (the NameServer's on
// --namesrv-port+1, broker i's on --broker-port+10*i+2) and prints the URLs.
package main
