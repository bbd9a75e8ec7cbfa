package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1µs to maxLatency with 3
// significant digits: a value is off by at most 0.1%.
const (
	maxLatencyMicros = int64(10 * time.Minute / time.Microsecond)
	latencyDigits    = 3
)

func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, maxLatencyMicros, latencyDigits)
}

// clientStats are one bench client's counters, updated concurrently by
// its goroutines and callbacks.
type clientStats struct {
	name  string
	start time.Time // when the run started, shared by every client

	msgs, errs, bytes atomic.Int64
	redelivered       atomic.Int64 // repeats, not in msgs
	end               atomic.Int64 // unix ns of the last completion

	mu   sync.Mutex
	hist *hdrhistogram.Histogram // nil for benches that measure no latency
}

func newClientStats(name string, start time.Time, latency bool) *clientStats {
	s := &clientStats{name: name, start: start}
	if latency {
		s.hist = newLatencyHistogram()
	}
	return s
}

// ok counts n delivered or acknowledged messages of bytes bytes in all.
func (s *clientStats) ok(n int, bytes int64, now time.Time) {
	s.msgs.Add(int64(n))
	s.bytes.Add(bytes)
	s.finished(now)
}

// failed counts n messages lost to err.
func (s *clientStats) failed(n int, err error, now time.Time, log *errorLog) {
	s.errs.Add(int64(n))
	log.add(err, n)
	s.finished(now)
}

func (s *clientStats) finished(now time.Time) {
	ns := now.UnixNano()
	for {
		old := s.end.Load()
		if ns <= old || s.end.CompareAndSwap(old, ns) {
			return
		}
	}
}

// latency records one message's latency; messages of a batch record one
// value each.
func (s *clientStats) latency(d time.Duration) {
	us := min(max(d.Microseconds(), 1), maxLatencyMicros)
	s.mu.Lock()
	_ = s.hist.RecordValue(us) // in range by the clamp above
	s.mu.Unlock()
}

// done is how many messages completed either way: the progress count.
func (s *clientStats) done() int64 { return s.msgs.Load() + s.errs.Load() }

// duration is from the run's start to this client's last completion, or
// to now while nothing completed.
func (s *clientStats) duration(fallbackEnd time.Time) time.Duration {
	if end := s.end.Load(); end != 0 {
		return time.Unix(0, end).Sub(s.start)
	}
	return fallbackEnd.Sub(s.start)
}

// snapshot is the client's report row; it also returns a copy of the
// histogram for merging into the total.
func (s *clientStats) snapshot(end time.Time) (benchStats, *hdrhistogram.Histogram) {
	st := benchStats{Client: s.name, Messages: s.msgs.Load(), Errors: s.errs.Load(), Bytes: s.bytes.Load(), Redelivered: s.redelivered.Load()}
	st.setDuration(s.duration(end))
	if s.hist == nil {
		return st, nil
	}
	s.mu.Lock()
	h := hdrhistogram.Import(s.hist.Export())
	s.mu.Unlock()
	st.LatencyMicros = latencyOf(h)
	return st, h
}

// merge builds the total row: summed counters, the longest duration and
// the merged histogram.
func merge(name string, rows []benchStats, hists []*hdrhistogram.Histogram) benchStats {
	t := benchStats{Client: name}
	var d time.Duration
	for _, r := range rows {
		t.Messages += r.Messages
		t.Errors += r.Errors
		t.Bytes += r.Bytes
		t.Redelivered += r.Redelivered
		d = max(d, time.Duration(r.DurationMillis*float64(time.Millisecond)))
	}
	t.setDuration(d)
	var all *hdrhistogram.Histogram
	for _, h := range hists {
		if h == nil {
			continue
		}
		if all == nil {
			all = newLatencyHistogram()
		}
		all.Merge(h)
	}
	if all != nil {
		t.LatencyMicros = latencyOf(all)
	}
	return t
}

// benchStats is one row of a bench report: one client, or the total.
type benchStats struct {
	Client         string  `json:"client"`
	Messages       int64   `json:"messages"`
	Errors         int64   `json:"errors"`
	Bytes          int64   `json:"bytes"`
	DurationMillis float64 `json:"duration_ms"`
	MsgsPerSec     float64 `json:"msgs_per_sec"`
	MiBPerSec      float64 `json:"mib_per_sec"`
	// Redelivered counts consumed messages delivered again (after a
	// queue changed hands): repeats, not in Messages.
	Redelivered int64 `json:"redelivered,omitempty"`
	// LatencyMicros is absent for benches that measure none (consume).
	LatencyMicros *latencySummary `json:"latency_us,omitempty"`
}

func (s *benchStats) setDuration(d time.Duration) {
	d = d.Round(time.Microsecond) // as reported, so the rates agree with it
	s.DurationMillis = float64(d.Microseconds()) / 1000
	if secs := d.Seconds(); secs > 0 {
		s.MsgsPerSec = float64(s.Messages) / secs
		s.MiBPerSec = float64(s.Bytes) / (1 << 20) / secs
	}
}

// latencySummary is a latency distribution in microseconds.
type latencySummary struct {
	Count int64   `json:"count"`
	Min   int64   `json:"min"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99_9"`
	Max   int64   `json:"max"`
	Mean  float64 `json:"mean"`
}

func latencyOf(h *hdrhistogram.Histogram) *latencySummary {
	if h.TotalCount() == 0 {
		return nil
	}
	return &latencySummary{
		Count: h.TotalCount(),
		Min:   h.Min(),
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
		Mean:  h.Mean(),
	}
}

// benchReport is the result of every bench: the table and the JSON.
type benchReport struct {
	Bench    string        `json:"bench"` // produce, consume, e2e or delay
	Topic    string        `json:"topic"`
	Queues   int           `json:"queues"`
	Settings benchSettings `json:"settings"`
	// Latency says what LatencyMicros measures in Clients and Total.
	Latency string       `json:"latency,omitempty"`
	Clients []benchStats `json:"clients"`
	Total   benchStats   `json:"total"`
	// EndToEnd is bench e2e's consumer side.
	EndToEnd *endToEndStats `json:"end_to_end,omitempty"`
	// Delay is bench delay's consumer side.
	Delay *delayStats `json:"delay,omitempty"`
	// Errors are the distinct error messages of the run, most frequent
	// first (also printed on stderr).
	Errors []errorCount `json:"errors,omitempty"`
	// Interrupted is set when Ctrl-C ended the run early.
	Interrupted bool `json:"interrupted,omitempty"`
}

// benchSettings echoes the flags that shaped the run.
type benchSettings struct {
	Clients     int     `json:"clients"`
	Size        int     `json:"size,omitempty"`
	Mode        string  `json:"mode,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Inflight    int     `json:"inflight,omitempty"`
	Batch       int     `json:"batch,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Count       int64   `json:"count,omitempty"`
	DurationSec float64 `json:"duration_s,omitempty"`
	Group       string  `json:"group,omitempty"`
	From        string  `json:"from,omitempty"`
	PullBatch   int     `json:"pull_batch,omitempty"`
	SpreadSec   float64 `json:"spread_s,omitempty"` // bench delay
	GraceSec    float64 `json:"grace_s,omitempty"`
	Order       string  `json:"order,omitempty"`
}

// endToEndStats is bench e2e's consumer: the row's latency is from the
// scheduled send time to delivery.
type endToEndStats struct {
	benchStats
	// Sent is how many messages producers had acknowledged.
	Sent int64 `json:"sent"`
	// Missing were acknowledged but not received within --grace.
	Missing int64 `json:"missing"`
	// ToStore and StoreToDelivery split the latency at the message's
	// store time (the leader's clock when its batcher proposed it, in
	// whole milliseconds, so each part is off by up to 1ms and ToStore
	// reads 1µs for a message stored within the millisecond it was due):
	// the producer and write path, then Raft commit, apply, pull and
	// delivery. Meaningful when the broker's and the bench's clocks agree
	// (one host, or NTP well under a millisecond).
	ToStore         *latencySummary `json:"to_store_us,omitempty"`
	StoreToDelivery *latencySummary `json:"store_to_delivery_us,omitempty"`
}

type errorCount struct {
	Error string `json:"error"`
	Count int64  `json:"count"`
}

func (r benchReport) table(w io.Writer) {
	fmt.Fprintln(w, r.headline())
	if r.Latency != "" {
		fmt.Fprintf(w, "latency: %s\n", r.Latency)
	}
	fmt.Fprintln(w)
	row(w, statsHeader("CLIENT")...)
	for _, s := range r.Clients {
		row(w, s.cells()...)
	}
	if len(r.Clients) > 1 || r.EndToEnd == nil {
		row(w, r.Total.cells()...)
	}
	if n := r.Total.Redelivered; n > 0 {
		fmt.Fprintf(w, "\n%d messages were delivered again after changing hands; the repeats are not counted above\n", n)
	}
	if e := r.EndToEnd; e != nil {
		fmt.Fprintf(w, "\nend to end: %d sent, %d received, %d missing, %d redelivered; latency from scheduled send to delivery\n\n",
			e.Sent, e.Messages, e.Missing, e.Redelivered)
		row(w, statsHeader("CONSUMER")...)
		row(w, e.cells()...)
		for _, part := range []struct {
			name string
			l    *latencySummary
		}{{"  due -> stored", e.ToStore}, {"  stored -> delivered", e.StoreToDelivery}} {
			if part.l != nil {
				row(w, benchStats{Client: part.name, Messages: part.l.Count, LatencyMicros: part.l}.stageCells()...)
			}
		}
	}
	if r.Delay != nil {
		r.Delay.table(w)
	}
}

func (r benchReport) headline() string {
	s := r.Settings
	var b strings.Builder
	fmt.Fprintf(&b, "bench %s: topic %s (%d queues), %d client", r.Bench, r.Topic, r.Queues, s.Clients)
	if s.Clients != 1 {
		b.WriteString("s")
	}
	switch s.Mode {
	case "sync":
		fmt.Fprintf(&b, ", sync x%d", s.Concurrency)
	case "async":
		fmt.Fprintf(&b, ", async inflight %d", s.Inflight)
	}
	if s.Size > 0 {
		fmt.Fprintf(&b, ", %d-byte messages", s.Size)
	}
	if s.Batch > 1 {
		fmt.Fprintf(&b, ", batch %d", s.Batch)
	}
	if s.Rate > 0 {
		fmt.Fprintf(&b, ", target %s msgs/s", humanRate(s.Rate))
	}
	if s.Group != "" {
		fmt.Fprintf(&b, ", group %s from %s", s.Group, s.From)
	}
	if s.SpreadSec > 0 {
		fmt.Fprintf(&b, ", due over %s (%s)", time.Duration(s.SpreadSec*float64(time.Second)).Round(time.Millisecond), s.Order)
	}
	if r.Interrupted {
		b.WriteString(" (interrupted)")
	}
	return b.String()
}

func statsHeader(first string) []any {
	return []any{first, "MESSAGES", "ERRORS", "DURATION", "MSGS/S", "MIB/S", "MIN", "P50", "P90", "P99", "P99.9", "MAX"}
}

func (s benchStats) cells() []any {
	d := time.Duration(s.DurationMillis * float64(time.Millisecond)).Round(time.Millisecond)
	cells := []any{s.Client, s.Messages, s.Errors, d, fmt.Sprintf("%.0f", s.MsgsPerSec), fmt.Sprintf("%.2f", s.MiBPerSec)}
	l := s.LatencyMicros
	if l == nil {
		return append(cells, "-", "-", "-", "-", "-", "-")
	}
	for _, us := range []int64{l.Min, l.P50, l.P90, l.P99, l.P999, l.Max} {
		cells = append(cells, microsCell(us))
	}
	return cells
}

// stageCells is a row of a latency part: only the count and the latency.
func (s benchStats) stageCells() []any {
	cells := s.cells()
	for i := 2; i <= 5; i++ {
		cells[i] = ""
	}
	return cells
}

// microsCell renders a latency readably: 850µs, 1.23ms, 2.5s.
func microsCell(us int64) string {
	d := time.Duration(us) * time.Microsecond
	switch {
	case d < time.Millisecond:
		return d.String()
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func humanRate(r float64) string {
	if r == float64(int64(r)) {
		return fmt.Sprintf("%d", int64(r))
	}
	return fmt.Sprintf("%.1f", r)
}

// errorLog collects a run's errors by message. It keeps up to
// maxDistinctErrors messages; the rest are counted under "other errors".
type errorLog struct {
	mu     sync.Mutex
	counts map[string]int64
	first  error
}

const (
	maxDistinctErrors = 20
	shownErrors       = 5
)

func newErrorLog() *errorLog { return &errorLog{counts: map[string]int64{}} }

func (l *errorLog) add(err error, n int) {
	msg := err.Error()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == nil {
		l.first = err
	}
	if _, ok := l.counts[msg]; !ok && len(l.counts) >= maxDistinctErrors {
		msg = "other errors"
	}
	l.counts[msg] += int64(n)
}

// firstError is the run's first error, nil if none.
func (l *errorLog) firstError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

// summary lists distinct errors, most frequent first.
func (l *errorLog) summary() []errorCount {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]errorCount, 0, len(l.counts))
	for m, n := range l.counts {
		out = append(out, errorCount{Error: m, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Error < out[j].Error
	})
	return out
}

// printErrors writes the first few distinct errors to stderr.
func printErrors(w io.Writer, errs []errorCount) {
	if len(errs) == 0 {
		return
	}
	var total int64
	for _, e := range errs {
		total += e.Count
	}
	fmt.Fprintf(w, "%d errors, %d distinct:\n", total, len(errs))
	for i, e := range errs {
		if i == shownErrors {
			fmt.Fprintf(w, "  ... and %d more distinct errors (see --output json)\n", len(errs)-shownErrors)
			break
		}
		fmt.Fprintf(w, "  %8d  %s\n", e.Count, e.Error)
	}
}
