package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/wire"
)

// rmq bench: load generators over package client. Each bench validates
// its flags into a benchOptions, makes sure the topic exists, runs its
// clients (one client.Producer or client.Consumer each, so each has its
// own connections), and renders a benchReport: per client and in total,
// messages, errors, msgs/s, MiB/s and a latency distribution. The files:
//
//	bench.go           commands, flags, validation, the topic
//	bench_produce.go   producers: sync, async, batches, pacing (--rate)
//	bench_consume.go   consumers draining a backlog or following writes
//	bench_e2e.go       paced producers plus a consumer timing each message
//	bench_delay.go     delayed messages and a consumer timing their delivery
//	bench_report.go    per-client counters, HdrHistogram latency, the report
//	bench_progress.go  the progress line on stderr

func benchCommand() *cli.Command {
	return nounCommand("bench", "measure produce and consume throughput and latency",
		&cli.Command{
			Name:  "produce",
			Usage: "send messages from N producers as fast as possible (or at --rate) and report throughput and send latency",
			Description: "Each client is its own Producer with its own connections. --mode sync runs --concurrency\n" +
				"goroutines per client, each sending one message (or --batch) at a time; --mode async keeps up\n" +
				"to --inflight SendAsync calls outstanding per client (with --batch, --inflight/--batch\n" +
				"concurrent SendBatch calls). Latency is from the send call to its acknowledgement; with\n" +
				"--rate it is from the time the schedule said the message was due, so a stalled broker\n" +
				"shows up as latency of every message that should have been sent meanwhile (no coordinated\n" +
				"omission). The topic is created with --queues queues if missing.",
			Flags:  produceFlags(),
			Action: benchProduce,
		},
		&cli.Command{
			Name:  "consume",
			Usage: "drain a topic's backlog (or follow new writes) with N consumers in one group and report throughput",
			Description: "The group defaults to a fresh bench-<unix-nanos>, so --from first reads the whole backlog.\n" +
				"With --from first the run stops when the backlog as of the start is consumed (or --count,\n" +
				"or --duration); with --from last it follows new writes until --count, --duration or Ctrl-C.\n" +
				"Consumers are push consumers whose handler only counts. No latency is measured: see bench e2e.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "topic", Value: "bench", Usage: "topic to consume"},
				&cli.IntFlag{Name: "clients", Aliases: []string{"c"}, Value: 1, Usage: "consumers, all in --group"},
				&cli.StringFlag{Name: "group", Aliases: []string{"g"}, Usage: "consumer group (default: bench-<unix-nanos>, new each run)"},
				&cli.StringFlag{Name: "from", Value: "first", Usage: "first (drain the backlog) or last (follow new writes)"},
				&cli.Int64Flag{Name: "count", Aliases: []string{"n"}, Usage: "stop after N messages (0: no limit)"},
				&cli.DurationFlag{Name: "duration", Aliases: []string{"d"}, Usage: "stop after this long (0: no limit)"},
				&cli.IntFlag{Name: "pull-batch", Value: 256, Usage: "most messages per pull (1 to 1024)"},
				&cli.BoolFlag{Name: "no-progress", Usage: "no progress line on stderr"},
			},
			Action: benchConsume,
		},
		&cli.Command{
			Name:  "e2e",
			Usage: "send at --rate and time each message from its send to its delivery to a consumer",
			Description: "Producers send at --rate with the scheduled send time (unix ns) in the message property\n" +
				"bench-sent; one consumer in a fresh group receives them and records now - bench-sent. The\n" +
				"report has the producers' send latency and the end-to-end latency, received and missing\n" +
				"messages and the achieved rate. Producer and consumer run in this process, on one clock.",
			Flags:  e2eFlags(),
			Action: benchE2E,
		},
		&cli.Command{
			Name:  "delay",
			Usage: "send delayed messages due over --spread and measure how late, and whether, each is delivered",
			Description: "Producers (async, --inflight per client) send --count messages whose due times (DeliverAt)\n" +
				"are spread uniformly over --spread from the start, in send order (--order sequential) or at\n" +
				"random; one consumer of a fresh group receives them. The report has the producers' send rate\n" +
				"and latency, then delivered, duplicate and lost messages (acknowledged, not received within\n" +
				"--grace after the last due time), the most timers pending at once (acknowledged minus\n" +
				"received), and the lateness of each timer delivery: receipt - due (TIMER_DELIVER_MS) and the\n" +
				"delivery's StoreTime - due. A message already due when the leader validates it is delivered\n" +
				"at once without TIMER_DELIVER_MS, counted apart and not timed. Producer and consumer run in\n" +
				"this process, on one clock.",
			Flags:  delayBenchFlags(),
			Action: benchDelay,
		},
	)
}

func producerFlags(defaultRate float64) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "topic", Value: "bench", Usage: "topic (created if missing)"},
		&cli.IntFlag{Name: "clients", Aliases: []string{"c"}, Value: 1, Usage: "producers, each with its own connections"},
		&cli.IntFlag{Name: "size", Aliases: []string{"s"}, Value: 1024, Usage: "message body size in bytes"},
		&cli.Int64Flag{Name: "count", Aliases: []string{"n"}, Value: 100000, Usage: "messages to send across all clients (0: no limit; unset with --duration: no limit)"},
		&cli.DurationFlag{Name: "duration", Aliases: []string{"d"}, Usage: "stop sending after this long (0: no limit)"},
		&cli.StringFlag{Name: "mode", Value: "async", Usage: "sync (--concurrency blocking senders per client) or async (--inflight SendAsync per client)"},
		&cli.IntFlag{Name: "concurrency", Value: 1, Usage: "sync mode: sending goroutines per client"},
		&cli.IntFlag{Name: "inflight", Value: 1024, Usage: "async mode: most unacknowledged messages per client"},
		&cli.IntFlag{Name: "requests-in-flight", Usage: "SendRequests a client pipelines per leader (ProducerConfig.MaxInflightRequests; default 4)"},
		&cli.IntFlag{Name: "batch", Value: 1, Usage: "messages per SendBatch call (1: single sends)"},
		&cli.IntFlag{Name: "queues", Value: 8, Usage: "queue count when the topic is created"},
		&cli.Float64Flag{Name: "rate", Value: defaultRate, Usage: "target msgs/s across all clients (0: as fast as possible)"},
		&cli.BoolFlag{Name: "no-progress", Usage: "no progress line on stderr"},
		&cli.BoolFlag{Name: "trace", Usage: "trace every send (ProducerConfig.Trace), to measure what tracing costs"},
		&cli.BoolFlag{Name: "idempotent", Usage: "ask the broker to store each message once across retries (ProducerConfig.Idempotent)"},
	}
}

func produceFlags() []cli.Flag { return producerFlags(0) }

func e2eFlags() []cli.Flag {
	return append(producerFlags(1000),
		&cli.DurationFlag{Name: "grace", Value: 10 * time.Second, Usage: "how long to wait for the last messages after sending ends"},
	)
}

// produceOptions are the validated flags of bench produce and bench e2e.
type produceOptions struct {
	Topic       string
	Clients     int
	Size        int
	Count       int64 // 0: until Duration or Ctrl-C
	Duration    time.Duration
	Mode        string
	Concurrency int
	Inflight    int
	Batch       int
	Queues      int
	Rate        float64
	Progress    bool
}

// maxBatchBytes is what one SendBatch may carry (client.SendBatch's limit).
const maxBatchBytes = wire.DefaultMaxFrame - 1<<20

func parseProduceOptions(c *cli.Context) (produceOptions, error) {
	if _, err := wantArgs(c); err != nil {
		return produceOptions{}, err
	}
	o := produceOptions{
		Topic: c.String("topic"), Clients: c.Int("clients"), Size: c.Int("size"),
		Count: c.Int64("count"), Duration: c.Duration("duration"), Mode: c.String("mode"),
		Concurrency: c.Int("concurrency"), Inflight: c.Int("inflight"), Batch: c.Int("batch"),
		Queues: c.Int("queues"), Rate: c.Float64("rate"), Progress: !c.Bool("no-progress"),
	}
	if o.Duration > 0 && !c.IsSet("count") {
		o.Count = 0
	}
	maxSize := int(client.DefaultProducerConfig().MaxMessageSize)
	var errs []error
	if err := client.ValidateTopic(o.Topic); err != nil {
		errs = append(errs, fmt.Errorf("--topic: %w", explain(err, "")))
	}
	errs = append(errs,
		atLeast("clients", o.Clients, 1),
		within("size", o.Size, 1, maxSize),
		atLeast("concurrency", o.Concurrency, 1),
		atLeast("inflight", o.Inflight, 1),
		atLeast("requests-in-flight", c.Int("requests-in-flight"), 0),
		within("batch", o.Batch, 1, client.DefaultProducerConfig().MaxBatchMessages),
		within("queues", o.Queues, 1, 1024),
	)
	if o.Mode != "sync" && o.Mode != "async" {
		errs = append(errs, fmt.Errorf("--mode %q: want sync or async", o.Mode))
	}
	if o.Count < 0 {
		errs = append(errs, fmt.Errorf("--count %d: want 0 (no limit) or more", o.Count))
	}
	if o.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration %v: want 0 (no limit) or more", o.Duration))
	}
	if o.Rate < 0 {
		errs = append(errs, fmt.Errorf("--rate %g: want 0 (unpaced) or more", o.Rate))
	}
	if o.Batch > 1 && int64(o.Batch)*int64(o.Size) > maxBatchBytes {
		errs = append(errs, fmt.Errorf("--batch %d of --size %d is %d bytes; one batch carries at most %d", o.Batch, o.Size, o.Batch*o.Size, maxBatchBytes))
	}
	return o, firstError(errs)
}

func atLeast(flag string, v, lo int) error {
	if v < lo {
		return fmt.Errorf("--%s %d: want %d or more", flag, v, lo)
	}
	return nil
}

func within(flag string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("--%s %d: want %d to %d", flag, v, lo, hi)
	}
	return nil
}

// firstError keeps a flag error to one line: the first problem found.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ensureTopic returns the topic's queue count, creating it with queues
// queues when it does not exist. A topic that exists with another queue
// count is used as it is, with a note on stderr if --queues was given.
func ensureTopic(c *cli.Context, topic string, queues int) (int, error) {
	var n int
	err := withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		st, err := a.TopicStatus(ctx, topic)
		if errors.Is(err, client.ErrTopicNotFound) {
			if _, err := a.CreateTopic(ctx, client.TopicSpec{Name: topic, Queues: uint32(queues)}); err != nil && !errors.Is(err, client.ErrTopicExists) {
				return fmt.Errorf("create topic %q: %w", topic, explain(err, topic))
			}
			if err := waitRouted(ctx, a, topic); err != nil {
				return fmt.Errorf("topic %q created, but the NameServer does not route it yet: %w", topic, err)
			}
			fmt.Fprintf(c.App.ErrWriter, "created topic %s with %d queues\n", topic, queues)
			st, err = a.TopicStatus(ctx, topic)
		}
		if err != nil {
			return explain(err, topic)
		}
		n = len(st)
		return nil
	})
	if err == nil && c.IsSet("queues") && n != queues {
		fmt.Fprintf(c.App.ErrWriter, "topic %s exists with %d queues; --queues %d applies only when the bench creates it\n", topic, n, queues)
	}
	return n, err
}

// newBenchProducer is one bench client. Auto-creation is off: the bench
// created the topic, with --queues.
func newBenchProducer(c *cli.Context, o produceOptions) (*client.Producer, error) {
	ns, err := nameServers(c)
	if err != nil {
		return nil, err
	}
	return client.NewProducer(client.ProducerConfig{
		NameServers:      ns,
		Credentials:      credentials(c),
		TLS:              clientTLS(c),
		SendTimeout:      c.Duration("timeout"),
		AutoCreateQueues: -1,
		// The bench bounds what is outstanding itself (--inflight); the
		// producer's own bound only has to stay out of the way, including
		// for callbacks that released the bench's slot but not yet the
		// producer's.
		MaxInflightAsync:    2 * o.Inflight,
		MaxInflightRequests: c.Int("requests-in-flight"), // 0: the client's default
		Logger:              clientLogger(c),
		Trace:               c.Bool("trace"),
		Idempotent:          c.Bool("idempotent"),
	})
}

// randomBody is size incompressible bytes, shared read-only by every
// message of a run.
func randomBody(size int) []byte {
	b := make([]byte, size)
	_, _ = rand.Read(b)
	return b
}

// runID names one run in message properties and group names.
func runID() string { return fmt.Sprintf("%d", time.Now().UnixNano()) }
