package main

import (
	"strings"
	"testing"
)

// TestBench runs every bench against one in-process cluster with small
// counts, checking what the reports say rather than how fast.
func TestBench(t *testing.T) {
	c := newCLI(t)
	bench := func(t *testing.T, args ...string) benchReport {
		t.Helper()
		args = append([]string{"bench"}, args...)
		return decode[benchReport](t, c.ok(append(args, "--no-progress", "-o", "json")...))
	}

	for _, tc := range []struct {
		name     string
		args     []string
		messages int64
		clients  int
	}{
		{"sync", []string{"--mode", "sync", "--count", "200"}, 200, 1},
		{"sync concurrency", []string{"--mode", "sync", "--concurrency", "4", "--clients", "2", "--count", "301"}, 301, 2},
		{"async", []string{"--mode", "async", "--inflight", "64", "--clients", "2", "--count", "1000"}, 1000, 2},
		{"sync batch", []string{"--mode", "sync", "--batch", "10", "--count", "505"}, 505, 1},
		{"async batch", []string{"--mode", "async", "--batch", "16", "--inflight", "64", "--count", "500", "--size", "100"}, 500, 1},
	} {
		t.Run("produce "+tc.name, func(t *testing.T) {
			r := bench(t, append([]string{"produce"}, tc.args...)...)
			checkTotals(t, r, tc.messages, tc.clients, true)
			if r.Bench != "produce" || r.Topic != "bench" || r.Queues != 8 {
				t.Errorf("got bench %q topic %q queues %d, want produce, bench, 8", r.Bench, r.Topic, r.Queues)
			}
		})
	}

	t.Run("produce rate", func(t *testing.T) {
		// 200 messages at 500/s: the last is due after ~0.4s, so the
		// achieved rate cannot be much above the target.
		r := bench(t, "produce", "--rate", "500", "--clients", "2", "--count", "200")
		checkTotals(t, r, 200, 2, true)
		if r.Total.MsgsPerSec > 1000 {
			t.Errorf("got %.0f msgs/s at --rate 500, want about 500", r.Total.MsgsPerSec)
		}
		if !strings.Contains(r.Latency, "due") {
			t.Errorf("got latency %q, want it measured from the schedule", r.Latency)
		}
	})

	t.Run("produce duration", func(t *testing.T) {
		r := bench(t, "produce", "--mode", "sync", "--duration", "300ms")
		if r.Total.Messages == 0 || r.Total.Errors != 0 || r.Settings.Count != 0 {
			t.Errorf("got %d messages, %d errors, count %d; want some, none, no count limit",
				r.Total.Messages, r.Total.Errors, r.Settings.Count)
		}
	})

	t.Run("produce table", func(t *testing.T) {
		out, errOut, err := c.run("bench", "produce", "--count", "100", "--clients", "2") // progress on, stderr not a terminal
		if err != nil {
			t.Fatalf("bench produce: %v\n%s", err, errOut)
		}
		for _, want := range []string{"bench produce: topic bench (8 queues), 2 clients", "CLIENT", "MSGS/S", "MIB/S", "P99.9", "producer-1", "\ntotal "} {
			if !strings.Contains(out, want) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
		if strings.ContainsAny(out+errOut, "\r\x1b") {
			t.Errorf("progress drawing on a non-terminal:\nstdout %q\nstderr %q", out, errOut)
		}
	})

	t.Run("consume drains the backlog", func(t *testing.T) {
		bench(t, "produce", "--topic", "drain", "--queues", "4", "--count", "1500", "--batch", "50", "--mode", "sync")
		r := bench(t, "consume", "--topic", "drain", "--clients", "2")
		checkTotals(t, r, 1500, 2, false)
		if !strings.HasPrefix(r.Settings.Group, "bench-") || r.Settings.From != "first" {
			t.Errorf("got group %q from %q, want a fresh bench-... group from first", r.Settings.Group, r.Settings.From)
		}
		// A second run is a new group: the same backlog again.
		r = bench(t, "consume", "--topic", "drain", "--count", "100")
		checkTotals(t, r, 100, 1, false)
		// A named group continues where it stopped: at the end.
		r = bench(t, "consume", "--topic", "drain", "--group", "g1")
		checkTotals(t, r, 1500, 1, false)
		c.fails("no backlog for group g1", "bench", "consume", "--topic", "drain", "--group", "g1")
	})

	t.Run("consume follows new writes", func(t *testing.T) {
		r := bench(t, "consume", "--topic", "drain", "--from", "last", "--duration", "200ms")
		if r.Total.Messages != 0 || r.Total.DurationMillis < 200 {
			t.Errorf("got %d messages in %.0fms, want none in 200ms or more", r.Total.Messages, r.Total.DurationMillis)
		}
	})

	t.Run("e2e", func(t *testing.T) {
		r := bench(t, "e2e", "--topic", "e2e", "--rate", "400", "--count", "200", "--clients", "2")
		checkTotals(t, r, 200, 2, true)
		e := r.EndToEnd
		if e == nil {
			t.Fatal("no end_to_end in the report")
		}
		if e.Sent != 200 || e.Messages != 200 || e.Missing != 0 || e.Bytes != 200*1024 || e.MsgsPerSec <= 0 {
			t.Errorf("end to end: got %+v, want 200 sent and received", e.benchStats)
		}
		if l := e.LatencyMicros; l == nil || l.Count != 200 || l.Min <= 0 || l.Min > l.P50 || l.P50 > l.P99 || l.P99 > l.Max {
			t.Errorf("end to end latency: got %+v, want 200 ordered values", l)
		}
		// The parts split each latency at the store time (whole ms, so a
		// part may exceed the whole by up to 1ms).
		for name, part := range map[string]*latencySummary{"to store": e.ToStore, "store to delivery": e.StoreToDelivery} {
			if part == nil || part.Count != 200 || part.Min <= 0 || part.Max > e.LatencyMicros.Max+1000 {
				t.Errorf("%s: got %+v, want 200 values, none above the whole's max %dµs (+1ms)", name, part, e.LatencyMicros.Max)
			}
		}
	})

	t.Run("every send fails", func(t *testing.T) {
		c.ok("topic", "create", "readonly", "--perm", "4")
		c.fails("every send failed (3 errors)", "--timeout", "300ms", "bench", "produce", "--topic", "readonly", "--count", "3", "--no-progress")
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, tc := range []struct {
			want string
			args []string
		}{
			{"--size 0: want 1 to", []string{"produce", "--size", "0"}},
			{`--mode "nope": want sync or async`, []string{"produce", "--mode", "nope"}},
			{"--clients 0: want 1 or more", []string{"produce", "--clients", "0"}},
			{"--clients 0: want 1 or more", []string{"consume", "--clients", "0"}},
			{"--clients 0: want 1 or more", []string{"e2e", "--clients", "0"}},
			{"--inflight 0: want 1 or more", []string{"produce", "--inflight", "0"}},
			{"--requests-in-flight -1: want 0 or more", []string{"produce", "--requests-in-flight", "-1"}},
			{"--batch 0: want 1 to", []string{"produce", "--batch", "0"}},
			{"--rate -1: want 0", []string{"produce", "--rate", "-1"}},
			{`--from "middle": want first or last`, []string{"consume", "--from", "middle"}},
			{"--pull-batch 0: want 1 to 1024", []string{"consume", "--pull-batch", "0"}},
			{`invalid value "x" for flag -count`, []string{"produce", "--count", "x"}},
			{`unknown command "nope" for 'rmq bench'`, []string{"nope"}},
			{`topic "nothing" not found`, []string{"consume", "--topic", "nothing"}},
		} {
			c.fails(tc.want, append([]string{"bench"}, tc.args...)...)
		}
	})
}

// checkTotals checks the counts of a report: messages in total, no
// errors, non-zero rates, clients rows adding up, and latency when the
// bench measures it.
func checkTotals(t *testing.T, r benchReport, messages int64, clients int, latency bool) {
	t.Helper()
	tot := r.Total
	if tot.Messages != messages || tot.Errors != 0 || len(r.Clients) != clients {
		t.Fatalf("got %d messages, %d errors, %d clients; want %d, 0, %d", tot.Messages, tot.Errors, len(r.Clients), messages, clients)
	}
	if tot.Client != "total" || tot.Bytes <= 0 || tot.DurationMillis <= 0 || tot.MsgsPerSec <= 0 || tot.MiBPerSec <= 0 {
		t.Errorf("total: got %+v, want non-zero bytes, duration and rates", tot)
	}
	var sum int64
	for _, cl := range r.Clients {
		sum += cl.Messages
	}
	if sum != messages {
		t.Errorf("client rows add up to %d messages, want %d", sum, messages)
	}
	l := tot.LatencyMicros
	switch {
	case !latency && l != nil:
		t.Errorf("got latency %+v, want none", l)
	case latency && (l == nil || l.Count != messages || l.Min <= 0 || l.Min > l.P50 || l.P50 > l.P90 ||
		l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max || l.Mean <= 0):
		t.Errorf("got latency %+v, want %d ordered values", l, messages)
	}
}
