package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/internal/sql92"
)

func consumeCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:      "consume",
		Usage:     "print a topic's messages as a member of a consumer group",
		ArgsUsage: "TOPIC",
		Description: "Prints one line per message (queue, offset, msg id, tags, keys, body), or one JSON\n" +
			"object per line with --output json, until --count messages, --exit, --wait or Ctrl-C.\n" +
			"Offsets are committed for the group as messages are printed; --from applies only to\n" +
			"queues the group has no committed offset for. A batch cut short by --count is not\n" +
			"committed: the group gets its unprinted messages again, and may get printed ones of\n" +
			"that batch again.\n\n" +
			"--exit (kcat -e) stops once caught up: every queue this member owns has been read up\n" +
			"to the queue's max offset in its latest pull answer (messages the --tag filter skips\n" +
			"count as read; messages stored later do not count). Alone in its group a member owns\n" +
			"every queue of the topic; if other members share the group, only this member's queues\n" +
			"count. Nothing counts before the member got its queues. --wait D stops after D from\n" +
			"the start of the command; with --count or --exit, whichever comes first ends it. Every\n" +
			"way of stopping prints what was consumed, then commits and leaves the group.\n\n" +
			"--pop consumes as a pop (simple) consumer, RocketMQ 5 style: members of the group share\n" +
			"every queue, each printed message is acked after printing, and one not acked within\n" +
			"--invisible (--no-ack, or this process dying) is received again by some member with its\n" +
			"reconsume count raised, until the group's dead-letter queue after 16 such expiries.\n" +
			"With --pop, --exit stops at the first receive that finds nothing.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cluster", Usage: "only the broker groups of this `CLUSTER` (the name their brokers registered with); default every cluster"},
			&cli.StringFlag{Name: "group", Aliases: []string{"g"}, Usage: "consumer group (required unless --broadcast)"},
			&cli.StringFlag{Name: "from", Value: "last", Usage: "where a group without offsets starts: last, first or an RFC3339 time"},
			&cli.BoolFlag{Name: "broadcast", Usage: "every member gets every message; offsets stay in this process"},
			&cli.BoolFlag{Name: "orderly", Usage: "consume each queue strictly in order, only while holding its lock"},
			&cli.StringFlag{Name: "tag", Value: "*", Usage: `tag filter: "*" or "a || b"`},
			&cli.StringFlag{Name: "sql", Usage: `SQL92 filter over properties and TAGS, evaluated by the broker, e.g. "region = 'eu' AND amount > 100"`},
			&cli.IntFlag{Name: "count", Aliases: []string{"n"}, Usage: "stop after N messages (0: run until Ctrl-C)"},
			&cli.BoolFlag{Name: "exit", Aliases: []string{"e"}, Usage: "stop once every owned queue is read to its end"},
			&cli.DurationFlag{Name: "wait", Usage: "stop after this long, e.g. 10s (0: no bound)"},
			&cli.BoolFlag{Name: "pop", Usage: "consume as a pop consumer: share every queue with the group's members, ack each message"},
			&cli.DurationFlag{Name: "invisible", Value: 30 * time.Second, Usage: "with --pop: how long a received message stays invisible to other members unless acked (1s..12h)"},
			&cli.BoolFlag{Name: "no-ack", Usage: "with --pop: print but do not ack (the messages come back after --invisible)"},
			&cli.BoolFlag{Name: "trace", Usage: "record deliveries and results in the trace topic (rmq message trace MSG_ID)"},
		},
		Action: consume,
	})
}

// consumedMessage is one printed message: a table line, or a JSON line.
type consumedMessage struct {
	Topic       string            `json:"topic"`
	BrokerGroup string            `json:"broker_group"`
	QueueID     uint32            `json:"queue_id"`
	Offset      uint64            `json:"offset"`
	MsgID       string            `json:"msg_id"`
	Tags        string            `json:"tags,omitempty"`
	Keys        []string          `json:"keys,omitempty"`
	Properties  map[string]string `json:"properties,omitempty"`
	StoreTime   time.Time         `json:"store_time,omitzero"`
	Redelivered bool              `json:"redelivered,omitempty"`
	// A redelivery from the group's retry queue: that queue's topic (the
	// queue and offset above are the retry queue's) and the failures so far.
	RetryTopic     string `json:"retry_topic,omitempty"`
	ReconsumeTimes int    `json:"reconsume_times,omitempty"`
	// Body is the body when it is UTF-8 text; otherwise BodyBase64 (JSON)
	// holds it and the table shows it quoted.
	Body       string `json:"body,omitempty"`
	BodyBase64 []byte `json:"body_base64,omitempty"`
}

func newConsumedMessage(m *client.MessageExt) consumedMessage {
	cm := consumedMessage{
		Topic: m.Topic, BrokerGroup: m.Queue.Group, QueueID: m.Queue.QueueID, Offset: m.QueueOffset,
		MsgID: m.MsgID, Tags: m.Tags, Keys: m.Keys, Properties: m.Properties, StoreTime: m.StoreTime,
		Redelivered: m.Redelivered,
	}
	if m.RetryOf != nil {
		cm.RetryTopic, cm.ReconsumeTimes = m.Queue.Topic, m.ReconsumeTimes
	}
	if utf8.Valid(m.Body) {
		cm.Body = string(m.Body)
	} else {
		cm.BodyBase64 = m.Body
	}
	return cm
}

const consumeHeader = "QUEUE            OFFSET    MSG ID                            TAGS        KEYS        BODY\n"

// line is the table form: fixed-width columns so a stream of messages
// lines up without buffering.
func (m consumedMessage) line() string {
	body := m.Body
	if m.BodyBase64 != nil {
		body = string(m.BodyBase64)
	}
	keys := strings.Join(m.Keys, ",")
	queue := fmt.Sprintf("%s#%d", m.BrokerGroup, m.QueueID)
	if m.RetryTopic != "" || m.ReconsumeTimes > 0 { // a retry (or a pop redelivery): how many deliveries failed
		queue = fmt.Sprintf("%s#%d/retry%d", m.BrokerGroup, m.QueueID, m.ReconsumeTimes)
	}
	return fmt.Sprintf("%-16s %-9d %-33s %-11s %-11s %s\n",
		queue, m.Offset, m.MsgID, textCell(m.Tags), textCell(keys), textCell(body))
}

// fromFlag parses --from.
func fromFlag(s string) (client.ConsumeFrom, time.Time, error) {
	switch s {
	case "last", "":
		return client.FromLast, time.Time{}, nil
	case "first":
		return client.FromFirst, time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("--from %q: want last, first or an RFC3339 time", s)
	}
	return client.FromTimestamp, t, nil
}

func consume(c *cli.Context) error {
	args, err := wantArgs(c, "TOPIC")
	if err != nil {
		return err
	}
	topic := args[0]
	if err := client.ValidateTopic(topic); err != nil {
		return explain(err, topic)
	}
	from, fromTime, err := fromFlag(c.String("from"))
	if err != nil {
		return err
	}
	if _, err := client.ParseTagExpression(c.String("tag")); err != nil {
		return fmt.Errorf("--tag %q: %w", c.String("tag"), explain(err, ""))
	}
	count := c.Int("count")
	if count < 0 {
		return fmt.Errorf("--count %d: want 0 (no limit) or more", count)
	}
	wait := c.Duration("wait")
	if wait < 0 {
		return fmt.Errorf("--wait %s: want 0 (no bound) or more", wait)
	}
	var waitC <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		waitC = t.C
	}
	exit := c.Bool("exit")
	ns, err := nameServers(c)
	if err != nil {
		return err
	}
	if c.Bool("pop") {
		return consumePop(c, popOptions{topic: topic, ns: ns, from: from, count: count, exit: exit, waitC: waitC, wait: wait})
	}
	for _, f := range []string{"invisible", "no-ack"} {
		if c.IsSet(f) {
			return fmt.Errorf("--%s needs --pop", f)
		}
	}
	subs, sqlSubs, err := subscriptionFlags(c, topic)
	if err != nil {
		return err
	}
	cfg := client.ConsumerConfig{
		NameServers:      ns,
		Credentials:      credentials(c),
		TLS:              clientTLS(c),
		Group:            c.String("group"),
		Subscriptions:    subs,
		SQLSubscriptions: sqlSubs,
		From:             from,
		FromTimestamp:    fromTime,
		Orderly:          c.Bool("orderly"),
		Logger:           clientLogger(c),
		Trace:            c.Bool("trace"),
		Cluster:          c.String("cluster"),
	}
	if count > 0 {
		// Smaller pulls cut fewer batches short at the --count limit.
		cfg.PullBatch = min(count, 32)
	}
	if exit {
		// An empty queue answers only when the long poll ends: keep it
		// short so --exit notices the end soon (librdkafka's
		// fetch.wait.max.ms is 500ms too).
		cfg.LongPollWait = exitPollWait
	}
	if c.Bool("broadcast") {
		cfg.Mode = client.Broadcasting
		if cfg.Group == "" {
			cfg.Group = fmt.Sprintf("rmq-cli-broadcast-%d", os.Getpid())
		}
	} else if cfg.Group == "" {
		return errors.New("--group is required (or use --broadcast)")
	}
	if err := client.ValidateGroup(cfg.Group); err != nil {
		return fmt.Errorf("--group: %w", explain(err, ""))
	}
	// Fail fast on a topic that does not exist: the consumer itself
	// would keep waiting for it.
	if err := withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		_, err := a.TopicStatus(ctx, topic)
		return explain(err, topic)
	}); err != nil {
		return err
	}
	cons, err := client.NewConsumer(cfg)
	if err != nil {
		return err
	}
	pr := &printer{w: c.App.Writer, json: jsonOutput(c), limit: count, done: make(chan struct{})}
	startCtx, cancel := opContext(c)
	err = cons.Start(startCtx, pr.handle)
	cancel()
	stopped := ""
	if err == nil {
		stopped = waitConsumed(c.Context, cons, pr, exit, waitC, wait)
		pr.halt() // what arrives while leaving stays uncommitted
	}
	// Leave the group cleanly even after Ctrl-C: commit what was printed
	// and release the queues for the other members.
	closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(c.Context), c.Duration("timeout"))
	defer cancelClose()
	cerr := cons.Close(closeCtx)
	if err != nil {
		return explain(err, topic)
	}
	if perr := pr.failure(); perr != nil {
		return perr
	}
	if cerr != nil {
		return fmt.Errorf("leave group %s: %w", cfg.Group, cerr)
	}
	msgs := "messages"
	n := pr.printed()
	if n == 1 {
		msgs = "message"
	}
	fmt.Fprintf(c.App.ErrWriter, "%sconsumed %d %s\n", stopped, n, msgs)
	return nil
}

// exitPollWait is the long-poll wait of a consume --exit.
const exitPollWait = 500 * time.Millisecond

// exitCheck is how often consume --exit looks at the consumer's progress.
const exitCheck = 50 * time.Millisecond

// waitConsumed blocks until the printer is done (--count, write error),
// ctx ends (Ctrl-C), waitC fires (--wait) or, with exit, the consumer
// has caught up. It returns the stderr prefix naming why it stopped.
func waitConsumed(ctx context.Context, cons *client.Consumer, pr *printer, exit bool, waitC <-chan time.Time, wait time.Duration) string {
	var check <-chan time.Time
	if exit {
		t := time.NewTicker(exitCheck)
		defer t.Stop()
		check = t.C
	}
	for {
		select {
		case <-pr.done:
			return ""
		case <-ctx.Done():
			return ""
		case <-waitC:
			return fmt.Sprintf("stopped after %s (--wait): ", wait)
		case <-check:
			if cons.Progress().CaughtUp() {
				return "caught up (--exit): "
			}
		}
	}
}

// printer is the consumer's handler: it prints messages until limit and
// then refuses the rest (ConsumeRetryLater), so they stay uncommitted.
type printer struct {
	w     io.Writer
	json  bool
	limit int // 0: no limit

	mu      sync.Mutex
	n       int
	header  bool
	err     error
	done    chan struct{} // closed at the limit or on a write error
	stopped bool
}

func (p *printer) handle(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return client.ConsumeRetryLater
	}
	take := msgs
	if p.limit > 0 && p.n+len(msgs) > p.limit {
		take = msgs[:p.limit-p.n]
	}
	for _, m := range take {
		if err := p.print(newConsumedMessage(m)); err != nil {
			p.err = fmt.Errorf("write message: %w", err)
			p.stop()
			return client.ConsumeRetryLater
		}
		p.n++
	}
	if p.limit > 0 && p.n >= p.limit {
		p.stop()
	}
	if len(take) < len(msgs) {
		return client.ConsumeRetryLater
	}
	return client.ConsumeSuccess
}

func (p *printer) print(m consumedMessage) error {
	if p.json {
		return json.NewEncoder(p.w).Encode(m)
	}
	if !p.header {
		p.header = true
		if _, err := io.WriteString(p.w, consumeHeader); err != nil {
			return err
		}
	}
	_, err := io.WriteString(p.w, m.line())
	return err
}

func (p *printer) stop() {
	if !p.stopped {
		p.stopped = true
		close(p.done)
	}
}

// halt refuses every batch from now on.
func (p *printer) halt() {
	p.mu.Lock()
	p.stop()
	p.mu.Unlock()
}

func (p *printer) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *printer) printed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// subscriptionFlags reads --tag or --sql for topic.
func subscriptionFlags(c *cli.Context, topic string) (map[string]string, map[string]string, error) {
	if c.IsSet("sql") {
		if c.IsSet("tag") {
			return nil, nil, errors.New("--tag and --sql do not mix: a SQL92 filter can test TAGS itself")
		}
		if _, err := sql92.Parse(c.String("sql")); err != nil {
			return nil, nil, fmt.Errorf("--sql: %w", err)
		}
		return nil, map[string]string{topic: c.String("sql")}, nil
	}
	return map[string]string{topic: c.String("tag")}, nil, nil
}
