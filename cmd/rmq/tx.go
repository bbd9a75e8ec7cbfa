package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

func txCommand() *cli.Command {
	return nounCommand("tx", "inspect transactional messages",
		&cli.Command{
			Name:  "list",
			Usage: "list open transactional (half) messages with their age and check-backs, and the counters",
			Description: "A half message is open until its producer commits or rolls it back, or a check-back\n" +
				"resolves it; after the broker's check maximum (15 by default) the broker rolls it back\n" +
				"itself (listed under 'rolled back by the broker').",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "limit", Value: 100, Usage: "most open transactions to list (0: all)"},
			},
			Action: txList,
		},
	)
}

type txRow struct {
	BrokerGroup   string `json:"broker_group"`
	Topic         string `json:"topic"`
	QueueID       uint32 `json:"queue_id"`
	MsgID         string `json:"msg_id"`
	ProducerGroup string `json:"producer_group"`
	Age           string `json:"age"`
	Checks        int    `json:"checks"`
	LastCheck     string `json:"last_check,omitempty"`
	Body          string `json:"body"`
}

type txDiscardRow struct {
	BrokerGroup string `json:"broker_group"`
	Topic       string `json:"topic"`
	QueueID     uint32 `json:"queue_id"`
	Stored      string `json:"stored"`
	RolledBack  string `json:"rolled_back"`
	Checks      int    `json:"checks"`
}

type txListing struct {
	Open               []txRow        `json:"open"`
	Committed          uint64         `json:"committed"`
	RolledBack         uint64         `json:"rolled_back"`
	RolledBackByBroker uint64         `json:"rolled_back_by_broker"`
	Discarded          []txDiscardRow `json:"discarded,omitempty"`
}

func (v txListing) table(w io.Writer) {
	fmt.Fprintf(w, "open: %d, committed: %d, rolled back: %d (by the broker after its check maximum: %d)\n\n",
		len(v.Open), v.Committed, v.RolledBack, v.RolledBackByBroker)
	if len(v.Open) > 0 {
		row(w, "BROKER GROUP", "TOPIC", "QUEUE", "MSG ID", "PRODUCER GROUP", "AGE", "CHECKS", "LAST CHECK", "BODY")
		for _, r := range v.Open {
			row(w, r.BrokerGroup, r.Topic, r.QueueID, r.MsgID, r.ProducerGroup, r.Age, r.Checks, textCell(r.LastCheck), r.Body)
		}
	}
	if len(v.Discarded) > 0 {
		fmt.Fprintln(w, "\nrolled back by the broker (latest):")
		row(w, "BROKER GROUP", "TOPIC", "QUEUE", "STORED", "ROLLED BACK", "CHECKS")
		for _, d := range v.Discarded {
			row(w, d.BrokerGroup, d.Topic, d.QueueID, d.Stored, d.RolledBack, d.Checks)
		}
	}
}

func txList(c *cli.Context) error {
	if _, err := wantArgs(c); err != nil {
		return err
	}
	if c.Int("limit") < 0 {
		return fmt.Errorf("--limit %d: want 0 (all) or more", c.Int("limit"))
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		txs, err := a.Transactions(ctx, c.Int("limit"))
		if err != nil {
			return explain(err, "")
		}
		out := txListing{Open: []txRow{}, Committed: txs.Committed, RolledBack: txs.RolledBack, RolledBackByBroker: txs.ByBrokerRoll}
		for _, t := range txs.Open {
			r := txRow{BrokerGroup: t.Queue.Group, Topic: t.Topic, QueueID: t.Queue.QueueID, MsgID: t.MsgID,
				ProducerGroup: t.ProducerGroup, Age: t.Age.Round(time.Millisecond).String(), Checks: t.Checks, Body: bodyPreview(t.Body)}
			if !t.LastCheck.IsZero() {
				r.LastCheck = t.LastCheck.UTC().Format(time.RFC3339)
			}
			out.Open = append(out.Open, r)
		}
		for _, d := range txs.Discarded {
			out.Discarded = append(out.Discarded, txDiscardRow{BrokerGroup: d.Group, Topic: d.Topic, QueueID: d.QueueID,
				Stored: d.Stored.UTC().Format(time.RFC3339), RolledBack: d.At.UTC().Format(time.RFC3339), Checks: d.Checks})
		}
		return render(c, out)
	})
}
