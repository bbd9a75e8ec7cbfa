// Command rmq is the one rmq binary: the servers (rmq namesrv, rmq broker)
// and every client command (send, consume, topic, group, cluster, failover,
// bench), each a thin action over package client. main only turns
// run(ctx, args, stdout, stderr) into an exit code, so tests drive run
// directly. Results go to stdout (table or --output json, the same
// struct), logs and progress to stderr; errors end with a non-zero exit and
// a one-line reason.
package main
