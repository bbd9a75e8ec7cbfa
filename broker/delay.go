package broker

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/rmq-dev/rmq/fsm"
)

// Delayed and timer messages. A message asks for a later delivery with
// one of RocketMQ's properties: DELAY (a delay level, 1..len(DelayLevels);
// a higher level means the last), TIMER_DELIVER_MS (an absolute time,
// unix ms), TIMER_DELAY_SEC or TIMER_DELAY_MS (relative). The leader
// turns each into an absolute TIMER_DELIVER_MS when it validates the send,
// by its own clock, so the record is self-describing and every replica's
// fsm decides alike; a time not in the future delivers at once. The body
// is written once: the fsm keeps a pending timer pointing at the record
// (fsm/timers.go), and the leader service runTimers below delivers due
// timers by proposing fsm.DeliverTimers, which appends their units.
// Retention keeps the log from the oldest record a timer or a delivered
// unit points to (PinnedIndex, purgeReleased).

// Delay properties (RocketMQ MessageConst).
const (
	PropDelayLevel = "DELAY"
	PropDelaySec   = "TIMER_DELAY_SEC"
	PropDelayMS    = "TIMER_DELAY_MS"
)

// RocketMQDelayLevels is RocketMQ's default messageDelayLevel.
var RocketMQDelayLevels = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
	6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
}

// normalizeDelay resolves m's delay properties into an absolute
// TIMER_DELIVER_MS (or none, for an immediate delivery), on a copy of its
// properties. now is the leader's clock.
func (n *Node) normalizeDelay(m *fsm.Message, now time.Time) error {
	p := m.Properties
	if p == nil {
		return nil
	}
	level, abs, sec, ms := p[PropDelayLevel], p[fsm.PropDeliverAt], p[PropDelaySec], p[PropDelayMS]
	if level == "" && abs == "" && sec == "" && ms == "" {
		return nil
	}
	bad := func(prop, v, why string) error {
		return fmt.Errorf("%w: property %s=%q: %s", ErrInvalidArgument, prop, v, why)
	}
	var due time.Time
	set := 0
	if level != "" && level != "0" {
		l, err := strconv.Atoi(level)
		if err != nil || l < 0 {
			return bad(PropDelayLevel, level, "want a delay level 1.."+strconv.Itoa(len(n.cfg.DelayLevels)))
		}
		due = now.Add(n.cfg.DelayLevels[min(l, len(n.cfg.DelayLevels))-1])
		set++
	}
	if abs != "" {
		v, err := strconv.ParseInt(abs, 10, 64)
		if err != nil {
			return bad(fsm.PropDeliverAt, abs, "want unix milliseconds")
		}
		due = time.UnixMilli(v)
		set++
	}
	for _, r := range []struct {
		prop, v string
		unit    time.Duration
	}{{PropDelaySec, sec, time.Second}, {PropDelayMS, ms, time.Millisecond}} {
		if r.v == "" {
			continue
		}
		v, err := strconv.ParseInt(r.v, 10, 64)
		if err != nil || v < 0 {
			return bad(r.prop, r.v, "want a non-negative integer")
		}
		if v > int64(n.cfg.MaxDelay/r.unit) {
			return fmt.Errorf("%w: a delay of %s is beyond the broker's maximum delay %s", ErrInvalidArgument,
				time.Duration(v)*r.unit, n.cfg.MaxDelay)
		}
		due = now.Add(time.Duration(v) * r.unit)
		set++
	}
	if set > 1 {
		return fmt.Errorf("%w: a message may set only one of %s, %s, %s and %s", ErrInvalidArgument,
			PropDelayLevel, fsm.PropDeliverAt, PropDelaySec, PropDelayMS)
	}
	if d := due.Sub(now); d > n.cfg.MaxDelay && (level == "" || level == "0") { // levels are the operator's own
		return fmt.Errorf("%w: delivery in %s is beyond the broker's maximum delay %s", ErrInvalidArgument,
			d.Round(time.Second), n.cfg.MaxDelay)
	}
	p = maps.Clone(p)
	delete(p, PropDelaySec)
	delete(p, PropDelayMS)
	if set == 0 || !due.After(now) {
		delete(p, fsm.PropDeliverAt) // due now: an ordinary message
	} else {
		p[fsm.PropDeliverAt] = strconv.FormatInt(due.UnixMilli(), 10)
	}
	m.Properties = p
	return nil
}

// runTimers is the leader-only timer scheduler: it proposes DeliverTimers
// for the timers due by the leader's clock, waiting for each to apply so
// that it never lists a timer twice; a timer listed by an earlier leader
// too is delivered once anyway (fsm). It starts after the leader's
// Barrier, so it sees every timer earlier leaders stored or delivered,
// and continues exactly where they stopped.
func (n *Node) runTimers(ctx context.Context) error {
	tick := time.NewTicker(n.cfg.TimerPoll)
	defer tick.Stop()
	for {
		now := n.cfg.Now().UnixMilli()
		if due := n.fsm.DueTimers(now, fsm.MaxDeliverItems); len(due) > 0 {
			err := n.proposeCommand(ctx, &fsm.DeliverTimers{Now: now, Items: due})
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				n.log.Warn("timer delivery failed; retrying", "timers", len(due), "error", err)
			case len(due) == fsm.MaxDeliverItems:
				continue // more may be due
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
