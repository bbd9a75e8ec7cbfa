package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

// consumeOptions are bench consume's validated flags.
type consumeOptions struct {
	Topic     string
	Group     string
	From      client.ConsumeFrom
	Clients   int
	Count     int64 // 0: no limit
	Duration  time.Duration
	PullBatch int
	Progress  bool
}

func parseConsumeOptions(c *cli.Context) (consumeOptions, error) {
	if _, err := wantArgs(c); err != nil {
		return consumeOptions{}, err
	}
	o := consumeOptions{
		Topic: c.String("topic"), Group: c.String("group"), Clients: c.Int("clients"),
		Count: c.Int64("count"), Duration: c.Duration("duration"), PullBatch: c.Int("pull-batch"),
		Progress: !c.Bool("no-progress"),
	}
	if o.Group == "" {
		o.Group = "bench-" + runID()
	}
	var errs []error
	switch from := c.String("from"); from {
	case "first":
		o.From = client.FromFirst
	case "last":
		o.From = client.FromLast
	default:
		errs = append(errs, fmt.Errorf("--from %q: want first or last", from))
	}
	if err := client.ValidateTopic(o.Topic); err != nil {
		errs = append(errs, fmt.Errorf("--topic: %w", explain(err, "")))
	}
	if err := client.ValidateGroup(o.Group); err != nil {
		errs = append(errs, fmt.Errorf("--group: %w", explain(err, "")))
	}
	errs = append(errs, atLeast("clients", o.Clients, 1), within("pull-batch", o.PullBatch, 1, 1024))
	if o.Count < 0 {
		errs = append(errs, fmt.Errorf("--count %d: want 0 (no limit) or more", o.Count))
	}
	if o.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration %v: want 0 (no limit) or more", o.Duration))
	}
	return o, firstError(errs)
}

// consumerRun is N push consumers of one group whose handlers only
// count. It ends (done) at --count, when the backlog as of the start is
// consumed (--from first), or by the caller (--duration, Ctrl-C).
type consumerRun struct {
	o       consumeOptions
	stopped atomic.Bool // handlers count nothing more
	done    chan struct{}
	once    sync.Once
	stats   []*clientStats

	mu      sync.Mutex
	limit   int64 // --count; 0: none
	counted int64
	// next is, per queue, the offset after the last counted message: a
	// message below it is a redelivery (a queue handed between members
	// may deliver a batch again), counted apart, not as a message.
	next map[client.Queue]uint64
	// drain is, per queue still short of it, the offset the backlog ends
	// at; nil when following new writes.
	drain map[client.Queue]uint64
}

func (r *consumerRun) finish() { r.once.Do(func() { close(r.done) }) }

// handler counts a batch for s. A batch that crosses --count is taken
// only up to it and left uncommitted (ConsumeRetryLater), as is anything
// delivered after the run ended; as with rmq consume --count, the group
// may get the counted part of that batch again.
func (r *consumerRun) handler(s *clientStats) client.Handler {
	return func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		if r.stopped.Load() {
			return client.ConsumeRetryLater
		}
		fresh, take := r.count(msgs)
		var bytes int64
		for _, m := range fresh[:take] {
			bytes += int64(len(m.Body))
		}
		s.redelivered.Add(int64(len(msgs) - len(fresh)))
		s.ok(take, bytes, time.Now())
		if take < len(fresh) {
			return client.ConsumeRetryLater
		}
		return client.ConsumeSuccess
	}
}

// count returns the messages of a batch (one queue, in offset order) not
// counted before and how many of them to count now.
func (r *consumerRun) count(msgs []*client.MessageExt) (fresh []*client.MessageExt, take int) {
	q := msgs[0].Queue
	r.mu.Lock()
	defer r.mu.Unlock()
	fresh = msgs
	if next, ok := r.next[q]; ok {
		for len(fresh) > 0 && fresh[0].QueueOffset < next {
			fresh = fresh[1:]
		}
	}
	take = len(fresh)
	if r.limit > 0 {
		take = int(min(int64(take), r.limit-r.counted))
	}
	if take == 0 {
		return fresh, 0
	}
	r.counted += int64(take)
	next := fresh[take-1].QueueOffset + 1
	r.next[q] = next
	if r.limit > 0 && r.counted >= r.limit {
		r.finish()
	}
	if end, ok := r.drain[q]; ok && next >= end {
		delete(r.drain, q)
		if len(r.drain) == 0 {
			r.finish()
		}
	}
	return fresh, take
}

// backlog reads, per queue, where the group starts (its committed offset,
// else the first retained message) and where the backlog ends now.
func backlog(ctx context.Context, a *client.Admin, o consumeOptions, userGroup bool) (map[client.Queue]uint64, int64, int, error) {
	st, err := a.TopicStatus(ctx, o.Topic)
	if err != nil {
		return nil, 0, 0, explain(err, o.Topic)
	}
	committed := map[client.Queue]uint64{}
	if userGroup {
		d, err := a.DescribeGroup(ctx, o.Group)
		if err != nil && !errors.Is(err, client.ErrInvalidArgument) { // a group unknown to the broker
			return nil, 0, 0, fmt.Errorf("describe group %s: %w", o.Group, err)
		}
		for _, q := range d.Queues {
			if q.Queue.Topic == o.Topic {
				committed[q.Queue] = q.ConsumerOffset
			}
		}
	}
	targets := map[client.Queue]uint64{}
	var total int64
	for _, q := range st {
		start := q.MinOffset
		if off, ok := committed[q.Queue]; ok {
			start = max(start, off)
		}
		if q.MaxOffset > start {
			targets[q.Queue] = q.MaxOffset
			total += int64(q.MaxOffset - start)
		}
	}
	return targets, total, len(st), nil
}

func benchConsume(c *cli.Context) error {
	o, err := parseConsumeOptions(c)
	if err != nil {
		return err
	}
	r := &consumerRun{o: o, limit: o.Count, done: make(chan struct{}), next: map[client.Queue]uint64{}}
	var queues int
	var total int64
	err = withAdmin(c, func(ctx context.Context, a *client.Admin) error {
		targets, n, nq, err := backlog(ctx, a, o, c.IsSet("group"))
		queues, total = nq, n
		if err == nil && o.From == client.FromFirst {
			r.drain = targets
		}
		return err
	})
	if err != nil {
		return err
	}
	if r.drain != nil && total == 0 {
		return fmt.Errorf("topic %q has no backlog for group %s: nothing to drain (fill it with 'rmq bench produce', or follow new writes with --from last)", o.Topic, o.Group)
	}
	if r.drain != nil {
		fmt.Fprintf(c.App.ErrWriter, "draining a backlog of %d messages with group %s\n", total, o.Group)
	}
	progressTotal := o.Count
	if r.drain != nil && (progressTotal == 0 || total < progressTotal) {
		progressTotal = total
	}
	consumers, err := r.newConsumers(c)
	if err != nil {
		return err
	}
	start := time.Now()
	for _, s := range r.stats {
		s.start = start
	}
	pr := startProgress(c.App.ErrWriter, o.Progress, "consume", progressTotal, o.Duration, r.consumed)
	err = r.startAll(c, consumers)
	if err == nil {
		var limit <-chan time.Time
		if o.Duration > 0 {
			t := time.NewTimer(o.Duration - time.Since(start))
			defer t.Stop()
			limit = t.C
		}
		select {
		case <-r.done:
		case <-limit:
		case <-c.Context.Done():
		}
	}
	r.stopped.Store(true)
	end := time.Now()
	pr.stop()
	cerr := closeConsumers(c, consumers)
	if err != nil {
		return explain(err, o.Topic)
	}
	rows := make([]benchStats, 0, len(r.stats))
	for _, s := range r.stats {
		row, _ := s.snapshot(end)
		row.setDuration(end.Sub(start)) // every consumer ran for the whole run
		rows = append(rows, row)
	}
	totalRow := merge("total", rows, nil)
	from := "first"
	if o.From == client.FromLast {
		from = "last"
	}
	rep := benchReport{
		Bench: "consume", Topic: o.Topic, Queues: queues,
		Settings: benchSettings{Clients: o.Clients, Count: o.Count, DurationSec: o.Duration.Seconds(), Group: o.Group, From: from, PullBatch: o.PullBatch},
		Clients:  rows, Total: totalRow, Interrupted: c.Context.Err() != nil,
	}
	return finishReport(c, rep, newErrorLog(), "consume", cerr)
}

func (r *consumerRun) newConsumers(c *cli.Context) ([]*client.Consumer, error) {
	ns, err := nameServers(c)
	if err != nil {
		return nil, err
	}
	var out []*client.Consumer
	for i := range r.o.Clients {
		s := newClientStats(fmt.Sprintf("consumer-%d", i), time.Time{}, false)
		cons, err := client.NewConsumer(client.ConsumerConfig{
			NameServers:   ns,
			Credentials:   credentials(c),
			TLS:           clientTLS(c),
			Group:         r.o.Group,
			Subscriptions: map[string]string{r.o.Topic: "*"},
			From:          r.o.From,
			PullBatch:     r.o.PullBatch,
			Logger:        clientLogger(c),
		})
		if err != nil {
			return nil, errors.Join(err, closeConsumers(c, out))
		}
		out = append(out, cons)
		r.stats = append(r.stats, s)
	}
	return out, nil
}

// startAll starts the consumers concurrently, so they join the group
// together and the first does not take every queue for the first rounds.
func (r *consumerRun) startAll(c *cli.Context, consumers []*client.Consumer) error {
	ctx, cancel := opContext(c)
	defer cancel()
	errs := make([]error, len(consumers))
	var wg sync.WaitGroup
	for i, cons := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cons.Start(ctx, r.handler(r.stats[i])); err != nil {
				errs[i] = fmt.Errorf("start %s: %w", r.stats[i].name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *consumerRun) consumed() int64 {
	var n int64
	for _, s := range r.stats {
		n += s.msgs.Load()
	}
	return n
}

// closeConsumers leaves the group cleanly (offsets committed), all
// consumers at once.
func closeConsumers(c *cli.Context, consumers []*client.Consumer) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), c.Duration("timeout"))
	defer cancel()
	errs := make([]error, len(consumers))
	var wg sync.WaitGroup
	for i, cons := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cons.Close(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
