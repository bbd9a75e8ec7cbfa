package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

func messageCommand() *cli.Command {
	bodyFlag := &cli.StringFlag{Name: "body", Value: "auto", Usage: "how to show bodies: auto (text, else hex), text, hex, or raw (the bodies alone, to stdout)"}
	return nounCommand("message", "find stored messages by id, key or store time",
		&cli.Command{
			Name:      "get",
			Usage:     "show the message with a message id (every stored copy)",
			ArgsUsage: "MSG_ID",
			Flags:     []cli.Flag{bodyFlag},
			Action:    messageGet,
		},
		&cli.Command{
			Name:  "find",
			Usage: "find a topic's messages by key, newest first",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Usage: "topic (required)"},
				&cli.StringFlag{Name: "key", Aliases: []string{"k"}, Usage: "message key (required)"},
				&cli.IntFlag{Name: "limit", Value: 32, Usage: "most messages per broker group (at most 1024)"},
				bodyFlag,
			},
			Action: messageFind,
		},
		&cli.Command{
			Name:      "trace",
			Usage:     "show a traced message's timeline: its send, deliveries and consume results",
			ArgsUsage: "MSG_ID",
			Description: "Producers and consumers record traces when created with Trace (rmq send --trace,\n" +
				"rmq consume --trace); the records live in the trace topic, found by message id.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "trace-topic", Value: "RMQ_SYS_TRACE_TOPIC", Usage: "topic the trace records were sent to"},
			},
			Action: messageTrace,
		},
		&cli.Command{
			Name:  "list",
			Usage: "list a topic's messages stored in a time range",
			Description: "--since and --until take a duration ago (10m) or an RFC3339 time; --until defaults to now.\n" +
				"Messages are listed by store time, up to --limit per broker group.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "topic", Aliases: []string{"t"}, Usage: "topic (required)"},
				&cli.StringFlag{Name: "since", Usage: "start of the range: a duration ago (10m) or an RFC3339 time (required)"},
				&cli.StringFlag{Name: "until", Usage: "end of the range (exclusive), as --since; default now"},
				&cli.IntFlag{Name: "limit", Value: 100, Usage: "most messages per broker group (at most 1024)"},
				bodyFlag,
			},
			Action: messageList,
		},
	)
}

// messageRow is one found message.
type messageRow struct {
	MsgID       string            `json:"msg_id"`
	Topic       string            `json:"topic"`
	BrokerGroup string            `json:"broker_group"`
	QueueID     uint32            `json:"queue_id"`
	Offset      *uint64           `json:"offset,omitempty"` // absent while Pending
	Pending     string            `json:"pending,omitempty"`
	StoreTime   time.Time         `json:"store_time,omitzero"`
	BornTime    time.Time         `json:"born_time,omitzero"`
	Tags        string            `json:"tags,omitempty"`
	Keys        []string          `json:"keys,omitempty"`
	Properties  map[string]string `json:"properties,omitempty"`
	Body        string            `json:"body,omitempty"`
	BodyHex     string            `json:"body_hex,omitempty"`
	BodyLen     int               `json:"body_bytes"`
}

type messageRows []messageRow

func (v messageRows) table(w io.Writer) {
	for i, m := range v {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "msg id:\t%s\n", m.MsgID)
		where := fmt.Sprintf("%s %s#%d", m.Topic, m.BrokerGroup, m.QueueID)
		if m.Offset != nil {
			where += fmt.Sprintf(" offset %d", *m.Offset)
		}
		if m.Pending != "" {
			where += " (pending: " + m.Pending + ")"
		}
		fmt.Fprintf(w, "queue:\t%s\n", where)
		fmt.Fprintf(w, "stored:\t%s (born %s)\n", m.StoreTime.UTC().Format(time.RFC3339Nano), m.BornTime.UTC().Format(time.RFC3339Nano))
		if m.Tags != "" {
			fmt.Fprintf(w, "tags:\t%s\n", m.Tags)
		}
		if len(m.Keys) > 0 {
			fmt.Fprintf(w, "keys:\t%s\n", strings.Join(m.Keys, " "))
		}
		names := make([]string, 0, len(m.Properties))
		for k := range m.Properties {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(w, "property:\t%s=%s\n", k, m.Properties[k])
		}
		if m.BodyHex != "" {
			fmt.Fprintf(w, "body (%d bytes, hex):\t%s\n", m.BodyLen, m.BodyHex)
		} else {
			fmt.Fprintf(w, "body (%d bytes):\t%s\n", m.BodyLen, m.Body)
		}
	}
}

func messageRowsOf(ms []client.FoundMessage, body string) messageRows {
	out := messageRows{}
	for _, f := range ms {
		m := f.MessageExt
		r := messageRow{MsgID: m.MsgID, Topic: m.Topic, BrokerGroup: m.Queue.Group, QueueID: m.Queue.QueueID, Pending: f.Pending,
			StoreTime: m.StoreTime, BornTime: m.BornTime, Tags: m.Tags, Keys: m.Keys, Properties: m.Properties, BodyLen: len(m.Body)}
		if f.Pending == "" {
			off := m.QueueOffset
			r.Offset = &off
		}
		switch {
		case body == "hex" || body == "auto" && !utf8.Valid(m.Body):
			r.BodyHex = hex.EncodeToString(m.Body)
		default:
			r.Body = string(m.Body)
		}
		out = append(out, r)
	}
	return out
}

func showMessages(c *cli.Context, ms []client.FoundMessage) error {
	switch body := c.String("body"); body {
	case "raw":
		for _, f := range ms {
			if _, err := c.App.Writer.Write(f.Body); err != nil {
				return err
			}
		}
		return nil
	case "auto", "text", "hex":
		return render(c, messageRowsOf(ms, body))
	default:
		return fmt.Errorf("--body %q: want auto, text, hex or raw", body)
	}
}

func messageGet(c *cli.Context) error {
	args, err := wantArgs(c, "MSG_ID")
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		ms, err := a.MessageByID(ctx, args[0])
		if err != nil {
			return explain(err, "")
		}
		if len(ms) == 0 {
			return fmt.Errorf("no stored message has id %s (never sent, or removed by retention)", args[0])
		}
		return showMessages(c, ms)
	})
}

func needFlags(c *cli.Context, names ...string) error {
	for _, n := range names {
		if c.String(n) == "" {
			return fmt.Errorf("--%s is required", n)
		}
	}
	return nil
}

func messageFind(c *cli.Context) error {
	if _, err := wantArgs(c); err != nil {
		return err
	}
	if err := needFlags(c, "topic", "key"); err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		ms, err := a.MessagesByKey(ctx, c.String("topic"), c.String("key"), c.Int("limit"))
		if err != nil {
			return explain(err, c.String("topic"))
		}
		return showMessages(c, ms)
	})
}

// parseWhen reads --since/--until: a duration ago or an RFC3339 time.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--%s %s: want a duration ago (positive) or an RFC3339 time", flag, s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q: want a duration ago (10m) or an RFC3339 time", flag, s)
	}
	return t, nil
}

func messageList(c *cli.Context) error {
	if _, err := wantArgs(c); err != nil {
		return err
	}
	if err := needFlags(c, "topic", "since"); err != nil {
		return err
	}
	now := time.Now()
	since, err := parseWhen("since", c.String("since"), now)
	if err != nil {
		return err
	}
	until := now
	if c.IsSet("until") {
		if until, err = parseWhen("until", c.String("until"), now); err != nil {
			return err
		}
	}
	if !until.After(since) {
		return errors.New("--until must be after --since")
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		ms, err := a.MessagesByTime(ctx, c.String("topic"), since, until, c.Int("limit"))
		if err != nil {
			return explain(err, c.String("topic"))
		}
		return showMessages(c, ms)
	})
}

type traceRow struct {
	At        time.Time `json:"at"`
	Event     string    `json:"event"`
	Result    string    `json:"result"`
	Group     string    `json:"group"`
	Client    string    `json:"client"`
	Where     string    `json:"where"`
	CostMS    float64   `json:"cost_ms"`
	Reconsume int       `json:"reconsume,omitempty"`
}

type traceRows []traceRow

func (v traceRows) table(w io.Writer) {
	row(w, "AT", "EVENT", "RESULT", "GROUP", "CLIENT", "WHERE", "COST", "RECONSUME")
	for _, r := range v {
		row(w, r.At.UTC().Format("15:04:05.000"), r.Event, r.Result, r.Group, r.Client, r.Where, fmt.Sprintf("%.1fms", r.CostMS), r.Reconsume)
	}
}

func messageTrace(c *cli.Context) error {
	args, err := wantArgs(c, "MSG_ID")
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		recs, err := a.MessageTrace(ctx, args[0], c.String("trace-topic"))
		if err != nil {
			return explain(err, "")
		}
		if len(recs) == 0 {
			return fmt.Errorf("no trace records of %s in %s (traced clients send them within about 100ms)", args[0], c.String("trace-topic"))
		}
		out := traceRows{}
		for _, r := range recs {
			where := fmt.Sprintf("%s %s#%d@%d", r.Topic, r.Broker, r.QueueID, r.Offset)
			out = append(out, traceRow{At: r.At, Event: r.Kind, Result: r.Result, Group: r.Group, Client: r.Client, Where: where,
				CostMS: float64(r.Cost) / 1000, Reconsume: r.Reconsume})
		}
		return render(c, out)
	})
}
