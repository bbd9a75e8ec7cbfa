package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

func sendOne(t *testing.T, n *Node, m *fsm.Message) SendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := n.Send(ctx, []*fsm.Message{m})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if res[0].Err != nil {
		t.Fatalf("send: %v", res[0].Err)
	}
	return res[0]
}

// allMessages reads every message of a topic's queues, by ID.
func allMessages(t *testing.T, n *Node, topic string, queues uint32) map[string][]StoredMessage {
	t.Helper()
	out := map[string][]StoredMessage{}
	for q := uint32(0); q < queues; q++ {
		for _, m := range readQueue(t, n, topic, q) {
			out[string(m.ID)] = append(out[string(m.ID)], m)
		}
	}
	return out
}

// TestDelayedDeliveryOnInjectedClock: delay levels, relative and absolute
// times are resolved by the leader's clock; a delayed message is invisible
// until the scheduler sees its due time on that clock, then appears once,
// stored no earlier than due, from the one record written at send.
func TestDelayedDeliveryOnInjectedClock(t *testing.T) {
	clk := &testClock{now: time.UnixMilli(1_700_000_000_000)}
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.Now = clk.Now
		cfg.DelayLevels = []time.Duration{time.Second, time.Minute}
		cfg.TimerPoll = 10 * time.Millisecond
	})
	createTopic(t, c, "d", 1)
	n := c.leader(10 * time.Second)
	start := clk.Now()
	cases := []struct {
		id    string
		props map[string]string
		delay time.Duration // 0: at once
	}{
		{"level1", map[string]string{PropDelayLevel: "1"}, time.Second},
		{"level9", map[string]string{PropDelayLevel: "9"}, time.Minute}, // above the last level: the last
		{"sec", map[string]string{PropDelaySec: "30"}, 30 * time.Second},
		{"ms", map[string]string{PropDelayMS: "1500"}, 1500 * time.Millisecond},
		{"abs", map[string]string{fsm.PropDeliverAt: strconv.FormatInt(start.Add(45*time.Second).UnixMilli(), 10)}, 45 * time.Second},
		{"past", map[string]string{fsm.PropDeliverAt: strconv.FormatInt(start.Add(-time.Hour).UnixMilli(), 10)}, 0},
		{"plain", nil, 0},
	}
	due := map[string]time.Time{}
	for _, tc := range cases {
		r := sendOne(t, n, &fsm.Message{Topic: "d", ID: []byte(tc.id), Body: []byte("b"), Properties: tc.props})
		if r.Delayed != (tc.delay > 0) {
			t.Fatalf("%s: Delayed %v", tc.id, r.Delayed)
		}
		if tc.delay > 0 {
			if want := start.Add(tc.delay).UnixMilli(); r.DeliverAt != want {
				t.Fatalf("%s: DeliverAt %d, want %d", tc.id, r.DeliverAt, want)
			}
			due[tc.id] = start.Add(tc.delay)
		}
	}
	if st, err := n.TopicStatus("d"); err != nil || st.Queues[0].Delayed != len(due) {
		t.Fatalf("topic status %+v %v, want %d delayed", st, err, len(due))
	}
	visible := func() map[string][]StoredMessage { return allMessages(t, n, "d", 1) }
	if got := visible(); len(got) != 2 || got["past"] == nil || got["plain"] == nil {
		t.Fatalf("visible at once: %v, want past and plain only", keys(got))
	}
	for _, step := range []struct {
		by   time.Duration
		want int
	}{{time.Second, 3}, {500 * time.Millisecond, 4}, {28500 * time.Millisecond, 5}, {15 * time.Second, 6}, {15 * time.Second, 7}} {
		clk.Add(step.by)
		eventually(t, 10*time.Second, func() error {
			if got := len(visible()); got != step.want {
				return fmt.Errorf("%d visible at +%s, want %d", got, clk.Now().Sub(start), step.want)
			}
			return nil
		})
	}
	for id, ms := range visible() {
		if len(ms) != 1 {
			t.Fatalf("%s delivered %d times", id, len(ms))
		}
		if d, ok := due[id]; ok && ms[0].StoreTime < d.UnixMilli() {
			t.Fatalf("%s stored at %d, before its due time %d", id, ms[0].StoreTime, d.UnixMilli())
		}
	}
	if p := n.fsm.PendingTimers(); p != 0 {
		t.Fatalf("pending timers after all deliveries: %d", p)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDelayRefusals: bad delay properties are refused naming the
// property, and nothing is stored.
func TestDelayRefusals(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.MaxDelay = time.Hour })
	createTopic(t, c, "d", 1)
	n := c.leader(10 * time.Second)
	for _, tc := range []struct {
		props map[string]string
		want  string
	}{
		{map[string]string{PropDelayLevel: "x"}, "DELAY"},
		{map[string]string{PropDelaySec: "7200"}, "maximum delay 1h0m0s"},
		{map[string]string{PropDelaySec: "-1"}, "TIMER_DELAY_SEC"},
		{map[string]string{fsm.PropDeliverAt: strconv.FormatInt(time.Now().Add(2*time.Hour).UnixMilli(), 10)}, "maximum delay"},
		{map[string]string{PropDelayLevel: "1", PropDelayMS: "5"}, "only one"},
	} {
		res, err := n.Send(t.Context(), []*fsm.Message{{Topic: "d", Body: []byte("b"), Properties: tc.props}})
		if err != nil || res[0].Err == nil || !errors.Is(res[0].Err, ErrInvalidArgument) || !strings.Contains(res[0].Err.Error(), tc.want) {
			t.Fatalf("%v: %v %v, want ErrInvalidArgument naming %q", tc.props, err, res, tc.want)
		}
	}
	if _, next, _ := n.QueueRange("d", 0); next != 0 || n.fsm.PendingTimers() != 0 {
		t.Fatalf("refused sends stored something: next %d, timers %d", next, n.fsm.PendingTimers())
	}
}

// TestDelayedAcrossLeaderKills: delayed messages spread over a few seconds
// are each delivered exactly once, no earlier than due, though the leader
// is killed twice meanwhile: the timers are replicated and the next
// leader's scheduler continues from them.
func TestDelayedAcrossLeaderKills(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.TimerPoll = 20 * time.Millisecond })
	createTopic(t, c, "d", 4)
	const total = 300
	due := map[string]int64{}
	maybeDup := map[string]bool{} // resent after an indeterminate answer: stored twice is the producer's duplicate
	sendBatch := func(from, to int) {
		for i := from; i < to; i++ {
			id := fmt.Sprintf("m%03d", i)
			delay := time.Duration(200+(i*17)%2800) * time.Millisecond
			m := &fsm.Message{Topic: "d", QueueID: uint32(i % 4), ID: []byte(id), Body: []byte(id),
				Properties: map[string]string{PropDelayMS: strconv.FormatInt(delay.Milliseconds(), 10)}}
			res, dup, err := sendRetrying(t, c, []*fsm.Message{m})
			if err != nil {
				t.Fatalf("send %s: %v", id, err)
			}
			due[id], maybeDup[id] = res[0].DeliverAt, dup
		}
	}
	sendBatch(0, total/3)
	c.kill(c.leader(10 * time.Second).cfg.NodeID)
	sendBatch(total/3, 2*total/3)
	killed := c.leader(10 * time.Second).cfg.NodeID
	c.kill(killed)
	c.start(killed) // back, so two of three are up again
	sendBatch(2*total/3, total)
	var got map[string][]StoredMessage
	eventually(t, 60*time.Second, func() error {
		n := c.leader(10 * time.Second)
		got = allMessages(t, n, "d", 4)
		if len(got) != total {
			return fmt.Errorf("%d of %d delivered (%d pending)", len(got), total, n.fsm.PendingTimers())
		}
		return nil
	})
	late := time.Duration(0)
	for id, ms := range got {
		if len(ms) != 1 && !(maybeDup[id] && len(ms) == 2) {
			t.Fatalf("%s delivered %d times", id, len(ms))
		}
		if due[id] != 0 && ms[0].StoreTime < due[id] {
			t.Fatalf("%s stored at %d, before its due time %d", id, ms[0].StoreTime, due[id])
		}
		late = max(late, time.Duration(ms[0].StoreTime-due[id])*time.Millisecond)
	}
	t.Logf("%d delayed messages across two leader kills: each delivered once; latest delivery %s after due", total, late)
}

// TestRetentionKeepsPendingTimersRecords: retention releases the log, but
// the purge keeps it from the record of a pending timer, which is then
// delivered and readable.
func TestRetentionKeepsPendingTimersRecords(t *testing.T) {
	clk := &testClock{now: time.Now()}
	c := newTestCluster(t, 1, func(cfg *Config) {
		cfg.Now = clk.Now
		cfg.SegmentSize = 64 << 10
		cfg.TimerPoll = 10 * time.Millisecond
	})
	createTopic(t, c, "d", 1)
	n := c.leader(10 * time.Second)
	body := make([]byte, 4<<10)
	for i := 0; i < 50; i++ { // sealed segments before the delayed record: purged
		sendOne(t, n, &fsm.Message{Topic: "d", ID: []byte(fmt.Sprint("early", i)), Body: body})
	}
	r := sendOne(t, n, &fsm.Message{Topic: "d", ID: []byte("late"), Body: []byte("late"),
		Properties: map[string]string{PropDelaySec: "3600"}})
	for i := 0; i < 100; i++ { // several sealed segments after the delayed record
		sendOne(t, n, &fsm.Message{Topic: "d", ID: []byte(fmt.Sprint(i)), Body: body})
	}
	last := n.Status().LastIndex
	if err := n.proposeCommand(t.Context(), &fsm.TruncatePrefix{UpTo: last, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	n.purgeReleased()
	if first := n.Status().FirstIndex; first > r.RaftIndex || first <= 1 {
		t.Fatalf("log starts at %d after the purge; want it purged, but not past the pending timer's record at %d", first, r.RaftIndex)
	}
	clk.Add(time.Hour)
	eventually(t, 10*time.Second, func() error {
		if got := allMessages(t, n, "d", 1)["late"]; len(got) != 1 || string(got[0].Body) != "late" {
			return fmt.Errorf("the delayed message after retention: %v", got)
		}
		return nil
	})
}
