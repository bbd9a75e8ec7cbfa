package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmq-dev/rmq/broker"
	"github.com/rmq-dev/rmq/client"
	"github.com/rmq-dev/rmq/fsm"
)

// Delayed messages across processes: a NameServer and three brokers with
// shortened delay levels, messages over every level while the leader is
// SIGKILLed twice. The timers live in the replicated state, so each new
// leader's scheduler must deliver every pending one, none early and none
// twice (a timer listed by two leaders is delivered once).

// drillDelayLevels are RocketMQ's 18 levels shortened to 50ms..2s.
var drillDelayLevels = msDurations(50, 100, 150, 200, 300, 400, 500, 600, 700, 800, 900,
	1000, 1200, 1400, 1600, 1800, 1900, 2000)

// TestDelayDrill sends 10 000 messages over all 18 delay levels with the
// rmq client while a clustering consumer consumes them, SIGKILLs the
// leader after about a third and two thirds of the sends, and checks that
// every acknowledged message is consumed, none before its due time, and
// that the scheduler stored none twice.
func TestDelayDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process drill")
	}
	runDelayDrill(t, delayDrill{
		levels:   drillDelayLevels,
		flags:    []string{"--delay-levels", formatLevels(drillDelayLevels)},
		messages: 10000,
		sendFor:  6 * time.Second,
	})
}

// TestDelayDrillDefaultLevels is the same drill, smaller, on the
// brokers' default levels (RocketMQ's: level 1 is 1s, level 2 is 5s):
// 500 messages over levels 1 and 2, with the same two leader kills.
func TestDelayDrillDefaultLevels(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process drill")
	}
	runDelayDrill(t, delayDrill{levels: broker.RocketMQDelayLevels[:2], messages: 500, sendFor: 3 * time.Second})
}

// delayDrill parameterizes runDelayDrill.
type delayDrill struct {
	levels   []time.Duration // the brokers' levels; message i asks for level 1+i%len(levels)
	flags    []string        // broker flags that configure levels (none: the brokers' defaults)
	messages int
	sendFor  time.Duration // the sends are paced over about this long (longer across failovers)
}

const (
	delayTopic  = "delayed"
	delayQueues = 8
	// clockSlack allows for the millisecond rounding of due times; every
	// process reads the same host clock.
	clockSlack = 2 * time.Millisecond
)

func msDurations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, v := range ms {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

// formatLevels renders levels as "50ms 100ms ...", RocketMQ's
// messageDelayLevel form in milliseconds.
func formatLevels(levels []time.Duration) string {
	parts := make([]string, len(levels))
	for i, l := range levels {
		parts[i] = strconv.FormatInt(l.Milliseconds(), 10) + "ms"
	}
	return strings.Join(parts, " ")
}

// checkBrokerFlags fails at once if `rmq broker` rejects flags, rather
// than after the cluster's start-up deadline.
func checkBrokerFlags(t *testing.T, flags []string) {
	t.Helper()
	if len(flags) == 0 {
		return
	}
	out, err := exec.Command(rmqBinary(t), append(append([]string{"broker"}, flags...), "--help")...).CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Fatalf("rmq broker %s: %v: %s", strings.Join(flags, " "), err, lines[len(lines)-1])
	}
}

// delaySend is one message's send, by index.
type delaySend struct {
	level      int
	start, end time.Time
	res        client.SendResult
	err        error
}

// delayLedger records sends and the drill consumer's deliveries.
type delayLedger struct {
	mu         sync.Mutex
	sends      []delaySend
	acked      map[string]int // MsgID -> index
	done       int            // sends answered
	failed     int
	firstErr   error
	consumed   map[string]time.Time // MsgID -> first delivery (consumer clock)
	deliveries int
	early      []string // deliveries stored before their due time, or not delayed
}

func newDelayLedger(n int) *delayLedger {
	return &delayLedger{sends: make([]delaySend, n), acked: map[string]int{}, consumed: map[string]time.Time{}}
}

func (l *delayLedger) answered(i int, res client.SendResult, err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.sends[i]
	s.end, s.res, s.err = now, res, err
	l.done++
	if err != nil {
		l.failed++
		if l.firstErr == nil {
			l.firstErr = err
		}
		return
	}
	l.acked[res.MsgID] = i
}

func (l *delayLedger) handle(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		l.deliveries++
		if _, ok := l.consumed[m.MsgID]; !ok {
			l.consumed[m.MsgID] = now
		}
		if due, ok := dueOf(m); !ok || m.StoreTime.UnixMilli() < due {
			l.early = append(l.early, fmt.Sprintf("%s (%s) stored %d, %s=%q", m.MsgID, m.Body, m.StoreTime.UnixMilli(),
				fsm.PropDeliverAt, m.Properties[fsm.PropDeliverAt]))
		}
	}
	return client.ConsumeSuccess
}

func (l *delayLedger) answeredCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

// unconsumed lists acknowledged messages not delivered yet.
func (l *delayLedger) unconsumed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id := range l.acked {
		if _, ok := l.consumed[id]; !ok {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func dueOf(m *client.MessageExt) (int64, bool) {
	v, err := strconv.ParseInt(m.Properties[fsm.PropDeliverAt], 10, 64)
	return v, err == nil
}

func runDelayDrill(t *testing.T, d delayDrill) {
	t.Helper()
	began := time.Now()
	checkBrokerFlags(t, d.flags)
	c := startProcCluster(t, d.flags...)
	createDelayTopic(t, c)
	l := newDelayLedger(d.messages)

	cons, err := client.NewConsumer(client.ConsumerConfig{NameServers: []string{c.nsAddr}, Group: "delay-drill",
		From: client.FromFirst, Subscriptions: map[string]string{delayTopic: "*"}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeConsumer(t, cons)
	if err := cons.Start(context.Background(), l.handle); err != nil {
		t.Fatal(err)
	}

	p, err := client.NewProducer(client.ProducerConfig{NameServers: []string{c.nsAddr}, SendTimeout: 15 * time.Second,
		AutoCreateQueues: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var feeder sync.WaitGroup
	defer func() { // also on t.Fatal: stop sending, then let every callback run
		cancel()
		feeder.Wait()
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		_ = p.Close(cctx)
	}()
	feeder.Add(1)
	go func() {
		defer feeder.Done()
		feedDelayed(ctx, p, l, d)
	}()

	waitAnswered := func(n int) {
		t.Helper()
		Eventually(t, 60*time.Second, func() error {
			if got := l.answeredCount(); got < n {
				return errorf("%d of %d sends answered", got, n)
			}
			return nil
		})
	}
	waitAnswered(d.messages / 3)
	first := killDelayLeader(t, c, l)
	c.start(first)
	c.waitCaughtUp(first, 30*time.Second)
	waitAnswered(2 * d.messages / 3)
	second := killDelayLeader(t, c, l)
	c.start(second)
	feeder.Wait()
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	if err := p.Flush(fctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	Eventually(t, 30*time.Second, func() error {
		if left := l.unconsumed(); len(left) > 0 {
			return errorf("%d acknowledged messages not consumed yet (e.g. %s)", len(left), left[0])
		}
		return nil
	})
	closeConsumer(t, cons)
	t.Logf("drill consumer: %d deliveries of %d acknowledged messages, stats %+v", l.deliveries, len(l.acked), cons.Stats())
	units := auditDelayed(t, c)
	checkDelayed(t, d, l, units, p.Stats())
	t.Logf("delay drill took %s", time.Since(began).Round(time.Millisecond))
}

func createDelayTopic(t *testing.T, c *procCluster) {
	t.Helper()
	a := c.admin()
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.CreateTopic(ctx, client.TopicSpec{Name: delayTopic, Queues: delayQueues}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, func() error {
		qs, err := a.TopicStatus(ctx, delayTopic)
		if err == nil && len(qs) != delayQueues {
			err = errorf("route has %d queues, want %d", len(qs), delayQueues)
		}
		return err
	})
}

func closeConsumer(t *testing.T, cons *client.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := cons.Close(ctx); err != nil {
		t.Errorf("close consumer: %v", err)
	}
}

// feedDelayed sends message i with level 1+i%len(levels), paced in 10ms
// ticks over about d.sendFor, until all are sent or ctx ends.
func feedDelayed(ctx context.Context, p *client.Producer, l *delayLedger, d delayDrill) {
	const tick = 10 * time.Millisecond
	perTick := max(1, int((int64(d.messages)*int64(tick)+int64(d.sendFor)-1)/int64(d.sendFor)))
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for i := 0; i < d.messages; {
		for k := 0; k < perTick && i < d.messages; k, i = k+1, i+1 {
			level := 1 + i%len(d.levels)
			l.mu.Lock()
			l.sends[i].level, l.sends[i].start = level, time.Now()
			l.mu.Unlock()
			idx := i
			p.SendAsync(ctx, &client.Message{Topic: delayTopic, DelayLevel: level, Body: fmt.Appendf(nil, "delay-%05d", i)},
				func(res client.SendResult, err error) { l.answered(idx, res, err) })
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// killDelayLeader SIGKILLs the leader, waits for another one and returns
// the killed node's id.
func killDelayLeader(t *testing.T, c *procCluster, l *delayLedger) string {
	t.Helper()
	old := c.leaderID(20 * time.Second)
	at := l.answeredCount()
	start := time.Now()
	c.kill(old)
	next := c.leaderID(20 * time.Second)
	if next == old {
		t.Fatalf("%s still leads after SIGKILL", old)
	}
	t.Logf("SIGKILL leader %s after %d answered sends; %s leads %s later", old, at, next, time.Since(start).Round(time.Millisecond))
	return old
}

// delayUnit is one stored copy: a consume-queue unit of the topic.
type delayUnit struct {
	id, body   string
	due, store int64 // unix ms; due 0 if the copy has no due time
}

type queueOffset struct {
	queue  uint32
	offset uint64
}

// auditDelayed reads every queue of the topic from its first offset with
// a new group until it has as many distinct units as the queues hold.
func auditDelayed(t *testing.T, c *procCluster) map[queueOffset]delayUnit {
	t.Helper()
	var mu sync.Mutex
	units := map[queueOffset]delayUnit{}
	cons, err := client.NewConsumer(client.ConsumerConfig{NameServers: []string{c.nsAddr}, Group: "delay-audit",
		From: client.FromFirst, Subscriptions: map[string]string{delayTopic: "*"}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeConsumer(t, cons)
	err = cons.Start(context.Background(), func(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			due, _ := dueOf(m)
			units[queueOffset{m.Queue.QueueID, m.QueueOffset}] = delayUnit{id: m.MsgID, body: string(m.Body), due: due,
				store: m.StoreTime.UnixMilli()}
		}
		return client.ConsumeSuccess
	})
	if err != nil {
		t.Fatal(err)
	}
	a := c.admin()
	defer a.Close()
	Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		qs, err := a.TopicStatus(ctx, delayTopic)
		if err != nil {
			return err
		}
		var total uint64
		for _, q := range qs {
			total += q.MaxOffset - q.MinOffset
		}
		mu.Lock()
		defer mu.Unlock()
		if uint64(len(units)) < total {
			return errorf("audit read %d of %d units", len(units), total)
		}
		return nil
	})
	closeConsumer(t, cons) // waits for running handlers
	mu.Lock()
	defer mu.Unlock()
	return units
}

// checkDelayed checks the audited units against the sends and logs the
// drill's counts and delivery lateness.
func checkDelayed(t *testing.T, d delayDrill, l *delayLedger, units map[queueOffset]delayUnit, ps client.ProducerStats) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	copies := map[string]map[int64][]delayUnit{} // MsgID -> due -> stored copies
	for _, u := range units {
		if u.due == 0 || u.store < u.due {
			t.Errorf("%s (%s) stored at %d, due %d: not delayed or delivered early", u.id, u.body, u.store, u.due)
		}
		if copies[u.id] == nil {
			copies[u.id] = map[int64][]delayUnit{}
		}
		copies[u.id][u.due] = append(copies[u.id][u.due], u)
	}
	// A copy is one record delivered once. Two units of the same message
	// with the same due time are one timer delivered twice; a resend after
	// an indeterminate answer is another record, due by its own send.
	schedDups, sendDups := 0, 0
	for id, byDue := range copies {
		for due, us := range byDue {
			if len(us) > 1 {
				schedDups += len(us) - 1
				t.Errorf("%s (%s) due %d stored %d times by the scheduler", id, us[0].body, due, len(us))
			}
		}
		sendDups += len(byDue) - 1
	}
	var late []time.Duration
	lost, immediate := 0, 0
	for id, i := range l.acked {
		s := &l.sends[i]
		due := s.res.DeliverAt.UnixMilli()
		if _, ok := l.consumed[id]; !ok {
			lost++
		}
		if s.res.DeliverAt.IsZero() {
			// Answered as not delayed: its due time had passed when the
			// entry was stored (the send waited out a failover longer than
			// its delay), so it was stored visible at once.
			atOnce := false
			for d, us := range copies[id] {
				atOnce = atOnce || us[0].store >= d
			}
			if !atOnce {
				t.Errorf("%s (message %d) acknowledged as not delayed, but every stored copy is delayed (copies %v)", id, i, copies[id])
			}
			immediate++
			continue
		}
		us := copies[id][due]
		if len(us) == 0 {
			t.Errorf("%s (message %d) acknowledged due %d: no stored copy with that due time (copies %v)", id, i, due, copies[id])
			continue
		}
		want := d.levels[s.level-1]
		if lo, hi := s.start.Add(want-clockSlack).UnixMilli(), s.end.Add(want+clockSlack).UnixMilli(); due < lo || due > hi {
			t.Errorf("message %d level %d (%s): due %d outside its send [%d, %d] + level", i, s.level, want, due, lo, hi)
		}
		late = append(late, time.Duration(us[0].store-due)*time.Millisecond)
	}
	if lost > 0 {
		t.Errorf("%d acknowledged messages never consumed", lost)
	}
	if len(l.early) > 0 {
		t.Errorf("%d deliveries before their due time, e.g. %s", len(l.early), l.early[0])
	}
	if len(l.acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	t.Logf("%d sent, %d acknowledged, %d failed (first: %v); %d producer resends, %d duplicate records from resends",
		d.messages, len(l.acked), l.failed, l.firstErr, ps.Resends, sendDups)
	t.Logf("%d stored units audited for %d messages; %d stored twice by the scheduler; %d stored after their due time (visible at once)",
		len(units), len(copies), schedDups, immediate)
	if len(late) == 0 {
		return
	}
	slices.Sort(late)
	pct := func(q float64) time.Duration { return late[int(q*float64(len(late)-1))] }
	t.Logf("delivery lateness (StoreTime - DeliverAt) over %d acknowledged messages: p50 %s, p99 %s, max %s",
		len(late), pct(0.50), pct(0.99), late[len(late)-1])
}
