package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/urfave/cli/v2"

	"github.com/rmq-dev/rmq/client"
)

// bench delay: producers send --count delayed messages, each due at a time
// spread uniformly over --spread from the start (in send order, or at
// random with --order random), while one consumer of a fresh group
// receives them. Each message carries the run, its sequence number and the
// due time it asked for (unix ms); the consumer keeps one bit per sequence
// number for "received" (and the producers one for "acknowledged"), so a
// million messages cost a few hundred KiB, and records two latenesses per
// timer delivery: its receipt minus the due time in TIMER_DELIVER_MS, and
// its StoreTime (the delivery's, in the broker's clock) minus it.

// Message properties of bench delay (besides bench-run).
const (
	propSeq = "bench-seq"
	propDue = "bench-due" // unix ms asked for
)

// propDeliverAt is the property a delivered timer message keeps its due
// time in (fsm.PropDeliverAt; the broker drops it from a message that was
// already due when stored).
const propDeliverAt = "TIMER_DELIVER_MS"

// maxLatenessMicros bounds the lateness histograms (1µs to 1h).
const maxLatenessMicros = int64(time.Hour / time.Microsecond)

func delayBenchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "topic", Value: "bench-delay", Usage: "topic (created if missing)"},
		&cli.IntFlag{Name: "clients", Aliases: []string{"c"}, Value: 1, Usage: "producers, each with its own connections"},
		&cli.IntFlag{Name: "size", Aliases: []string{"s"}, Value: 1024, Usage: "message body size in bytes"},
		&cli.Int64Flag{Name: "count", Aliases: []string{"n"}, Value: 100000, Usage: "delayed messages to send across all clients"},
		&cli.DurationFlag{Name: "spread", Value: time.Minute, Usage: "due times are spread uniformly over this long from the start"},
		&cli.StringFlag{Name: "order", Value: "sequential", Usage: "sequential (due times in send order) or random (each uniformly random over --spread)"},
		&cli.DurationFlag{Name: "grace", Value: 30 * time.Second, Usage: "how long after the last due time (or the last send) to wait for deliveries"},
		&cli.IntFlag{Name: "inflight", Value: 1024, Usage: "most unacknowledged messages per client (SendAsync)"},
		&cli.IntFlag{Name: "queues", Value: 8, Usage: "queue count when the topic is created"},
		&cli.BoolFlag{Name: "no-progress", Usage: "no progress line on stderr"},
	}
}

// delayOptions are bench delay's validated flags.
type delayOptions struct {
	produceOptions
	Spread time.Duration
	Grace  time.Duration
	Random bool
}

func parseDelayOptions(c *cli.Context) (delayOptions, error) {
	if _, err := wantArgs(c); err != nil {
		return delayOptions{}, err
	}
	o := delayOptions{
		produceOptions: produceOptions{
			Topic: c.String("topic"), Clients: c.Int("clients"), Size: c.Int("size"), Count: c.Int64("count"),
			Mode: "async", Concurrency: 1, Inflight: c.Int("inflight"), Batch: 1, Queues: c.Int("queues"),
			Progress: !c.Bool("no-progress"),
		},
		Spread: c.Duration("spread"), Grace: c.Duration("grace"),
	}
	var errs []error
	if err := client.ValidateTopic(o.Topic); err != nil {
		errs = append(errs, fmt.Errorf("--topic: %w", explain(err, "")))
	}
	errs = append(errs,
		atLeast("clients", o.Clients, 1),
		within("size", o.Size, 1, int(client.DefaultProducerConfig().MaxMessageSize)),
		atLeast("inflight", o.Inflight, 1),
		within("queues", o.Queues, 1, 1024),
	)
	if o.Count < 1 || o.Count > 1<<30 {
		errs = append(errs, fmt.Errorf("--count %d: want 1 to %d", o.Count, int64(1)<<30))
	}
	if o.Spread < time.Millisecond {
		errs = append(errs, fmt.Errorf("--spread %v: want 1ms or more", o.Spread))
	}
	if o.Grace < 0 {
		errs = append(errs, fmt.Errorf("--grace %v: want 0 or more", o.Grace))
	}
	switch ord := c.String("order"); ord {
	case "sequential":
	case "random":
		o.Random = true
	default:
		errs = append(errs, fmt.Errorf("--order %q: want sequential or random", ord))
	}
	return o, firstError(errs)
}

// bitset is one bit per sequence number.
type bitset []uint64

func newBitset(n int64) bitset { return make(bitset, (n+63)/64) }

// set sets bit i and reports whether it was set before.
func (b bitset) set(i int64) bool {
	w, m := i/64, uint64(1)<<(i%64)
	was := b[w]&m != 0
	b[w] |= m
	return was
}

func (b bitset) has(i int64) bool { return b[i/64]&(uint64(1)<<(i%64)) != 0 }

// delayRun is bench delay's bookkeeping, shared by the producers'
// callbacks and the consumer's handler.
type delayRun struct {
	run   string
	count int64
	start time.Time // due times count from here

	seq         atomic.Int64 // next sequence number to issue
	timers      atomic.Int64 // acknowledged with a due time
	delivered   atomic.Int64 // distinct messages received
	peakPending atomic.Int64 // max of timers - delivered timers, sampled at each ack
	timerRecv   atomic.Int64 // distinct timer deliveries received
	stopped     atomic.Bool  // the handler counts nothing more

	mu         sync.Mutex
	acked      bitset
	received   bitset
	sentNow    int64 // acknowledged without a due time: due before stored
	mismatched int64 // DeliverAt in the SendResult or TIMER_DELIVER_MS differs from the due time asked for
	duplicates int64
	immediate  int64 // received without TIMER_DELIVER_MS
	early      int64 // received, or stored, before the due time
	ackedRecv  int64 // acknowledged and received
	malformed  int64
	recvLate   *hdrhistogram.Histogram // receipt - due, µs
	storeLate  *hdrhistogram.Histogram // StoreTime - due, µs
	lastRecv   time.Time
	gap        time.Duration // the longest time between two timer deliveries received
	gapFrom    time.Time
}

func newDelayRun(count int64) *delayRun {
	return &delayRun{
		run: runID(), count: count, acked: newBitset(count), received: newBitset(count),
		recvLate: hdrhistogram.New(1, maxLatenessMicros, latencyDigits), storeLate: hdrhistogram.New(1, maxLatenessMicros, latencyDigits),
	}
}

// message builds the next message: its sequence number and due time.
func (d *delayRun) message(o delayOptions, body []byte) func(time.Time) *client.Message {
	return func(time.Time) *client.Message {
		k := d.seq.Add(1) - 1
		var off time.Duration
		if o.Random {
			off = time.Duration(rand.Int64N(int64(o.Spread)) + 1)
		} else {
			off = time.Duration(float64(o.Spread) * float64(k+1) / float64(d.count))
		}
		due := d.start.Add(off)
		return &client.Message{Topic: o.Topic, Body: body, DeliverAt: due, Properties: map[string]string{
			propRun: d.run, propSeq: strconv.FormatInt(k, 10), propDue: strconv.FormatInt(due.UnixMilli(), 10),
		}}
	}
}

// sent records an acknowledgement.
func (d *delayRun) sent(m *client.Message, res client.SendResult, err error) {
	if err != nil {
		return
	}
	k, _ := strconv.ParseInt(m.Properties[propSeq], 10, 64)
	d.mu.Lock()
	if !d.acked.set(k) && d.received.has(k) {
		d.ackedRecv++
	}
	switch {
	case res.DeliverAt.IsZero():
		d.sentNow++
	case res.DeliverAt.UnixMilli() != m.DeliverAt.UnixMilli():
		d.mismatched++
	}
	d.mu.Unlock()
	if !res.DeliverAt.IsZero() {
		pending := d.timers.Add(1) - d.timerRecv.Load()
		for {
			old := d.peakPending.Load()
			if pending <= old || d.peakPending.CompareAndSwap(old, pending) {
				break
			}
		}
	}
}

// handle records each of this run's messages once.
func (d *delayRun) handle(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
	if d.stopped.Load() {
		return client.ConsumeRetryLater
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range msgs {
		if m.Properties[propRun] != d.run {
			continue
		}
		k, err1 := strconv.ParseInt(m.Properties[propSeq], 10, 64)
		asked, err2 := strconv.ParseInt(m.Properties[propDue], 10, 64)
		if err1 != nil || err2 != nil || k < 0 || k >= d.count {
			d.malformed++
			continue
		}
		if d.received.set(k) {
			d.duplicates++
			continue
		}
		d.delivered.Add(1)
		if d.acked.has(k) {
			d.ackedRecv++
		}
		v, ok := m.Properties[propDeliverAt]
		if !ok {
			d.immediate++
			continue
		}
		due, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			d.malformed++
			continue
		}
		if due != asked {
			d.mismatched++
		}
		d.timerRecv.Add(1)
		dueAt := time.UnixMilli(due)
		d.record(d.recvLate, now.Sub(dueAt))
		d.record(d.storeLate, m.StoreTime.Sub(dueAt))
		if !d.lastRecv.IsZero() && now.Sub(d.lastRecv) > d.gap {
			d.gap, d.gapFrom = now.Sub(d.lastRecv), d.lastRecv
		}
		d.lastRecv = now
	}
	return client.ConsumeSuccess
}

// record adds one lateness; a delivery before its due time counts as early
// (and as 0). StoreTime has millisecond resolution, so "stored - due"
// is 0 for a delivery in the millisecond it was due.
func (d *delayRun) record(h *hdrhistogram.Histogram, late time.Duration) {
	if late < 0 {
		d.early++
	}
	_ = h.RecordValue(min(max(late.Microseconds(), 0), maxLatenessMicros))
}

// complete reports whether every acknowledged message was received.
func (d *delayRun) complete(acked int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ackedRecv >= acked
}

// delayStats is bench delay's consumer side.
type delayStats struct {
	// Sent were acknowledged; Timers of them as delayed (SendResult.DeliverAt
	// set), SentDue as ordinary messages: already due when the leader
	// validated them (TIMER_DELIVER_MS dropped) or when their entry was
	// stored (TIMER_DELIVER_MS kept; these are timed like timers).
	Sent    int64 `json:"sent"`
	Timers  int64 `json:"timers"`
	SentDue int64 `json:"sent_due"`
	// Delivered distinct messages; Duplicates are deliveries of one
	// received before; Lost were acknowledged and not received in time;
	// Immediate were received without TIMER_DELIVER_MS (already due when
	// the leader validated them; not timed); Unacked were received though their send failed; Early were
	// received or stored before their due time; Mismatched came back with
	// another due time than asked.
	Delivered  int64 `json:"delivered"`
	Duplicates int64 `json:"duplicates"`
	Lost       int64 `json:"lost"`
	Immediate  int64 `json:"immediate"`
	Unacked    int64 `json:"unacked"`
	Early      int64 `json:"early"`
	Mismatched int64 `json:"mismatched"`
	Malformed  int64 `json:"malformed,omitempty"`
	// PeakPending is the most timers acknowledged and not yet received.
	PeakPending int64 `json:"peak_pending"`
	// Lateness of every delivery with a TIMER_DELIVER_MS: receipt - due,
	// and the delivery's StoreTime - due (broker clock, ms resolution), in µs.
	LatenessMicros      *latencySummary `json:"lateness_us,omitempty"`
	StoreLatenessMicros *latencySummary `json:"store_lateness_us,omitempty"`
	// LongestGap is the longest time between two timer deliveries
	// received, from GapFrom to GapTo (unix ms): a stall of the timers
	// service, e.g. while a new leader takes over.
	LongestGapMillis float64 `json:"longest_gap_ms"`
	GapFromUnixMilli int64   `json:"gap_from_unix_ms,omitempty"`
	GapToUnixMilli   int64   `json:"gap_to_unix_ms,omitempty"`
	// StartUnixMilli is when the due times start; WaitedMillis how long
	// the run waited in all, from there.
	StartUnixMilli    int64   `json:"start_unix_ms"`
	SpreadSec         float64 `json:"spread_s"`
	WaitedMillis      float64 `json:"waited_ms"`
	LastRecvUnixMilli int64   `json:"last_delivery_unix_ms,omitempty"`
}

// stats snapshots the run.
func (d *delayRun) stats(o delayOptions, end time.Time) *delayStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &delayStats{
		Timers: d.timers.Load(), SentDue: d.sentNow, Delivered: d.delivered.Load(), Duplicates: d.duplicates,
		Immediate: d.immediate, Early: d.early, Mismatched: d.mismatched, Malformed: d.malformed,
		PeakPending: d.peakPending.Load(), LatenessMicros: latencyOf(d.recvLate), StoreLatenessMicros: latencyOf(d.storeLate),
		LongestGapMillis: float64(d.gap.Microseconds()) / 1000, StartUnixMilli: d.start.UnixMilli(),
		SpreadSec: o.Spread.Seconds(), WaitedMillis: float64(end.Sub(d.start).Microseconds()) / 1000,
	}
	if d.gap > 0 {
		s.GapFromUnixMilli, s.GapToUnixMilli = d.gapFrom.UnixMilli(), d.gapFrom.Add(d.gap).UnixMilli()
	}
	if !d.lastRecv.IsZero() {
		s.LastRecvUnixMilli = d.lastRecv.UnixMilli()
	}
	for k := range min(d.seq.Load(), d.count) {
		a, r := d.acked.has(k), d.received.has(k)
		if a {
			s.Sent++
		}
		switch {
		case a && !r:
			s.Lost++
		case r && !a:
			s.Unacked++
		}
	}
	return s
}

func (s *delayStats) table(w io.Writer) {
	fmt.Fprintf(w, "\ndelayed: %d sent (%d as timers, %d already due), %d delivered, %d duplicates, %d lost",
		s.Sent, s.Timers, s.SentDue, s.Delivered, s.Duplicates, s.Lost)
	for _, x := range []struct {
		n    int64
		what string
	}{{s.Immediate, "delivered at once"}, {s.Unacked, "delivered though the send failed"}, {s.Early, "early"},
		{s.Mismatched, "with another due time"}, {s.Malformed, "malformed"}} {
		if x.n > 0 {
			fmt.Fprintf(w, ", %d %s", x.n, x.what)
		}
	}
	fmt.Fprintf(w, "; at most %d pending\n", s.PeakPending)
	fmt.Fprintf(w, "lateness of timer deliveries; longest pause between two: %s\n\n",
		(time.Duration(s.LongestGapMillis * float64(time.Millisecond))).Round(time.Millisecond))
	row(w, "LATENESS", "COUNT", "MIN", "P50", "P90", "P99", "P99.9", "MAX")
	for _, l := range []struct {
		name string
		s    *latencySummary
	}{{"received - due", s.LatenessMicros}, {"stored - due", s.StoreLatenessMicros}} {
		if l.s == nil {
			row(w, l.name, 0, "-", "-", "-", "-", "-", "-")
			continue
		}
		cells := []any{l.name, l.s.Count}
		for _, us := range []int64{l.s.Min, l.s.P50, l.s.P90, l.s.P99, l.s.P999, l.s.Max} {
			cells = append(cells, microsCell(us))
		}
		row(w, cells...)
	}
}

func benchDelay(c *cli.Context) error {
	o, err := parseDelayOptions(c)
	if err != nil {
		return err
	}
	queues, err := ensureTopic(c, o.Topic, o.Queues)
	if err != nil {
		return err
	}
	ns, err := nameServers(c)
	if err != nil {
		return err
	}
	d := newDelayRun(o.Count)
	cons, err := client.NewConsumer(client.ConsumerConfig{
		NameServers: ns, Credentials: credentials(c), TLS: clientTLS(c), Group: "bench-delay-" + d.run, Subscriptions: map[string]string{o.Topic: "*"},
		From: client.FromTimestamp, FromTimestamp: time.Now().Add(-time.Millisecond), Logger: clientLogger(c),
	})
	if err != nil {
		return err
	}
	defer func() { _ = closeConsumers(c, []*client.Consumer{cons}) }() // after the report; errors do not change it
	if err := startOwningAll(c, cons, d.handle, queues); err != nil {
		return explain(err, o.Topic)
	}
	r, err := newProducerRun(c, o.produceOptions, d.message(o, randomBody(o.Size)))
	if err != nil {
		return err
	}
	r.onSent = d.sent
	d.start = time.Now()
	pr := startProgress(c.App.ErrWriter, o.Progress, "send", o.Count, 0, r.sent)
	r.run(c.Context)
	pr.stop()
	rows, total := r.report()
	sendEnd := time.Now()
	deadline := d.start.Add(o.Spread)
	if sendEnd.After(deadline) {
		deadline = sendEnd
	}
	pr = startProgress(c.App.ErrWriter, o.Progress, "deliver", total.Messages, 0, d.delivered.Load)
	waitDelivered(c.Context, d, total.Messages, deadline.Add(o.Grace))
	pr.stop()
	d.stopped.Store(true)
	cerr := r.close(c)

	st := d.stats(o, time.Now())
	rep := benchReport{
		Bench: "delay", Topic: o.Topic, Queues: queues, Settings: o.settings(),
		Latency: "producers: " + r.latencyMeaning(), Clients: rows, Total: total, Delay: st,
		Errors: r.errs.summary(), Interrupted: c.Context.Err() != nil,
	}
	if err := finishReport(c, rep, r.errs, "send", cerr); err != nil {
		return err
	}
	if st.Sent > 0 && st.Delivered == 0 && !rep.Interrupted {
		return fmt.Errorf("none of the %d acknowledged messages was delivered within --grace %v of the last due time", st.Sent, o.Grace)
	}
	return nil
}

func (o delayOptions) settings() benchSettings {
	s := o.produceOptions.settings()
	s.SpreadSec, s.GraceSec, s.Order = o.Spread.Seconds(), o.Grace.Seconds(), "sequential"
	if o.Random {
		s.Order = "random"
	}
	return s
}

// waitDelivered waits until acked messages were received, or until the
// deadline or ctx ends.
func waitDelivered(ctx context.Context, d *delayRun, acked int64, deadline time.Time) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !d.complete(acked) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
