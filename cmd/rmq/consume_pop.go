package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

type popOptions struct {
	topic string
	ns    []string
	from  client.ConsumeFrom
	count int
	exit  bool
	waitC <-chan time.Time
	wait  time.Duration
}

// consumePop is consume --pop: a SimpleConsumer that prints each
// received message, then acks it (unless --no-ack).
func consumePop(c *cli.Context, o popOptions) error {
	for _, f := range []string{"broadcast", "orderly"} {
		if c.Bool(f) {
			return fmt.Errorf("--%s and --pop do not mix: a pop group shares every queue, unordered", f)
		}
	}
	if o.from == client.FromTimestamp {
		return errors.New("--from: a pop group starts at last or first")
	}
	group := c.String("group")
	if group == "" {
		return errors.New("--group is required")
	}
	if err := client.ValidateGroup(group); err != nil {
		return fmt.Errorf("--group: %w", explain(err, ""))
	}
	inv := c.Duration("invisible")
	if inv < client.MinInvisibleDuration || inv > client.MaxInvisibleDuration {
		return fmt.Errorf("--invisible %s: want %s to %s", inv, client.MinInvisibleDuration, client.MaxInvisibleDuration)
	}
	if err := withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		_, err := a.TopicStatus(ctx, o.topic)
		return explain(err, o.topic)
	}); err != nil {
		return err
	}
	subs, sqlSubs, err := subscriptionFlags(c, o.topic)
	if err != nil {
		return err
	}
	cfg := client.SimpleConsumerConfig{NameServers: o.ns, Credentials: credentials(c), TLS: clientTLS(c), Group: group, Subscriptions: subs, SQLSubscriptions: sqlSubs,
		InvisibleDuration: inv, From: o.from, Logger: clientLogger(c), Cluster: c.String("cluster")}
	if o.exit {
		cfg.AwaitDuration = exitPollWait
	}
	sc, err := client.NewSimpleConsumer(cfg)
	if err != nil {
		return err
	}
	defer sc.Close()
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	if o.waitC != nil {
		go func() { // ends with ctx or at --wait
			select {
			case <-o.waitC:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	pr := &printer{w: c.App.Writer, json: jsonOutput(c), done: make(chan struct{})}
	n, stopped := 0, ""
	for o.count == 0 || n < o.count {
		max := 32
		if o.count > 0 {
			max = min(32, o.count-n)
		}
		ms, err := sc.Receive(ctx, max, 0)
		if ctx.Err() != nil {
			if o.waitC != nil && c.Context.Err() == nil {
				stopped = fmt.Sprintf("stopped after %s (--wait): ", o.wait)
			}
			break
		}
		if err != nil {
			return explain(err, o.topic)
		}
		if len(ms) == 0 && o.exit {
			stopped = "caught up (--exit): "
			break
		}
		hs := make([]client.ReceiptHandle, 0, len(ms))
		for _, m := range ms {
			cm := newConsumedMessage(m.MessageExt)
			cm.ReconsumeTimes = m.ReconsumeTimes
			if err := pr.print(cm); err != nil {
				return fmt.Errorf("write message: %w", err)
			}
			hs = append(hs, m.Handle)
			n++
		}
		if c.Bool("no-ack") || len(hs) == 0 {
			continue
		}
		errs, err := sc.AckAll(ctx, hs)
		if err != nil {
			return fmt.Errorf("ack: %w", explain(err, o.topic))
		}
		for _, e := range errs {
			if e != nil {
				fmt.Fprintf(c.App.ErrWriter, "ack: %v\n", e)
			}
		}
	}
	msgs := "messages"
	if n == 1 {
		msgs = "message"
	}
	acked := ""
	if c.Bool("no-ack") {
		acked = ", not acked"
	}
	fmt.Fprintf(c.App.ErrWriter, "%sreceived %d %s%s\n", stopped, n, msgs, acked)
	return nil
}
