package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

// producerRun drives o.Clients producers. Issuing stops at the count, at
// --duration or on Ctrl-C (stop); sends already issued then finish under
// their own SendTimeout (send ignores Ctrl-C), so every message is either
// acknowledged or counted as an error.
//
// Pacing (--rate R): client c sends its message i at start + i*clients/R.
// A sender that falls behind sends at once, and a message's latency is
// measured from when it was due, not from when it was sent: otherwise a
// stall would delay the sends that should have happened during it and
// hide their waiting (coordinated omission). Unpaced, latency is from the
// send call (async: from when an --inflight slot was free).
type producerRun struct {
	o       produceOptions
	start   time.Time
	stop    context.Context
	send    context.Context
	errs    *errorLog
	clients []*benchProducer
	// message builds the message sent at due (the schedule's time, or
	// the send's start when unpaced). It must be safe for concurrent use.
	message func(due time.Time) *client.Message
	// onSent, if set, is told every send's outcome (from callbacks: it
	// must be safe for concurrent use).
	onSent func(m *client.Message, res client.SendResult, err error)
}

// benchProducer is one client: its Producer, its share of the count and
// the rate, and its counters.
type benchProducer struct {
	p      *client.Producer
	stats  *clientStats
	quota  int64   // messages to send; -1: no limit
	perSec float64 // this client's pace; 0: unpaced
	next   atomic.Int64
}

// newProducerRun makes the producers; the caller closes them with close.
func newProducerRun(c *cli.Context, o produceOptions, message func(time.Time) *client.Message) (*producerRun, error) {
	r := &producerRun{o: o, errs: newErrorLog(), message: message, send: context.WithoutCancel(c.Context)}
	for i := range o.Clients {
		p, err := newBenchProducer(c, o)
		if err != nil {
			r.close(c)
			return nil, err
		}
		quota := int64(-1)
		if o.Count > 0 {
			quota = o.Count / int64(o.Clients)
			if int64(i) < o.Count%int64(o.Clients) {
				quota++
			}
		}
		r.clients = append(r.clients, &benchProducer{p: p, quota: quota, perSec: o.Rate / float64(o.Clients),
			stats: newClientStats(fmt.Sprintf("producer-%d", i), time.Time{}, true)})
	}
	return r, nil
}

// run sends until done and returns when every send completed.
func (r *producerRun) run(ctx context.Context) {
	stop, cancel := context.WithCancel(ctx)
	if r.o.Duration > 0 {
		stop, cancel = context.WithTimeout(ctx, r.o.Duration)
	}
	defer cancel()
	r.stop = stop
	r.start = time.Now()
	var wg sync.WaitGroup
	for _, b := range r.clients {
		b.stats.start = r.start
		workers, async := r.o.Concurrency, false
		if r.o.Mode == "async" {
			// One issuing goroutine keeps --inflight SendAsync calls
			// outstanding; batches have no async form, so --inflight
			// messages are covered by concurrent SendBatch calls.
			workers, async = max(1, r.o.Inflight/r.o.Batch), r.o.Batch == 1
			if async {
				workers = 1
			}
		}
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if async {
					r.asyncSender(b)
				} else {
					r.syncSender(b)
				}
			}()
		}
	}
	wg.Wait()
}

// take claims up to n message indexes of b's quota.
func (r *producerRun) take(b *benchProducer, n int) (first int64, got int) {
	if r.stop.Err() != nil {
		return 0, 0
	}
	first = b.next.Add(int64(n)) - int64(n)
	if b.quota >= 0 {
		if first >= b.quota {
			return 0, 0
		}
		n = int(min(int64(n), b.quota-first))
	}
	return first, n
}

// due is when message i of b is scheduled; zero when unpaced.
func (r *producerRun) due(b *benchProducer, i int64) time.Time {
	if b.perSec == 0 {
		return time.Time{}
	}
	return r.start.Add(time.Duration(float64(i) * float64(time.Second) / b.perSec))
}

// paceSlack is how early a paced send may go instead of sleeping: timers
// are not finer than this, and at high rates sleeping per message costs
// more than it keeps.
const paceSlack = 50 * time.Microsecond

// wait sleeps until t (a zero t does not wait); false if stopped first.
func (r *producerRun) wait(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	d := time.Until(t)
	if d <= paceSlack {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-r.stop.Done():
		return false
	}
}

// syncSender sends one message (or one --batch) at a time.
func (r *producerRun) syncSender(b *benchProducer) {
	msgs := make([]*client.Message, r.o.Batch)
	dues := make([]time.Time, r.o.Batch)
	for {
		i, n := r.take(b, r.o.Batch)
		if n == 0 || !r.wait(r.due(b, i+int64(n)-1)) {
			return
		}
		now := time.Now()
		for k := range n {
			if dues[k] = r.due(b, i+int64(k)); dues[k].IsZero() {
				dues[k] = now
			}
			msgs[k] = r.message(dues[k])
		}
		var err error
		var res []client.SendResult
		if r.o.Batch == 1 {
			var one client.SendResult
			one, err = b.p.Send(r.send, msgs[0])
			res = []client.SendResult{one}
		} else {
			// A failed batch counts all its messages as errors: the
			// client does not say which of them were stored.
			res, err = b.p.SendBatch(r.send, msgs[:n])
		}
		done := time.Now()
		if r.onSent != nil {
			for k, m := range msgs[:n] {
				var one client.SendResult
				if err == nil && k < len(res) {
					one = res[k]
				}
				r.onSent(m, one, err)
			}
		}
		if err != nil {
			b.stats.failed(n, err, done, r.errs)
			continue
		}
		for _, d := range dues[:n] {
			b.stats.latency(done.Sub(d))
		}
		b.stats.ok(n, int64(n*r.o.Size), done)
	}
}

// asyncSender keeps up to --inflight SendAsync calls outstanding and
// returns when all have called back.
func (r *producerRun) asyncSender(b *benchProducer) {
	slots := make(chan struct{}, r.o.Inflight)
issue:
	for {
		i, n := r.take(b, 1)
		if n == 0 || !r.wait(r.due(b, i)) {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-r.stop.Done():
			break issue
		}
		due := r.due(b, i)
		if due.IsZero() {
			due = time.Now()
		}
		m := r.message(due)
		b.p.SendAsync(r.send, m, func(res client.SendResult, err error) {
			done := time.Now()
			if err != nil {
				b.stats.failed(1, err, done, r.errs)
			} else {
				b.stats.latency(done.Sub(due))
				b.stats.ok(1, int64(r.o.Size), done)
			}
			if r.onSent != nil {
				r.onSent(m, res, err)
			}
			<-slots
		})
	}
	for range cap(slots) { // every slot back: every callback ran
		slots <- struct{}{}
	}
}

// sent is how many sends completed so far, for the progress line.
func (r *producerRun) sent() int64 {
	var n int64
	for _, b := range r.clients {
		n += b.stats.done()
	}
	return n
}

// report builds the producers' rows and total.
func (r *producerRun) report() ([]benchStats, benchStats) {
	end := time.Now()
	rows := make([]benchStats, 0, len(r.clients))
	var hists []*hdrhistogram.Histogram
	for _, b := range r.clients {
		row, h := b.stats.snapshot(end)
		rows = append(rows, row)
		hists = append(hists, h)
	}
	return rows, merge("total", rows, hists)
}

// close closes every producer; sends are already complete.
func (r *producerRun) close(c *cli.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), c.Duration("timeout"))
	defer cancel()
	var errs []error
	for _, b := range r.clients {
		errs = append(errs, b.p.Close(ctx))
	}
	return errors.Join(errs...)
}

func benchProduce(c *cli.Context) error {
	o, err := parseProduceOptions(c)
	if err != nil {
		return err
	}
	queues, err := ensureTopic(c, o.Topic, o.Queues)
	if err != nil {
		return err
	}
	msg := &client.Message{Topic: o.Topic, Body: randomBody(o.Size)}
	r, err := newProducerRun(c, o, func(time.Time) *client.Message { return msg })
	if err != nil {
		return err
	}
	pr := startProgress(c.App.ErrWriter, o.Progress, "produce", o.Count, o.Duration, r.sent)
	r.run(c.Context)
	pr.stop()
	cerr := r.close(c)
	rows, total := r.report()
	rep := benchReport{
		Bench: "produce", Topic: o.Topic, Queues: queues, Settings: o.settings(),
		Latency: r.latencyMeaning(), Clients: rows, Total: total,
		Errors: r.errs.summary(), Interrupted: c.Context.Err() != nil,
	}
	return finishReport(c, rep, r.errs, "send", cerr)
}

func (r *producerRun) latencyMeaning() string {
	if r.o.Rate > 0 {
		return "from the time each message was due by --rate to its acknowledgement"
	}
	return "from the send call to its acknowledgement"
}

func (o produceOptions) settings() benchSettings {
	s := benchSettings{Clients: o.Clients, Size: o.Size, Mode: o.Mode, Batch: o.Batch, Rate: o.Rate,
		Count: o.Count, DurationSec: o.Duration.Seconds()}
	if o.Mode == "sync" {
		s.Concurrency = o.Concurrency
	} else {
		s.Inflight = o.Inflight
	}
	return s
}

// finishReport prints the errors on stderr and the report on stdout; a
// run in which every operation failed is an error instead.
func finishReport(c *cli.Context, rep benchReport, errs *errorLog, op string, closeErr error) error {
	printErrors(c.App.ErrWriter, rep.Errors)
	if rep.Total.Messages == 0 && rep.Total.Errors > 0 {
		return fmt.Errorf("every %s failed (%d errors); the first: %w", op, rep.Total.Errors, explain(errs.firstError(), rep.Topic))
	}
	if err := render(c, rep); err != nil {
		return err
	}
	if closeErr != nil {
		return fmt.Errorf("close clients: %w", closeErr)
	}
	return nil
}
