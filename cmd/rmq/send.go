package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

// summaryOver is the --count above which send prints a summary instead
// of one line per message.
const summaryOver = 20

func sendCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:      "send",
		Usage:     "send a message (or --count copies) and print where it was stored",
		ArgsUsage: "TOPIC [BODY]",
		Description: "The body is BODY, the file named by --file, or standard input (BODY or --file\n" +
			"\"-\", or piped in). --count N sends N copies; more than 20 print a summary.\n" +
			"--delay, --deliver-at or --delay-level (one of them) makes a delayed message: the broker\n" +
			"stores it now and delivers it to consumers when due; the output says when that is.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cluster", Usage: "only the broker groups of this `CLUSTER` (the name their brokers registered with); default every cluster"},
			&cli.BoolFlag{Name: "trace", Usage: "record the send in the trace topic (rmq message trace MSG_ID)"},
			&cli.BoolFlag{Name: "idempotent", Usage: "a send retried after an unknown outcome is stored once (broker dedup)"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read the body from `PATH` (- for stdin)"},
			&cli.StringFlag{Name: "tag", Usage: "message tag, for consumer filters"},
			&cli.GenericFlag{Name: "key", Value: &repeated{}, Usage: "business key (repeatable)"},
			&cli.GenericFlag{Name: "property", Value: &repeated{}, Usage: "user property `k=v` (repeatable)"},
			&cli.StringFlag{Name: "sharding-key", Usage: "send every message with this key to the same queue"},
			&cli.IntFlag{Name: "count", Aliases: []string{"n"}, Value: 1, Usage: "send N copies"},
			&cli.BoolFlag{Name: "no-auto-create", Usage: "fail if the topic does not exist instead of creating it"},
			&cli.DurationFlag{Name: "delay", Usage: "deliver after this long, by the broker's clock (at most its max_delay, default 72h)"},
			&cli.StringFlag{Name: "deliver-at", Usage: "deliver at `TIME`: RFC 3339 (2025-03-01T12:00:00Z) or unix milliseconds; a past time delivers at once"},
			&cli.IntFlag{Name: "delay-level", Usage: "deliver after delay level `N` (1..18 by default: 1s 5s 10s 30s 1m 2m ... 10m 20m 30m 1h 2h, as the broker configures them)"},
		},
		Action: send,
	})
}

// repeated is a flag value collecting every occurrence as is (no comma
// splitting, unlike cli.StringSliceFlag).
type repeated struct{ vals []string }

func (r *repeated) Set(v string) error { r.vals = append(r.vals, v); return nil }
func (r *repeated) String() string     { return strings.Join(r.vals, " ") }

func repeatedValues(c *cli.Context, name string) []string {
	if r, ok := c.Generic(name).(*repeated); ok {
		return r.vals
	}
	return nil
}

// sendRow is one stored message.
type sendRow struct {
	MsgID       string    `json:"msg_id"`
	Topic       string    `json:"topic"`
	BrokerGroup string    `json:"broker_group"`
	QueueID     uint32    `json:"queue_id"`
	Offset      uint64    `json:"offset"`
	StoreTime   time.Time `json:"store_time,omitzero"`
	// DeliverAt is a delayed message's due time (broker clock); its
	// Offset is 0 until it is delivered.
	DeliverAt time.Time `json:"deliver_at,omitzero"`
}

type sendRows []sendRow

// table prints one row per message; delayed messages have no offset yet
// ("-") and a line after the table says when they are due.
func (v sendRows) table(w io.Writer) {
	row(w, "MSG ID", "TOPIC", "BROKER GROUP", "QUEUE", "OFFSET")
	var due dueRange
	for _, r := range v {
		var off any = r.Offset
		if !r.DeliverAt.IsZero() {
			off = "-"
			due.add(r.DeliverAt, r.DeliverAt.Sub(r.StoreTime))
		}
		row(w, r.MsgID, r.Topic, r.BrokerGroup, r.QueueID, off)
	}
	if line := due.line(len(v)); line != "" {
		fmt.Fprintln(w, line)
	}
}

// dueRange spans the due times of a send's delayed messages.
type dueRange struct {
	n            int
	first, last  time.Time
	minIn, maxIn time.Duration // due time minus store time
}

func (d *dueRange) add(at time.Time, in time.Duration) {
	if d.n == 0 || at.Before(d.first) {
		d.first, d.minIn = at, in
	}
	if d.n == 0 || at.After(d.last) {
		d.last, d.maxIn = at, in
	}
	d.n++
}

// line says when the delayed messages of a send of total messages are
// due, relative to when the broker stored them; "" if none is delayed.
func (d *dueRange) line(total int) string {
	if d.n == 0 {
		return ""
	}
	what := "delayed: due"
	if d.n < total {
		what = fmt.Sprintf("%d delayed: due", d.n)
	}
	if d.first.Equal(d.last) {
		return fmt.Sprintf("%s at %s (in %s); offsets are assigned at delivery", what, timeCell(d.first), roundDelay(d.minIn))
	}
	in := roundDelay(d.minIn).String()
	if hi := roundDelay(d.maxIn); hi != roundDelay(d.minIn) {
		in += " to " + hi.String()
	}
	return fmt.Sprintf("%s from %s to %s (in %s); offsets are assigned at delivery",
		what, timeCell(d.first), timeCell(d.last), in)
}

// roundDelay rounds a delay for reading: to the second from a minute up,
// else to the millisecond.
func roundDelay(d time.Duration) time.Duration {
	if d >= time.Minute || d <= -time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// sendQueueCount is how many messages of a send went to one queue.
type sendQueueCount struct {
	BrokerGroup string `json:"broker_group"`
	QueueID     uint32 `json:"queue_id"`
	Messages    int    `json:"messages"`
	FirstOffset uint64 `json:"first_offset"`
	LastOffset  uint64 `json:"last_offset"`
	// Delayed messages have no offset until they are delivered.
	Delayed int `json:"delayed,omitempty"`
}

// sendSummary is the result of a large --count.
type sendSummary struct {
	Topic         string           `json:"topic"`
	Sent          int              `json:"sent"`
	Failed        int              `json:"failed"`
	ElapsedMillis int64            `json:"elapsed_ms"`
	MsgsPerSec    float64          `json:"msgs_per_sec"`
	Queues        []sendQueueCount `json:"queues"`
	// Delayed messages: how many, and the span of their due times.
	Delayed        int       `json:"delayed,omitempty"`
	FirstDeliverAt time.Time `json:"first_deliver_at,omitzero"`
	LastDeliverAt  time.Time `json:"last_deliver_at,omitzero"`
	due            dueRange
}

func (v sendSummary) table(w io.Writer) {
	fmt.Fprintf(w, "sent %d messages to %s in %s (%.0f msgs/s), %d failed\n",
		v.Sent, v.Topic, time.Duration(v.ElapsedMillis)*time.Millisecond, v.MsgsPerSec, v.Failed)
	if line := v.due.line(v.Sent); line != "" {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	row(w, "BROKER GROUP", "QUEUE", "MESSAGES", "FIRST OFFSET", "LAST OFFSET")
	for _, q := range v.Queues {
		if q.Delayed == q.Messages {
			row(w, q.BrokerGroup, q.QueueID, q.Messages, "-", "-")
			continue
		}
		row(w, q.BrokerGroup, q.QueueID, q.Messages, q.FirstOffset, q.LastOffset)
	}
}

func send(c *cli.Context) error {
	args, err := wantArgs(c, "TOPIC", "[BODY]")
	if err != nil {
		return err
	}
	topic := args[0]
	if err := client.ValidateTopic(topic); err != nil {
		return explain(err, topic)
	}
	msg := &client.Message{Topic: topic, Tags: c.String("tag"), Keys: repeatedValues(c, "key"), ShardingKey: c.String("sharding-key")}
	for _, kv := range repeatedValues(c, "property") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--property %q: want k=v", kv)
		}
		if msg.Properties == nil {
			msg.Properties = map[string]string{}
		}
		msg.Properties[k] = v
	}
	if err := delayFlags(c, msg); err != nil {
		return err
	}
	count := c.Int("count")
	if count < 1 {
		return fmt.Errorf("--count %d: want 1 or more", count)
	}
	body, err := readBody(c, args)
	if err != nil {
		return err
	}
	limit := client.DefaultProducerConfig().MaxMessageSize
	if int64(len(body)) > limit {
		return fmt.Errorf("body is %d bytes; the limit is %d", len(body), limit)
	}
	if len(body) == 0 {
		return errors.New("body is empty")
	}
	msg.Body = body

	ns, err := nameServers(c)
	if err != nil {
		return err
	}
	cfg := client.ProducerConfig{NameServers: ns, Credentials: credentials(c), TLS: clientTLS(c), SendTimeout: c.Duration("timeout"), Logger: clientLogger(c), Trace: c.Bool("trace"), Idempotent: c.Bool("idempotent"), Cluster: c.String("cluster")}
	if c.Bool("no-auto-create") {
		cfg.AutoCreateQueues = -1
	}
	p, err := client.NewProducer(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	results, errs := sendAll(c.Context, p, msg, count)
	elapsed := time.Since(start)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), 5*time.Second)
	defer cancel()
	if err := p.Close(closeCtx); err != nil {
		return err
	}
	failed, firstErr := 0, error(nil)
	for _, e := range errs {
		if e != nil {
			failed++
			if firstErr == nil {
				firstErr = e
			}
		}
	}
	if failed == count {
		return explain(firstErr, topic)
	}
	var out view
	if count > summaryOver {
		out = summarize(topic, results, errs, elapsed)
	} else {
		rows := sendRows{}
		for i, r := range results {
			if errs[i] == nil {
				rows = append(rows, sendRow{MsgID: r.MsgID, Topic: r.Topic, BrokerGroup: r.Group, QueueID: r.QueueID, Offset: r.QueueOffset,
					StoreTime: r.StoreTime, DeliverAt: r.DeliverAt})
			}
		}
		out = rows
	}
	if err := render(c, out); err != nil {
		return err
	}
	if firstErr != nil {
		return fmt.Errorf("%d of %d sends failed; the first: %w", failed, count, explain(firstErr, topic))
	}
	return nil
}

// delayFlags sets msg's delivery time from --delay, --deliver-at or
// --delay-level, at most one of which may be given.
func delayFlags(c *cli.Context, msg *client.Message) error {
	var given []string
	for _, f := range []string{"delay", "deliver-at", "delay-level"} {
		if c.IsSet(f) {
			given = append(given, "--"+f)
		}
	}
	if len(given) > 1 {
		return fmt.Errorf("%s: give only one of --delay, --deliver-at and --delay-level", strings.Join(given, " and "))
	}
	switch {
	case c.IsSet("delay"):
		d := c.Duration("delay")
		if d <= 0 {
			return fmt.Errorf("--delay %v: want a positive duration such as 30s or 2h", d)
		}
		if d < time.Millisecond {
			return fmt.Errorf("--delay %v: the broker counts whole milliseconds; want 1ms or more", d)
		}
		msg.Delay = d
	case c.IsSet("deliver-at"):
		t, err := parseDeliverAt(c.String("deliver-at"))
		if err != nil {
			return err
		}
		msg.DeliverAt = t
	case c.IsSet("delay-level"):
		l := c.Int("delay-level")
		if l < 1 {
			return fmt.Errorf("--delay-level %d: want 1 or more (a level above the broker's last means the last)", l)
		}
		msg.DelayLevel = l
	}
	return nil
}

// parseDeliverAt reads --deliver-at: RFC 3339 or unix milliseconds.
func parseDeliverAt(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--deliver-at %q: want an RFC 3339 time such as 2025-03-01T12:00:00Z or unix milliseconds", s)
}

// sendAll sends count copies of msg concurrently and returns each
// outcome at its index.
func sendAll(ctx context.Context, p *client.Producer, msg *client.Message, count int) ([]client.SendResult, []error) {
	results, errs := make([]client.SendResult, count), make([]error, count)
	if count == 1 {
		results[0], errs[0] = p.Send(ctx, msg)
		return results, errs
	}
	var wg sync.WaitGroup
	for i := range count {
		wg.Add(1)
		p.SendAsync(ctx, msg, func(r client.SendResult, err error) {
			results[i], errs[i] = r, err
			wg.Done()
		})
	}
	wg.Wait()
	return results, errs
}

func summarize(topic string, results []client.SendResult, errs []error, elapsed time.Duration) sendSummary {
	s := sendSummary{Topic: topic, ElapsedMillis: elapsed.Milliseconds(), Queues: []sendQueueCount{}}
	byQueue := map[client.Queue]*sendQueueCount{}
	for i, r := range results {
		if errs[i] != nil {
			s.Failed++
			continue
		}
		s.Sent++
		q := client.Queue{Group: r.Group, QueueID: r.QueueID}
		qc := byQueue[q]
		if qc == nil {
			qc = &sendQueueCount{BrokerGroup: r.Group, QueueID: r.QueueID, FirstOffset: r.QueueOffset, LastOffset: r.QueueOffset}
			byQueue[q] = qc
		}
		if !r.DeliverAt.IsZero() {
			s.Delayed++
			s.due.add(r.DeliverAt, r.DeliverAt.Sub(r.StoreTime))
			qc.Delayed++
		}
		qc.Messages++
		qc.FirstOffset, qc.LastOffset = min(qc.FirstOffset, r.QueueOffset), max(qc.LastOffset, r.QueueOffset)
	}
	for _, qc := range byQueue {
		s.Queues = append(s.Queues, *qc)
	}
	sort.Slice(s.Queues, func(i, j int) bool {
		if s.Queues[i].BrokerGroup != s.Queues[j].BrokerGroup {
			return s.Queues[i].BrokerGroup < s.Queues[j].BrokerGroup
		}
		return s.Queues[i].QueueID < s.Queues[j].QueueID
	})
	if secs := elapsed.Seconds(); secs > 0 {
		s.MsgsPerSec = float64(s.Sent) / secs
	}
	if s.Delayed > 0 {
		s.FirstDeliverAt, s.LastDeliverAt = s.due.first, s.due.last
	}
	return s
}

// readBody returns the body from BODY, --file or stdin.
func readBody(c *cli.Context, args []string) ([]byte, error) {
	file := c.String("file")
	if len(args) == 2 {
		if file != "" {
			return nil, errors.New("give the body as BODY or --file, not both")
		}
		if arg := args[1]; arg != "-" {
			return []byte(arg), nil
		}
		file = "-"
	}
	switch file {
	case "-":
		return readStdin()
	case "":
		// Read stdin only when something is piped or redirected into it,
		// never from a terminal or /dev/null.
		if st, err := os.Stdin.Stat(); err == nil && (st.Mode()&os.ModeNamedPipe != 0 || st.Mode().IsRegular()) {
			return readStdin()
		}
		return nil, errors.New("no body: give BODY, --file PATH, or pipe it to stdin")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return b, nil
}

func readStdin() ([]byte, error) {
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		return nil, fmt.Errorf("read body from stdin: %w", err)
	}
	return b, nil
}
