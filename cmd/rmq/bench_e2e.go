package main

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

// Message properties of bench e2e: the run, so that a consumer ignores
// other runs' messages, and the time the message was due (unix ns).
const (
	propRun  = "bench-run"
	propSent = "bench-sent"
)

// e2eRun is bench e2e's consumer side.
type e2eRun struct {
	run   string
	stats *clientStats
	// toStore and fromStore split each latency at the store time.
	toStore, fromStore *clientStats
	malformed          atomic.Int64
	stopped            atomic.Bool
}

// handle records now - bench-sent for each first delivery of this run's
// messages. Redeliveries are counted but not timed.
func (e *e2eRun) handle(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
	if e.stopped.Load() {
		return client.ConsumeRetryLater
	}
	now := time.Now()
	n, bytes := 0, int64(0)
	for _, m := range msgs {
		if m.Properties[propRun] != e.run {
			continue
		}
		if m.Redelivered {
			e.stats.redelivered.Add(1)
			continue
		}
		sent, err := strconv.ParseInt(m.Properties[propSent], 10, 64)
		if err != nil {
			e.malformed.Add(1)
			continue
		}
		due := time.Unix(0, sent)
		e.stats.latency(now.Sub(due))
		e.toStore.latency(m.StoreTime.Sub(due)) // clamped to 1µs when stored in due's millisecond
		e.fromStore.latency(now.Sub(m.StoreTime))
		n++
		bytes += int64(len(m.Body))
	}
	if n > 0 {
		e.stats.ok(n, bytes, now)
	}
	return client.ConsumeSuccess
}

func benchE2E(c *cli.Context) error {
	o, err := parseProduceOptions(c)
	if err != nil {
		return err
	}
	grace := c.Duration("grace")
	if grace < 0 {
		return fmt.Errorf("--grace %v: want 0 or more", grace)
	}
	queues, err := ensureTopic(c, o.Topic, o.Queues)
	if err != nil {
		return err
	}
	ns, err := nameServers(c)
	if err != nil {
		return err
	}
	e := &e2eRun{run: runID(), stats: newClientStats("consumer", time.Time{}, true),
		toStore: newClientStats("to-store", time.Time{}, true), fromStore: newClientStats("from-store", time.Time{}, true)}
	group := "bench-e2e-" + e.run
	// From the current time rather than FromLast: a queue whose start
	// offset is read after the first sends still starts before them.
	cons, err := client.NewConsumer(client.ConsumerConfig{
		NameServers: ns, Credentials: credentials(c), TLS: clientTLS(c), Group: group, Subscriptions: map[string]string{o.Topic: "*"},
		From: client.FromTimestamp, FromTimestamp: time.Now().Add(-time.Millisecond), Logger: clientLogger(c),
	})
	if err != nil {
		return err
	}
	defer func() { _ = closeConsumers(c, []*client.Consumer{cons}) }() // after the report; errors do not change it
	if err := startOwningAll(c, cons, e.handle, queues); err != nil {
		return explain(err, o.Topic)
	}

	body := randomBody(o.Size)
	r, err := newProducerRun(c, o, func(due time.Time) *client.Message {
		return &client.Message{Topic: o.Topic, Body: body, Properties: map[string]string{
			propRun: e.run, propSent: strconv.FormatInt(due.UnixNano(), 10),
		}}
	})
	if err != nil {
		return err
	}
	pr := startProgress(c.App.ErrWriter, o.Progress, "e2e", o.Count, o.Duration, r.sent)
	e.stats.start = time.Now() // r.run sets its own start a moment later
	r.run(c.Context)
	pr.stop()
	rows, total := r.report()
	waitReceived(c.Context, e, total.Messages, grace)
	e.stopped.Store(true)
	cerr := r.close(c)

	recv, _ := e.stats.snapshot(time.Now())
	ete := &endToEndStats{benchStats: recv, Sent: total.Messages}
	ete.Missing = max(0, ete.Sent-recv.Messages)
	ts, _ := e.toStore.snapshot(time.Now())
	fs, _ := e.fromStore.snapshot(time.Now())
	ete.ToStore, ete.StoreToDelivery = ts.LatencyMicros, fs.LatencyMicros
	if n := e.malformed.Load(); n > 0 {
		fmt.Fprintf(c.App.ErrWriter, "%d messages of this run had no valid %s property\n", n, propSent)
	}
	rep := benchReport{
		Bench: "e2e", Topic: o.Topic, Queues: queues, Settings: o.settings(),
		Latency: "producers: " + r.latencyMeaning(), Clients: rows, Total: total, EndToEnd: ete,
		Errors: r.errs.summary(), Interrupted: c.Context.Err() != nil,
	}
	if err := finishReport(c, rep, r.errs, "send", cerr); err != nil {
		return err
	}
	if ete.Sent > 0 && ete.Messages == 0 && !rep.Interrupted {
		return fmt.Errorf("none of the %d acknowledged messages reached the consumer within --grace %v", ete.Sent, grace)
	}
	return nil
}

// startOwningAll starts cons and waits until it consumes every queue of
// the topic, so that the first messages are not timed through the join.
func startOwningAll(c *cli.Context, cons *client.Consumer, h client.Handler, queues int) error {
	ctx, cancel := opContext(c)
	defer cancel()
	if err := cons.Start(ctx, h); err != nil {
		return err
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(cons.Stats().Owned) < queues {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("the e2e consumer owns %d of %d queues: %w", len(cons.Stats().Owned), queues, ctx.Err())
		}
	}
	return nil
}

// waitReceived waits until the consumer got sent messages, for at most
// grace.
func waitReceived(ctx context.Context, e *e2eRun, sent int64, grace time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for e.stats.msgs.Load() < sent {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
