package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/e2e"
)

// TestDelayed sends delayed messages with rmq send and rmq bench delay
// against a cluster whose delay level 1 is 300ms.
func TestDelayed(t *testing.T) {
	cl := e2e.StartCluster(t, e2e.Options{Broker: func(cfg *broker.Config) {
		cfg.DelayLevels = []time.Duration{300 * time.Millisecond, time.Hour}
		cfg.TimerPoll = 20 * time.Millisecond
	}})
	c := &harness{t: t, ns: cl.NamesrvAddr()}
	c.ok("topic", "create", "later", "--queues", "1")

	t.Run("send delay", func(t *testing.T) {
		golden(t, "send_delay.golden", c.ok("send", "later", "hello", "--delay", "1h"))
		rows := decode[sendRows](t, c.ok("send", "later", "hello", "--delay", "90m", "-o", "json"))
		if len(rows) != 1 || rows[0].Offset != 0 || rows[0].DeliverAt.IsZero() {
			t.Fatalf("got %+v, want one delayed row at offset 0", rows)
		}
		if in := rows[0].DeliverAt.Sub(rows[0].StoreTime); in < 89*time.Minute || in > 91*time.Minute {
			t.Errorf("due %s after it was stored, want about 90m", in)
		}
	})

	t.Run("send deliver-at", func(t *testing.T) {
		at := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Millisecond)
		for _, v := range []string{at.Format(time.RFC3339Nano), strconv.FormatInt(at.UnixMilli(), 10)} {
			rows := decode[sendRows](t, c.ok("send", "later", "at", "--deliver-at", v, "-o", "json"))
			if len(rows) != 1 || !rows[0].DeliverAt.Equal(at) {
				t.Errorf("--deliver-at %s: got %+v, want due at %s", v, rows, at)
			}
		}
		s := decode[sendSummary](t, c.ok("send", "later", "many", "--count", "25", "--deliver-at", at.Format(time.RFC3339Nano), "-o", "json"))
		if s.Sent != 25 || s.Delayed != 25 || !s.FirstDeliverAt.Equal(at) || !s.LastDeliverAt.Equal(at) {
			t.Errorf("summary: got %+v, want 25 sent, all delayed to %s", s, at)
		}
		out := c.ok("send", "later", "many", "--count", "25", "--deliver-at", at.Format(time.RFC3339Nano))
		if !strings.Contains(out, "delayed: due at "+timeCell(at)+" (in ") || !strings.Contains(out, "      -             -\n") {
			t.Errorf("summary table:\n%s\nwant the due time and no offsets", out)
		}
		// A time in the past is an ordinary message.
		rows := decode[sendRows](t, c.ok("send", "later", "past", "--deliver-at", "2001-02-03T04:05:06Z", "-o", "json"))
		if len(rows) != 1 || !rows[0].DeliverAt.IsZero() {
			t.Errorf("--deliver-at in the past: got %+v, want an ordinary message", rows)
		}
	})

	t.Run("send delay-level is delivered", func(t *testing.T) {
		c.ok("topic", "create", "soon", "--queues", "1")
		rows := decode[sendRows](t, c.ok("send", "soon", "level one", "--delay-level", "1", "-o", "json"))
		if len(rows) != 1 || rows[0].DeliverAt.IsZero() {
			t.Fatalf("got %+v, want a delayed row", rows)
		}
		if in := rows[0].DeliverAt.Sub(rows[0].StoreTime); in < 250*time.Millisecond || in > 350*time.Millisecond {
			t.Errorf("level 1 due %s after it was stored, want about 300ms", in)
		}
		msgs := jsonLines(t, c.ok("consume", "soon", "-g", "g-soon", "--from", "first", "--count", "1", "-o", "json"))
		if len(msgs) != 1 || msgs[0].Body != "level one" {
			t.Fatalf("consumed %+v, want the delayed message", msgs)
		}
		if m := msgs[0]; m.StoreTime.Before(rows[0].DeliverAt) || m.Properties["TIMER_DELIVER_MS"] != strconv.FormatInt(rows[0].DeliverAt.UnixMilli(), 10) {
			t.Errorf("delivered with store time %s and properties %v, want at or after %s with its due time", m.StoreTime, m.Properties, rows[0].DeliverAt)
		}
	})

	t.Run("send errors", func(t *testing.T) {
		withStdin(t, nil)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--delay", "1s", "--delay-level", "2"}, "--delay and --delay-level: give only one of --delay, --deliver-at and --delay-level"},
			{[]string{"--delay", "1s", "--deliver-at", "1", "--delay-level", "2"}, "--delay and --deliver-at and --delay-level: give only one"},
			{[]string{"--deliver-at", "tomorrow"}, `--deliver-at "tomorrow": want an RFC 3339 time`},
			{[]string{"--deliver-at", "-5"}, `--deliver-at "-5": want`},
			{[]string{"--delay", "-1s"}, "--delay -1s: want a positive duration"},
			{[]string{"--delay", "0s"}, "--delay 0s: want a positive duration"},
			{[]string{"--delay", "10us"}, "--delay 10µs: the broker counts whole milliseconds"},
			{[]string{"--delay-level", "0"}, "--delay-level 0: want 1 or more"},
			{[]string{"--delay", "100h"}, "a delay of 100h0m0s is beyond the broker's maximum delay 72h0m0s"},
		} {
			c.fails(tc.want, append([]string{"send", "later", "x"}, tc.args...)...)
		}
	})

	t.Run("bench delay", func(t *testing.T) {
		r := decode[benchReport](t, c.ok("bench", "delay", "--count", "400", "--spread", "1s", "--clients", "2", "--queues", "4", "--no-progress", "-o", "json"))
		d := r.Delay
		if r.Bench != "delay" || d == nil || r.Total.Messages != 400 || len(r.Clients) != 2 || r.Settings.SpreadSec != 1 || r.Settings.Order != "sequential" {
			t.Fatalf("got %+v, want a delay report of 400 messages from 2 clients over 1s", r)
		}
		// A message can be due before the leader validates it (no
		// TIMER_DELIVER_MS: Immediate) or before its entry is stored
		// (TIMER_DELIVER_MS kept, but no timer: SentDue, timed).
		if d.Sent != 400 || d.Delivered != 400 || d.Lost != 0 || d.Duplicates != 0 || d.Early != 0 || d.Mismatched != 0 ||
			d.Timers+d.SentDue != 400 || d.Immediate > d.SentDue || d.Timers == 0 || d.PeakPending <= 0 || d.PeakPending > d.Timers {
			t.Errorf("got %+v, want 400 sent and delivered once, on time, most as timers", d)
		}
		for name, l := range map[string]*latencySummary{"lateness": d.LatenessMicros, "store lateness": d.StoreLatenessMicros} {
			if l == nil || l.Count != d.Delivered-d.Immediate || l.Min > l.P50 || l.P50 > l.P99 || l.P99 > l.Max {
				t.Errorf("%s: got %+v, want %d ordered values", name, l, d.Delivered-d.Immediate)
			}
		}
		out := c.ok("bench", "delay", "--count", "50", "--spread", "200ms", "--order", "random", "--no-progress")
		for _, want := range []string{"bench delay: topic bench-delay (4 queues), 1 client, async inflight 1024, 1024-byte messages, due over 200ms (random)",
			"\ndelayed: 50 sent (", " 50 delivered, 0 duplicates, 0 lost", "LATENESS", "received - due", "stored - due"} {
			if !strings.Contains(out, want) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("bench delay bad flags", func(t *testing.T) {
		for _, tc := range []struct {
			want string
			args []string
		}{
			{"--spread 0s: want 1ms or more", []string{"--spread", "0"}},
			{"--count 0: want 1 to", []string{"--count", "0"}},
			{"--grace -1s: want 0 or more", []string{"--grace", "-1s"}},
			{`--order "backwards": want sequential or random`, []string{"--order", "backwards"}},
			{"--clients 0: want 1 or more", []string{"--clients", "0"}},
		} {
			c.fails(tc.want, append([]string{"bench", "delay"}, tc.args...)...)
		}
	})
}

func TestDueLine(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		total int
		dues  []time.Time
		ins   []time.Duration
		want  string
	}{
		{"none", 1, nil, nil, ""},
		{"one", 1, []time.Time{at}, []time.Duration{time.Hour - 3*time.Millisecond},
			"delayed: due at 2025-03-01T12:00:00.000Z (in 1h0m0s); offsets are assigned at delivery"},
		{"short", 1, []time.Time{at}, []time.Duration{1234567 * time.Microsecond},
			"delayed: due at 2025-03-01T12:00:00.000Z (in 1.235s); offsets are assigned at delivery"},
		{"span", 3, []time.Time{at.Add(2 * time.Millisecond), at, at.Add(time.Millisecond)}, []time.Duration{30 * time.Second, 29 * time.Second, 30 * time.Second},
			"delayed: due from 2025-03-01T12:00:00.000Z to 2025-03-01T12:00:00.002Z (in 29s to 30s); offsets are assigned at delivery"},
		{"some", 3, []time.Time{at}, []time.Duration{time.Second},
			"1 delayed: due at 2025-03-01T12:00:00.000Z (in 1s); offsets are assigned at delivery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d dueRange
			for i, due := range tc.dues {
				d.add(due, tc.ins[i])
			}
			if got := d.line(tc.total); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBitset(t *testing.T) {
	b := newBitset(130)
	for _, i := range []int64{0, 63, 64, 129} {
		if b.has(i) || b.set(i) || !b.has(i) || !b.set(i) {
			t.Errorf("bit %d: want unset, then set once", i)
		}
	}
	if b.has(1) || b.has(128) {
		t.Error("bits 1 and 128 set, want only 0, 63, 64 and 129")
	}
}
