package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
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
			"\"-\", or piped in). --count N sends N copies; more than 20 print a summary.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read the body from `PATH` (- for stdin)"},
			&cli.StringFlag{Name: "tag", Usage: "message tag, for consumer filters"},
			&cli.GenericFlag{Name: "key", Value: &repeated{}, Usage: "business key (repeatable)"},
			&cli.GenericFlag{Name: "property", Value: &repeated{}, Usage: "user property `k=v` (repeatable)"},
			&cli.StringFlag{Name: "sharding-key", Usage: "send every message with this key to the same queue"},
			&cli.IntFlag{Name: "count", Aliases: []string{"n"}, Value: 1, Usage: "send N copies"},
			&cli.BoolFlag{Name: "no-auto-create", Usage: "fail if the topic does not exist instead of creating it"},
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
}

type sendRows []sendRow

func (v sendRows) table(w io.Writer) {
	row(w, "MSG ID", "TOPIC", "BROKER GROUP", "QUEUE", "OFFSET")
	for _, r := range v {
		row(w, r.MsgID, r.Topic, r.BrokerGroup, r.QueueID, r.Offset)
	}
}

// sendQueueCount is how many messages of a send went to one queue.
type sendQueueCount struct {
	BrokerGroup string `json:"broker_group"`
	QueueID     uint32 `json:"queue_id"`
	Messages    int    `json:"messages"`
	FirstOffset uint64 `json:"first_offset"`
	LastOffset  uint64 `json:"last_offset"`
}

// sendSummary is the result of a large --count.
type sendSummary struct {
	Topic         string           `json:"topic"`
	Sent          int              `json:"sent"`
	Failed        int              `json:"failed"`
	ElapsedMillis int64            `json:"elapsed_ms"`
	MsgsPerSec    float64          `json:"msgs_per_sec"`
	Queues        []sendQueueCount `json:"queues"`
}

func (v sendSummary) table(w io.Writer) {
	fmt.Fprintf(w, "sent %d messages to %s in %s (%.0f msgs/s), %d failed\n\n",
		v.Sent, v.Topic, time.Duration(v.ElapsedMillis)*time.Millisecond, v.MsgsPerSec, v.Failed)
	row(w, "BROKER GROUP", "QUEUE", "MESSAGES", "FIRST OFFSET", "LAST OFFSET")
	for _, q := range v.Queues {
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
	cfg := client.ProducerConfig{NameServers: ns, SendTimeout: c.Duration("timeout"), Logger: clientLogger(c)}
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
				rows = append(rows, sendRow{MsgID: r.MsgID, Topic: r.Topic, BrokerGroup: r.Group, QueueID: r.QueueID, Offset: r.QueueOffset, StoreTime: r.StoreTime})
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
