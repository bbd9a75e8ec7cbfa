package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

func topicCommand() *cli.Command {
	return nounCommand("topic", "create, update, list, describe and delete topics",
		&cli.Command{
			Name:      "create",
			Usage:     "create a topic on every broker group (or those named)",
			ArgsUsage: "NAME",
			Flags: []cli.Flag{
				&cli.UintFlag{Name: "queues", Value: client.DefaultQueues, Usage: "queues per broker group (auto-created topics get the same)"},
				&cli.UintFlag{Name: "perm", Value: 6, Usage: "permission bits: 4 read, 2 write"},
				&cli.StringFlag{Name: "broker-group", Aliases: []string{"groups"}, Usage: "create on these broker groups only, comma-separated (e.g. broker-a,broker-b)"},
				&cli.BoolFlag{Name: "no-wait", Usage: "return before the NameServer routes the topic"},
			},
			Action: topicCreate,
		},
		&cli.Command{
			Name:      "update",
			Usage:     "change a topic's queue count or permission; unset flags keep theirs",
			ArgsUsage: "NAME",
			Flags: []cli.Flag{
				&cli.UintFlag{Name: "queues", Usage: "new queue count per broker group (grow only)"},
				&cli.StringFlag{Name: "perm", Usage: "new permission: r, w, rw (or 4, 2, 6)"},
				&cli.StringFlag{Name: "broker-group", Usage: "update on this broker group only"},
			},
			Action: topicUpdate,
		},
		&cli.Command{
			Name:   "list",
			Usage:  "list every topic of every broker group",
			Action: topicList,
		},
		&cli.Command{
			Name:      "describe",
			Usage:     "show each queue's min and max offset and last store time",
			ArgsUsage: "NAME",
			Action:    topicDescribe,
		},
		&cli.Command{
			Name:      "delete",
			Usage:     "delete a topic from every broker group",
			ArgsUsage: "NAME",
			Action:    topicDelete,
		},
	)
}

// topicRow is one topic on one broker group.
type topicRow struct {
	Topic       string    `json:"topic"`
	BrokerGroup string    `json:"broker_group"`
	Queues      uint32    `json:"queues"`
	Perm        uint8     `json:"perm"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
}

type topicRows []topicRow

func (v topicRows) table(w io.Writer) {
	row(w, "TOPIC", "BROKER GROUP", "QUEUES", "PERM", "CREATED")
	for _, t := range v {
		row(w, t.Topic, t.BrokerGroup, t.Queues, permString(t.Perm), timeCell(t.CreatedAt))
	}
}

func topicRowsOf(infos []client.TopicInfo) topicRows {
	out := topicRows{}
	for _, t := range infos {
		out = append(out, topicRow{Topic: t.Name, BrokerGroup: t.Group, Queues: t.Queues, Perm: t.Perm, CreatedAt: t.CreatedAt})
	}
	return out
}

func topicCreate(c *cli.Context) error {
	args, err := wantArgs(c, "NAME")
	if err != nil {
		return err
	}
	name := args[0]
	if err := client.ValidateTopic(name); err != nil {
		return explain(err, name)
	}
	queues, perm := c.Uint("queues"), c.Uint("perm")
	if queues < 1 || queues > 1024 {
		return fmt.Errorf("--queues %d: want 1 to 1024", queues)
	}
	if perm&^6 != 0 || perm == 0 {
		return fmt.Errorf("--perm %d: want 2 (write), 4 (read) or 6 (read and write)", perm)
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		infos, err := a.CreateTopic(ctx, client.TopicSpec{Name: name, Queues: uint32(queues), Perm: uint8(perm), Groups: client.SplitGroups(c.String("broker-group"))})
		if err != nil {
			return explain(err, name)
		}
		if !c.Bool("no-wait") {
			if err := waitRouted(ctx, a, name); err != nil {
				return fmt.Errorf("topic %q created, but the NameServer does not route it yet: %w", name, err)
			}
		}
		return render(c, topicRowsOf(infos))
	})
}

func topicUpdate(c *cli.Context) error {
	args, err := wantArgs(c, "NAME")
	if err != nil {
		return err
	}
	name := args[0]
	if err := client.ValidateTopic(name); err != nil {
		return explain(err, name)
	}
	u := client.TopicUpdate{Name: name, Group: c.String("broker-group")}
	if c.IsSet("queues") {
		q := c.Uint("queues")
		if q < 1 || q > 1024 {
			return fmt.Errorf("--queues %d: want 1 to 1024", q)
		}
		u.Queues = new(uint32(q))
	}
	if c.IsSet("perm") {
		p, err := parsePerm(c.String("perm"))
		if err != nil {
			return err
		}
		u.Perm = &p
	}
	if u.Queues == nil && u.Perm == nil {
		return errors.New("nothing to update: give --queues, --perm or both")
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		infos, err := a.UpdateTopic(ctx, u)
		if err != nil {
			return explain(err, name)
		}
		return render(c, topicRowsOf(infos))
	})
}

// parsePerm reads a topic permission as letters (r, w, rw) or RocketMQ's
// bits (4 read, 2 write, 6 both).
func parsePerm(s string) (uint8, error) {
	switch s {
	case "r", "4":
		return 4, nil
	case "w", "2":
		return 2, nil
	case "rw", "wr", "6":
		return 6, nil
	}
	return 0, fmt.Errorf("--perm %q: want r, w or rw (or 4, 2, 6)", s)
}

// waitRouted polls until the NameServer routes topic, so that a send
// right after "topic create" finds it.
func waitRouted(ctx context.Context, a *client.Admin, topic string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := a.TopicStatus(ctx, topic)
		if err == nil {
			return nil
		}
		if !errors.Is(err, client.ErrTopicNotFound) {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return err
		}
	}
}

func topicList(c *cli.Context) error {
	_, err := wantArgs(c)
	if err != nil {
		return err
	}
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		infos, err := a.ListTopics(ctx)
		if err != nil {
			return err
		}
		return render(c, topicRowsOf(infos))
	})
}

// queueRow is one queue's offsets.
type queueRow struct {
	BrokerGroup   string    `json:"broker_group"`
	QueueID       uint32    `json:"queue_id"`
	MinOffset     uint64    `json:"min_offset"`
	MaxOffset     uint64    `json:"max_offset"`
	Messages      uint64    `json:"messages"`
	LastStoreTime time.Time `json:"last_store_time,omitzero"`
}

// topicDescription is "rmq topic describe".
type topicDescription struct {
	Topic    string     `json:"topic"`
	Messages uint64     `json:"messages"`
	Delayed  int        `json:"delayed,omitempty"` // stored, not due yet
	Queues   []queueRow `json:"queues"`
}

func (v topicDescription) table(w io.Writer) {
	row(w, "BROKER GROUP", "QUEUE", "MIN OFFSET", "MAX OFFSET", "MESSAGES", "LAST STORE")
	for _, q := range v.Queues {
		row(w, q.BrokerGroup, q.QueueID, q.MinOffset, q.MaxOffset, q.Messages, timeCell(q.LastStoreTime))
	}
	if v.Delayed > 0 {
		fmt.Fprintf(w, "\n%d delayed message(s) stored and not due yet (not counted above until delivered)\n", v.Delayed)
	}
}

func topicDescribe(c *cli.Context) error {
	args, err := wantArgs(c, "NAME")
	if err != nil {
		return err
	}
	name := args[0]
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		st, err := a.TopicStatus(ctx, name)
		if err != nil {
			return explain(err, name)
		}
		d := topicDescription{Topic: name, Queues: []queueRow{}}
		for _, q := range st {
			r := queueRow{BrokerGroup: q.Queue.Group, QueueID: q.Queue.QueueID, MinOffset: q.MinOffset, MaxOffset: q.MaxOffset, LastStoreTime: q.LastStoreTime}
			if q.MaxOffset > q.MinOffset {
				r.Messages = q.MaxOffset - q.MinOffset
			}
			d.Messages += r.Messages
			d.Delayed += q.Delayed
			d.Queues = append(d.Queues, r)
		}
		return render(c, d)
	})
}

// deletedTopic is "rmq topic delete".
type deletedTopic struct {
	Topic   string `json:"topic"`
	Deleted bool   `json:"deleted"`
}

func (v deletedTopic) table(w io.Writer) { fmt.Fprintf(w, "deleted topic %s\n", v.Topic) }

func topicDelete(c *cli.Context) error {
	args, err := wantArgs(c, "NAME")
	if err != nil {
		return err
	}
	name := args[0]
	return withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		if err := a.DeleteTopic(ctx, name); err != nil {
			return explain(err, name)
		}
		return render(c, deletedTopic{Topic: name, Deleted: true})
	})
}
