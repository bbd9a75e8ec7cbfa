package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

func groupCommand() *cli.Command {
	return nounCommand("group", "list and describe consumer groups, reset their offsets",
		&cli.Command{
			Name:   "list",
			Usage:  "list the consumer groups known to the brokers",
			Action: groupList,
		},
		&cli.Command{
			Name:      "describe",
			Usage:     "show a group's members and, per queue, broker offset, consumer offset, lag and owner",
			ArgsUsage: "GROUP",
			Action:    groupDescribe,
		},
		&cli.Command{
			Name:      "reset-offset",
			Usage:     "move a group's offsets of a topic to a point in time",
			ArgsUsage: "GROUP",
			Description: "--to takes an RFC3339 time, \"earliest\" (first retained message), \"now\" (skip\n" +
				"everything stored so far) or a duration ago such as 10m or 2h. Running members\n" +
				"re-read the new offsets within a heartbeat.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "topic", Usage: "topic whose offsets move (required)"},
				&cli.StringFlag{Name: "to", Usage: "RFC3339 time, earliest, now, or a duration ago such as 10m (required)"},
			},
			Action: groupResetOffset,
		},
	)
}

type groupRow struct {
	Group string `json:"group"`
}

type groupRows []groupRow

func (v groupRows) table(w io.Writer) {
	row(w, "GROUP")
	for _, g := range v {
		row(w, g.Group)
	}
}

func groupList(c *cli.Context) error {
	_, err := wantArgs(c)
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		names, err := a.ListGroups(ctx)
		if err != nil {
			return err
		}
		out := groupRows{}
		for _, n := range names {
			out = append(out, groupRow{Group: n})
		}
		return render(c, out)
	})
}

// groupQueueRow is a group's progress on one queue.
type groupQueueRow struct {
	Topic          string `json:"topic"`
	BrokerGroup    string `json:"broker_group"`
	QueueID        uint32 `json:"queue_id"`
	BrokerOffset   uint64 `json:"broker_offset"`
	ConsumerOffset uint64 `json:"consumer_offset"`
	Lag            uint64 `json:"lag"`
	Owner          string `json:"owner,omitempty"`
	InFlight       int    `json:"in_flight,omitempty"` // pop consumers: received, not acked
	Visible        int    `json:"visible,omitempty"`   // pop consumers: expired, to be received again
}

// groupDescription is "rmq group describe".
type groupDescription struct {
	Group          string          `json:"group"`
	Mode           string          `json:"mode"`
	Members        []string        `json:"members"`
	Lag            uint64          `json:"lag"`
	PendingRetries int             `json:"pending_retries,omitempty"`
	DeadLetters    uint64          `json:"dead_letters,omitempty"`
	Queues         []groupQueueRow `json:"queues"`
}

func (v groupDescription) table(w io.Writer) {
	head := "group " + v.Group
	if v.Mode != "" {
		head += " (" + v.Mode + ")"
	}
	members := "none"
	if len(v.Members) > 0 {
		members = strings.Join(v.Members, ", ")
	}
	fmt.Fprintf(w, "%s, total lag %d, members: %s\n", head, v.Lag, members)
	if v.PendingRetries > 0 || v.DeadLetters > 0 {
		fmt.Fprintf(w, "retries waiting for their backoff: %d, dead letters: %d (rmq dlq list %s)\n", v.PendingRetries, v.DeadLetters, v.Group)
	}
	fmt.Fprintln(w)
	pop := false
	for _, q := range v.Queues {
		pop = pop || q.InFlight > 0 || q.Visible > 0
	}
	if pop { // a pop group: its messages in flight instead of lock owners
		row(w, "TOPIC", "BROKER GROUP", "QUEUE", "BROKER OFFSET", "CONSUMER OFFSET", "LAG", "IN FLIGHT", "TO REDELIVER")
		for _, q := range v.Queues {
			row(w, q.Topic, q.BrokerGroup, q.QueueID, q.BrokerOffset, q.ConsumerOffset, q.Lag, q.InFlight, q.Visible)
		}
		return
	}
	row(w, "TOPIC", "BROKER GROUP", "QUEUE", "BROKER OFFSET", "CONSUMER OFFSET", "LAG", "OWNER")
	for _, q := range v.Queues {
		row(w, q.Topic, q.BrokerGroup, q.QueueID, q.BrokerOffset, q.ConsumerOffset, q.Lag, textCell(q.Owner))
	}
}

func groupDescribe(c *cli.Context) error {
	args, err := wantArgs(c, "GROUP")
	if err != nil {
		return err
	}
	name := args[0]
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		d, err := a.LookupGroup(ctx, name)
		if errors.Is(err, client.ErrGroupNotFound) {
			return fmt.Errorf("group %q not found", name)
		}
		if err != nil {
			return explain(err, "")
		}
		out := groupDescription{Group: d.Group, Mode: d.Mode, Members: append([]string{}, d.Members...), Queues: []groupQueueRow{},
			PendingRetries: d.PendingRetries, DeadLetters: d.DeadLetters}
		for _, q := range d.Queues {
			out.Lag += q.Lag
			out.Queues = append(out.Queues, groupQueueRow{
				Topic: q.Queue.Topic, BrokerGroup: q.Queue.Group, QueueID: q.Queue.QueueID,
				BrokerOffset: q.BrokerOffset, ConsumerOffset: q.ConsumerOffset, Lag: q.Lag, Owner: q.Owner,
				InFlight: q.InFlight, Visible: q.Visible,
			})
		}
		return render(c, out)
	})
}

// parseResetTime reads reset-offset's --to relative to now.
func parseResetTime(s string, now time.Time) (time.Time, error) {
	switch s {
	case "earliest":
		return time.UnixMilli(0), nil
	case "now":
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(strings.TrimSuffix(strings.TrimSpace(s), " ago")); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--to %q: want an RFC3339 time, earliest, now or a duration ago such as 10m", s)
}

// resetRow is one queue's new offset.
type resetRow struct {
	BrokerGroup string `json:"broker_group"`
	QueueID     uint32 `json:"queue_id"`
	Offset      uint64 `json:"offset"`
}

// offsetReset is "rmq group reset-offset".
type offsetReset struct {
	Group  string     `json:"group"`
	Topic  string     `json:"topic"`
	To     time.Time  `json:"to"`
	Queues []resetRow `json:"queues"`
}

func (v offsetReset) table(w io.Writer) {
	fmt.Fprintf(w, "group %s, topic %s reset to %s\n\n", v.Group, v.Topic, timeCell(v.To))
	row(w, "BROKER GROUP", "QUEUE", "OFFSET")
	for _, q := range v.Queues {
		row(w, q.BrokerGroup, q.QueueID, q.Offset)
	}
}

func groupResetOffset(c *cli.Context) error {
	args, err := wantArgs(c, "GROUP")
	if err != nil {
		return err
	}
	group, topic := args[0], c.String("topic")
	// Checked here, not with Required: the flags may follow GROUP.
	if topic == "" || c.String("to") == "" {
		return errors.New("--topic and --to are required (usage: rmq group reset-offset GROUP --topic T --to TIME)")
	}
	to, err := parseResetTime(c.String("to"), time.Now())
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		offs, err := a.ResetOffsets(ctx, group, topic, to)
		if err != nil {
			return explain(err, topic)
		}
		out := offsetReset{Group: group, Topic: topic, To: to.UTC(), Queues: []resetRow{}}
		for q, off := range offs {
			out.Queues = append(out.Queues, resetRow{BrokerGroup: q.Group, QueueID: q.QueueID, Offset: off})
		}
		sort.Slice(out.Queues, func(i, j int) bool {
			if out.Queues[i].BrokerGroup != out.Queues[j].BrokerGroup {
				return out.Queues[i].BrokerGroup < out.Queues[j].BrokerGroup
			}
			return out.Queues[i].QueueID < out.Queues[j].QueueID
		})
		return render(c, out)
	})
}
