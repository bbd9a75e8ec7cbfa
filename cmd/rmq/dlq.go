package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

func dlqCommand() *cli.Command {
	return nounCommand("dlq", "list and resend a consumer group's dead letters",
		&cli.Command{
			Name:      "list",
			Usage:     "list the messages in a group's dead-letter queue (%DLQ%GROUP)",
			ArgsUsage: "GROUP",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "limit", Value: 100, Usage: "most messages to list (0: all)"},
			},
			Action: dlqList,
		},
		&cli.Command{
			Name:      "resend",
			Usage:     "redeliver dead letters to the group (through its retry queue), by message id or all",
			ArgsUsage: "GROUP",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "id", Usage: "message id to resend (repeatable)"},
				&cli.BoolFlag{Name: "all", Usage: "resend every dead letter of the group"},
			},
			Action: dlqResend,
		},
	)
}

type dlqRow struct {
	Offset   uint64 `json:"dlq_offset"`
	MsgID    string `json:"msg_id"`
	Topic    string `json:"topic"`
	Queue    string `json:"origin_queue"`
	Failures int    `json:"failures"`
	Stored   string `json:"dead_since"`
	Body     string `json:"body"`
}

type dlqRows []dlqRow

func (v dlqRows) table(w io.Writer) {
	row(w, "DLQ OFFSET", "MSG ID", "TOPIC", "ORIGIN QUEUE", "FAILURES", "DEAD SINCE", "BODY")
	for _, r := range v {
		row(w, r.Offset, r.MsgID, r.Topic, r.Queue, r.Failures, r.Stored, r.Body)
	}
}

// bodyPreview shows the start of a body as text, or its size.
func bodyPreview(b []byte) string {
	const max = 40
	if !utf8.Valid(b) {
		return fmt.Sprintf("(%d bytes)", len(b))
	}
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

func dlqList(c *cli.Context) error {
	args, err := wantArgs(c, "GROUP")
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		dls, err := a.DeadLetters(ctx, args[0], c.Int("limit"))
		if err != nil {
			return explain(err, "")
		}
		out := dlqRows{}
		for _, d := range dls {
			r := dlqRow{Offset: d.QueueOffset, MsgID: d.MsgID, Topic: d.Topic, Failures: d.Failures,
				Stored: d.StoreTime.UTC().Format(time.RFC3339), Body: bodyPreview(d.Body)}
			if o := d.RetryOf; o != nil {
				r.Topic, r.Queue = o.Topic, fmt.Sprintf("%s#%d@%d", d.Queue.Group, o.QueueID, o.Offset)
			}
			out = append(out, r)
		}
		return render(c, out)
	})
}

func dlqResend(c *cli.Context) error {
	args, err := wantArgs(c, "GROUP")
	if err != nil {
		return err
	}
	ids, all := c.StringSlice("id"), c.Bool("all")
	if all == (len(ids) > 0) {
		return fmt.Errorf("give --id ID (repeatable) or --all, not both or neither")
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		n, err := a.ResendDeadLetters(ctx, args[0], ids, all)
		if err != nil {
			return explain(err, "")
		}
		fmt.Fprintf(c.App.Writer, "resent %d dead letter(s) of group %s through %%RETRY%%%s\n", n, args[0], args[0])
		return nil
	})
}
